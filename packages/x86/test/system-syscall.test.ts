/**
 * Guest-level test of far jumps between 64-bit and compatibility mode and of SYSCALL/SYSRET
 * with SWAPGS. No /dev/kvm comparison: on this machine's reference the guest shuts down at
 * SWAPGS, and without SWAPGS its SYSCALL leaves CS/SS at the user selectors and ignores FMASK,
 * so the expected values come from the SDM (SYSCALL, SYSRET, SWAPGS pseudocode).
 */
import { describe, expect, it } from 'vitest';
import { STOP } from '../src/cpu/virt.js';
import { buildGuest, guestToolsMissing } from './system-guest-build.js';
import { longMode } from './helpers.js';

const REPORT = 0xe9;
const missing = guestToolsMissing();
if (missing !== null) console.log(`system-syscall guest test skipped: ${missing}`);

describe.skipIf(missing !== null)('SYSCALL/SYSRET and compatibility mode guest', () => {
  const g = missing === null ? buildGuest('syscall64.S') : null;

  function runOurs(): number[] {
    const m = longMode(g!.image, 0x1000, 0x200000);
    expect(m.cpu.run(100_000)).toBe(STOP.HLT);
    return m.outs.filter(([port]) => port === REPORT).map(([, , v]) => v >>> 0);
  }

  it('switches modes with far jumps and SYSRET, and enters the kernel through LSTAR and CSTAR', () => {
    expect(runOurs()).toEqual([
      0x30, // CS in compatibility mode
      0x08, // back in 64-bit mode
      g!.sym('sc64') + 2, // RCX = RIP after SYSCALL
      0x602, // R11 = user RFLAGS (IF, DF)
      0x002, // RFLAGS & ~FMASK
      0x08, 0x10, // CS, SS from STAR[47:32]
      0x123000, // GS base after SWAPGS
      0x1b, // compatibility-mode ring 3: CS = STAR[63:48] | 3
      g!.sym('sc32') + 2, // RCX from the compatibility-mode SYSCALL (CSTAR)
      0x08,
    ]);
  });
});
