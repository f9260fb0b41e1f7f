/**
 * Debug-exception conditions (SDM Vol. 3A, 18.2 "Debug Registers" and 18.3.1 "Debug Exception
 * (#DB)"): the DR6 status bits a #DB reports and the DR7 instruction-breakpoint match.
 */

/** DR6 status bits (SDM Figure 18-1): B0-B3 breakpoint hit, BD, BS, BT. */
export const DR6 = {
  B0: 1 << 0, B1: 1 << 1, B2: 1 << 2, B3: 1 << 3, BD: 1 << 13, BS: 1 << 14, BT: 1 << 15,
  /** Bits that read as 1 (RTM, bit 16, is active low and reads 1 without RTM). */
  FIXED1: 0xffff0ff0 | 0,
} as const;

/** DR7: L0/G0..L3/G3 enable pairs in bits 7:0; R/Wn at 16 + 4n, LENn at 18 + 4n. */
export const DR7_ENABLE_MASK = 0xff;
const DR7_RW_SHIFT = 16;
const DR7_RW_EXECUTE = 0;

/**
 * The DR6.B0-B3 bits of the enabled instruction breakpoints (R/W = 00) at linear address `la`
 * (SDM 18.3.1.1: an instruction breakpoint matches the first byte of the instruction; LEN is 00).
 */
export function instructionBreakpoints(dr: readonly number[], la: number): number {
  const dr7 = dr[7]!;
  let hits = 0;
  for (let n = 0; n < 4; n++) {
    if (((dr7 >>> (2 * n)) & 3) === 0) continue;
    if (((dr7 >>> (DR7_RW_SHIFT + 4 * n)) & 3) !== DR7_RW_EXECUTE) continue;
    if (dr[n] === la) hits |= 1 << n;
  }
  return hits;
}

/** DR6 after a #DB reporting `bits`: B0-B3 replaced by this exception's, BD/BS/BT sticky (SDM 18.2.3). */
export function dr6After(dr6: number, bits: number): number {
  return (dr6 & ~0xf) | bits | DR6.FIXED1;
}
