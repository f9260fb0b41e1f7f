/**
 * Guest-level paging test: the paging32 guest turns on 32-bit paging (PSE + 4 KiB tables,
 * CR0.WP) and then PAE with NX from protected mode, and reports what it reads and the #PF
 * frames it takes on port 0xe9.
 */
import { describe, expect, it } from 'vitest';
import { STOP } from '../src/cpu/virt.js';
import { CR4, EFER } from '../src/cpu/state.js';
import { buildGuest, guestToolsMissing } from './system-guest-build.js';
import { realMode } from './helpers.js';

const missing = guestToolsMissing();
if (missing !== null) console.log(`system-paging guest test skipped: ${missing}`);

describe.skipIf(missing !== null)('legacy paging guest', () => {
  it('translates, sets A/D, faults with exact error codes, honours INVLPG and XD', () => {
    const g = buildGuest('paging32.S');
    const m = realMode(g.image, 0x1000);
    expect(m.cpu.run(100_000)).toBe(STOP.HLT);
    const reports = m.outs.filter(([port]) => port === 0xe9).map(([, , v]) => v >>> 0);
    expect(reports).toEqual([
      0x11223344, // read through the 4 KiB alias
      0x20063, // PTE: P, RW, A, D
      (g.sym('pt32') | 0x23) >>> 0, // PDE: P, RW, A
      0x0e, 0x3, g.sym('w_ro'), 0x401000, // #PF(P|W): supervisor write to a read-only page with WP
      0x0e, 0x0, g.sym('r_np'), 0x402000, // #PF(0): not present
      0xcafe, // INVLPG dropped the stale translation
      0x11223344, // PAE: the same alias through PDPTE -> PDE -> PTE
      0x0e, 0x11, 0x400000, 0x400000, // #PF(P|I/D): fetch from an XD page, at the target
    ]);
    expect(m.cpu.cr4 & CR4.PAE).toBe(CR4.PAE);
    expect(m.cpu.efer & EFER.NXE).toBe(EFER.NXE);
  });
});
