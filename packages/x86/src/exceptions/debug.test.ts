import { describe, expect, it } from 'vitest';
import { DR6, dr6After, instructionBreakpoints } from './debug.js';

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

describe('dr6After', () => {
  it('sets the reported bits over the fixed ones, replaces B0-B3 and keeps BS sticky', () => {
    expect(dr6After(0xffff0ff0 | 0, DR6.BS) >>> 0).toBe(0xffff4ff0);
    expect(dr6After(0xffff4ff3 | 0, DR6.B2) >>> 0).toBe(0xffff4ff4);
  });
});
