import { describe, expect, it } from 'vitest';
import { hasAssembler } from '../../test/asm.js';
import { reg64, run16, run64 } from '../../test/run-snippet.js';

describe.skipIf(!hasAssembler)('data movement', () => {
  it('MOVZX/MOVSX/MOVSXD, CBW family, CWD family, LEA, XCHG, BSWAP, MOVBE, CMOVcc, XLAT', () => {
    const { cpu } = run64(`
      mov eax, 0x80
      movsx ebx, al
      movzx ecx, al
      mov edx, -5
      movsxd rsi, edx
      mov eax, 0x8000
      cwde
      mov r8, rax
      mov rax, -1
      mov eax, 0x80000000
      cqo
      mov r9, rdx
      lea r10, [rax + rax*2 + 7]
      mov r11, 1
      mov r12, 2
      xchg r11, r12
      mov r13d, 0x11223344
      bswap r13d
      mov dword ptr [0x3000], 0x11223344
      movbe r14d, [0x3000]
      xor r15d, r15d
      mov edi, 9
      cmp edi, 9
      cmove r15d, edi
      mov byte ptr [0x3105], 0x5a
      mov ebx, 0x3100
      mov al, 5
      xlatb`);
    expect(reg64(cpu, 'rcx')).toBe(0x80n);
    expect(reg64(cpu, 'rsi')).toBe((1n << 64n) - 5n);
    expect(reg64(cpu, 'r8')).toBe(0xffff8000n);
    expect(reg64(cpu, 'r9')).toBe(0n); // EAX write zero-extended RAX to 0x80000000: positive
    expect(reg64(cpu, 'r10')).toBe(3n * 0x80000000n + 7n);
    expect([reg64(cpu, 'r11'), reg64(cpu, 'r12')]).toEqual([2n, 1n]);
    expect(reg64(cpu, 'r13')).toBe(0x44332211n);
    expect(reg64(cpu, 'r14')).toBe(0x44332211n);
    expect(reg64(cpu, 'r15')).toBe(9n);
    expect(reg64(cpu, 'rax') & 0xffn).toBe(0x5an);
  });

  it('a 32-bit CMOV zero-extends even when the condition is false; MOV Sreg in real mode', () => {
    const { cpu } = run64(`
      mov rax, -1
      xor ecx, ecx
      cmp ecx, 1
      cmove eax, ecx`);
    expect(reg64(cpu, 'rax')).toBe(0xffffffffn);
    const r = run16(`
      mov ax, 0x1234
      mov ds, ax
      mov bx, ds
      mov byte ptr [0x10], 0x42`);
    expect(r.cpu.gpr[3]! & 0xffff).toBe(0x1234);
    expect(r.mem.read8(0x12340 + 0x10)).toBe(0x42);
  });
});
