import { describe, expect, it } from 'vitest';
import { VEC } from '../cpu/events.js';
import { RFLAGS } from '../cpu/state.js';
import { makeMachine } from '../../test/helpers.js';
import { hasAssembler } from '../../test/asm.js';
import { faults64, reg64, run64 } from '../../test/run-snippet.js';
import { divU64by32, mul64, mulResultWords as W64, mulS32, mulU32 } from './muldiv.js';

describe('32-bit limb arithmetic', () => {
  it('mulU32/mulS32/divU64by32 match BigInt', () => {
    const { cpu } = makeMachine();
    let x = 0x1234567;
    const rnd = (): number => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; return x >>> 0; };
    const vals = [0, 1, 2, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffffffe, 0x10000, 0xffff];
    for (let k = 0; k < 3000; k++) vals.push(rnd());
    for (let k = 0; k + 1 < vals.length; k++) {
      const a = vals[k]!;
      const b = vals[k + 1]!;
      const lo = mulU32(cpu, a, b);
      expect((BigInt(cpu.hi) << 32n) | BigInt(lo)).toBe(BigInt(a) * BigInt(b));
      const slo = mulS32(cpu, a, b);
      expect(BigInt.asIntN(64, (BigInt(cpu.hi >>> 0) << 32n) | BigInt(slo))).toBe(BigInt(a | 0) * BigInt(b | 0));
      if (b !== 0) {
        const hi = a % b;
        const q = divU64by32(cpu, hi, a, b);
        const n = (BigInt(hi) << 32n) | BigInt(a);
        expect(BigInt(q)).toBe(n / BigInt(b));
        expect(BigInt(cpu.hi)).toBe(n % BigInt(b));
      }
    }
  });
});

describe.skipIf(!hasAssembler)('MUL, IMUL, DIV, IDIV', () => {
  it('all widths and forms', () => {
    const { cpu } = run64(`
      mov al, 200
      mov bl, 3
      mul bl                 # ax = 600
      mov r8, rax
      mov eax, 0xffffffff
      mov ecx, 0xffffffff
      mul ecx                # edx:eax = 0xfffffffe00000001
      mov r9, rdx
      mov r10, rax
      mov rax, -3
      mov rcx, 7
      imul rcx               # rdx:rax = -21
      mov r11, rdx
      mov r12, rax
      imul r13, rcx, -5      # -35
      mov eax, 100
      cdq
      mov ecx, -7
      idiv ecx               # q = -14, r = 2
      mov r14, rax
      mov r15, rdx
      mov rax, 0x10
      mov rdx, 1
      mov rcx, 0x100
      div rcx                # (2^64+16)/256
      mov rsi, rax
      mov rdi, rdx`);
    expect(reg64(cpu, 'r8') & 0xffffn).toBe(600n);
    expect(reg64(cpu, 'r9')).toBe(0xfffffffen);
    expect(reg64(cpu, 'r10')).toBe(1n);
    expect(reg64(cpu, 'r11')).toBe((1n << 64n) - 1n);
    expect(BigInt.asIntN(64, reg64(cpu, 'r12'))).toBe(-21n);
    expect(BigInt.asIntN(64, reg64(cpu, 'r13'))).toBe(-35n);
    expect(reg64(cpu, 'r14')).toBe(BigInt(-14 >>> 0));
    expect(reg64(cpu, 'r15')).toBe(2n);
    expect(reg64(cpu, 'rsi')).toBe(((1n << 64n) + 16n) / 256n);
    expect(reg64(cpu, 'rdi')).toBe(16n);
  });

  it('IMUL sets CF/OF when the product does not fit', () => {
    const { cpu } = run64(`
      mov eax, 0x10000
      imul eax, eax
      setc bl
      seto bh
      mov ecx, 3
      imul ecx, ecx, 5
      setc dl`);
    expect(reg64(cpu, 'rax')).toBe(0n);
    expect(reg64(cpu, 'rbx') & 0xffffn).toBe(0x0101n);
    expect(reg64(cpu, 'rcx')).toBe(15n);
    expect(reg64(cpu, 'rdx') & 0xffn).toBe(0n);
    expect(cpu.getRflags() & RFLAGS.CF).toBe(0);
  });

  it('#DE on divide by zero and on quotient overflow, with RAX and RDX unchanged', () => {
    for (const code of ['xor ecx, ecx\ndiv ecx', 'mov edx, 1\nmov ecx, 1\ndiv ecx', 'mov eax, 0x80000000\ncdq\nmov ecx, -1\nidiv ecx', 'xor cl, cl\ndiv cl']) {
      const { vectors, m } = faults64(code);
      expect(vectors[0], code).toBe(VEC.DE);
    }
    const { m } = faults64('mov eax, 7\nmov edx, 1\nmov ecx, 1\ndiv ecx');
    expect(reg64(m.cpu, 'rax')).toBe(7n);
    expect(reg64(m.cpu, 'rdx')).toBe(1n);
  });
});

describe('mul64', () => {
  it('matches BigInt for unsigned and signed 64x64 -> 128', () => {
    const { cpu } = makeMachine();
    const M = (1n << 64n) - 1n;
    let x = 0x9e3779b97f4a7c15n;
    const rnd = (): bigint => { x ^= (x << 13n) & M; x ^= x >> 7n; x ^= (x << 17n) & M; return x; };
    const vals = [0n, 1n, M, 1n << 63n, (1n << 63n) - 1n, 0xffffffffn, 0x100000000n];
    for (let k = 0; k < 500; k++) vals.push(rnd());
    const lo = (v: bigint): number => Number(v & 0xffffffffn);
    const hi = (v: bigint): number => Number(BigInt.asIntN(32, v >> 32n));
    for (let k = 0; k + 1 < vals.length; k++) {
      const a = vals[k]!;
      const b = vals[k + 1]!;
      for (const signed of [false, true]) {
        mul64(cpu, lo(a), hi(a), lo(b), hi(b), signed);
        const got = [3, 2, 1, 0].reduce((acc, w) => (acc << 32n) | BigInt(W64()[w]!), 0n);
        const want = signed ? BigInt.asUintN(128, BigInt.asIntN(64, a) * BigInt.asIntN(64, b)) : a * b;
        expect(got, `${a} * ${b} signed=${signed}`).toBe(want);
      }
    }
  });
});
