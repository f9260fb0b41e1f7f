import { describe, expect, it } from 'vitest';
import { hasAssembler } from '../../test/asm.js';
import { reg64, run64 } from '../../test/run-snippet.js';

describe.skipIf(!hasAssembler)('bit instructions', () => {
  it('BT/BTS/BTR/BTC on registers and memory, with a register offset beyond the operand', () => {
    const { cpu, mem } = run64(`
      mov eax, 0b1010
      bt eax, 1
      setc bl
      bts eax, 0
      btr eax, 3
      btc eax, 31
      mov ecx, 100          # bit 100 = byte 12, bit 4
      bts dword ptr [0x3000], ecx
      mov rdx, -1           # bit -1 = byte -1 (0x2fff), bit 7
      bts qword ptr [0x3000], rdx
      bt qword ptr [0x3000], 100
      setc bh`);
    expect(reg64(cpu, 'rax')).toBe(0x80000003n);
    expect(reg64(cpu, 'rbx') & 0xffffn).toBe(0x0001n); // BT m64, imm 100 -> bit 36 of the qword (0)
    expect(mem.read8(0x300c)).toBe(0x10);
    expect(mem.read8(0x2fff)).toBe(0x80);
  });

  it('BSF/BSR/TZCNT/LZCNT/POPCNT and their ZF/CF', () => {
    const { cpu } = run64(`
      mov eax, 0x00f00000
      bsf ebx, eax
      bsr ecx, eax
      mov rdx, 0x10
      tzcnt rsi, rdx
      lzcnt rdi, rdx
      popcnt r8, rax
      xor r9d, r9d
      mov r10, 77
      bsf r10, r9           # zero source: ZF=1, destination unchanged
      setz r11b
      lzcnt r12d, r9d       # 32, CF=1
      setc r13b`);
    expect(reg64(cpu, 'rbx')).toBe(20n);
    expect(reg64(cpu, 'rcx')).toBe(23n);
    expect(reg64(cpu, 'rsi')).toBe(4n);
    expect(reg64(cpu, 'rdi')).toBe(59n);
    expect(reg64(cpu, 'r8')).toBe(4n);
    expect(reg64(cpu, 'r10')).toBe(77n);
    expect(reg64(cpu, 'r11') & 0xffn).toBe(1n);
    expect(reg64(cpu, 'r12')).toBe(32n);
    expect(reg64(cpu, 'r13') & 0xffn).toBe(1n);
  });

  it('XADD, CMPXCHG, CMPXCHG8B, CMPXCHG16B', () => {
    const { cpu, mem } = run64(`
      mov dword ptr [0x3000], 10
      mov eax, 5
      lock xadd [0x3000], eax       # [0x3000] = 15, eax = 10
      mov ebx, eax
      mov eax, 15
      mov ecx, 99
      cmpxchg [0x3000], ecx         # equal: store 99
      setz dl
      mov eax, 1
      cmpxchg [0x3000], ecx         # not equal: eax = 99
      mov esi, eax
      mov qword ptr [0x3010], 0
      mov qword ptr [0x3018], 0
      xor eax, eax
      xor edx, edx
      mov ebx, 0x11111111
      mov ecx, 0x22222222
      cmpxchg8b [0x3010]
      xor eax, eax
      xor edx, edx
      mov rbx, 0x3333
      mov rcx, 0x4444
      cmpxchg16b [0x3020]`);
    expect(mem.read32(0x3000)).toBe(99);
    expect(reg64(cpu, 'rsi')).toBe(99n);
    expect(mem.read32(0x3010)).toBe(0x11111111);
    expect(mem.read32(0x3014)).toBe(0x22222222);
    expect(mem.read32(0x3020)).toBe(0x3333);
    expect(mem.read32(0x3028)).toBe(0x4444);
  });
});
