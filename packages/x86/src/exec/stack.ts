/**
 * The stack (SDM Vol. 1, 6.2-6.5; Vol. 2): PUSH/POP of registers, immediates, memory and
 * segment registers, PUSHA/POPA, ENTER/LEAVE. The stack address size is SS.B (or 64 in
 * 64-bit mode); the operand size is the instruction's. RSP changes only after the memory
 * access succeeded, so a faulting push or pop leaves no trace.
 */
import type { Cpu } from '../cpu/cpu.js';
import { VEC } from '../cpu/events.js';
import { SEG, INTERRUPTIBILITY } from '../cpu/state.js';
import type { Binder } from '../decode/binders.js';
import type { Insn } from '../decode/insn.js';
import { loadSegment } from '../seg/segments.js';
import { getReg, readE, reg64Signed, setReg, writeE, effAddr } from './operand.js';

const RSP = 4;
const RBP = 5;
const TWO32 = 4294967296;

/** The stack pointer as an offset in SS. */
export function getSp(cpu: Cpu): number {
  const s = cpu.stackSize;
  return s === 64 ? reg64Signed(cpu, RSP) : s === 32 ? cpu.gpr[RSP]! >>> 0 : cpu.gpr[RSP]! & 0xffff;
}

export function setSp(cpu: Cpu, sp: number): void {
  const s = cpu.stackSize;
  if (s === 64) { cpu.gpr[RSP] = sp >>> 0; cpu.gprHi[RSP] = Math.floor(sp / TWO32) | 0; }
  else if (s === 32) cpu.gpr[RSP] = sp >>> 0;
  else cpu.gpr[RSP] = (cpu.gpr[RSP]! & ~0xffff) | (sp & 0xffff);
}

function wrapSp(cpu: Cpu, sp: number): number {
  const s = cpu.stackSize;
  return s === 64 ? sp : s === 32 ? sp >>> 0 : sp & 0xffff;
}

/** Pushes a value of `bytes` (2, 4 or 8; for 8 the high half is `hi`). */
export function push(cpu: Cpu, bytes: number, v: number, hi = 0): void {
  const sp = wrapSp(cpu, getSp(cpu) - bytes);
  const la = cpu.linear(SEG.SS, sp, bytes, true);
  if (bytes === 8) cpu.write64(la, v, hi);
  else cpu.writeN(la, bytes, v);
  setSp(cpu, sp);
}

/** Reads the value `bytes` wide at the top of the stack plus `skip` bytes, without popping (8: high half in cpu.hi). */
export function peek(cpu: Cpu, bytes: number, skip = 0): number {
  const la = cpu.linear(SEG.SS, wrapSp(cpu, getSp(cpu) + skip), bytes, false);
  return bytes === 8 ? cpu.read64(la) : cpu.readN(la, bytes);
}

export function pop(cpu: Cpu, bytes: number): number {
  const sp = getSp(cpu);
  const v = peek(cpu, bytes);
  setSp(cpu, wrapSp(cpu, sp + bytes));
  return v;
}

const CANONICAL_LIMIT = 0x800000000000;

/** PUSH r64 / POP r64 in 64-bit mode (function prologues and epilogues): RSP is a flat 64-bit pointer. */
function pushReg64(cpu: Cpu, i: Insn): void {
  const sp = cpu.gprHi[RSP]! * TWO32 + (cpu.gpr[RSP]! >>> 0) - 8;
  if (sp < -CANONICAL_LIMIT || sp >= CANONICAL_LIMIT) cpu.fault(VEC.SS, 0);
  cpu.write64(sp, cpu.gpr[i.reg]!, cpu.gprHi[i.reg]!);
  cpu.gpr[RSP] = sp >>> 0;
  cpu.gprHi[RSP] = Math.floor(sp / TWO32);
}

function popReg64(cpu: Cpu, i: Insn): void {
  const sp = cpu.gprHi[RSP]! * TWO32 + (cpu.gpr[RSP]! >>> 0);
  if (sp < -CANONICAL_LIMIT || sp >= CANONICAL_LIMIT) cpu.fault(VEC.SS, 0);
  const lo = cpu.read32(sp);
  const hi = cpu.read32(sp + 4);
  const next = sp + 8;
  cpu.gpr[RSP] = next >>> 0;
  cpu.gprHi[RSP] = Math.floor(next / TWO32);
  cpu.gpr[i.reg] = lo; // after RSP, so POP RSP loads the popped value
  cpu.gprHi[i.reg] = hi;
}

function pushReg(cpu: Cpu, i: Insn): void {
  const bytes = i.opSize >> 3;
  const v = getReg(cpu, i.reg, i.opSize);
  push(cpu, bytes, v, cpu.hi);
}

function popReg(cpu: Cpu, i: Insn): void {
  const bytes = i.opSize >> 3;
  const v = pop(cpu, bytes);
  setReg(cpu, i.reg, i.opSize, v);
}

function pushImm(cpu: Cpu, i: Insn): void {
  push(cpu, i.opSize >> 3, i.imm, i.immHi);
}

function pushE(cpu: Cpu, i: Insn): void {
  const v = readE(cpu, i, i.opSize);
  push(cpu, i.opSize >> 3, v, cpu.hi);
}

/** POP E: the value is read first; a memory destination using RSP is computed after the increment (SDM, POP). */
function popE(cpu: Cpu, i: Insn): void {
  const bytes = i.opSize >> 3;
  const sp = getSp(cpu);
  const v = peek(cpu, bytes);
  const hi = cpu.hi;
  setSp(cpu, wrapSp(cpu, sp + bytes));
  try {
    cpu.hi = hi;
    writeE(cpu, i, i.opSize, v);
  } catch (e) {
    setSp(cpu, sp);
    throw e;
  }
}

function pushSeg(cpu: Cpu, i: Insn): void {
  const sel = cpu.seg[i.op]!.selector;
  const bytes = i.opSize >> 3;
  // A 32-bit push of a segment register may write only 16 bits; writing the zero-extended value is also allowed.
  push(cpu, bytes, sel);
}

function popSeg(cpu: Cpu, i: Insn): void {
  const bytes = i.opSize >> 3;
  const sp = getSp(cpu);
  const sel = peek(cpu, bytes) & 0xffff;
  cpu.syncFlags();
  loadSegment(cpu, i.op, sel);
  setSp(cpu, wrapSp(cpu, sp + bytes));
  if (i.op === SEG.SS) cpu.interruptibility |= INTERRUPTIBILITY.MOV_SS;
  cpu.stateChanged();
}

function pusha(cpu: Cpu, i: Insn): void {
  const bytes = i.opSize >> 3;
  const sp0 = getSp(cpu);
  // Check the whole area first, so a fault leaves memory and ESP as they were.
  cpu.linear(SEG.SS, wrapSp(cpu, sp0 - 8 * bytes), 8 * bytes, true);
  const vals = [0, 1, 2, 3, 4, 5, 6, 7].map((r) => (r === RSP ? sp0 : getReg(cpu, r, i.opSize)));
  for (const v of vals) push(cpu, bytes, v);
}

function popa(cpu: Cpu, i: Insn): void {
  const bytes = i.opSize >> 3;
  const sp0 = getSp(cpu);
  const vals: number[] = [];
  for (let k = 0; k < 8; k++) vals.push(peek(cpu, bytes, k * bytes));
  for (let k = 0; k < 8; k++) {
    const r = 7 - k;
    if (r !== RSP) setReg(cpu, r, i.opSize, vals[k]!);
  }
  setSp(cpu, wrapSp(cpu, sp0 + 8 * bytes));
}

/** ENTER imm16, level (SDM Vol. 2, ENTER): level is taken mod 32. */
function enter(cpu: Cpu, i: Insn): void {
  const bytes = i.opSize >> 3;
  const size = i.imm;
  const level = i.imm2 & 31;
  const sp0 = getSp(cpu);
  const bp0 = cpu.stackSize === 64 ? reg64Signed(cpu, RBP) : getReg(cpu, RBP, cpu.stackSize);
  try {
    push(cpu, bytes, getReg(cpu, RBP, i.opSize), cpu.gprHi[RBP]!);
    const frameTemp = getSp(cpu);
    let bp = bp0;
    for (let k = 1; k < level; k++) {
      bp = wrapSp(cpu, bp - bytes);
      const v = cpu.stackSize === 64 || bytes === 8
        ? cpu.read64(cpu.linear(SEG.SS, bp, bytes, false))
        : cpu.readN(cpu.linear(SEG.SS, bp, bytes, false), bytes);
      push(cpu, bytes, v, cpu.hi);
    }
    if (level > 0) push(cpu, bytes, frameTemp >>> 0, Math.floor(frameTemp / TWO32) | 0);
    const newSp = wrapSp(cpu, getSp(cpu) - size);
    cpu.linear(SEG.SS, newSp, 1, true); // the new stack top must be writable
    // rBP = FrameTemp at the operand size
    if (i.opSize === 64) { cpu.gpr[RBP] = frameTemp >>> 0; cpu.gprHi[RBP] = Math.floor(frameTemp / TWO32) | 0; }
    else setReg(cpu, RBP, i.opSize, i.opSize === 16 ? frameTemp & 0xffff : frameTemp >>> 0);
    setSp(cpu, newSp);
  } catch (e) {
    setSp(cpu, sp0);
    throw e;
  }
}

function leave(cpu: Cpu, i: Insn): void {
  const bytes = i.opSize >> 3;
  const bp = cpu.stackSize === 64 ? reg64Signed(cpu, RBP) : getReg(cpu, RBP, cpu.stackSize);
  const la = cpu.linear(SEG.SS, bp, bytes, false);
  const v = bytes === 8 ? cpu.read64(la) : cpu.readN(la, bytes);
  const hi = cpu.hi;
  setSp(cpu, wrapSp(cpu, bp + bytes));
  cpu.hi = hi;
  setReg(cpu, RBP, i.opSize, v);
}

/** BOUND (SDM Vol. 2): #BR when the signed index is outside [lower, upper]. */
function bound(cpu: Cpu, i: Insn): void {
  const size = i.opSize;
  const bytes = size >> 3;
  const a = effAddr(cpu, i);
  const lower = cpu.readN(cpu.linear(i.seg, a, bytes, false), bytes);
  const upper = cpu.readN(cpu.linear(i.seg, (a + bytes) & (i.addrSize === 16 ? 0xffff : 0xffffffff), bytes, false), bytes);
  const sx = (v: number): number => (size === 16 ? (v << 16) >> 16 : v | 0);
  const idx = sx(getReg(cpu, i.reg, size));
  if (idx < sx(lower) || idx > sx(upper)) cpu.fault(5);
}

const SEG_BY_NAME: Record<string, number> = { ES: SEG.ES, CS: SEG.CS, SS: SEG.SS, DS: SEG.DS, FS: SEG.FS, GS: SEG.GS };

export const STACK_BINDERS: Record<string, Binder> = {
  PUSH: (i, info) => {
    const o = info.operands[0];
    if (o === 'Zv') return i.opSize === 64 ? pushReg64 : pushReg;
    if (o !== undefined && o.startsWith('I')) return pushImm;
    return pushE;
  },
  POP: (i, info) => (info.operands[0] === 'Zv' ? (i.opSize === 64 ? popReg64 : popReg) : popE),
  PUSHSEG: (i, info) => { i.op = SEG_BY_NAME[info.operands[0]!]!; return pushSeg; },
  POPSEG: (i, info) => { i.op = SEG_BY_NAME[info.operands[0]!]!; return popSeg; },
  PUSHA: () => pusha,
  POPA: () => popa,
  ENTER: () => enter,
  LEAVE: () => leave,
  BOUND: (i) => (i.rm >= 0 ? (cpu: Cpu) => cpu.fault(6) : bound),
};
