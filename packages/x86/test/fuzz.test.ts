import { describe, expect, it } from 'vitest';
import { AR, SEG, makeSegment } from '../src/cpu/state.js';
import { STOP } from '../src/cpu/virt.js';
import { longMode, realMode, type Machine } from './helpers.js';

/** xorshift32: deterministic byte streams. */
function bytes(seed: number, n: number): Uint8Array {
  let x = seed | 1;
  const out = new Uint8Array(n);
  for (let k = 0; k < n; k++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; out[k] = x & 0xff; }
  return out;
}

function protected32(code: Uint8Array): Machine {
  const m = realMode(code);
  const { cpu } = m;
  cpu.cr0 |= 1;
  cpu.seg[SEG.CS] = makeSegment(0x08, 0, 0xffffffff, 0x9b | AR.DB | AR.G);
  for (const s of [SEG.DS, SEG.ES, SEG.FS, SEG.GS, SEG.SS]) cpu.seg[s] = makeSegment(0x10, 0, 0xffffffff, 0x93 | AR.DB | AR.G);
  cpu.stateChanged();
  return m;
}

const SETUPS: [string, (code: Uint8Array) => Machine][] = [
  ['real mode', (c) => realMode(c)],
  ['32-bit protected mode', protected32],
  ['64-bit mode', (c) => longMode(c)],
];

describe('any byte sequence is a valid guest', () => {
  for (const [name, setup] of SETUPS) {
    it(`${name}: random code never escapes run() and never breaks an invariant`, () => {
      const stops = new Map<number, number>();
      for (let seed = 1; seed <= 200; seed++) {
        const m = setup(bytes(seed * 2654435761, 4096));
        // Random registers, so memory operands land all over the address space.
        const regs = bytes(seed, 128);
        for (let r = 0; r < 16; r++) m.cpu.gpr[r] = regs[r * 4]! | (regs[r * 4 + 1]! << 8) | (regs[r * 4 + 2]! << 16);
        let r: number;
        expect(() => { r = m.cpu.run(2000); }).not.toThrow();
        expect(r!, `seed ${seed}: ${m.cpu.internalError}`).not.toBe(STOP.INTERNAL);
        stops.set(r!, (stops.get(r!) ?? 0) + 1);
      }
      expect([...stops.values()].reduce((a, b) => a + b)).toBe(200);
    });
  }

  it('an instruction longer than 15 bytes raises #GP(0); an undefined opcode raises #UD', () => {
    for (const [code, vec] of [[[...Array(15).fill(0x66), 0x90], 13], [[0x0f, 0x0b], 6], [[0x0f, 0xff, 0xc0], 6], [[0xf0, 0x90], 6], [[0xf0, 0x01, 0xc0], 6]] as const) {
      const m = longMode(Uint8Array.from(code));
      const seen: number[] = [];
      const orig = m.cpu.fault.bind(m.cpu);
      m.cpu.fault = (v: number, e = -1): never => { seen.push(v); return orig(v, e); };
      m.cpu.run(10);
      expect(seen[0], code.join(',')).toBe(vec);
    }
  });
});
