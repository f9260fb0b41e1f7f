import { describe, expect, it } from 'vitest';
import { disassemble } from './disasm.js';

describe('disassemble', () => {
  it('decodes the LWN guest in 16-bit GNU syntax', () => {
    const hello = Uint8Array.of(0xba, 0xf8, 0x03, 0x00, 0xd8, 0x04, 0x30, 0xee, 0xb0, 0x0a, 0xee, 0xf4);
    expect(disassemble(hello, 16, 0x1000n, 4)).toEqual([
      '00001000  baf803           mov $0x3f8,%dx',
      '00001003  00d8             add %bl,%al',
      '00001005  0430             add $0x30,%al',
      '00001007  ee               out %al,%dx',
    ]);
  });

  it('decodes 64-bit code and stops at the end of the bytes', () => {
    expect(disassemble(Uint8Array.of(0x48, 0x01, 0xc8, 0xf4), 64, 0x7c00n, 5)).toEqual([
      '000000007c00  4801c8           add %rcx,%rax',
      '000000007c03  f4               hlt',
    ]);
  });
});
