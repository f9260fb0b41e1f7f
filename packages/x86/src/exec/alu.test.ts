import { describe, expect, it } from 'vitest';
import { RFLAGS } from '../cpu/state.js';
import { hasAssembler } from '../../test/asm.js';
import { reg64, run64 } from '../../test/run-snippet.js';
import { ALU_OP, alu64 } from './alu.js';
import { makeMachine } from '../../test/helpers.js';

const ARITH = RFLAGS.CF | RFLAGS.PF | RFLAGS.AF | RFLAGS.ZF | RFLAGS.SF | RFLAGS.OF;
const M64 = (1n << 64n) - 1n;

/** Reference flags for a 64-bit add/sub from BigInt arithmetic. */
function ref64(op: 'add' | 'sub', d: bigint, s: bigint, cin: bigint): { r: bigint; f: number } {
  const full = op === 'add' ? d + s + cin : d - s - cin;
  const r = full & M64;
  const sign = (v: bigint): boolean => (v >> 63n) === 1n;
  let f = 0;
  if (op === 'add' ? full > M64 : full < 0n) f |= RFLAGS.CF;
  const of = op === 'add' ? sign(d) === sign(s) && sign(r) !== sign(d) : sign(d) !== sign(s) && sign(r) !== sign(d);
  if (of) f |= RFLAGS.OF;
  const af = op === 'add' ? (d & 15n) + (s & 15n) + cin > 15n : (d & 15n) - (s & 15n) - cin < 0n;
  if (af) f |= RFLAGS.AF;
  if (r === 0n) f |= RFLAGS.ZF;
  if (sign(r)) f |= RFLAGS.SF;
  let bits = 0;
  for (let v = Number(r & 0xffn); v; v &= v - 1) bits++;
  if (bits % 2 === 0) f |= RFLAGS.PF;
  return { r, f };
}

describe('alu64', () => {
  it('ADD/ADC/SUB/SBB/CMP match BigInt over random and edge operands', () => {
    const { cpu } = makeMachine();
    const edges = [0n, 1n, 0xfn, 0x7fffffffn, 0x80000000n, 0xffffffffn, 0x100000000n, (1n << 63n) - 1n, 1n << 63n, M64];
    let x = 0x9e3779b97f4a7c15n;
    const rnd = (): bigint => { x ^= (x << 13n) & M64; x ^= x >> 7n; x ^= (x << 17n) & M64; return x; };
    const pairs: [bigint, bigint][] = [];
    for (const a of edges) for (const b of edges) pairs.push([a, b]);
    for (let k = 0; k < 2000; k++) pairs.push([rnd(), rnd()]);
    const lo = (v: bigint): number => Number(v & 0xffffffffn);
    const hi = (v: bigint): number => Number(BigInt.asIntN(32, v >> 32n));
    for (const [d, s] of pairs) {
      for (const [op, kind, cin] of [[ALU_OP.ADD, 'add', 0n], [ALU_OP.SUB, 'sub', 0n], [ALU_OP.ADC, 'add', 1n], [ALU_OP.SBB, 'sub', 1n]] as const) {
        cpu.rflags = RFLAGS.FIXED1 | (cin === 1n ? RFLAGS.CF : 0);
        cpu.lfMask = 0;
        const rlo = alu64(cpu, op, lo(d), hi(d), lo(s), hi(s));
        const got = (BigInt(cpu.hi >>> 0) << 32n) | BigInt(rlo >>> 0);
        const want = ref64(kind, d, s, cin);
        expect(got).toBe(want.r);
        expect(cpu.getRflags() & ARITH).toBe(want.f);
      }
    }
  });
});

describe.skipIf(!hasAssembler)('ALU instructions', () => {
  it('ADD/SUB/CMP/AND/OR/XOR on registers, memory and immediates at every width', () => {
    const m = run64(`
      mov rax, 0x7fffffff
      add eax, 1            # OF
      mov r8, rax
      pushfq
      pop r9
      mov qword ptr [0x3000], 5
      sub qword ptr [0x3000], 7
      mov r10, [0x3000]
      mov bl, 0xf0
      or bl, 0x0f
      xor bh, bh
      mov cx, 0x1234
      and cx, 0xff
      cmp rcx, 0x34
      sete dl
      mov r11b, 0x80
      add r11b, r11b         # CF, OF, ZF
      pushfq
      pop r12`);
    const { cpu } = m;
    expect(reg64(cpu, 'r8')).toBe(0x80000000n);
    expect(Number(reg64(cpu, 'r9')) & ARITH).toBe(RFLAGS.OF | RFLAGS.SF | RFLAGS.AF | RFLAGS.PF);
    expect(reg64(cpu, 'r10')).toBe((1n << 64n) - 2n);
    expect(reg64(cpu, 'rbx') & 0xffffn).toBe(0x00ffn);
    expect(reg64(cpu, 'rcx') & 0xffffn).toBe(0x34n);
    expect(reg64(cpu, 'rdx') & 0xffn).toBe(1n);
    expect(reg64(cpu, 'r11') & 0xffn).toBe(0n);
    expect(Number(reg64(cpu, 'r12')) & ARITH).toBe(RFLAGS.CF | RFLAGS.OF | RFLAGS.ZF | RFLAGS.PF);
  });

  it('ADC/SBB chains carry through 128-bit arithmetic', () => {
    const { cpu } = run64(`
      mov rax, -1
      mov rdx, 0
      add rax, 1
      adc rdx, 0
      mov rsi, 0
      mov rdi, 1
      sub rsi, 1
      sbb rdi, 0`);
    expect(reg64(cpu, 'rax')).toBe(0n);
    expect(reg64(cpu, 'rdx')).toBe(1n);
    expect(reg64(cpu, 'rsi')).toBe((1n << 64n) - 1n);
    expect(reg64(cpu, 'rdi')).toBe(0n);
  });

  it('INC/DEC keep CF; NEG sets CF unless zero; NOT changes no flag; 32-bit writes zero-extend', () => {
    const { cpu } = run64(`
      stc
      mov eax, -1
      inc eax
      setc bl
      setz bh
      mov rcx, 5
      neg rcx
      setc dl
      mov r8, -1
      mov r8d, 1
      mov r9, 0
      not r9
      xor r10d, r10d
      neg r10
      setc r11b`);
    expect(reg64(cpu, 'rax')).toBe(0n);
    expect(reg64(cpu, 'rbx') & 0xffffn).toBe(0x0101n);
    expect(reg64(cpu, 'rcx')).toBe((1n << 64n) - 5n);
    expect(reg64(cpu, 'rdx') & 0xffn).toBe(1n);
    expect(reg64(cpu, 'r8')).toBe(1n);
    expect(reg64(cpu, 'r9')).toBe((1n << 64n) - 1n);
    expect(reg64(cpu, 'r11') & 0xffn).toBe(0n);
  });

  it('byte registers: AH..BH without REX, SPL..DIL with REX', () => {
    const { cpu } = run64(`
      mov eax, 0x1234
      mov ah, 0x56
      mov ecx, 0x1111
      mov sil, 0x77
      mov ch, al`);
    expect(reg64(cpu, 'rax')).toBe(0x5634n);
    expect(reg64(cpu, 'rsi') & 0xffn).toBe(0x77n);
    expect(reg64(cpu, 'rcx')).toBe(0x3411n);
  });
});
