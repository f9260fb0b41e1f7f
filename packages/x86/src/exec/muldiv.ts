/**
 * MUL, IMUL (one-, two- and three-operand forms), DIV, IDIV (SDM Vol. 2). Products use 16-bit
 * limbs (no BigInt, up to 128-bit products); 64-bit DIV/IDIV (128-bit dividends) use BigInt, a
 * cold path.
 * CF = OF = "the result did not fit"; SF, ZF, PF follow the low result (undefined in the SDM).
 */
import type { Cpu } from '../cpu/cpu.js';
import { RFLAGS } from '../cpu/state.js';
import { VEC } from '../cpu/events.js';
import type { Binder } from '../decode/binders.js';
import type { Insn } from '../decode/insn.js';
import { setResultFlags, signOf } from '../flags/lazy-flags.js';
import { setFlags64 } from './alu.js';
import { getReg, readE, setReg, setReg64, signExtend } from './operand.js';

/** Unsigned 32x32 -> 64: returns the low half, the high half in cpu.hi (unsigned). */
export function mulU32(cpu: Cpu, a: number, b: number): number {
  const al = a & 0xffff, ah = a >>> 16, bl = b & 0xffff, bh = b >>> 16;
  const ll = al * bl, lh = al * bh, hl = ah * bl, hh = ah * bh;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  cpu.hi = (hh + (lh >>> 16) + (hl >>> 16) + (mid >>> 16)) >>> 0;
  return (((mid & 0xffff) << 16) | (ll & 0xffff)) >>> 0;
}

/** Signed 32x32 -> 64 (inputs unsigned bit patterns): low half returned, high half (int32) in cpu.hi. */
export function mulS32(cpu: Cpu, a: number, b: number): number {
  const lo = mulU32(cpu, a, b);
  let hi = cpu.hi;
  if ((a | 0) < 0) hi -= b;
  if ((b | 0) < 0) hi -= a;
  cpu.hi = hi | 0;
  return lo;
}

const TWO32 = 4294967296;

/** Result words of the last mul64, least significant first (unsigned 32-bit each). */
const W = new Float64Array(4);

/**
 * Unsigned 64x64 -> 128 from four 32x32 products (no BigInt): W[0..3]. With `signed`, the high
 * 64 bits are corrected for negative operands (subtracting the other operand), giving the signed
 * product in two's complement.
 */
export function mul64(cpu: Cpu, alo: number, ahi: number, blo: number, bhi: number, signed: boolean): void {
  const a0 = alo >>> 0, a1 = ahi >>> 0, b0 = blo >>> 0, b1 = bhi >>> 0;
  const p00l = mulU32(cpu, a0, b0); const p00h = cpu.hi;
  const p01l = mulU32(cpu, a0, b1); const p01h = cpu.hi;
  const p10l = mulU32(cpu, a1, b0); const p10h = cpu.hi;
  const p11l = mulU32(cpu, a1, b1); const p11h = cpu.hi;
  const mid = p00h + p01l + p10l;
  const w1 = mid % 4294967296;
  const c1 = Math.floor(mid / 4294967296);
  const high = p11l + p01h + p10h + c1;
  let w2 = high % 4294967296;
  let w3 = (p11h + Math.floor(high / 4294967296)) % 4294967296;
  if (signed) { // hi64 -= the other operand, mod 2^64, for each negative operand
    if ((ahi | 0) < 0) { const l = w2 - b0; w2 = (l + TWO32) % TWO32; w3 = (w3 - b1 - (l < 0 ? 1 : 0) + 2 * TWO32) % TWO32; }
    if ((bhi | 0) < 0) { const l = w2 - a0; w2 = (l + TWO32) % TWO32; w3 = (w3 - a1 - (l < 0 ? 1 : 0) + 2 * TWO32) % TWO32; }
  }
  W[0] = p00l; W[1] = w1; W[2] = w2; W[3] = w3;
}

/** The words of the last mul64 (for tests). */
export function mulResultWords(): Float64Array {
  return W;
}

function toBig(lo: number, hi: number): bigint {
  return (BigInt(hi | 0) << 32n) | BigInt(lo >>> 0);
}

function mulFlags(cpu: Cpu, overflow: boolean, lo: number, size: number): void {
  setResultFlags(cpu, lo, signOf(size), overflow ? RFLAGS.CF | RFLAGS.OF : 0);
}

/** F6/F7 /4 MUL and /5 IMUL: rDX:rAX = rAX * E. */
function mul1(cpu: Cpu, i: Insn): void {
  const size = i.opSize;
  const signed = i.aux !== 0;
  const src = readE(cpu, i, size);
  if (size === 8) {
    const a = getReg(cpu, 0, 8);
    const p = signed ? signExtend(a, 8) * signExtend(src, 8) : a * src;
    setReg(cpu, 0, 16, p & 0xffff);
    mulFlags(cpu, signed ? p !== signExtend(p & 0xff, 8) : p > 0xff, p & 0xff, 8);
  } else if (size === 16) {
    const a = getReg(cpu, 0, 16);
    const p = signed ? signExtend(a, 16) * signExtend(src, 16) : a * src;
    setReg(cpu, 0, 16, p & 0xffff);
    setReg(cpu, 2, 16, (p >>> 16) & 0xffff);
    mulFlags(cpu, signed ? p !== signExtend(p & 0xffff, 16) : p > 0xffff, p & 0xffff, 16);
  } else if (size === 32) {
    const a = getReg(cpu, 0, 32);
    const lo = signed ? mulS32(cpu, a, src) : mulU32(cpu, a, src);
    const hi = cpu.hi;
    setReg(cpu, 0, 32, lo);
    setReg(cpu, 2, 32, hi);
    mulFlags(cpu, signed ? (hi | 0) !== ((lo | 0) >> 31) : hi !== 0, lo, 32);
  } else {
    mul64(cpu, cpu.gpr[0]!, cpu.gprHi[0]!, src, cpu.hi, signed);
    const [lo, w1, w2, w3] = W as unknown as [number, number, number, number];
    setReg64(cpu, 0, lo | 0, w1 | 0);
    setReg64(cpu, 2, w2 | 0, w3 | 0);
    const overflow = signed ? (w2 | 0) !== ((w1 | 0) >> 31) || (w3 | 0) !== ((w1 | 0) >> 31) : w2 !== 0 || w3 !== 0;
    setFlags64(cpu, overflow, overflow, false, lo >>> 0, w1 | 0);
  }
}

/** IMUL G, E (0F AF) and IMUL G, E, imm (69, 6B): truncated signed product. */
function imul(cpu: Cpu, i: Insn): void {
  const size = i.opSize;
  const three = i.aux !== 0;
  const a = readE(cpu, i, size);
  const ahi = cpu.hi;
  if (size === 64) {
    const blo = three ? i.imm : cpu.gpr[i.reg]!;
    const bhi = three ? i.immHi : cpu.gprHi[i.reg]!;
    mul64(cpu, a, ahi, blo, bhi, true);
    const lo = W[0]! | 0;
    const hi = W[1]! | 0;
    const overflow = (W[2]! | 0) !== (hi >> 31) || (W[3]! | 0) !== (hi >> 31);
    setFlags64(cpu, overflow, overflow, false, lo >>> 0, hi);
    setReg64(cpu, i.reg, lo, hi);
    return;
  }
  const b = three ? i.imm : getReg(cpu, i.reg, size);
  let r: number;
  let overflow: boolean;
  if (size === 32) {
    r = mulS32(cpu, a, b);
    overflow = cpu.hi !== ((r | 0) >> 31);
  } else {
    const p = signExtend(a, size) * signExtend(b, size);
    r = p & (size === 8 ? 0xff : 0xffff);
    overflow = p !== signExtend(r, size);
  }
  mulFlags(cpu, overflow, r, size);
  setReg(cpu, i.reg, size, r);
}

/** Unsigned (hi:lo) / d for hi < d, all 32-bit: quotient returned, remainder in cpu.hi. */
export function divU64by32(cpu: Cpu, hi: number, lo: number, d: number): number {
  let r = hi;
  let num = r * 65536 + (lo >>> 16);
  const q1 = Math.floor(num / d);
  r = num - q1 * d;
  num = r * 65536 + (lo & 0xffff);
  const q0 = Math.floor(num / d);
  cpu.hi = num - q0 * d;
  return (q1 * 65536 + q0) >>> 0;
}

function div(cpu: Cpu, i: Insn): void {
  const size = i.opSize;
  const signed = i.aux !== 0;
  const src = readE(cpu, i, size);
  const srcHi = cpu.hi;
  if (size === 8 || size === 16) {
    const dividend = size === 8 ? getReg(cpu, 0, 16) : getReg(cpu, 2, 16) * 65536 + getReg(cpu, 0, 16);
    const m = size === 8 ? 0xff : 0xffff;
    if (src === 0) cpu.fault(VEC.DE);
    let q: number;
    let r: number;
    if (signed) {
      const n = size === 8 ? signExtend(dividend, 16) : dividend | 0;
      const dv = signExtend(src, size);
      q = Math.trunc(n / dv);
      r = n - q * dv;
      if (q > (m >> 1) || q < -((m >> 1) + 1)) cpu.fault(VEC.DE);
    } else {
      q = Math.floor(dividend / src);
      r = dividend - q * src;
      if (q > m) cpu.fault(VEC.DE);
    }
    if (size === 8) setReg(cpu, 0, 16, ((r & 0xff) << 8) | (q & 0xff));
    else { setReg(cpu, 0, 16, q & 0xffff); setReg(cpu, 2, 16, r & 0xffff); }
    return;
  }
  if (size === 32) {
    const lo = cpu.gpr[0]! >>> 0;
    const hi = cpu.gpr[2]! >>> 0;
    if (src === 0) cpu.fault(VEC.DE);
    if (!signed) {
      if (hi >= src) cpu.fault(VEC.DE);
      const q = divU64by32(cpu, hi, lo, src);
      const rem = cpu.hi;
      setReg(cpu, 0, 32, q);
      setReg(cpu, 2, 32, rem);
      return;
    }
    const neg = (hi | 0) < 0;
    // |EDX:EAX|
    let mlo = lo, mhi = hi;
    if (neg) { mlo = (~lo + 1) >>> 0; mhi = (~hi + (mlo === 0 ? 1 : 0)) >>> 0; }
    const dneg = (src | 0) < 0;
    const md = dneg ? (-(src | 0)) >>> 0 : src;
    if (mhi >= md) cpu.fault(VEC.DE);
    let q = divU64by32(cpu, mhi, mlo, md);
    let rem = cpu.hi;
    if (neg !== dneg ? q > 0x80000000 : q > 0x7fffffff) cpu.fault(VEC.DE);
    if (neg !== dneg) q = (-q) >>> 0;
    if (neg) rem = (-rem) >>> 0;
    setReg(cpu, 0, 32, q);
    setReg(cpu, 2, 32, rem);
    return;
  }
  const d = signed ? BigInt.asIntN(64, toBig(src, srcHi)) : BigInt.asUintN(64, toBig(src, srcHi));
  if (d === 0n) cpu.fault(VEC.DE);
  const wide = (toBig(cpu.gpr[2]!, cpu.gprHi[2]!) << 64n) | BigInt.asUintN(64, toBig(cpu.gpr[0]!, cpu.gprHi[0]!));
  const n = signed ? BigInt.asIntN(128, wide) : BigInt.asUintN(128, wide);
  const q = n / d;
  const r = n % d;
  if (signed ? q !== BigInt.asIntN(64, q) : q !== BigInt.asUintN(64, q)) cpu.fault(VEC.DE);
  const qu = BigInt.asUintN(64, q);
  const ru = BigInt.asUintN(64, r);
  setReg64(cpu, 0, Number(qu & 0xffffffffn), Number(qu >> 32n) | 0);
  setReg64(cpu, 2, Number(ru & 0xffffffffn), Number(ru >> 32n) | 0);
}

export const MULDIV_BINDERS: Record<string, Binder> = {
  MUL: (i) => { i.aux = 0; return mul1; },
  IMUL1: (i) => { i.aux = 1; return mul1; },
  IMUL2: (i) => { i.aux = 0; return imul; },
  IMUL3: (i) => { i.aux = 1; return imul; },
  DIV: (i) => { i.aux = 0; return div; },
  IDIV: (i) => { i.aux = 1; return div; },
};
