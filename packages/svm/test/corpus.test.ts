import { describe, expect, it } from 'vitest';
import { CATALOG, hasImage, loadImage, serialMatches } from '@kvmts/guests';
import { runCatalogGuest } from './run-guest.js';

/** Self-checking corpus guests that end on their own and need no injected interrupts. */
const guests = CATALOG.filter((g) => g.expect.exit !== undefined && !g.irqs && g.kind !== 'bench');

describe('the guest corpus on kvm_amd', () => {
  for (const g of guests) {
    it.skipIf(!hasImage(g.name))(`${g.name}: ${g.shows}`, () => {
      const run = runCatalogGuest(g, loadImage(g.name));
      expect({ exit: run.final.exit, serial: run.serial }).toMatchObject({ exit: g.expect.exit });
      if (g.expect.code !== undefined) expect(run.final.code).toBe(g.expect.code);
      expect(serialMatches(g.expect.serial, run.serial), run.serial).toBe(true);
    });
  }
});
