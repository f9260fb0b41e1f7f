/** The trace's number formats (DESIGN.md, "`kvmts run` contract"). */

/** `0x` + lowercase hex, no padding. Negative numbers are signed canonical addresses: shown as their 64-bit pattern. */
export function hex(v: number | bigint): string {
  const b = typeof v === 'bigint' ? v : BigInt(v);
  return '0x' + BigInt.asUintN(64, b).toString(16);
}

/** "00".."ff": a trace row per I/O exit formats its data, so the digits are made once. */
const BYTE_HEX: readonly string[] = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));

/** Bytes in memory order as lowercase hex pairs. */
export function hexBytes(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += BYTE_HEX[bytes[i]!]!;
  return s;
}

/** Little-endian value of up to 8 bytes, as a number (the port 0xf4 code). */
export function littleEndian(bytes: Uint8Array): number {
  let v = 0;
  for (let i = Math.min(bytes.length, 6) - 1; i >= 0; i--) v = v * 256 + bytes[i]!;
  return v;
}
