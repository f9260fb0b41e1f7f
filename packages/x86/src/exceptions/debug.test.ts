import { describe, expect, it } from 'vitest';
import { DR6, dataBreakpoints, dataBreakpointsArmed, dr6After, instructionBreakpoints } from './debug.js';

function drs(dr7: number, addrs: number[]): number[] {
  return [...addrs, 0, 0, 0xffff0ff0, dr7];
}

describe('instructionBreakpoints', () => {
  it('reports every enabled execute breakpoint (L or G) at the address', () => {
    // L0 and G2, both R/W = 00; DR0 = DR2 = 0x1234.
    expect(instructionBreakpoints(drs(0x401 | 0x20, [0x1234, 0x1234, 0x1234, 0x5000]), 0x1234)).toBe(DR6.B0 | DR6.B2);
    expect(instructionBreakpoints(drs(0x401 | 0x20, [0x1234, 0x1234, 0x1234, 0x5000]), 0x1235)).toBe(0);
  });

  it('ignores disabled slots and data breakpoints (R/W != 00)', () => {
    // L1 enabled with R/W1 = 01 (write); L3 enabled, R/W3 = 11 (read/write); DR0 disabled.
    const dr7 = 0x400 | (1 << 2) | (1 << 6) | (1 << 20) | (3 << 28);
    expect(instructionBreakpoints(drs(dr7, [0x1000, 0x1000, 0, 0x1000]), 0x1000)).toBe(0);
  });
});

describe('dataBreakpoints', () => {
  // DR0: L0, R/W0 = 01 (write), LEN0 = 11 (4 bytes); DR1: L1, R/W1 = 11 (read/write), LEN1 = 01 (2 bytes).
  const dr7 = 0x400 | 1 | (1 << 16) | (3 << 18) | (1 << 2) | (3 << 20) | (1 << 22);
  const dr = drs(dr7, [0x3002, 0x4001, 0, 0]);

  it('aligns the range down to LEN and matches any overlap', () => {
    expect(dataBreakpoints(dr, 0x3003, 1, true)).toBe(DR6.B0);
    expect(dataBreakpoints(dr, 0x2ffe, 4, true)).toBe(DR6.B0); // bytes 0x2ffe..0x3001 reach 0x3000
    expect(dataBreakpoints(dr, 0x3004, 4, true)).toBe(0);
    expect(dataBreakpoints(dr, 0x4000, 1, false)).toBe(DR6.B1);
    expect(dataBreakpoints(dr, 0x4002, 2, true)).toBe(0);
  });

  it('matches reads only for R/W = 11', () => {
    expect(dataBreakpoints(dr, 0x3000, 4, false)).toBe(0);
    expect(dataBreakpoints(dr, 0x4001, 1, false)).toBe(DR6.B1);
  });

  it('is armed only by an enabled data breakpoint', () => {
    expect(dataBreakpointsArmed(dr7)).toBe(true);
    expect(dataBreakpointsArmed(0x400 | 1)).toBe(false); // execute breakpoint
    expect(dataBreakpointsArmed(0x400 | (1 << 16))).toBe(false); // write breakpoint, not enabled
  });
});

describe('dr6After', () => {
  it('sets the reported bits over the fixed ones, replaces B0-B3 and keeps BS sticky', () => {
    expect(dr6After(0xffff0ff0 | 0, DR6.BS) >>> 0).toBe(0xffff4ff0);
    expect(dr6After(0xffff4ff3 | 0, DR6.B2) >>> 0).toBe(0xffff4ff4);
  });
});
