import { describe, expect, it } from 'vitest';
import { STOP } from '../src/cpu/virt.js';
import { assemble, hasAssembler } from './asm.js';
import { realMode } from './helpers.js';
import { reg64 } from './run-snippet.js';

/** A boot loader's path: real mode -> 32-bit protected mode -> paging + EFER.LME -> 64-bit mode. */
const BOOT = `
  cli
  xor ax, ax
  mov ds, ax
  mov ss, ax
  mov sp, 0x7000
  lgdt [gdtdesc]
  mov eax, cr0
  or eax, 1
  mov cr0, eax
  .byte 0x66, 0xea
  .long pm32
  .word 0x08
.code32
pm32:
  mov ax, 0x10
  mov ds, ax
  mov es, ax
  mov ss, ax
  mov esp, 0x7000
  mov dword ptr [0x10000], 0x11003
  mov dword ptr [0x11000], 0x12003
  mov dword ptr [0x12000], 0x83
  mov eax, 0x10000
  mov cr3, eax
  mov eax, cr4
  or eax, 0x20
  mov cr4, eax
  mov ecx, 0xc0000080
  rdmsr
  or eax, 0x100
  wrmsr
  mov eax, cr0
  or eax, 0x80000000
  mov cr0, eax
  .byte 0xea
  .long lm64
  .word 0x18
.code64
lm64:
  mov rax, 0x123456789
  push rax
  pop rbx
  mov dx, 0x3f8
  mov al, 'L'
  out dx, al
  hlt
.p2align 3
gdt:
  .quad 0
  .quad 0x00cf9a000000ffff
  .quad 0x00cf92000000ffff
  .quad 0x00af9a000000ffff
gdtdesc:
  .word 31
  .long gdt
`;

describe.skipIf(!hasAssembler)('mode switches made by the guest', () => {
  it('real -> protected -> long mode, then 64-bit code with the stack and port I/O', () => {
    const m = realMode(assemble(BOOT, 16));
    const r = m.cpu.run(1000);
    expect(r, m.cpu.internalError).toBe(STOP.HLT);
    expect(m.cpu.long64).toBe(true);
    expect(m.cpu.codeSize).toBe(64);
    expect(reg64(m.cpu, 'rbx')).toBe(0x123456789n);
    expect(m.outs).toEqual([[0x3f8, 1, 'L'.charCodeAt(0)]]);
    expect(m.mem.read32(0x12000) & 0x20).toBe(0x20); // the walk set the accessed bit
  });
});
