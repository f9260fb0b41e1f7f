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
const DR7_LEN_SHIFT = 18;
/** R/W field values (SDM 18.2.4): break on instruction execution, data writes, I/O, data reads or writes. */
const DR7_RW = { EXECUTE: 0, WRITE: 1, IO: 2, READ_WRITE: 3 } as const;
/** Breakpoint length by LEN field value: 00 one byte, 01 two, 10 eight, 11 four. */
const DR7_LEN_BYTES = [1, 2, 8, 4] as const;

function rwOf(dr7: number, n: number): number {
  return (dr7 >>> (DR7_RW_SHIFT + 4 * n)) & 3;
}

function enabled(dr7: number, n: number): boolean {
  return ((dr7 >>> (2 * n)) & 3) !== 0;
}

/**
 * The DR6.B0-B3 bits of the enabled instruction breakpoints (R/W = 00) at linear address `la`
 * (SDM 18.3.1.1: an instruction breakpoint matches the first byte of the instruction; LEN is 00).
 */
export function instructionBreakpoints(dr: readonly number[], la: number): number {
  const dr7 = dr[7]!;
  let hits = 0;
  for (let n = 0; n < 4; n++) {
    if (enabled(dr7, n) && rwOf(dr7, n) === DR7_RW.EXECUTE && dr[n] === la) hits |= 1 << n;
  }
  return hits;
}

/** True when DR7 enables a data breakpoint (R/W = 01 or 11). */
export function dataBreakpointsArmed(dr7: number): boolean {
  for (let n = 0; n < 4; n++) {
    const rw = rwOf(dr7, n);
    if (enabled(dr7, n) && (rw === DR7_RW.WRITE || rw === DR7_RW.READ_WRITE)) return true;
  }
  return false;
}

/**
 * The DR6.B0-B3 bits of the enabled data breakpoints a `size`-byte access at `la` hits: writes
 * match R/W = 01 and 11, reads only 11; the breakpoint covers LEN bytes aligned down to LEN
 * (SDM 18.2.5), and any overlap with the access counts.
 */
export function dataBreakpoints(dr: readonly number[], la: number, size: number, write: boolean): number {
  const dr7 = dr[7]!;
  let hits = 0;
  for (let n = 0; n < 4; n++) {
    const rw = rwOf(dr7, n);
    if (!enabled(dr7, n) || !(rw === DR7_RW.READ_WRITE || (write && rw === DR7_RW.WRITE))) continue;
    const len = DR7_LEN_BYTES[(dr7 >>> (DR7_LEN_SHIFT + 4 * n)) & 3]!;
    const addr = dr[n]!;
    const base = addr - (addr % len);
    if (la < base + len && la + size > base) hits |= 1 << n;
  }
  return hits;
}

/** DR6 after a #DB reporting `bits`: B0-B3 replaced by this exception's, BD/BS/BT sticky (SDM 18.2.3). */
export function dr6After(dr6: number, bits: number): number {
  return (dr6 & ~0xf) | bits | DR6.FIXED1;
}
