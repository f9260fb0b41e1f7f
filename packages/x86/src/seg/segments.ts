/**
 * Segment-register loads and far control transfers (SDM Vol. 3A chapter 5; Vol. 2 MOV, POP,
 * LDS/LES/LFS/LGS/LSS, JMP, CALL, RET): the real-mode, virtual-8086, protected-mode and IA-32e
 * rules, with the faults and selector error codes the SDM lists. JMP and CALL to a TSS or task
 * gate hand over to task-switch.ts.
 */
import type { VirtCpu } from '../cpu/virt.js';
import { VEC } from '../cpu/events.js';
import { AR, CR0, EFER, RFLAGS, SEG, type Segment } from '../cpu/state.js';
import { ACCESS } from '../cpu/virt.js';
import {
  SEG_TYPE, SYS_TYPE, descAr, descToSegment, dplOf, isCode, isData, nullSegment, readDescriptor,
  readDescriptorHigh, setAccessed, type RawDescriptor,
} from './descriptor.js';
import { StackCursor, readSp, stackAddrSize, writeSp } from './stack.js';
import { isCanonical } from '../system/regs.js';
import { readTss64Stack, readTssStack } from './tss.js';
import { TASK_SOURCE, farTaskSwitch, isTss } from './task-switch.js';

export function isRealMode(cpu: VirtCpu): boolean {
  return (cpu.cr0 & CR0.PE) === 0;
}

export function isV86(cpu: VirtCpu): boolean {
  return (cpu.cr0 & CR0.PE) !== 0 && (cpu.rflags & RFLAGS.VM) !== 0;
}

export function isLong64(cpu: VirtCpu): boolean {
  return (cpu.efer & EFER.LMA) !== 0 && (cpu.seg[SEG.CS]!.ar & AR.L) !== 0;
}

/** Real-mode and virtual-8086 loads: base = selector * 16; v86 also forces a 64 KiB DPL-3 segment. */
function loadRealSegment(cpu: VirtCpu, seg: number, selector: number): void {
  const old = cpu.seg[seg]!;
  const sel = selector & 0xffff;
  let { limit, ar } = old;
  if (isV86(cpu)) {
    limit = 0xffff;
    ar = seg === SEG.CS ? 0xfb : 0xf3;
  } else if (ar & AR.UNUSABLE) {
    ar = seg === SEG.CS ? 0x9b : 0x93;
  }
  cpu.seg[seg] = { selector: sel, base: sel << 4, limit, ar };
}

/** MOV/POP Sreg, LDS..LGS, LSS (CS is never a destination: the decoder raises #UD). */
export function loadSegment(cpu: VirtCpu, seg: number, selector: number): void {
  selector &= 0xffff;
  if (seg === SEG.CS || seg > SEG.GS) cpu.fault(VEC.UD);
  if (isRealMode(cpu) || isV86(cpu)) {
    loadRealSegment(cpu, seg, selector);
    cpu.stateChanged();
    return;
  }
  const cpl = cpu.cpl;
  const rpl = selector & 3;
  if ((selector & 0xfffc) === 0) {
    if (seg === SEG.SS) {
      // 64-bit mode allows a null SS at CPL 0-2 with RPL = CPL (SDM Vol. 2, MOV).
      if (!isLong64(cpu) || cpl === 3 || rpl !== cpl) cpu.fault(VEC.GP, 0);
      cpu.seg[SEG.SS] = nullSegment(selector, cpl);
    } else {
      // A null selector also clears the base, FS and GS included (Intel; AMD's
      // CPUID 8000_0021h:EAX NullSelectorClearsBase).
      cpu.seg[seg] = nullSegment(selector);
    }
    cpu.stateChanged();
    return;
  }
  const d = readDescriptor(cpu, selector, VEC.GP);
  const ar = descAr(d);
  const err = selector & 0xfffc;
  if (seg === SEG.SS) {
    if (rpl !== cpl || !isData(ar) || !(ar & SEG_TYPE.WRITABLE) || dplOf(ar) !== cpl) cpu.fault(VEC.GP, err);
    if (!(ar & AR.P)) cpu.fault(VEC.SS, err);
  } else {
    if (!(ar & AR.S) || (isCode(ar) && !(ar & SEG_TYPE.READABLE))) cpu.fault(VEC.GP, err);
    const conformingCode = isCode(ar) && (ar & SEG_TYPE.CONFORMING) !== 0;
    if (!conformingCode && (rpl > dplOf(ar) || cpl > dplOf(ar))) cpu.fault(VEC.GP, err);
    if (!(ar & AR.P)) cpu.fault(VEC.NP, err);
  }
  setAccessed(cpu, d);
  // In 64-bit mode too, FS and GS take the descriptor's 32-bit base (WRMSR sets all 64 bits).
  cpu.seg[seg] = descToSegment(selector, d);
  cpu.stateChanged();
}

/** Loads CS from a code descriptor at privilege `cpl` (selector RPL := CPL). */
function loadCs(cpu: VirtCpu, selector: number, d: RawDescriptor, cpl: number): void {
  setAccessed(cpu, d);
  const s = descToSegment((selector & 0xfffc) | cpl, d);
  cpu.seg[SEG.CS] = s;
}

/** The new RIP for a far transfer into `cs`, with the limit (or canonical) check: #GP(0). */
function checkedRip(cpu: VirtCpu, cs: Segment, offset: number, opSize: 16 | 32 | 64): number {
  const long = (cpu.efer & EFER.LMA) !== 0 && (cs.ar & AR.L) !== 0;
  const rip = long ? offset : opSize === 16 ? offset & 0xffff : offset >>> 0;
  if (long) { if (!isCanonical(rip)) cpu.fault(VEC.GP, 0); }
  else if (rip > cs.limit) cpu.fault(VEC.GP, 0);
  return rip;
}

/** Checks a code-segment target of a direct JMP/CALL far (SDM Vol. 2, JMP: protected-mode rules). */
function checkDirectCode(cpu: VirtCpu, selector: number, ar: number): void {
  const cpl = cpu.cpl;
  const err = selector & 0xfffc;
  if (ar & SEG_TYPE.CONFORMING) { if (dplOf(ar) > cpl) cpu.fault(VEC.GP, err); }
  else if ((selector & 3) > cpl || dplOf(ar) !== cpl) cpu.fault(VEC.GP, err);
  if ((cpu.efer & EFER.LMA) && (ar & AR.L) && (ar & AR.DB)) cpu.fault(VEC.GP, err);
  if (!(ar & AR.P)) cpu.fault(VEC.NP, err);
}

/** A TSS or task gate as a far JMP/CALL target: a task switch outside IA-32e mode (where both types are invalid: #GP). */
function isTaskTarget(cpu: VirtCpu, ar: number): boolean {
  return (cpu.efer & EFER.LMA) === 0 && (isTss(ar) || (ar & 0xf) === SYS_TYPE.TASK_GATE);
}

interface Gate { selector: number; offset: number; paramCount: number; size: 16 | 32 | 64 }

/** Reads a call gate (SDM 5.8.3; 16 bytes in IA-32e mode) after the gate's own DPL/present checks. */
function readCallGate(cpu: VirtCpu, selector: number, d: RawDescriptor): Gate {
  const ar = descAr(d);
  const err = selector & 0xfffc;
  const type = ar & 0xf;
  const lma = (cpu.efer & EFER.LMA) !== 0;
  if (lma ? type !== SYS_TYPE.CALL_GATE : type !== SYS_TYPE.CALL_GATE && type !== SYS_TYPE.CALL_GATE16) cpu.fault(VEC.GP, err);
  if (dplOf(ar) < cpu.cpl || dplOf(ar) < (selector & 3)) cpu.fault(VEC.GP, err);
  if (!(ar & AR.P)) cpu.fault(VEC.NP, err);
  let offset = (d.lo & 0xffff) | (d.hi & 0xffff0000);
  offset >>>= 0;
  let size: 16 | 32 | 64 = type === SYS_TYPE.CALL_GATE16 ? 16 : 32;
  if (lma) {
    const hi = readDescriptorHigh(cpu, selector, VEC.GP);
    offset += hi * 0x1_0000_0000;
    size = 64;
  }
  return { selector: d.lo >>> 16, offset, paramCount: d.hi & 0x1f, size };
}

/** The code segment a call gate names, with its checks (SDM Vol. 2, CALL: call-gate rules). */
function gateTarget(cpu: VirtCpu, gate: Gate, isCall: boolean): RawDescriptor {
  const sel = gate.selector;
  if ((sel & 0xfffc) === 0) cpu.fault(VEC.GP, 0);
  const d = readDescriptor(cpu, sel, VEC.GP);
  const ar = descAr(d);
  const err = sel & 0xfffc;
  if (!isCode(ar) || dplOf(ar) > cpu.cpl) cpu.fault(VEC.GP, err);
  if (!isCall && !(ar & SEG_TYPE.CONFORMING) && dplOf(ar) !== cpu.cpl) cpu.fault(VEC.GP, err);
  if (gate.size === 64 && (!(ar & AR.L) || (ar & AR.DB))) cpu.fault(VEC.GP, err);
  if (!(ar & AR.P)) cpu.fault(VEC.NP, err);
  return d;
}

/** JMP ptr16:xx / JMP m16:xx. */
export function farJump(cpu: VirtCpu, selector: number, offset: number, opSize: 16 | 32 | 64): void {
  selector &= 0xffff;
  if (isRealMode(cpu) || isV86(cpu)) {
    loadRealSegment(cpu, SEG.CS, selector);
    cpu.rip = opSize === 16 ? offset & 0xffff : offset >>> 0;
    cpu.stateChanged();
    return;
  }
  if ((selector & 0xfffc) === 0) cpu.fault(VEC.GP, 0);
  const d = readDescriptor(cpu, selector, VEC.GP);
  const ar = descAr(d);
  if (isCode(ar)) {
    checkDirectCode(cpu, selector, ar);
    const cs = descToSegment((selector & 0xfffc) | cpu.cpl, d);
    const rip = checkedRip(cpu, cs, offset, opSize);
    loadCs(cpu, selector, d, cpu.cpl);
    cpu.rip = rip;
    cpu.stateChanged();
    return;
  }
  if (ar & AR.S) cpu.fault(VEC.GP, selector & 0xfffc);
  if (isTaskTarget(cpu, ar)) {
    farTaskSwitch(cpu, selector, d, TASK_SOURCE.JMP, cpu.rip);
    return;
  }
  const gate = readCallGate(cpu, selector, d);
  const cd = gateTarget(cpu, gate, false);
  const cs = descToSegment((gate.selector & 0xfffc) | cpu.cpl, cd);
  const rip = checkedRip(cpu, cs, gate.offset, gate.size === 16 ? 16 : 64);
  loadCs(cpu, gate.selector, cd, cpu.cpl);
  cpu.rip = rip;
  cpu.stateChanged();
}

function pushWidth(opSize: 16 | 32 | 64): 2 | 4 | 8 {
  return opSize === 16 ? 2 : opSize === 32 ? 4 : 8;
}

function currentStack(cpu: VirtCpu): StackCursor {
  const size = stackAddrSize(cpu, isLong64(cpu));
  return new StackCursor(cpu, cpu.seg[SEG.SS]!, readSp(cpu, size), size, cpu.cpl === 3 ? ACCESS.USER : 0);
}

/** CALL ptr16:xx / CALL m16:xx, with call gates to the same or a more privileged level. */
export function farCall(cpu: VirtCpu, selector: number, offset: number, opSize: 16 | 32 | 64, nextRip: number): void {
  selector &= 0xffff;
  const w = pushWidth(opSize);
  const oldCs = cpu.seg[SEG.CS]!.selector;
  if (isRealMode(cpu) || isV86(cpu)) {
    const st = currentStack(cpu);
    st.push(w, oldCs);
    st.pushNum(w, nextRip);
    writeSp(cpu, stackAddrSize(cpu, false), st.sp);
    loadRealSegment(cpu, SEG.CS, selector);
    cpu.rip = opSize === 16 ? offset & 0xffff : offset >>> 0;
    cpu.stateChanged();
    return;
  }
  if ((selector & 0xfffc) === 0) cpu.fault(VEC.GP, 0);
  const d = readDescriptor(cpu, selector, VEC.GP);
  const ar = descAr(d);
  if (isCode(ar)) {
    checkDirectCode(cpu, selector, ar);
    const cs = descToSegment((selector & 0xfffc) | cpu.cpl, d);
    const rip = checkedRip(cpu, cs, offset, opSize);
    const st = currentStack(cpu);
    st.push(w, oldCs);
    st.pushNum(w, nextRip);
    writeSp(cpu, stackAddrSize(cpu, isLong64(cpu)), st.sp);
    loadCs(cpu, selector, d, cpu.cpl);
    cpu.rip = rip;
    cpu.stateChanged();
    return;
  }
  if (ar & AR.S) cpu.fault(VEC.GP, selector & 0xfffc);
  if (isTaskTarget(cpu, ar)) {
    farTaskSwitch(cpu, selector, d, TASK_SOURCE.CALL, nextRip);
    return;
  }
  const gate = readCallGate(cpu, selector, d);
  const cd = gateTarget(cpu, gate, true);
  const cdAr = descAr(cd);
  const gw = pushWidth(gate.size);
  const oldCpl = cpu.cpl;
  const newCpl = cdAr & SEG_TYPE.CONFORMING ? oldCpl : dplOf(cdAr);
  const cs = descToSegment((gate.selector & 0xfffc) | newCpl, cd);
  const rip = checkedRip(cpu, cs, gate.offset, gate.size === 16 ? 16 : 64);
  const oldSs = cpu.seg[SEG.SS]!;
  const oldSize = stackAddrSize(cpu, isLong64(cpu));
  const oldSp = readSp(cpu, oldSize);
  if (newCpl < oldCpl) {
    // Inner privilege: switch to the TSS stack (RSPn and a NULL SS for 64-bit gates), copy
    // parameters (legacy gates), push old SS:SP.
    const ns = gate.size === 64
      ? { ss: nullSegment(newCpl, newCpl), sp: readTss64Stack(cpu, newCpl, 0, 0) }
      : readTssStack(cpu, newCpl, 0);
    const newSs = ns.ss;
    const newSize = gate.size === 64 ? 64 : stackAddrSize(cpu, false, newSs);
    const st = new StackCursor(cpu, gate.size === 64 ? null : newSs, ns.sp, newSize, 0, newSs.selector & 0xfffc);
    st.push(gw, oldSs.selector);
    st.pushNum(gw, oldSp);
    if (gate.size !== 64) {
      const pw = gw as 2 | 4;
      const src = new StackCursor(cpu, oldSs, oldSp, oldSize, oldCpl === 3 ? ACCESS.USER : 0);
      const params: number[] = [];
      for (let i = 0; i < gate.paramCount; i++) params.push(src.pop(pw));
      for (let i = params.length - 1; i >= 0; i--) st.push(pw, params[i]!);
    }
    st.push(gw, oldCs);
    st.pushNum(gw, nextRip);
    cpu.seg[SEG.SS] = newSs;
    writeSp(cpu, newSize, st.sp);
    loadCs(cpu, gate.selector, cd, newCpl);
  } else {
    const st = currentStack(cpu);
    st.push(gw, oldCs);
    st.pushNum(gw, nextRip);
    writeSp(cpu, oldSize, st.sp);
    loadCs(cpu, gate.selector, cd, newCpl);
  }
  cpu.rip = rip;
  cpu.stateChanged();
}

/**
 * After a return to an outer privilege level, data segments the new CPL may not use become
 * null (SDM Vol. 2, RET: "FOR each SegReg in (ES, FS, GS, and DS)").
 */
export function nullifyInaccessibleSegments(cpu: VirtCpu, cpl: number): void {
  for (const i of [SEG.ES, SEG.DS, SEG.FS, SEG.GS]) {
    const s = cpu.seg[i]!;
    if (s.ar & AR.UNUSABLE) continue;
    const conformingCode = isCode(s.ar) && (s.ar & SEG_TYPE.CONFORMING) !== 0;
    if (!conformingCode && dplOf(s.ar) < cpl) {
      const n = nullSegment(0);
      if (i >= SEG.FS) n.base = s.base;
      cpu.seg[i] = n;
    }
  }
}

/**
 * Validates the CS a far return or IRET pops (SDM Vol. 2, RET/IRET protected-mode checks)
 * against the current CPL, and returns its descriptor.
 */
export function checkReturnCs(cpu: VirtCpu, selector: number, long: boolean): RawDescriptor {
  const err = selector & 0xfffc;
  if (err === 0) cpu.fault(VEC.GP, 0);
  const d = readDescriptor(cpu, selector, VEC.GP);
  const ar = descAr(d);
  const rpl = selector & 3;
  if (!isCode(ar) || rpl < cpu.cpl) cpu.fault(VEC.GP, err);
  if (ar & SEG_TYPE.CONFORMING ? dplOf(ar) > rpl : dplOf(ar) !== rpl) cpu.fault(VEC.GP, err);
  if (long && (ar & AR.L) && (ar & AR.DB)) cpu.fault(VEC.GP, err);
  if (!(ar & AR.P)) cpu.fault(VEC.NP, err);
  return d;
}

/**
 * Validates an SS popped on a return to privilege `rpl` (SDM Vol. 2, RET/IRET). A null SS is
 * allowed only returning to 64-bit code at CPL < 3. Returns the segment to load.
 */
export function checkReturnSs(cpu: VirtCpu, selector: number, rpl: number, to64: boolean): Segment {
  const err = selector & 0xfffc;
  if (err === 0) {
    if (!to64 || rpl === 3) cpu.fault(VEC.GP, 0);
    return nullSegment(selector, rpl);
  }
  const d = readDescriptor(cpu, selector, VEC.GP);
  const ar = descAr(d);
  if ((selector & 3) !== rpl || !isData(ar) || !(ar & SEG_TYPE.WRITABLE) || dplOf(ar) !== rpl) cpu.fault(VEC.GP, err);
  if (!(ar & AR.P)) cpu.fault(VEC.SS, err);
  setAccessed(cpu, d);
  return descToSegment(selector, d);
}

/** RET far / RET far imm16. */
export function farReturn(cpu: VirtCpu, opSize: 16 | 32 | 64, popBytes: number): void {
  const w = pushWidth(opSize);
  const st = currentStack(cpu);
  const oldSize = stackAddrSize(cpu, isLong64(cpu));
  const ripRaw = st.pop(w);
  const csSel = st.pop(w) & 0xffff;
  if (isRealMode(cpu) || isV86(cpu)) {
    st.skip(popBytes);
    writeSp(cpu, oldSize, st.sp);
    loadRealSegment(cpu, SEG.CS, csSel);
    cpu.rip = opSize === 16 ? ripRaw & 0xffff : ripRaw >>> 0;
    cpu.stateChanged();
    return;
  }
  const lma = (cpu.efer & EFER.LMA) !== 0;
  const d = checkReturnCs(cpu, csSel, lma);
  const rpl = csSel & 3;
  const cs = descToSegment(csSel, d);
  const rip = checkedRip(cpu, cs, ripRaw, opSize);
  st.skip(popBytes);
  if (rpl > cpu.cpl) {
    const newSp = st.pop(w);
    const ssSel = st.pop(w) & 0xffff;
    const to64 = lma && (cs.ar & AR.L) !== 0;
    const ss = checkReturnSs(cpu, ssSel, rpl, to64);
    setAccessed(cpu, d);
    cpu.seg[SEG.CS] = cs;
    cpu.seg[SEG.SS] = ss;
    const newSize = to64 ? 64 : stackAddrSize(cpu, false, ss);
    writeSp(cpu, newSize, newSize === 16 ? (newSp + popBytes) & 0xffff : newSize === 32 ? (newSp + popBytes) >>> 0 : newSp + popBytes);
    nullifyInaccessibleSegments(cpu, rpl);
  } else {
    setAccessed(cpu, d);
    cpu.seg[SEG.CS] = cs;
    writeSp(cpu, oldSize, st.sp);
  }
  cpu.rip = rip;
  cpu.stateChanged();
}
