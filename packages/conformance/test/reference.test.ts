/**
 * The guests that the machine's /dev/kvm can run (DESIGN.md: 64-bit code entered in long64
 * mode) run there through @kvmts/kvm-ref. Their catalog expectations must hold on it, which
 * checks the catalog against a real KVM; and where our intel stack runs, its exits, final
 * registers and serial output must equal the reference's.
 */
import { describe, expect, it } from 'vitest';
import { kvmRefUnavailable } from '@kvmts/kvm-ref';
import { CATALOG } from '@kvmts/guests';
import { checkExpectation, compareRuns, formatDifferences, referenceUnsuitable, runIsolated, runOnReference } from '../src/index.js';
import { knownGap } from './known-gaps.js';

const WATCHDOG_MS = 120_000;
const guests = CATALOG.filter((g) => referenceUnsuitable(g) === null);

const refMissing = kvmRefUnavailable();
if (refMissing) console.log(`reference comparison skipped: ${refMissing}`);
const ours = await runIsolated('intel', refMissing ? [] : guests.map((g) => g.name), WATCHDOG_MS);
if (ours.unavailable) console.log(`kvmts-versus-reference comparison skipped: ${ours.unavailable}`);

for (const g of guests) {
  describe.skipIf(refMissing !== null)(`${g.name} on the machine's /dev/kvm`, () => {
    it('meets its catalog expectation', () => {
      expect(checkExpectation(g, runOnReference(g))).toEqual([]);
    });

    const gap = knownGap('intel', g.name);
    it.skipIf(ours.unavailable !== null || gap !== null)(`matches our intel stack exit for exit${gap ? ` (known gap: ${gap})` : ''}`, () => {
      const r = ours.results.get(g.name);
      if (!r || 'error' in r) throw new Error(`${g.name} on intel: ${r ? r.error : 'did not run'}`);
      const diffs = compareRuns(r.run, runOnReference(g), { state: g.vendorDependent === undefined, ripAtDebugExit: 'ignore' });
      expect(formatDifferences(diffs, ['kvmts', '/dev/kvm'])).toBe('');
    });
  });
}
