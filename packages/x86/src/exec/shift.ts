/**
 * ROL, ROR, RCL, RCR, SHL/SAL, SHR, SAR (group 2) and SHLD/SHRD (SDM Vol. 2). The count is
 * masked to 5 bits (6 with 64-bit operands); a zero count changes nothing. OF is computed as
 * the count-1 definition for every count, as Intel processors do.
 */
import type { Cpu } from '../cpu/cpu.js';
import { RFLAGS } from '../cpu/state.js';
import type { Binder } from '../decode/binders.js';
import type { Insn } from '../decode/insn.js';
import { getCF, setResultFlags, signOf } from '../flags/lazy-flags.js';
import { setFlags64 } from './alu.js';
import { getReg, maskFor, readRmw, writeRmw } from './operand.js';

export const SHIFT_OP = { ROL: 0, ROR: 1, RCL: 2, RCR: 3, SHL: 4, SHR: 5, SAR: 7 } as const;

/** Sets CF and OF only (rotates), leaving the other flags as they are, lazy or not. */
function setCfOf(cpu: Cpu, cf: number, of: boolean): void {
  cpu.rflags = (cpu.rflags & ~(RFLAGS.CF | RFLAGS.OF)) | cf | (of ? RFLAGS.OF : 0);
  cpu.lfMask &= ~(RFLAGS.CF | RFLAGS.OF);
}

/** `op d, count` at 8/16/32 bits; count already masked and non-zero. Returns the result. */
export function shift(cpu: Cpu, op: number, size: number, d: number, count: number): number {
  const m = maskFor(size);
  const sign = signOf(size);
  switch (op) {
    case SHIFT_OP.ROL: {
      const c = count % size;
      const r = c === 0 ? d : (((d << c) | (d >>> (size - c))) & m) >>> 0;
      const cf = r & 1;
      setCfOf(cpu, cf, ((r & sign) !== 0) !== (cf !== 0));
      return r;
    }
    case SHIFT_OP.ROR: {
      const c = count % size;
      const r = c === 0 ? d : (((d >>> c) | (d << (size - c))) & m) >>> 0;
      const msb = (r & sign) !== 0;
      setCfOf(cpu, msb ? 1 : 0, msb !== ((r & (sign >>> 1)) !== 0));
      return r;
    }
    case SHIFT_OP.RCL: {
      const c = size === 32 ? count : count % (size + 1);
      let r = d;
      let cf = getCF(cpu);
      for (let k = 0; k < c; k++) {
        const out = (r & sign) !== 0 ? 1 : 0;
        r = (((r << 1) | cf) & m) >>> 0;
        cf = out;
      }
      if (c !== 0) setCfOf(cpu, cf, ((r & sign) !== 0) !== (cf !== 0));
      return r;
    }
    case SHIFT_OP.RCR: {
      const c = size === 32 ? count : count % (size + 1);
      let r = d;
      let cf = getCF(cpu);
      const of = ((d & sign) !== 0) !== (cf !== 0);
      for (let k = 0; k < c; k++) {
        const out = r & 1;
        r = ((r >>> 1) | (cf !== 0 ? sign : 0)) >>> 0;
        cf = out;
      }
      if (c !== 0) setCfOf(cpu, cf, of);
      return r;
    }
    case SHIFT_OP.SHL: {
      const r = count >= size ? 0 : ((d << count) & m) >>> 0;
      const cf = count <= size ? (d >>> (size - count)) & 1 : 0;
      setResultFlags(cpu, r, sign, cf | ((((r & sign) !== 0) !== (cf !== 0)) ? RFLAGS.OF : 0));
      return r;
    }
    case SHIFT_OP.SHR: {
      const r = count >= 32 ? 0 : d >>> count;
      const cf = (d >>> (count - 1)) & 1;
      setResultFlags(cpu, r, sign, cf | ((d & sign) !== 0 ? RFLAGS.OF : 0));
      return r;
    }
    default: { // SAR
      const sd = size === 8 ? (d << 24) >> 24 : size === 16 ? (d << 16) >> 16 : d | 0;
      const r = ((sd >> Math.min(count, 31)) & m) >>> 0;
      const cf = (sd >> Math.min(count - 1, 31)) & 1;
      setResultFlags(cpu, r, sign, cf);
      return r;
    }
  }
}

/** Bit `n` (0-63) of the 64-bit value (lo, hi). */
function bit64(lo: number, hi: number, n: number): number {
  return n < 32 ? (lo >>> n) & 1 : (hi >>> (n - 32)) & 1;
}

/** Shift left by c (0-63) of (lo, hi): returns lo, sets cpu.hi. */
function shl64(cpu: Cpu, lo: number, hi: number, c: number): number {
  if (c === 0) { cpu.hi = hi; return lo; }
  if (c < 32) { cpu.hi = (hi << c) | (lo >>> (32 - c)); return (lo << c) >>> 0; }
  cpu.hi = lo << (c - 32);
  return 0;
}

/** Logical (arith=false) or arithmetic right shift by c (0-63). */
function shr64(cpu: Cpu, lo: number, hi: number, c: number, arith: boolean): number {
  if (c === 0) { cpu.hi = hi; return lo; }
  if (c < 32) { cpu.hi = arith ? hi >> c : (hi >>> c) | 0; return ((lo >>> c) | (hi << (32 - c))) >>> 0; }
  cpu.hi = arith ? hi >> 31 : 0;
  return (arith ? hi >> (c - 32) : hi >>> (c - 32)) >>> 0;
}

export function shift64(cpu: Cpu, op: number, lo: number, hi: number, count: number): number {
  let rlo: number;
  let rhi: number;
  switch (op) {
    case SHIFT_OP.ROL: case SHIFT_OP.ROR: {
      const c = op === SHIFT_OP.ROL ? count : (64 - count) & 63;
      const a = shl64(cpu, lo, hi, c);
      const ah = cpu.hi;
      const b = shr64(cpu, lo, hi, (64 - c) & 63, false);
      rlo = c === 0 ? lo : (a | b) >>> 0;
      rhi = c === 0 ? hi : ah | cpu.hi;
      cpu.hi = rhi;
      if (op === SHIFT_OP.ROL) { const cf = rlo & 1; setCfOf(cpu, cf, (rhi < 0) !== (cf !== 0)); }
      else setCfOf(cpu, rhi < 0 ? 1 : 0, (rhi < 0) !== (((rhi >>> 30) & 1) !== 0));
      return rlo;
    }
    case SHIFT_OP.RCL: case SHIFT_OP.RCR: {
      let cf = getCF(cpu);
      const of = (hi < 0) !== (cf !== 0);
      rlo = lo; rhi = hi;
      for (let k = 0; k < count; k++) {
        if (op === SHIFT_OP.RCL) {
          const out = rhi < 0 ? 1 : 0;
          rhi = (rhi << 1) | (rlo >>> 31);
          rlo = ((rlo << 1) | cf) >>> 0;
          cf = out;
        } else {
          const out = rlo & 1;
          rlo = ((rlo >>> 1) | (rhi << 31)) >>> 0;
          rhi = (rhi >>> 1) | (cf << 31);
          cf = out;
        }
      }
      cpu.hi = rhi;
      setCfOf(cpu, cf, op === SHIFT_OP.RCL ? (rhi < 0) !== (cf !== 0) : of);
      return rlo;
    }
    case SHIFT_OP.SHL: {
      const cf = bit64(lo, hi, 64 - count);
      rlo = shl64(cpu, lo, hi, count);
      rhi = cpu.hi;
      setFlags64(cpu, cf !== 0, (rhi < 0) !== (cf !== 0), false, rlo, rhi);
      cpu.hi = rhi;
      return rlo;
    }
    default: { // SHR, SAR
      const cf = bit64(lo, hi, count - 1);
      rlo = shr64(cpu, lo, hi, count, op === SHIFT_OP.SAR);
      rhi = cpu.hi;
      setFlags64(cpu, cf !== 0, op === SHIFT_OP.SHR && hi < 0, false, rlo, rhi);
      cpu.hi = rhi;
      return rlo;
    }
  }
}

function countOf(cpu: Cpu, i: Insn): number {
  const raw = i.aux === 1 ? 1 : i.aux === 2 ? cpu.gpr[1]! & 0xff : i.imm;
  return raw & (i.opSize === 64 ? 63 : 31);
}

function group2(cpu: Cpu, i: Insn): void {
  const size = i.opSize;
  const count = countOf(cpu, i);
  const d = readRmw(cpu, i, size);
  if (count === 0) { // nothing shifts, but a 32-bit register destination is still written (zero-extended)
    if (size === 32 && i.rm >= 0) cpu.gprHi[i.rm] = 0;
    return;
  }
  if (size === 64) { writeRmw(cpu, i, 64, shift64(cpu, i.op, d, cpu.hi, count)); return; }
  writeRmw(cpu, i, size, shift(cpu, i.op, size, d, count));
}

/** ROL r32, imm: the rotate in the benchmark loop, without the generic dispatch. */
function rol32RI(cpu: Cpu, i: Insn): void {
  const c = i.imm & 31;
  if (c === 0) { cpu.gprHi[i.rm] = 0; return; }
  const g = cpu.gpr;
  const d = g[i.rm]!;
  const r = (d << c) | (d >>> (32 - c));
  g[i.rm] = r; cpu.gprHi[i.rm] = 0;
  const cf = r & 1;
  cpu.rflags = (cpu.rflags & ~(RFLAGS.CF | RFLAGS.OF)) | cf | (((r >>> 31) ^ cf) !== 0 ? RFLAGS.OF : 0);
  cpu.lfMask &= ~(RFLAGS.CF | RFLAGS.OF);
}

/** SHLD/SHRD (i.aux bit 0: right; bit 1: count in CL). */
function shiftDouble(cpu: Cpu, i: Insn): void {
  const size = i.opSize;
  const right = (i.aux & 1) !== 0;
  const count = ((i.aux & 2) !== 0 ? cpu.gpr[1]! : i.imm) & (size === 64 ? 63 : 31);
  const d = readRmw(cpu, i, size);
  const dhi = cpu.hi;
  if (count === 0) {
    if (size === 32 && i.rm >= 0) cpu.gprHi[i.rm] = 0;
    return;
  }
  const s = getReg(cpu, i.reg, size);
  if (size === 64) {
    const full = (BigInt(dhi >>> 0) << 32n) | BigInt(d);
    const src = (BigInt(cpu.hi >>> 0) << 32n) | BigInt(s);
    const c = BigInt(count);
    const wide = right ? ((src << 64n) | full) >> c : ((full << 64n) | src) << c >> 64n;
    const r = BigInt.asUintN(64, wide);
    const cf = right ? Number((full >> (c - 1n)) & 1n) : Number((full >> (64n - c)) & 1n);
    const lo = Number(r & 0xffffffffn);
    const hi = Number(r >> 32n) | 0;
    setFlags64(cpu, cf !== 0, (hi < 0) !== (dhi < 0), false, lo, hi);
    cpu.hi = hi;
    writeRmw(cpu, i, 64, lo);
    return;
  }
  const sign = signOf(size);
  const m = maskFor(size);
  // Shift the concatenation (d:s for SHLD, s:d for SHRD) as a 2*size-bit value, size <= 32.
  let r: number;
  let cf: number;
  if (size === 32) {
    if (right) { r = ((d >>> count) | (s << (32 - count))) >>> 0; cf = (d >>> (count - 1)) & 1; }
    else { r = ((d << count) | (s >>> (32 - count))) >>> 0; cf = (d >>> (32 - count)) & 1; }
  } else {
    const wide = right ? (s * 65536 + d) : (d * 65536 + s);
    const c = count; // 16-bit counts above 16 give undefined results; this is one of them
    if (right) { r = Math.floor(wide / 2 ** c) & m; cf = Math.floor(wide / 2 ** (c - 1)) & 1; }
    else { r = Math.floor((wide * 2 ** c) / 65536) & m; cf = Math.floor((wide * 2 ** (c - 1)) / 2 ** 31) & 1; }
  }
  setResultFlags(cpu, r, sign, cf | (((r ^ d) & sign) !== 0 ? RFLAGS.OF : 0));
  writeRmw(cpu, i, size, r);
}

export const SHIFT_BINDERS: Record<string, Binder> = {
  ...Object.fromEntries(Object.entries(SHIFT_OP).map(([mn, op]) => [mn, ((i, info) => {
    i.op = op;
    const src = info.operands[1];
    i.aux = src === '1' ? 1 : src === 'CL' ? 2 : 0;
    if (op === SHIFT_OP.ROL && i.aux === 0 && i.opSize === 32 && i.rm >= 0) return rol32RI;
    return group2;
  }) satisfies Binder])),
  SHLD: (i, info) => { i.aux = info.operands[2] === 'CL' ? 2 : 0; return shiftDouble; },
  SHRD: (i, info) => { i.aux = (info.operands[2] === 'CL' ? 2 : 0) | 1; return shiftDouble; },
};
