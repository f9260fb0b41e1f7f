import { describe, expect, it } from 'vitest';
import { STOP } from '../src/cpu/virt.js';
import { assemble, hasAssembler } from './asm.js';
import { reg64 } from './run-snippet.js';
import { longMode } from './helpers.js';

describe.skipIf(!hasAssembler)('self-modifying code and writes to decoded pages', () => {
  it('a store into the current block changes the very next instruction', () => {
    // The store patches the immediate of the following MOV (hot loop, so the block is compiled too).
    const code = assemble(`
      mov ecx, 20
    1:
      mov byte ptr [rip + 1], cl   # patch the imm8 of the "mov al, imm8" that follows
      mov al, 0
      movzx edx, al
      add ebx, edx
      dec ecx
      jnz 1b
      hlt`, 64);
    const m = longMode(code);
    expect(m.cpu.run(10_000)).toBe(STOP.HLT);
    expect(reg64(m.cpu, 'rbx')).toBe(BigInt((20 * 21) / 2));
  });

  it('writes to data beside code in the same page keep the code decoded; a write into it does not', () => {
    // The loop's counter lives in the loop's own page, 2 KiB after it: 1000 stores, no re-decoding.
    const m = longMode(assemble(`
      mov ecx, 1000
    1:
      add dword ptr [rip + 2f], 3
      dec ecx
      jnz 1b
      mov eax, dword ptr [rip + 2f]
      mov byte ptr [rip + 3f + 1], 9   # now a store into the code that follows
    3:
      mov bl, 0
      hlt
      .balign 2048
    2: .long 0`, 64));
    expect(m.cpu.run(100_000)).toBe(STOP.HLT);
    expect(reg64(m.cpu, 'rax')).toBe(3000n);
    expect(reg64(m.cpu, 'rbx') & 0xffn).toBe(9n);
    // The three blocks once, and the block after the patch again: not once per store.
    expect(m.cpu.blocksDecoded).toBeLessThan(10);
  });

  it('code written by the host after it ran is decoded again', () => {
    const m = longMode(assemble('mov eax, 1\nhlt', 64));
    expect(m.cpu.run(100)).toBe(STOP.HLT);
    expect(reg64(m.cpu, 'rax')).toBe(1n);
    m.mem.writeBytes(0x1000, assemble('mov eax, 2\nhlt', 64));
    m.cpu.rip = 0x1000;
    m.cpu.activity = 0;
    expect(m.cpu.run(100)).toBe(STOP.HLT);
    expect(reg64(m.cpu, 'rax')).toBe(2n);
  });

  it('a write through a different linear alias of the code page is seen', () => {
    // 0x200000 (2 MiB page 1) and 0x0 map different frames; alias by remapping PD entry 1 to frame 0.
    const m = longMode(assemble(`
      mov byte ptr [0x201000 + 1f + 1 - 0x1000], 7
    1:
      mov al, 0
      hlt`, 64), 0x1000, 0x400000);
    const pd = 0x400000 - 0x1000;
    m.mem.write64(pd + 8, 0x83n); // 2 MiB page 1 -> frame 0
    expect(m.cpu.run(100)).toBe(STOP.HLT);
    expect(reg64(m.cpu, 'rax') & 0xffn).toBe(7n);
  });
});
