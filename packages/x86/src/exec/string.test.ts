import { describe, expect, it } from 'vitest';
import { hasAssembler } from '../../test/asm.js';
import { reg64, run16, run64 } from '../../test/run-snippet.js';

describe.skipIf(!hasAssembler)('string instructions', () => {
  it('REP MOVSB/STOSD, REPNE SCASB, REPE CMPSB, LODSW, and backwards with DF', () => {
    const { cpu, mem } = run64(`
      mov rdi, 0x3000
      mov eax, 0x41424344
      mov ecx, 4
      rep stosd
      mov rsi, 0x3000
      mov rdi, 0x4000
      mov ecx, 16
      rep movsb
      mov rdi, 0x4000
      mov al, 0x42
      mov ecx, 16
      repne scasb
      mov r8, rcx            # 16 - 3 = 13 left
      mov r9, rdi
      mov rsi, 0x3000
      mov rdi, 0x4000
      mov ecx, 16
      repe cmpsb
      mov r10, rcx           # all equal: 0
      mov rsi, 0x3002
      lodsw
      mov r11, rax
      std
      mov rsi, 0x300f
      mov rdi, 0x501f
      mov ecx, 16
      rep movsb
      cld`);
    expect(mem.read32(0x300c)).toBe(0x41424344);
    expect(mem.read32(0x400c)).toBe(0x41424344);
    expect(reg64(cpu, 'r8')).toBe(13n);
    expect(reg64(cpu, 'r9')).toBe(0x4003n);
    expect(reg64(cpu, 'r10')).toBe(0n);
    expect(reg64(cpu, 'r11') & 0xffffn).toBe(0x4142n);
    expect(mem.read32(0x5010)).toBe(0x41424344);
    expect(reg64(cpu, 'rdi')).toBe(0x500fn);
  });

  it('REP with a count beyond one slice completes; 16-bit addressing wraps SI/DI at 64 KiB', () => {
    const { cpu, mem } = run64(`
      mov rdi, 0x10000
      mov ecx, 5000
      mov al, 0x5a
      rep stosb`);
    expect(mem.read8(0x10000 + 4999)).toBe(0x5a);
    expect(mem.read8(0x10000 + 5000)).toBe(0);
    expect(reg64(cpu, 'rcx')).toBe(0n);
    const r = run16(`
      mov ax, 0x2000
      mov es, ax
      mov di, 0xffff
      mov al, 0x77
      stosb
      stosb`);
    expect(r.mem.read8(0x2ffff)).toBe(0x77);
    expect(r.mem.read8(0x20000)).toBe(0x77);
    expect(r.cpu.gpr[7]! & 0xffff).toBe(1);
  });

  it('segment override on the source: ES:DI stays fixed', () => {
    const r = run16(`
      mov ax, 0x300
      mov fs, ax
      mov byte ptr fs:[0x10], 0x99
      xor ax, ax
      mov es, ax
      mov si, 0x10
      mov di, 0x500
      movsb es:[di], fs:[si]`);
    expect(r.mem.read8(0x500)).toBe(0x99);
  });
});
