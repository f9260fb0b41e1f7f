/**
 * Guest-level system test: a program assembled at test time (GNU as/ld) that switches from
 * real mode to protected mode to IA-32e mode and to ring 3, taking #DE, #GP, #UD and #PF
 * through its own IVT and IDTs, and reporting each frame with OUT to port 0xe9.
 */
import { describe, expect, it } from 'vitest';
import { STOP } from '../src/cpu/virt.js';
import { CR0, EFER, SEG } from '../src/cpu/state.js';
import { buildGuest, guestToolsMissing } from './system-guest-build.js';
import { realMode } from './helpers.js';

const missing = guestToolsMissing();
if (missing !== null) console.log(`system-modes guest test skipped: ${missing}`);

describe.skipIf(missing !== null)('real -> protected -> long mode guest', () => {
  it('reports #DE (real), #GP (protected), #DE/#UD/#GP from ring 3/#PF (64-bit) with the right frames', () => {
    const g = buildGuest('modes.S');
    const m = realMode(g.image, 0x1000);
    const reason = m.cpu.run(100_000);
    const s = (name: string) => g.sym(name);
    const reports = m.outs.filter(([port]) => port === 0xe9).map(([, , v]) => v >>> 0);
    expect(reports).toEqual([
      0x100, s('rm_div'),
      0x20d, 0x1230, s('pm_fault'),
      0x300, s('lm_div'),
      0x306, s('lm_ud2'),
      // #GP(0) from HLT at CPL 3: RIP, CS 0x3b, the ring-3 RSP and SS, then RSP0 - 48 and SS = NULL.
      0x30d, 0, s('user'), 0x3b, 0xb000, 0x23, 0x9000 - 48, 0,
      0x30e, 0x2, s('lm_pf_insn'), 0x200000,
    ]);
    expect(reason).toBe(STOP.HLT);
    expect(m.cpu.efer & EFER.LMA).toBe(EFER.LMA);
    expect(m.cpu.cr0 & CR0.PG).toBe(CR0.PG);
    expect(m.cpu.cr2).toBe(0x200000);
    expect(m.cpu.seg[SEG.TR]!.selector).toBe(0x28);
  });
});
