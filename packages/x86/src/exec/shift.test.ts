import { describe, expect, it } from 'vitest';
import { RFLAGS } from '../cpu/state.js';
import { makeMachine } from '../../test/helpers.js';
import { hasAssembler } from '../../test/asm.js';
import { reg64, run64 } from '../../test/run-snippet.js';
import { SHIFT_OP, shift, shift64 } from './shift.js';

/** Reference: rotate/shift `d` (size bits) by `c` one bit at a time, as the SDM's pseudo-code does. */
function ref(op: number, size: number, d: bigint, c: number, cfIn: number): { r: bigint; cf: number; of: number } {
  const mask = (1n << BigInt(size)) - 1n;
  const msb = (v: bigint): number => Number((v >> BigInt(size - 1)) & 1n);
  let r = d;
  let cf = cfIn;
  const count = op === SHIFT_OP.RCL || op === SHIFT_OP.RCR ? (size === 8 ? c % 9 : size === 16 ? c % 17 : c) : c;
  for (let k = 0; k < count; k++) {
    switch (op) {
      case SHIFT_OP.ROL: cf = msb(r); r = ((r << 1n) | BigInt(cf)) & mask; break;
      case SHIFT_OP.ROR: cf = Number(r & 1n); r = (r >> 1n) | (BigInt(cf) << BigInt(size - 1)); break;
      case SHIFT_OP.RCL: { const o = msb(r); r = ((r << 1n) | BigInt(cf)) & mask; cf = o; break; }
      case SHIFT_OP.RCR: { const o = Number(r & 1n); r = (r >> 1n) | (BigInt(cf) << BigInt(size - 1)); cf = o; break; }
      case SHIFT_OP.SHL: cf = msb(r); r = (r << 1n) & mask; break;
      case SHIFT_OP.SHR: cf = Number(r & 1n); r >>= 1n; break;
      default: cf = Number(r & 1n); r = (r >> 1n) | (BigInt(msb(r)) << BigInt(size - 1)); break;
    }
  }
  let of: number;
  if (op === SHIFT_OP.ROL || op === SHIFT_OP.RCL || op === SHIFT_OP.SHL) of = msb(r) ^ cf;
  else if (op === SHIFT_OP.ROR) of = msb(r) ^ Number((r >> BigInt(size - 2)) & 1n);
  else if (op === SHIFT_OP.RCR) of = msb(d) ^ cfIn;
  else if (op === SHIFT_OP.SHR) of = msb(d);
  else of = 0;
  return { r, cf, of };
}

describe('shift and rotate against a bit-by-bit reference', () => {
  const ops = Object.entries(SHIFT_OP);
  for (const size of [8, 16, 32, 64]) {
    it(`${size}-bit, every op, counts 1..${size === 64 ? 63 : 31}`, () => {
      const { cpu } = makeMachine();
      let x = 0x2545f491n;
      const M = (1n << 64n) - 1n;
      const rnd = (): bigint => { x ^= (x << 13n) & M; x ^= x >> 7n; x ^= (x << 17n) & M; return x & ((1n << BigInt(size)) - 1n); };
      for (const [name, op] of ops) {
        for (let k = 0; k < 200; k++) {
          const d = rnd();
          const c = 1 + (k % (size === 64 ? 63 : 31));
          const cfIn = k & 1;
          cpu.rflags = RFLAGS.FIXED1 | cfIn;
          cpu.lfMask = 0;
          let r: bigint;
          if (size === 64) {
            const lo = shift64(cpu, op, Number(d & 0xffffffffn), Number(BigInt.asIntN(32, d >> 32n)), c);
            r = (BigInt(cpu.hi >>> 0) << 32n) | BigInt(lo >>> 0);
          } else {
            r = BigInt(shift(cpu, op, size, Number(d), c));
          }
          const want = ref(op, size, d, c, cfIn);
          const f = cpu.getRflags();
          expect([name, r], `d=${d} c=${c}`).toEqual([name, want.r]);
          expect([name, f & RFLAGS.CF], `d=${d} c=${c}`).toEqual([name, want.cf]);
          if (c === 1) expect([name, (f & RFLAGS.OF) !== 0], `d=${d}`).toEqual([name, want.of === 1]);
        }
      }
    });
  }
});

describe.skipIf(!hasAssembler)('shift instructions', () => {
  it('count 0 changes nothing; CL and 1 forms; SHLD/SHRD', () => {
    const { cpu } = run64(`
      mov eax, 0x80000001
      add eax, 0            # SF=1, ZF=0
      mov cl, 0
      shl eax, cl           # flags untouched
      sets bl
      mov edx, 0x12345678
      mov esi, 0x9abcdef0
      shld edx, esi, 8
      mov edi, 0x12345678
      shrd edi, esi, 8
      mov r8, 0x0123456789abcdef
      mov r9, 0xfedcba9876543210
      shld r8, r9, 16
      mov r10w, 0x8001
      shr r10w, 1
      sar r11, 63`, { r11: -1n });
    expect(reg64(cpu, 'rbx') & 0xffn).toBe(1n);
    expect(reg64(cpu, 'rdx')).toBe(0x3456789an);
    expect(reg64(cpu, 'rdi')).toBe(0xf0123456n);
    expect(reg64(cpu, 'r8')).toBe(0x456789abcdeffedcn);
    expect(reg64(cpu, 'r10') & 0xffffn).toBe(0x4000n);
    expect(reg64(cpu, 'r11')).toBe((1n << 64n) - 1n);
  });
});
