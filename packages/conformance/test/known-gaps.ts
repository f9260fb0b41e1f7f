/**
 * Where the stack is known not to conform yet. Each entry skips the matching tests, printing
 * its reason, so that the suite asserts everything else. Delete an entry when its cause is
 * fixed; run with KVMTS_CONFORMANCE_ALL=1 to ignore this list and see every failure.
 */
import type { Vendor } from '@kvmts/vmm';

interface KnownGap {
  readonly vendor: Vendor | 'both';
  /** A catalog name, or '*' for every guest. */
  readonly guest: string;
  readonly reason: string;
}

const KNOWN_GAPS: readonly KnownGap[] = [
];

const ALL = process.env['KVMTS_CONFORMANCE_ALL'] !== undefined;

/** Why `guest` on `vendor` is known not to conform, or null. */
export function knownGap(vendor: Vendor, guest: string): string | null {
  if (ALL) return null;
  const gap = KNOWN_GAPS.find((g) => (g.vendor === vendor || g.vendor === 'both') && (g.guest === guest || g.guest === '*'));
  return gap ? gap.reason : null;
}
