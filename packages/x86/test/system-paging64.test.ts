/**
 * 4-level paging guest: accessed/dirty bits, CR0.WP, reserved bits, XD and INVLPG, with the
 * #PF frames it reports checked against the SDM and, where /dev/kvm is usable, the host CPU.
 */
import { describe, expect, it } from 'vitest';
import { kvmRefUnavailable, runImage } from '@kvmts/kvm-ref';
import { STOP } from '../src/cpu/virt.js';
import { buildGuest, guestToolsMissing } from './system-guest-build.js';
import { longMode } from './helpers.js';

const REPORT = 0xe9;
const missing = guestToolsMissing();
if (missing !== null) console.log(`system-paging64 guest test skipped: ${missing}`);
const kvm = kvmRefUnavailable();

describe.skipIf(missing !== null)('4-level paging guest', () => {
  const g = missing === null ? buildGuest('paging64.S') : null;

  function runOurs(): number[] {
    const m = longMode(g!.image, 0x1000, 0x400000);
    expect(m.cpu.run(200_000)).toBe(STOP.HLT);
    return m.outs.filter(([port]) => port === REPORT).map(([, , v]) => v >>> 0);
  }

  it('reports A/D bits and #PF error codes as the SDM defines them', () => {
    const s = (n: string) => g!.sym(n);
    expect(runOurs()).toEqual([
      0x40023, // read: A
      0x40063, // write: A, D
      0x2000a3, // 2 MiB PDE: A
      (s('pt') | 0x23) >>> 0, // PDE pointing to the page table: A
      1, // supervisor write to a read-only page with CR0.WP = 0
      0x0e, 0x3, s('f_wp'), 0x41000, // #PF(P|W) with WP = 1
      0x0e, 0x0, s('f_np'), 0x42abc, // not present
      0x0e, 0x9, s('f_rsvd'), 0x200000, // P|RSVD
      0x0e, 0x11, 0x43000, 0x43000, // P|I/D: fetch from an XD page
      0, // reading through the XD alias (fresh page: zero)
      1, // INVLPG: 0x40000 now maps 0x41000
    ]);
  });

  it.skipIf(kvm !== null)('agrees with the host CPU through /dev/kvm', () => {
    const res = runImage(g!.image, { mem: 0x400000 });
    const words = res.rows
      .filter((r) => r.exit === 'io' && r['port'] === REPORT)
      .map((r) => parseInt(String(r['data']).match(/../g)!.reverse().join(''), 16) >>> 0);
    expect(res.rows[res.rows.length - 1]!.exit).toBe('hlt');
    expect(runOurs()).toEqual(words);
  });
});
