import { describe, expect, it } from 'vitest';
import { hasAssembler } from '../../test/asm.js';
import { run16 } from '../../test/run-snippet.js';

describe.skipIf(!hasAssembler)('decimal adjust', () => {
  it('DAA/DAS/AAA/AAS/AAM/AAD give the SDM examples', () => {
    const r = run16(`
      mov al, 0x79
      add al, 0x35
      daa                 # 0x14, CF=1
      setc bl
      mov cl, al
      mov al, 0x35
      sub al, 0x47
      das                 # 0x88, CF=1
      setc bh
      mov dl, al
      mov ax, 0x0009
      add al, 0x08
      aaa                 # AX = 0x0107
      mov si, ax
      mov al, 63
      aam                 # AH=6, AL=3
      mov di, ax
      mov ax, 0x0603
      aad                 # AL = 63
      mov bp, ax`);
    const g = (k: number): number => r.cpu.gpr[k]! & 0xffff;
    expect(g(1) & 0xff).toBe(0x14);
    expect(g(3)).toBe(0x0101);
    expect(g(2) & 0xff).toBe(0x88);
    expect(g(6)).toBe(0x0107);
    expect(g(7)).toBe(0x0603);
    expect(g(5)).toBe(63);
  });
});
