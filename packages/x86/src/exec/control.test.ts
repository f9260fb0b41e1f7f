import { describe, expect, it } from 'vitest';
import { VEC } from '../cpu/events.js';
import { hasAssembler } from '../../test/asm.js';
import { faults64, reg64, run16, run64 } from '../../test/run-snippet.js';

describe.skipIf(!hasAssembler)('control transfer', () => {
  it('Jcc on every condition after CMP', () => {
    // For 5 vs 7 (signed and unsigned less): collect taken conditions as a bitmask in ebx.
    const conds = ['jo', 'jno', 'jb', 'jae', 'je', 'jne', 'jbe', 'ja', 'js', 'jns', 'jp', 'jnp', 'jl', 'jge', 'jle', 'jg'];
    const src = conds.map((c, k) => `mov eax, 5\ncmp eax, 7\n${c} 1f\njmp 2f\n1: or ebx, ${1 << k}\n2:`).join('\n');
    const { cpu } = run64(src);
    // 5-7 = -2 (0xfe: 7 bits set -> odd parity): NO, B, NE, BE, S, NP, L, LE
    const want = [1, 2, 5, 6, 8, 11, 12, 14].reduce((a, k) => a | (1 << k), 0);
    expect(Number(reg64(cpu, 'rbx'))).toBe(want);
  });

  it('LOOP/LOOPE/LOOPNE/JRCXZ; JCXZ uses CX in 16-bit code', () => {
    const { cpu } = run64(`
      mov ecx, 10
    1: inc eax
      loop 1b
      mov ecx, 10
    2: inc edx
      cmp edx, 3
      loopne 2b
      xor ecx, ecx
      jrcxz 3f
      mov esi, 1
    3: nop`);
    expect(reg64(cpu, 'rax')).toBe(10n);
    expect(reg64(cpu, 'rdx')).toBe(3n);
    expect(reg64(cpu, 'rsi')).toBe(0n);
    const r = run16(`
      mov ecx, 0x10000
      jcxz 1f
      mov ax, 1
    1: nop`);
    expect(r.cpu.gpr[0]! & 0xffff).toBe(0);
  });

  it('indirect CALL/JMP through registers and memory; RET imm16', () => {
    const { cpu } = run64(`
      mov rsp, 0x8000
      lea rax, [rip + 1f]
      call rax
      push 1
      push 2
      call 3f
      mov r8, rsp
      lea rbx, [rip + 2f]
      mov [0x3000], rbx
      jmp qword ptr [0x3000]
      mov edi, 99
    1: mov esi, 7
      ret
    3: ret 16
    2: nop`);
    expect(reg64(cpu, 'rsi')).toBe(7n);
    expect(reg64(cpu, 'r8')).toBe(0x8000n);
    expect(reg64(cpu, 'rdi')).toBe(0n);
  });

  it('a non-canonical branch target faults at the branch with #GP(0)', () => {
    const { vectors, errorCodes, m } = faults64('mov rax, 0x0000800000000000\njmp rax');
    expect(vectors[0]).toBe(VEC.GP);
    expect(errorCodes[0]).toBe(0);
    void m;
  });

  it('UD2 raises #UD', () => {
    expect(faults64('ud2').vectors[0]).toBe(VEC.UD);
  });
});
