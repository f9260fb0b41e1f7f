/**
 * Lazy arithmetic flags (the technique of Bochs lazy_flags.h and v86 arith.rs): an ALU
 * instruction records its kind, operands and result; CF, PF, AF, ZF, SF and OF are computed
 * only when something reads them. `lfMask` says which RFLAGS bits are lazy; the others are
 * architectural values already stored in `rflags`.
 *
 * Values are masked to the operation width and stored as int32 (`| 0`), so the fields stay small
 * integers in V8 (no boxed doubles on the hot path); CF compares them unsigned. `lfSign` is the
 * width's sign bit (0x80000000 as int32 for 32 bits).
 * 64-bit operations compute their flags eagerly (see alu64 in exec/alu.ts).
 */
import { RFLAGS } from '../cpu/state.js';

export const LF = { ADD: 0, ADC: 1, SUB: 2, SBB: 3, RESULT: 4 } as const;

/** The six arithmetic status flags. */
export const ARITH_FLAGS = RFLAGS.CF | RFLAGS.PF | RFLAGS.AF | RFLAGS.ZF | RFLAGS.SF | RFLAGS.OF;

export interface LazyFlags {
  rflags: number;
  lfMask: number;
  lfOp: number;
  lfDst: number;
  lfSrc: number;
  lfRes: number;
  /** Sign bit of the width: 0x80, 0x8000 or 0x80000000. */
  lfSign: number;
  /** Carry-in of ADC/SBB. */
  lfCin: number;
}

/** PF for each low byte: 1 when the number of set bits is even. */
export const PARITY = Uint8Array.from({ length: 256 }, (_, v) => {
  let n = 0;
  for (let b = v; b !== 0; b &= b - 1) n++;
  return (n & 1) === 0 ? 1 : 0;
});

export function signOf(size: number): number {
  return size === 8 ? 0x80 : size === 16 ? 0x8000 : 0x80000000;
}

export function maskOf(size: number): number {
  return size === 8 ? 0xff : size === 16 ? 0xffff : 0xffffffff;
}

/** Records an ADD/SUB/ADC/SBB/logic result: all six flags become lazy. */
export function setLazy(f: LazyFlags, op: number, dst: number, src: number, res: number, sign: number): void {
  f.lfOp = op; f.lfDst = dst | 0; f.lfSrc = src | 0; f.lfRes = res | 0; f.lfSign = sign | 0;
  f.lfMask = ARITH_FLAGS;
}

/** Logic ops and friends: SF, ZF, PF from `res`; CF = OF = AF = 0. */
export function setLogic(f: LazyFlags, res: number, sign: number): void {
  f.lfOp = LF.RESULT; f.lfRes = res | 0; f.lfSign = sign | 0;
  f.rflags &= ~(RFLAGS.CF | RFLAGS.OF | RFLAGS.AF);
  f.lfMask = RFLAGS.PF | RFLAGS.ZF | RFLAGS.SF;
}

/** SF, ZF, PF lazily from `res`; CF, OF, AF as given (shifts, multiplies). */
export function setResultFlags(f: LazyFlags, res: number, sign: number, eager: number): void {
  f.lfOp = LF.RESULT; f.lfRes = res | 0; f.lfSign = sign | 0;
  f.rflags = (f.rflags & ~(RFLAGS.CF | RFLAGS.OF | RFLAGS.AF)) | eager;
  f.lfMask = RFLAGS.PF | RFLAGS.ZF | RFLAGS.SF;
}

export function getCF(f: LazyFlags): number {
  if ((f.lfMask & RFLAGS.CF) === 0) return f.rflags & RFLAGS.CF;
  switch (f.lfOp) {
    case LF.ADD: return f.lfRes >>> 0 < f.lfDst >>> 0 ? 1 : 0;
    case LF.ADC: return f.lfRes >>> 0 < f.lfDst >>> 0 || (f.lfCin !== 0 && f.lfRes === f.lfDst) ? 1 : 0;
    case LF.SUB: return f.lfDst >>> 0 < f.lfSrc >>> 0 ? 1 : 0;
    case LF.SBB: return f.lfDst >>> 0 < f.lfSrc >>> 0 || (f.lfCin !== 0 && f.lfDst === f.lfSrc) ? 1 : 0;
    default: return 0;
  }
}

export function getOF(f: LazyFlags): boolean {
  if ((f.lfMask & RFLAGS.OF) === 0) return (f.rflags & RFLAGS.OF) !== 0;
  const { lfDst: d, lfSrc: s, lfRes: r } = f;
  switch (f.lfOp) {
    case LF.ADD: case LF.ADC: return ((d ^ r) & (s ^ r) & f.lfSign) !== 0;
    case LF.SUB: case LF.SBB: return ((d ^ s) & (d ^ r) & f.lfSign) !== 0;
    default: return false;
  }
}

export function getZF(f: LazyFlags): boolean {
  return (f.lfMask & RFLAGS.ZF) !== 0 ? f.lfRes === 0 : (f.rflags & RFLAGS.ZF) !== 0;
}

export function getSF(f: LazyFlags): boolean {
  return (f.lfMask & RFLAGS.SF) !== 0 ? (f.lfRes & f.lfSign) !== 0 : (f.rflags & RFLAGS.SF) !== 0;
}

export function getPF(f: LazyFlags): boolean {
  return (f.lfMask & RFLAGS.PF) !== 0 ? PARITY[f.lfRes & 0xff] === 1 : (f.rflags & RFLAGS.PF) !== 0;
}

export function getAF(f: LazyFlags): boolean {
  if ((f.lfMask & RFLAGS.AF) === 0) return (f.rflags & RFLAGS.AF) !== 0;
  return f.lfOp !== LF.RESULT && ((f.lfDst ^ f.lfSrc ^ f.lfRes) & 0x10) !== 0;
}

/** RFLAGS with every lazy bit computed. */
export function materialize(f: LazyFlags): number {
  const m = f.lfMask;
  if (m === 0) return f.rflags;
  let v = f.rflags & ~m;
  if (m & RFLAGS.CF) v |= getCF(f);
  if (m & RFLAGS.PF && getPF(f)) v |= RFLAGS.PF;
  if (m & RFLAGS.AF && getAF(f)) v |= RFLAGS.AF;
  if (m & RFLAGS.ZF && getZF(f)) v |= RFLAGS.ZF;
  if (m & RFLAGS.SF && getSF(f)) v |= RFLAGS.SF;
  if (m & RFLAGS.OF && getOF(f)) v |= RFLAGS.OF;
  return v;
}

/** Folds the lazy bits into `rflags` so an instruction may change some flags and keep the rest. */
export function flushFlags(f: LazyFlags): void {
  if (f.lfMask !== 0) { f.rflags = materialize(f); f.lfMask = 0; }
}

/** Writes the eager flags given in `bits` (only those in `which`) and keeps the rest. */
export function setFlagBits(f: LazyFlags, which: number, bits: number): void {
  flushFlags(f);
  f.rflags = (f.rflags & ~which) | (bits & which);
}

/** Condition code tttn (SDM Vol. 2, Appendix B.1.4.7): O, NO, B, AE, E, NE, BE, A, S, NS, P, NP, L, GE, LE, G. */
export function testCC(f: LazyFlags, cc: number): boolean {
  let r: boolean;
  switch (cc >> 1) {
    case 0: r = getOF(f); break;
    case 1: r = getCF(f) !== 0; break;
    case 2: r = getZF(f); break;
    case 3: r = getCF(f) !== 0 || getZF(f); break;
    case 4: r = getSF(f); break;
    case 5: r = getPF(f); break;
    case 6: r = getSF(f) !== getOF(f); break;
    default: r = getZF(f) || getSF(f) !== getOF(f); break;
  }
  return (cc & 1) !== 0 ? !r : r;
}
