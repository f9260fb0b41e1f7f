/**
 * Operand access for handlers: registers by width, effective addresses (SDM Vol. 1, 3.7.5),
 * and the E operand (ModRM r/m) as register or memory. Values of 8/16/32-bit operands are
 * unsigned numbers masked to their width; 64-bit operands are (lo, hi) pairs with the high half
 * in cpu.hi.
 */
import type { Cpu } from '../cpu/cpu.js';
import type { Insn } from '../decode/insn.js';

const TWO32 = 4294967296;

/** Register `r` at `size` bits (8: 0-15 low bytes, 16-19 AH..BH). */
export function getReg(cpu: Cpu, r: number, size: number): number {
  if (size === 32) return cpu.gpr[r]! >>> 0;
  if (size === 16) return cpu.gpr[r]! & 0xffff;
  if (size === 8) return r < 16 ? cpu.gpr[r]! & 0xff : (cpu.gpr[r - 16]! >> 8) & 0xff;
  cpu.hi = cpu.gprHi[r]!;
  return cpu.gpr[r]! >>> 0;
}

/** Writes a register; a 32-bit write zero-extends into bits 63:32 (SDM Vol. 1, 3.4.1.1). For 64, the high half is cpu.hi. */
export function setReg(cpu: Cpu, r: number, size: number, v: number): void {
  const g = cpu.gpr;
  if (size === 32) { g[r] = v; cpu.gprHi[r] = 0; }
  else if (size === 16) g[r] = (g[r]! & ~0xffff) | (v & 0xffff);
  else if (size === 8) {
    if (r < 16) g[r] = (g[r]! & ~0xff) | (v & 0xff);
    else g[r - 16] = (g[r - 16]! & ~0xff00) | ((v & 0xff) << 8);
  } else { g[r] = v; cpu.gprHi[r] = cpu.hi; }
}

export function setReg64(cpu: Cpu, r: number, lo: number, hi: number): void {
  cpu.gpr[r] = lo;
  cpu.gprHi[r] = hi;
}

/** A 64-bit register as an exact signed number (for addresses). */
export function reg64Signed(cpu: Cpu, r: number): number {
  return cpu.gprHi[r]! * TWO32 + (cpu.gpr[r]! >>> 0);
}

/**
 * The 64-bit effective address, exactly: the halves are summed with carries (a double would
 * round sums beyond 2^53), then returned as a signed number, exact for canonical results.
 * Both halves are also left in cpu.eaLo/eaHi for LEA.
 */
function effAddr64(cpu: Cpu, i: Insn): number {
  const g = cpu.gpr;
  let lo = i.disp >>> 0;
  let hi = i.disp < 0 ? -1 : 0;
  if (i.ripRel) { lo += cpu.rip >>> 0; hi += Math.floor(cpu.rip / TWO32); }
  if (i.base >= 0) { lo += g[i.base]! >>> 0; hi += cpu.gprHi[i.base]!; }
  if (i.index >= 0) {
    const s = i.scale;
    const ilo = g[i.index]! >>> 0;
    const ihi = cpu.gprHi[i.index]!;
    lo += s === 0 ? ilo : (ilo << s) >>> 0;
    hi += s === 0 ? ihi : (ihi << s) | (ilo >>> (32 - s));
  }
  const carry = Math.floor(lo / TWO32);
  cpu.eaLo = lo | 0; // int32 keeps the field unboxed
  cpu.eaHi = (hi + carry) | 0;
  return cpu.eaHi * TWO32 + (lo >>> 0);
}

/** The effective address (offset in the segment) of the memory operand. */
export function effAddr(cpu: Cpu, i: Insn): number {
  if (i.addrSize === 64) return effAddr64(cpu, i);
  const g = cpu.gpr;
  let a = i.disp;
  if (i.base >= 0) a += g[i.base]!;
  if (i.index >= 0) a += g[i.index]! << i.scale;
  return i.addrSize === 32 ? a >>> 0 : a & 0xffff;
}

/** Linear address of the memory operand for a `bytes`-wide access. */
export function memLinear(cpu: Cpu, i: Insn, bytes: number, write: boolean): number {
  if (i.addrSize === 64 && i.index < 0) {
    // [base + disp] and [rip + disp] in doubles: a sum that would round is far from canonical
    // and faults as the exact one would (effAddr64 is only needed with an index, and for LEA).
    const a = i.base >= 0 ? cpu.gprHi[i.base]! * TWO32 + (cpu.gpr[i.base]! >>> 0) + i.disp : i.ripRel ? cpu.rip + i.disp : i.disp;
    return cpu.linear(i.seg, a, bytes, write);
  }
  return cpu.linear(i.seg, effAddr(cpu, i), bytes, write);
}

/** Reads the E operand (register or memory) at the instruction's operand size (8/16/32; 64 sets cpu.hi). */
export function readE(cpu: Cpu, i: Insn, size: number): number {
  if (i.rm >= 0) return getReg(cpu, i.rm, size);
  const la = memLinear(cpu, i, size >> 3, false);
  if (size === 64) return cpu.read64(la);
  return cpu.readN(la, size >> 3);
}

export function writeE(cpu: Cpu, i: Insn, size: number, v: number): void {
  if (i.rm >= 0) { setReg(cpu, i.rm, size, v); return; }
  const la = memLinear(cpu, i, size >> 3, true);
  if (size === 64) cpu.write64(la, v, cpu.hi);
  else cpu.writeN(la, size >> 3, v);
}

/**
 * Read-modify-write of the E operand: `readRmw` translates the memory operand for writing and
 * remembers its linear address in cpu.rmwLa for `writeRmw`.
 */
export function readRmw(cpu: Cpu, i: Insn, size: number): number {
  if (i.rm >= 0) return getReg(cpu, i.rm, size);
  const la = memLinear(cpu, i, size >> 3, true);
  cpu.rmwLa = la;
  if (size === 64) {
    const lo = cpu.readForWrite(la, 4);
    const hi = cpu.readForWrite(la + 4, 4) | 0;
    cpu.hi = hi;
    return lo;
  }
  return cpu.readForWrite(la, size >> 3);
}

export function writeRmw(cpu: Cpu, i: Insn, size: number, v: number): void {
  if (i.rm >= 0) { setReg(cpu, i.rm, size, v); return; }
  if (size === 64) cpu.write64(cpu.rmwLa, v, cpu.hi);
  else cpu.writeN(cpu.rmwLa, size >> 3, v);
}

export function maskFor(size: number): number {
  return size === 8 ? 0xff : size === 16 ? 0xffff : 0xffffffff;
}

/** Sign-extends an unsigned `size`-bit value to a signed int32 number. */
export function signExtend(v: number, size: number): number {
  return size === 8 ? (v << 24) >> 24 : size === 16 ? (v << 16) >> 16 : v | 0;
}

/** Fills cpu.operand (the VMX instruction-information view) for the current instruction. */
export function fillOperand(cpu: Cpu, i: Insn): void {
  const o = cpu.operand;
  o.isReg = i.rm >= 0;
  o.reg1 = i.rm >= 0 ? i.rm & 15 : 0;
  o.reg2 = i.reg & 15;
  o.seg = i.seg;
  o.base = i.base;
  o.index = i.index;
  o.scale = i.scale;
  o.addrSize = i.addrSize === 64 ? 64 : i.addrSize === 32 ? 32 : 16;
  o.opSize = i.opSize === 64 ? 64 : i.opSize === 16 ? 16 : 32;
  o.disp = i.disp;
  o.offset = i.rm >= 0 ? 0 : effAddr(cpu, i);
}
