/**
 * Every catalog guest on `intel` and on `amd`: each run must meet the guest's catalog
 * expectation, and the two runs must agree exit for exit, on the final registers and on the
 * serial output, except where the guest reads the vendor (then only the exits and the final
 * exit kind must agree). A guest that needs one vendor's extension (nested VMX) must fail cleanly
 * on the other. A vendor that cannot run yet is skipped with its reason printed.
 * The guests run in a child process per vendor with a watchdog (run-isolated.ts). Known gaps
 * (known-gaps.ts) are skipped with their reasons in the test names.
 */
import { describe, expect, it } from 'vitest';
import { CATALOG } from '@kvmts/guests';
import type { Vendor } from '@kvmts/vmm';
import { checkExpectation, compareRuns, formatDifferences, runIsolated, type GuestRun, type IsolatedRuns } from '../src/index.js';
import { knownGap } from './known-gaps.js';

const VENDORS: readonly Vendor[] = ['intel', 'amd'];
/** Per guest without a userspace exit; the slowest guests (10M-iteration loops) need seconds. */
const WATCHDOG_MS = 120_000;

const names = CATALOG.map((g) => g.name);
const [intel, amd] = await Promise.all(VENDORS.map((v) => runIsolated(v, names, WATCHDOG_MS)));
const byVendor = new Map<Vendor, IsolatedRuns>([['intel', intel!], ['amd', amd!]]);
for (const [v, r] of byVendor) if (r.unavailable) console.log(`conformance on ${v} skipped: ${r.unavailable}`);

function runOf(vendor: Vendor, name: string): GuestRun {
  const r = byVendor.get(vendor)?.results.get(name);
  if (!r) throw new Error(`${name} did not run on ${vendor}`);
  if ('error' in r) throw new Error(`${name} on ${vendor}: ${r.error}`);
  return r.run;
}

const unavailable = (v: Vendor) => byVendor.get(v)?.unavailable !== null;
const gapNote = (reason: string | null) => (reason ? ` (known gap: ${reason})` : '');

for (const g of CATALOG) {
  describe(g.name, () => {
    const onlyOn: Vendor | null = g.requires === 'vmx' ? 'intel' : g.requires === 'svm' ? 'amd' : null;
    for (const vendor of VENDORS) {
      if (onlyOn && onlyOn !== vendor) {
        // The other vendor's vCPU has no such extension (CR4.VMXE or EFER.SVME is reserved): the
        // guest's own fault handler reports it and the guest ends with a failure code, nothing worse.
        it.skipIf(unavailable(vendor))(`fails cleanly on ${vendor}, which has no ${g.requires?.toUpperCase()}`, () => {
          const final = runOf(vendor, g.name).final;
          expect(final?.exit).toBe('debug_exit');
          expect(final?.code).not.toBe(0);
        });
        continue;
      }
      const gap = knownGap(vendor, g.name);
      it.skipIf(unavailable(vendor) || gap !== null)(`meets its catalog expectation on ${vendor}${gapNote(gap)}`, () => {
        expect(checkExpectation(g, runOf(vendor, g.name))).toEqual([]);
      });
    }
    if (onlyOn) return;
    const gap = knownGap('intel', g.name) ?? knownGap('amd', g.name);
    it.skipIf(unavailable('intel') || unavailable('amd') || gap !== null)(`runs the same on intel and amd${gapNote(gap)}`, () => {
      const diffs = compareRuns(runOf('intel', g.name), runOf('amd', g.name), { state: g.vendorDependent === undefined });
      expect(formatDifferences(diffs, ['intel', 'amd'])).toBe('');
    });
  });
}
