/** Number formats shared by the views. */
export const hex = (v: number | bigint, width = 0): string => BigInt.asUintN(64, BigInt(v)).toString(16).padStart(width, '0');

export function siRate(v: number): string {
  if (v >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
  if (v >= 1e4) return `${(v / 1e3).toFixed(1)}k`;
  return v.toFixed(0);
}
