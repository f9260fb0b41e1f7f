/** GPRs as numbers, for the system instructions that handle whole 64-bit values (not a hot path). */
import type { CpuState } from '../cpu/state.js';

const TWO32 = 0x1_0000_0000;

/** The 64-bit register as a signed number (exact for canonical addresses). */
export function getReg64(cpu: CpuState, i: number): number {
  return cpu.gprHi[i]! * TWO32 + (cpu.gpr[i]! >>> 0);
}

/** Stores a signed or unsigned integer number into the 64-bit register. */
export function setReg64(cpu: CpuState, i: number, v: number): void {
  cpu.gpr[i] = v % TWO32 | 0;
  cpu.gprHi[i] = Math.floor(v / TWO32) | 0;
}

/** A 32-bit result written to a 64-bit register zero-extends (SDM Vol. 1, 3.4.1.1). */
export function setReg32(cpu: CpuState, i: number, v: number): void {
  cpu.gpr[i] = v | 0;
  cpu.gprHi[i] = 0;
}

/** Signed number for a canonical 64-bit BigInt address (or any 64-bit value whose top bits are a sign extension). */
export function bigintToSigned(v: bigint): number {
  return Number(BigInt.asIntN(64, v));
}

export function signedToBigint(v: number): bigint {
  return BigInt.asUintN(64, BigInt(v));
}

/** Bits 63:47 all equal (48-bit linear addresses; the generic model has no LA57). */
export function isCanonical(v: number): boolean {
  return v >= -0x800000000000 && v < 0x800000000000;
}
