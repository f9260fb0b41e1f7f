/**
 * Control transfer (SDM Vol. 1, 6.3-6.5; Vol. 2): JMP, Jcc, CALL, RET near; LOOP, LOOPE,
 * LOOPNE, JCXZ/JECXZ/JRCXZ; the far forms and IRET through seg/ and exceptions/; INT n, INT3,
 * INTO, INT1. Near targets are checked (CS limit, or canonical in 64-bit mode) at the branch,
 * so the fault reports the branch instruction.
 */
import type { Cpu } from '../cpu/cpu.js';
import { EVENT_TYPE, VEC, makeIntrInfo } from '../cpu/events.js';
import { CR4, RFLAGS, SEG } from '../cpu/state.js';
import { INTERCEPT } from '../cpu/virt.js';
import type { Binder } from '../decode/binders.js';
import type { Insn } from '../decode/insn.js';
import { iret } from '../exceptions/deliver.js';
import { getZF, testCC, getOF } from '../flags/lazy-flags.js';
import { farCall, farJump, farReturn } from '../seg/segments.js';
import { getReg, memLinear, readE } from './operand.js';
import { getSp, pop, push, setSp } from './stack.js';

const CANONICAL_LIMIT = 0x800000000000;
const TWO32 = 4294967296;

/** Sets RIP to a near target at operand size `size`, with the checks a branch makes. */
export function branchTo(cpu: Cpu, target: number, size: number): void {
  if (size === 64) {
    if (target < -CANONICAL_LIMIT || target >= CANONICAL_LIMIT) cpu.fault(VEC.GP, 0);
  } else {
    target = size === 16 ? target & 0xffff : target >>> 0;
    if (!cpu.long64 && target > cpu.seg[SEG.CS]!.limit) cpu.fault(VEC.GP, 0);
  }
  cpu.rip = target;
}

/** A 64-bit value (lo unsigned, hi int32) as a signed number, wrapped into [-2^63, 2^63). */
function signed64(lo: number, hi: number): number {
  return hi * TWO32 + lo;
}

function jmpRel(cpu: Cpu, i: Insn): void {
  branchTo(cpu, cpu.rip + i.imm, i.opSize);
}

function jcc(cpu: Cpu, i: Insn): void {
  if (testCC(cpu, i.op)) branchTo(cpu, cpu.rip + i.imm, i.opSize);
}

/** JNZ in 64-bit mode, the usual loop branch: ZF and the canonical check inline. */
function jnz64(cpu: Cpu, i: Insn): void {
  const zf = (cpu.lfMask & RFLAGS.ZF) !== 0 ? cpu.lfRes === 0 : (cpu.rflags & RFLAGS.ZF) !== 0;
  if (zf) return;
  const t = cpu.rip + i.imm;
  if (t < -CANONICAL_LIMIT || t >= CANONICAL_LIMIT) cpu.fault(VEC.GP, 0);
  cpu.rip = t;
}

/** JNZ in 16- and 32-bit code: ZF inline, the CS limit check only when taken. */
function jnz(cpu: Cpu, i: Insn): void {
  const zf = (cpu.lfMask & RFLAGS.ZF) !== 0 ? cpu.lfRes === 0 : (cpu.rflags & RFLAGS.ZF) !== 0;
  if (zf) return;
  const t = i.opSize === 16 ? (cpu.rip + i.imm) & 0xffff : (cpu.rip + i.imm) >>> 0;
  if (t > cpu.seg[SEG.CS]!.limit) cpu.fault(VEC.GP, 0);
  cpu.rip = t;
}

function callRel(cpu: Cpu, i: Insn): void {
  const ret = cpu.rip;
  const size = i.opSize;
  const target = cpu.rip + i.imm;
  const sp = getSp(cpu);
  pushAddr(cpu, ret, size);
  try { branchTo(cpu, target, size); } catch (e) { setSp(cpu, sp); throw e; }
}

function pushAddr(cpu: Cpu, addr: number, size: number): void {
  if (size === 64) push(cpu, 8, addr >>> 0, Math.floor(addr / TWO32) | 0);
  else push(cpu, size >> 3, size === 16 ? addr & 0xffff : addr >>> 0);
}

function callE(cpu: Cpu, i: Insn): void {
  const size = i.opSize;
  const lo = readE(cpu, i, size);
  const target = size === 64 ? signed64(lo, cpu.hi) : lo;
  const sp = getSp(cpu);
  pushAddr(cpu, cpu.rip, size);
  try { branchTo(cpu, target, size); } catch (e) { setSp(cpu, sp); throw e; }
}

function jmpE(cpu: Cpu, i: Insn): void {
  const size = i.opSize;
  const lo = readE(cpu, i, size);
  branchTo(cpu, size === 64 ? signed64(lo, cpu.hi) : lo, size);
}

function retNear(cpu: Cpu, i: Insn): void {
  const size = i.opSize;
  const sp = getSp(cpu);
  const lo = pop(cpu, size >> 3);
  const target = size === 64 ? signed64(lo, cpu.hi) : lo;
  try {
    branchTo(cpu, target, size);
    if (i.imm !== 0) setSp(cpu, getSp(cpu) + i.imm);
    if (cpu.stackSize !== 64 && i.imm !== 0) setSp(cpu, cpu.stackSize === 32 ? getSp(cpu) >>> 0 : getSp(cpu) & 0xffff);
  } catch (e) { setSp(cpu, sp); throw e; }
}

/** The count register for LOOP/JCXZ is CX, ECX or RCX by address size. */
function loop(cpu: Cpu, i: Insn): void {
  const a = i.addrSize;
  let zero: boolean;
  if (a === 64) {
    const lo = (cpu.gpr[1]! - 1) | 0;
    const hi = lo === -1 ? (cpu.gprHi[1]! - 1) | 0 : cpu.gprHi[1]!;
    cpu.gpr[1] = lo; cpu.gprHi[1] = hi;
    zero = lo === 0 && hi === 0;
  } else if (a === 32) {
    cpu.gpr[1] = (cpu.gpr[1]! - 1) | 0;
    zero = cpu.gpr[1] === 0;
  } else {
    const cx = (cpu.gpr[1]! - 1) & 0xffff;
    cpu.gpr[1] = (cpu.gpr[1]! & ~0xffff) | cx;
    zero = cx === 0;
  }
  let take = !zero;
  if (i.aux === 1) take &&= getZF(cpu); // LOOPE
  else if (i.aux === 2) take &&= !getZF(cpu); // LOOPNE
  if (take) branchTo(cpu, cpu.rip + i.imm, i.opSize);
}

function jcxz(cpu: Cpu, i: Insn): void {
  const a = i.addrSize;
  const zero = a === 64 ? cpu.gpr[1] === 0 && cpu.gprHi[1] === 0 : getReg(cpu, 1, a) === 0;
  if (zero) branchTo(cpu, cpu.rip + i.imm, i.opSize);
}

function farPtrFromMemory(cpu: Cpu, i: Insn): [number, number] {
  const bytes = i.opSize >> 3;
  const la = memLinear(cpu, i, bytes + 2, false);
  const off = bytes === 8 ? signed64(cpu.read64(la), cpu.hi) : cpu.readN(la, bytes);
  const sel = cpu.read16(la + bytes);
  return [sel, off];
}

function farSize(i: Insn): 16 | 32 | 64 {
  return i.opSize === 64 ? 64 : i.opSize === 32 ? 32 : 16;
}

function jmpFarImm(cpu: Cpu, i: Insn): void {
  cpu.syncFlags();
  farJump(cpu, i.imm2, i.imm, farSize(i));
  cpu.stateChanged();
}

function callFarImm(cpu: Cpu, i: Insn): void {
  cpu.syncFlags();
  farCall(cpu, i.imm2, i.imm, farSize(i), cpu.rip);
  cpu.stateChanged();
}

function jmpFarMem(cpu: Cpu, i: Insn): void {
  if (i.rm >= 0) cpu.fault(VEC.UD);
  const [sel, off] = farPtrFromMemory(cpu, i);
  cpu.syncFlags();
  farJump(cpu, sel, off, farSize(i));
  cpu.stateChanged();
}

function callFarMem(cpu: Cpu, i: Insn): void {
  if (i.rm >= 0) cpu.fault(VEC.UD);
  const [sel, off] = farPtrFromMemory(cpu, i);
  cpu.syncFlags();
  farCall(cpu, sel, off, farSize(i), cpu.rip);
  cpu.stateChanged();
}

function retFar(cpu: Cpu, i: Insn): void {
  cpu.syncFlags();
  farReturn(cpu, farSize(i), i.imm);
  cpu.stateChanged();
}

function iretInsn(cpu: Cpu, i: Insn): void {
  cpu.syncFlags();
  if (cpu.ext !== null && cpu.ext.guest && cpu.ext.intercept(INTERCEPT.IRET, 0, 0)) return;
  iret(cpu, farSize(i));
  cpu.stateChanged();
}

function intN(cpu: Cpu, i: Insn): void {
  // With CR4.VME the TSS's redirection bitmap decides first (exceptions/deliver.ts).
  if (cpu.v86 && (cpu.rflags & RFLAGS.IOPL) !== RFLAGS.IOPL && !(cpu.cr4 & CR4.VME)) cpu.fault(VEC.GP, 0);
  cpu.syncFlags();
  if (cpu.ext !== null && cpu.ext.guest && cpu.ext.intercept(INTERCEPT.INTN, i.imm, 0)) return;
  cpu.rip = cpu.insnStart;
  cpu.deliverSoftware(makeIntrInfo(i.imm, EVENT_TYPE.SOFT_INTR, false), i.len);
}

function int3(cpu: Cpu, i: Insn): void {
  cpu.rip = cpu.insnStart;
  cpu.deliverSoftware(makeIntrInfo(VEC.BP, EVENT_TYPE.SW_EXCEPTION, false), i.len);
}

function into(cpu: Cpu, i: Insn): void {
  if (!getOF(cpu)) return;
  cpu.rip = cpu.insnStart;
  cpu.deliverSoftware(makeIntrInfo(VEC.OF, EVENT_TYPE.SW_EXCEPTION, false), i.len);
}

function int1(cpu: Cpu, i: Insn): void {
  cpu.rip = cpu.insnStart;
  cpu.deliverSoftware(makeIntrInfo(VEC.DB, EVENT_TYPE.PRIV_SW_EXCEPTION, false), i.len);
}

export const CONTROL_BINDERS: Record<string, Binder> = {
  JMP: () => jmpRel,
  JCC: (i) => (i.op === 5 ? (i.opSize === 64 ? jnz64 : jnz) : jcc),
  CALL: () => callRel,
  CALLN: () => callE,
  JMPN: () => jmpE,
  RET: (i, info) => { if (info.imms.length === 0) i.imm = 0; return retNear; },
  RETF: (i, info) => { if (info.imms.length === 0) i.imm = 0; return retFar; },
  LOOP: (i) => { i.aux = 0; return loop; },
  LOOPE: (i) => { i.aux = 1; return loop; },
  LOOPNE: (i) => { i.aux = 2; return loop; },
  JCXZ: () => jcxz,
  JMPF: (i, info) => (info.operands[0] === 'Ap' ? jmpFarImm : jmpFarMem),
  CALLF: (i, info) => (info.operands[0] === 'Ap' ? callFarImm : callFarMem),
  IRET: () => iretInsn,
  INT: () => intN,
  INT3: () => int3,
  INTO: () => into,
  INT1: () => int1,
};
