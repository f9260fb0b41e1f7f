import { describe, expect, it } from 'vitest';
import { hasAssembler } from '../../test/asm.js';
import { reg64, run16, run64 } from '../../test/run-snippet.js';

describe.skipIf(!hasAssembler)('stack instructions', () => {
  it('PUSH/POP of registers, immediates and memory; 16-bit pushes with 66', () => {
    const { cpu, mem } = run64(`
      mov rsp, 0x8000
      mov rax, 0x1122334455667788
      push rax
      push -2
      push word ptr [0x7ff8]
      pop bx
      pop rcx
      pop rdx
      mov qword ptr [0x3000], 0x55
      push qword ptr [0x3000]
      pop qword ptr [0x3008]
      mov rsi, rsp`);
    expect(reg64(cpu, 'rbx') & 0xffffn).toBe(0x7788n);
    expect(reg64(cpu, 'rcx')).toBe((1n << 64n) - 2n);
    expect(reg64(cpu, 'rdx')).toBe(0x1122334455667788n);
    expect(mem.read32(0x3008)).toBe(0x55);
    expect(reg64(cpu, 'rsi')).toBe(0x8000n);
  });

  it('ENTER/LEAVE build and tear down a frame; PUSHA/POPA in 16-bit code', () => {
    const { cpu } = run64(`
      mov rsp, 0x8000
      mov rbp, 0x1234
      enter 0x20, 0
      mov r8, rbp
      mov r9, rsp
      leave
      mov r10, rbp
      mov r11, rsp`);
    expect(reg64(cpu, 'r8')).toBe(0x7ff8n);
    expect(reg64(cpu, 'r9')).toBe(0x7ff8n - 0x20n);
    expect(reg64(cpu, 'r10')).toBe(0x1234n);
    expect(reg64(cpu, 'r11')).toBe(0x8000n);
    const r = run16(`
      mov sp, 0x7000
      mov ax, 1
      mov cx, 2
      mov dx, 3
      mov bx, 4
      mov bp, 5
      mov si, 6
      mov di, 7
      pusha
      xor ax, ax
      mov cx, 0
      mov dx, 0
      mov bx, 0
      mov bp, 0
      mov si, 0
      mov di, 0
      popa`);
    expect(Array.from(r.cpu.gpr.slice(0, 8), (v) => v & 0xffff)).toEqual([1, 2, 3, 4, 0x7000, 5, 6, 7]);
  });

  it('PUSHF/POPF round trip flags; CALL/RET near', () => {
    const { cpu } = run64(`
      mov rsp, 0x8000
      stc
      pushfq
      clc
      popfq
      setc al
      call 1f
      jmp 2f
  1:  mov bl, 9
      ret
  2:  nop`);
    expect(reg64(cpu, 'rax') & 0xffn).toBe(1n);
    expect(reg64(cpu, 'rbx') & 0xffn).toBe(9n);
    expect(reg64(cpu, 'rsp')).toBe(0x8000n);
  });
});
