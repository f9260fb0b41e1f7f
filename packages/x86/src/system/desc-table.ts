/**
 * SGDT, SIDT, LGDT, LIDT, SLDT, STR, LLDT and LTR (SDM Vol. 2), one entry point keyed by
 * DESC_OP as the VMX exit information numbers them.
 */
import type { InsnOperand, VirtCpu } from '../cpu/virt.js';
import { DESC_OP, INTERCEPT } from '../cpu/virt.js';
import { VEC } from '../cpu/events.js';
import { AR, CR0, CR4, EFER, RFLAGS, SEG } from '../cpu/state.js';
import { writeLinear } from '../mmu/linear.js';
import { SYS_TYPE, descAr, descToSegment, readDescriptor, readDescriptorHigh } from '../seg/descriptor.js';
import { isLong64 } from '../seg/segments.js';
import { isCanonical, setReg32 } from './regs.js';

function protectedOnly(cpu: VirtCpu): void {
  if (!(cpu.cr0 & CR0.PE) || cpu.rflags & RFLAGS.VM) cpu.fault(VEC.UD);
}

/** UMIP makes the store instructions #GP(0) outside CPL 0 (SDM Vol. 3A, 2.5). */
function umipCheck(cpu: VirtCpu): void {
  if (cpu.cr4 & CR4.UMIP && cpu.cpl > 0) cpu.fault(VEC.GP, 0);
}

function storeTable(cpu: VirtCpu, o: InsnOperand, t: { base: number; limit: number }): void {
  if (o.isReg) cpu.fault(VEC.UD);
  cpu.writeMem(o.seg, o.offset, 2, t.limit & 0xffff);
  if (isLong64(cpu)) {
    cpu.writeMem(o.seg, o.offset + 2, 4, t.base % 0x1_0000_0000 | 0);
    cpu.writeMem(o.seg, o.offset + 6, 4, Math.floor(t.base / 0x1_0000_0000) | 0);
  } else {
    // A 16-bit operand stores 24 bits of base and a zero byte (SDM Vol. 2, SGDT).
    cpu.writeMem(o.seg, o.offset + 2, 4, o.opSize === 16 ? t.base & 0xffffff : t.base | 0);
  }
}

function loadTable(cpu: VirtCpu, o: InsnOperand): { base: number; limit: number } {
  if (o.isReg) cpu.fault(VEC.UD);
  if (cpu.cpl !== 0) cpu.fault(VEC.GP, 0);
  const limit = cpu.readMem(o.seg, o.offset, 2);
  let base: number;
  if (isLong64(cpu)) {
    const lo = cpu.readMem(o.seg, o.offset + 2, 4) >>> 0;
    const hi = cpu.readMem(o.seg, o.offset + 6, 4) | 0;
    base = hi * 0x1_0000_0000 + lo;
    if (!isCanonical(base)) cpu.fault(VEC.GP, 0);
  } else {
    base = cpu.readMem(o.seg, o.offset + 2, 4) >>> 0;
    // With a 16-bit operand only 24 bits of base are loaded.
    if (o.opSize === 16) base &= 0xffffff;
  }
  return { base, limit };
}

/** SLDT/STR: a 16-bit memory store, or the selector zero-extended into a register. */
function storeSelector(cpu: VirtCpu, o: InsnOperand, selector: number): void {
  if (!o.isReg) { cpu.writeMem(o.seg, o.offset, 2, selector); return; }
  if (o.opSize === 16) cpu.gpr[o.reg1] = (cpu.gpr[o.reg1]! & ~0xffff) | selector;
  else setReg32(cpu, o.reg1, selector);
}

function sourceSelector(cpu: VirtCpu, o: InsnOperand): number {
  return o.isReg ? cpu.gpr[o.reg1]! & 0xffff : cpu.readMem(o.seg, o.offset, 2);
}

/** LLDT and LTR: a GDT descriptor of the right system type (16 bytes in IA-32e mode). */
function loadSystemSegment(cpu: VirtCpu, seg: number, selector: number): void {
  const ldt = seg === SEG.LDTR;
  const err = selector & 0xfffc;
  if (err === 0) {
    if (!ldt) cpu.fault(VEC.GP, 0);
    cpu.seg[SEG.LDTR] = { selector, base: 0, limit: 0, ar: AR.UNUSABLE };
    return;
  }
  if (selector & 4) cpu.fault(VEC.GP, err);
  const d = readDescriptor(cpu, selector, VEC.GP);
  const ar = descAr(d);
  const type = ar & 0x1f; // S = 0 required
  const lma = (cpu.efer & EFER.LMA) !== 0;
  const ok = ldt ? type === SYS_TYPE.LDT : type === SYS_TYPE.TSS_AVAIL || (!lma && type === SYS_TYPE.TSS16_AVAIL);
  if (!ok) cpu.fault(VEC.GP, err);
  if (!(ar & AR.P)) cpu.fault(VEC.NP, err);
  const s = descToSegment(selector, d);
  if (lma) {
    s.base += readDescriptorHigh(cpu, selector, VEC.GP) * 0x1_0000_0000;
    if (!isCanonical(s.base)) cpu.fault(VEC.GP, err);
  }
  if (!ldt) {
    // LTR marks the TSS busy in its descriptor (type bit 1).
    d.hi = (d.hi | (2 << 8)) >>> 0;
    writeLinear(cpu, d.addr + 4, 4, d.hi);
    s.ar |= 2;
  }
  cpu.seg[seg] = s;
}

export function descTableInsn(cpu: VirtCpu, op: number, operand: InsnOperand): void {
  const isLoad = op === DESC_OP.LGDT || op === DESC_OP.LIDT || op === DESC_OP.LLDT || op === DESC_OP.LTR;
  if (op >= DESC_OP.SLDT) protectedOnly(cpu);
  if (isLoad) { if (cpu.cpl !== 0) cpu.fault(VEC.GP, 0); }
  else umipCheck(cpu);
  const ext = cpu.ext;
  if (ext !== null && ext.guest && ext.intercept(INTERCEPT.DESC_TABLE, op, 0)) return;
  switch (op) {
    case DESC_OP.SGDT: storeTable(cpu, operand, cpu.gdtr); return;
    case DESC_OP.SIDT: storeTable(cpu, operand, cpu.idtr); return;
    case DESC_OP.LGDT: cpu.gdtr = loadTable(cpu, operand); return;
    case DESC_OP.LIDT: cpu.idtr = loadTable(cpu, operand); return;
    case DESC_OP.SLDT: storeSelector(cpu, operand, cpu.seg[SEG.LDTR]!.selector); return;
    case DESC_OP.STR: storeSelector(cpu, operand, cpu.seg[SEG.TR]!.selector); return;
    case DESC_OP.LLDT: loadSystemSegment(cpu, SEG.LDTR, sourceSelector(cpu, operand)); return;
    case DESC_OP.LTR: loadSystemSegment(cpu, SEG.TR, sourceSelector(cpu, operand)); return;
    default: cpu.fault(VEC.UD);
  }
}
