/**
 * Leaving IA-32e mode down to real mode (compatibility mode, CR0.PG = 0, EFER.LME = 0,
 * 16-bit protected mode, CR0.PE = 0), taking #DE through the IVT, and climbing back through
 * protected mode (#GP through a 32-bit IDT) to IA-32e mode, on our Cpu and, where /dev/kvm is
 * usable, on the host CPU.
 */
import { describe, expect, it } from 'vitest';
import { kvmRefUnavailable, runImage } from '@kvmts/kvm-ref';
import { STOP } from '../src/cpu/virt.js';
import { CR0, EFER } from '../src/cpu/state.js';
import { buildGuest, guestToolsMissing } from './system-guest-build.js';
import { longMode } from './helpers.js';

const REPORT = 0xe9;
const missing = guestToolsMissing();
if (missing !== null) console.log(`system-mode-exit guest test skipped: ${missing}`);
const kvm = kvmRefUnavailable();

describe.skipIf(missing !== null)('mode-exit guest', () => {
  const g = missing === null ? buildGuest('down64.S') : null;

  function runOurs(): number[] {
    const m = longMode(g!.image, 0x1000, 0x200000);
    expect(m.cpu.run(100_000)).toBe(STOP.HLT);
    expect(m.cpu.efer & (EFER.LME | EFER.LMA)).toBe(EFER.LME | EFER.LMA);
    expect(m.cpu.cr0 & (CR0.PE | CR0.PG)).toBe(CR0.PE | CR0.PG);
    return m.outs.filter(([port]) => port === REPORT).map(([, , v]) => v >>> 0);
  }

  it('clears LMA with paging, reaches real mode and vectors #DE through the IVT, and returns to IA-32e mode', () => {
    expect(runOurs()).toEqual([
      EFER.LME, // CR0.PG = 0 in compatibility mode cleared LMA
      0, // EFER.LME cleared
      0x00000032, // CR0 in real mode: ET, NE, MP (PE and PG clear)
      0xde, g!.sym('r_div'), 0, 0x2, // #DE frame: IP, CS, FLAGS
      0x600d,
      0x0d, 0x30, g!.sym('pm_fault'), 0x10002, // #GP(0x30) in protected mode, RF pushed
      EFER.LME | EFER.LMA, // IA-32e mode again
    ]);
  });

  it.skipIf(kvm !== null)('agrees with the host CPU through /dev/kvm', () => {
    const res = runImage(g!.image, { mem: 0x200000 });
    const words = res.rows
      .filter((r) => r.exit === 'io' && r['port'] === REPORT)
      .map((r) => parseInt(String(r['data']).match(/../g)!.reverse().join(''), 16) >>> 0);
    // The reference stops with an emulation failure at the protected-mode IRETD that returns
    // from the #GP handler; everything it reported up to there must agree.
    expect(words.length).toBeGreaterThanOrEqual(11);
    expect(runOurs().slice(0, words.length)).toEqual(words);
  });
});
