import { describe, expect, it } from 'vitest';
import { STOP } from '../src/cpu/virt.js';
import { longMode, realMode } from './helpers.js';

describe('Cpu runs straight-line code', () => {
  it('real mode: MOV, ADD, OUT, loop with DEC/JNZ, HLT', () => {
    // mov ax,5; mov cx,3; l: add ax,cx; dec cx; jnz l; mov dx,0x3f8; out dx,al; hlt
    const m = realMode([0xb8, 5, 0, 0xb9, 3, 0, 0x01, 0xc8, 0x49, 0x75, 0xfb, 0xba, 0xf8, 0x03, 0xee, 0xf4]);
    const r = m.cpu.run(1000);
    expect(r).toBe(STOP.HLT);
    expect(m.cpu.gpr[0]).toBe(5 + 3 + 2 + 1);
    expect(m.outs).toEqual([[0x3f8, 1, 11]]);
    expect(m.cpu.icount).toBe(2 + 3 * 3 + 3); // HLT retires
  });

  it('64-bit mode with paging: 64-bit MOV, ADD, memory store and load, OUT, HLT', () => {
    const code = [
      0x48, 0xb8, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, // mov rax, 0x1122334455667788
      0x48, 0x05, 0x01, 0x00, 0x00, 0x00, // add rax, 1
      0x48, 0x89, 0x04, 0x25, 0x00, 0x30, 0x00, 0x00, // mov [0x3000], rax
      0x48, 0x8b, 0x1c, 0x25, 0x00, 0x30, 0x00, 0x00, // mov rbx, [0x3000]
      0x66, 0xba, 0xf8, 0x03, // mov dx, 0x3f8
      0xee, // out dx, al
      0xf4, // hlt
    ];
    const m = longMode(code);
    expect(m.cpu.run(100)).toBe(STOP.HLT);
    expect(m.cpu.gpr[3]! >>> 0).toBe(0x55667789);
    expect(m.cpu.gprHi[3]! >>> 0).toBe(0x11223344);
    expect(m.mem.read32(0x3004)).toBe(0x11223344);
    expect(m.outs).toEqual([[0x3f8, 1, 0x89]]);
  });
});
