/**
 * ADD, OR, ADC, SBB, AND, SUB, XOR, CMP, TEST, INC, DEC, NEG, NOT (SDM Vol. 2): one
 * implementation per operation, parameterised by width. 8/16/32-bit results set lazy flags;
 * 64-bit results set flags eagerly from the two halves.
 */
import type { Cpu } from '../cpu/cpu.js';
import { RFLAGS } from '../cpu/state.js';
import type { Binder } from '../decode/binders.js';
import type { Handler, Insn } from '../decode/insn.js';
import { ARITH_FLAGS, LF, PARITY, getCF, setLazy, setLogic, signOf } from '../flags/lazy-flags.js';
import { getReg, maskFor, readE, readRmw, setReg, writeRmw } from './operand.js';

/** ALU operation numbers: the ModRM.reg encoding of group 1, and opcode bits 5:3 of 00-3F. */
export const ALU_OP = { ADD: 0, OR: 1, ADC: 2, SBB: 3, AND: 4, SUB: 5, XOR: 6, CMP: 7 } as const;

/** `d op s` at 8/16/32 bits; records flags; returns the unsigned result. */
export function alu(cpu: Cpu, op: number, size: number, d: number, s: number): number {
  const m = maskFor(size);
  const sign = signOf(size);
  let r: number;
  switch (op) {
    case ALU_OP.ADD: r = ((d + s) & m) >>> 0; setLazy(cpu, LF.ADD, d, s, r, sign); return r;
    case ALU_OP.OR: r = ((d | s) & m) >>> 0; setLogic(cpu, r, sign); return r;
    case ALU_OP.ADC: {
      const c = getCF(cpu);
      r = ((d + s + c) & m) >>> 0;
      setLazy(cpu, c !== 0 ? LF.ADC : LF.ADD, d, s, r, sign);
      cpu.lfCin = c;
      return r;
    }
    case ALU_OP.SBB: {
      const c = getCF(cpu);
      r = ((d - s - c) & m) >>> 0;
      setLazy(cpu, c !== 0 ? LF.SBB : LF.SUB, d, s, r, sign);
      cpu.lfCin = c;
      return r;
    }
    case ALU_OP.AND: r = ((d & s) & m) >>> 0; setLogic(cpu, r, sign); return r;
    case ALU_OP.XOR: r = ((d ^ s) & m) >>> 0; setLogic(cpu, r, sign); return r;
    default: r = ((d - s) & m) >>> 0; setLazy(cpu, LF.SUB, d, s, r, sign); return r; // SUB, CMP
  }
}

/** Sets all six flags eagerly for a 64-bit result. */
export function setFlags64(cpu: Cpu, cf: boolean, of: boolean, af: boolean, lo: number, hi: number): void {
  let f = cpu.rflags & ~ARITH_FLAGS;
  if (cf) f |= RFLAGS.CF;
  if (of) f |= RFLAGS.OF;
  if (af) f |= RFLAGS.AF;
  if (lo === 0 && hi === 0) f |= RFLAGS.ZF;
  if (hi < 0) f |= RFLAGS.SF;
  if (PARITY[lo & 0xff] === 1) f |= RFLAGS.PF;
  cpu.rflags = f;
  cpu.lfMask = 0;
}

/** `d op s` at 64 bits: halves in, low half out (unsigned), high half (int32) in cpu.hi. */
export function alu64(cpu: Cpu, op: number, dlo: number, dhi: number, slo: number, shi: number): number {
  let lo: number;
  let hi: number;
  switch (op) {
    case ALU_OP.ADD: case ALU_OP.ADC: {
      const c = op === ALU_OP.ADC ? getCF(cpu) : 0;
      const l = dlo + slo + c;
      const carryLo = l > 0xffffffff ? 1 : 0;
      lo = l >>> 0;
      const h = (dhi >>> 0) + (shi >>> 0) + carryLo;
      hi = h | 0;
      setFlags64(cpu, h > 0xffffffff, ((dhi ^ hi) & (shi ^ hi)) < 0, ((dlo ^ slo ^ lo) & 0x10) !== 0, lo, hi);
      break;
    }
    case ALU_OP.SUB: case ALU_OP.SBB: case ALU_OP.CMP: {
      const c = op === ALU_OP.SBB ? getCF(cpu) : 0;
      const l = dlo - slo - c;
      const borrowLo = l < 0 ? 1 : 0;
      lo = l >>> 0;
      const h = (dhi >>> 0) - (shi >>> 0) - borrowLo;
      hi = h | 0;
      setFlags64(cpu, h < 0, ((dhi ^ shi) & (dhi ^ hi)) < 0, ((dlo ^ slo ^ lo) & 0x10) !== 0, lo, hi);
      break;
    }
    default: {
      if (op === ALU_OP.OR) { lo = (dlo | slo) >>> 0; hi = dhi | shi; }
      else if (op === ALU_OP.AND) { lo = (dlo & slo) >>> 0; hi = dhi & shi; }
      else { lo = (dlo ^ slo) >>> 0; hi = dhi ^ shi; }
      setFlags64(cpu, false, false, false, lo, hi);
    }
  }
  cpu.hi = hi;
  return lo;
}

// ---- Handlers ---------------------------------------------------------------------------

// Handlers per width class: small functions inline better into fused blocks.

/** op E, G: destination is the r/m operand (8/16/32 bits). */
function aluEG(cpu: Cpu, i: Insn): void {
  const size = i.opSize;
  const op = i.op;
  const s = getReg(cpu, i.reg, size);
  if (op === ALU_OP.CMP) { alu(cpu, op, size, readE(cpu, i, size), s); return; }
  writeRmw(cpu, i, size, alu(cpu, op, size, readRmw(cpu, i, size), s));
}

function aluEG64(cpu: Cpu, i: Insn): void {
  const op = i.op;
  const slo = cpu.gpr[i.reg]! >>> 0;
  const shi = cpu.gprHi[i.reg]!;
  const dlo = op === ALU_OP.CMP ? readE(cpu, i, 64) : readRmw(cpu, i, 64);
  const r = alu64(cpu, op, dlo, cpu.hi, slo, shi);
  if (op !== ALU_OP.CMP) writeRmw(cpu, i, 64, r);
}

function aluGE(cpu: Cpu, i: Insn): void {
  const size = i.opSize;
  const s = readE(cpu, i, size);
  const r = alu(cpu, i.op, size, getReg(cpu, i.reg, size), s);
  if (i.op !== ALU_OP.CMP) setReg(cpu, i.reg, size, r);
}

function aluGE64(cpu: Cpu, i: Insn): void {
  const slo = readE(cpu, i, 64);
  const shi = cpu.hi;
  const r = alu64(cpu, i.op, cpu.gpr[i.reg]! >>> 0, cpu.gprHi[i.reg]!, slo, shi);
  if (i.op !== ALU_OP.CMP) { cpu.gpr[i.reg] = r; cpu.gprHi[i.reg] = cpu.hi; }
}

function aluEI(cpu: Cpu, i: Insn): void {
  const size = i.opSize;
  const op = i.op;
  if (op === ALU_OP.CMP) { alu(cpu, op, size, readE(cpu, i, size), i.imm); return; }
  writeRmw(cpu, i, size, alu(cpu, op, size, readRmw(cpu, i, size), i.imm));
}

function aluEI64(cpu: Cpu, i: Insn): void {
  const op = i.op;
  const dlo = op === ALU_OP.CMP ? readE(cpu, i, 64) : readRmw(cpu, i, 64);
  const r = alu64(cpu, op, dlo, cpu.hi, i.imm, i.immHi);
  if (op !== ALU_OP.CMP) writeRmw(cpu, i, 64, r);
}

/** The 32-bit sign bit as the int32 the lazy-flag fields hold. */
const SIGN32 = 0x80000000 | 0;

// 32-bit register-register forms of the hottest operations (compiled code is full of them).
function add32RR(cpu: Cpu, i: Insn): void {
  const g = cpu.gpr;
  const d = g[i.rm]!;
  const s = g[i.reg]!;
  const r = (d + s) | 0;
  g[i.rm] = r; cpu.gprHi[i.rm] = 0;
  cpu.lfOp = LF.ADD; cpu.lfDst = d; cpu.lfSrc = s; cpu.lfRes = r; cpu.lfSign = SIGN32; cpu.lfMask = ARITH_FLAGS;
}

function sub32RR(cpu: Cpu, i: Insn): void {
  const g = cpu.gpr;
  const d = g[i.rm]!;
  const s = g[i.reg]!;
  const r = (d - s) | 0;
  g[i.rm] = r; cpu.gprHi[i.rm] = 0;
  cpu.lfOp = LF.SUB; cpu.lfDst = d; cpu.lfSrc = s; cpu.lfRes = r; cpu.lfSign = SIGN32; cpu.lfMask = ARITH_FLAGS;
}

function cmp32RR(cpu: Cpu, i: Insn): void {
  const g = cpu.gpr;
  const d = g[i.rm]!;
  const s = g[i.reg]!;
  cpu.lfOp = LF.SUB; cpu.lfDst = d; cpu.lfSrc = s; cpu.lfRes = (d - s) | 0; cpu.lfSign = SIGN32; cpu.lfMask = ARITH_FLAGS;
}

function xor32RR(cpu: Cpu, i: Insn): void {
  const g = cpu.gpr;
  const r = g[i.rm]! ^ g[i.reg]!;
  g[i.rm] = r; cpu.gprHi[i.rm] = 0;
  cpu.lfOp = LF.RESULT; cpu.lfRes = r; cpu.lfSign = SIGN32;
  cpu.rflags &= ~(RFLAGS.CF | RFLAGS.OF | RFLAGS.AF);
  cpu.lfMask = RFLAGS.PF | RFLAGS.ZF | RFLAGS.SF;
}

const RR32: Partial<Record<number, Handler>> = {
  [ALU_OP.ADD]: add32RR, [ALU_OP.SUB]: sub32RR, [ALU_OP.CMP]: cmp32RR, [ALU_OP.XOR]: xor32RR,
};

function test(cpu: Cpu, i: Insn): void {
  const size = i.opSize;
  const d = readE(cpu, i, size);
  if (size === 64) {
    const dhi = cpu.hi;
    const slo = i.operandIsImm ? i.imm : cpu.gpr[i.reg]! >>> 0;
    const shi = i.operandIsImm ? i.immHi : cpu.gprHi[i.reg]!;
    alu64(cpu, ALU_OP.AND, d, dhi, slo, shi);
    return;
  }
  setLogic(cpu, (d & (i.operandIsImm ? i.imm : getReg(cpu, i.reg, size))) >>> 0, signOf(size));
}

function incDec(cpu: Cpu, i: Insn): void {
  const size = i.opSize;
  const dec = i.aux !== 0;
  const cf = getCF(cpu);
  const d = readRmw(cpu, i, size);
  let r: number;
  if (size === 64) {
    r = alu64(cpu, dec ? ALU_OP.SUB : ALU_OP.ADD, d, cpu.hi, 1, 0);
    cpu.rflags = (cpu.rflags & ~RFLAGS.CF) | cf;
  } else {
    const m = maskFor(size);
    r = ((dec ? d - 1 : d + 1) & m) >>> 0;
    setLazy(cpu, dec ? LF.SUB : LF.ADD, d, 1, r, signOf(size));
    cpu.rflags = (cpu.rflags & ~RFLAGS.CF) | cf;
    cpu.lfMask = ARITH_FLAGS & ~RFLAGS.CF;
  }
  writeRmw(cpu, i, size, r);
}

function dec32R(cpu: Cpu, i: Insn): void {
  const g = cpu.gpr;
  // CF survives DEC; the usual predecessor is an ADD/SUB whose carry is a compare away.
  const cf = (cpu.lfMask & RFLAGS.CF) === 0 ? cpu.rflags & RFLAGS.CF
    : cpu.lfOp === LF.ADD ? (cpu.lfRes >>> 0 < cpu.lfDst >>> 0 ? 1 : 0)
      : cpu.lfOp === LF.SUB ? (cpu.lfDst >>> 0 < cpu.lfSrc >>> 0 ? 1 : 0) : getCF(cpu);
  const d = g[i.rm]!;
  const r = (d - 1) | 0;
  g[i.rm] = r; cpu.gprHi[i.rm] = 0;
  cpu.rflags = (cpu.rflags & ~RFLAGS.CF) | cf;
  cpu.lfOp = LF.SUB; cpu.lfDst = d; cpu.lfSrc = 1; cpu.lfRes = r; cpu.lfSign = SIGN32;
  cpu.lfMask = ARITH_FLAGS & ~RFLAGS.CF;
}

function neg(cpu: Cpu, i: Insn): void {
  const size = i.opSize;
  const d = readRmw(cpu, i, size);
  const r = size === 64 ? alu64(cpu, ALU_OP.SUB, 0, 0, d, cpu.hi) : alu(cpu, ALU_OP.SUB, size, 0, d);
  writeRmw(cpu, i, size, r);
}

function not(cpu: Cpu, i: Insn): void {
  const size = i.opSize;
  const d = readRmw(cpu, i, size);
  if (size === 64) cpu.hi = ~cpu.hi;
  writeRmw(cpu, i, size, (~d & maskFor(size)) >>> 0);
}

const aluBinder: Binder = (i, info) => {
  i.op = ALU_OP[info.mn as keyof typeof ALU_OP];
  const dst = info.operands[0]!;
  const wide = i.opSize === 64;
  if (info.imms.length > 0) {
    if (!dst.startsWith('E')) i.rm = 0; // AL / rAX, Ib / Iz
    return wide ? aluEI64 : aluEI;
  }
  if (dst.startsWith('G')) {
    if (i.rm >= 0 && i.opSize === 32) { // op G, E on registers: the same as op E, G with the roles swapped
      const fast = RR32[i.op];
      if (fast !== undefined) { const r = i.rm; i.rm = i.reg; i.reg = r; return fast; }
    }
    return wide ? aluGE64 : aluGE;
  }
  if (i.rm >= 0 && i.opSize === 32) return RR32[i.op] ?? aluEG;
  return wide ? aluEG64 : aluEG;
};

export const ALU_BINDERS: Record<string, Binder> = {
  ADD: aluBinder, OR: aluBinder, ADC: aluBinder, SBB: aluBinder, AND: aluBinder, SUB: aluBinder, XOR: aluBinder, CMP: aluBinder,
  TEST: (i, info) => {
    i.operandIsImm = info.imms.length > 0;
    if (i.operandIsImm && !info.operands[0]!.startsWith('E')) i.rm = 0;
    return test;
  },
  INC: (i, info) => { if (info.operands[0] === 'Zv') i.rm = i.reg; i.aux = 0; return incDec; },
  DEC: (i, info) => {
    if (info.operands[0] === 'Zv') i.rm = i.reg;
    i.aux = 1;
    return i.rm >= 0 && i.opSize === 32 ? dec32R : incDec;
  },
  NEG: () => neg,
  NOT: () => not,
};
