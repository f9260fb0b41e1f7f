import { describe, expect, it } from 'vitest';
import { longMode, realMode } from '../../test/helpers.js';
import { decodeInsn } from './decoder.js';
import { ONE_BYTE, TWO_BYTE } from './opcode-info.js';
import { GROUPS, ONE_BYTE_MAP, TWO_BYTE_MAP } from './opcode-map.js';
import { SEG } from '../cpu/state.js';

function decode(bytes: number[], codeSize = 64): ReturnType<typeof decodeInsn> {
  const { cpu } = codeSize === 64 ? longMode(bytes) : realMode(bytes);
  return decodeInsn(cpu, 0x1000, codeSize);
}

describe('opcode maps', () => {
  it('have 256 entries each and parse; every group has 8 members', () => {
    expect(ONE_BYTE_MAP).toHaveLength(256);
    expect(TWO_BYTE_MAP).toHaveLength(256);
    expect(ONE_BYTE.every((e) => e.mn.length > 0)).toBe(true);
    expect(TWO_BYTE.every((e) => e.mn.length > 0)).toBe(true);
    for (const g of Object.values(GROUPS)) expect(g).toHaveLength(8);
  });
});

describe('decoder', () => {
  it('ModRM + SIB + disp32 with REX.X/B: mov rax, [r12 + r13*8 + 0x12345678]', () => {
    const i = decode([0x4b, 0x8b, 0x84, 0xec, 0x78, 0x56, 0x34, 0x12]);
    expect(i.len).toBe(8);
    expect([i.opSize, i.reg, i.rm, i.base, i.index, i.scale, i.disp]).toEqual([64, 0, -1, 12, 13, 3, 0x12345678]);
    expect(i.seg).toBe(SEG.DS);
  });

  it('RIP-relative in 64-bit mode; disp32 absolute with a 67 prefix... and SIB without base', () => {
    const i = decode([0x8b, 0x05, 0x10, 0, 0, 0]);
    expect([i.ripRel, i.base, i.disp, i.len]).toEqual([true, -1, 0x10, 6]);
    const j = decode([0x8b, 0x04, 0x25, 0x00, 0x30, 0, 0]);
    expect([j.ripRel, j.base, j.index, j.disp]).toEqual([false, -1, -1, 0x3000]);
  });

  it('16-bit addressing: [bp+di+disp8] defaults to SS; segment override wins', () => {
    const i = decode([0x8b, 0x43, 0xfe], 16);
    expect([i.base, i.index, i.disp, i.seg, i.addrSize, i.opSize]).toEqual([5, 7, -2, SEG.SS, 16, 16]);
    const j = decode([0x26, 0x8b, 0x43, 0xfe], 16);
    expect(j.seg).toBe(SEG.ES);
  });

  it('operand and address size prefixes: 66 and 67 flip, REX.W wins over 66', () => {
    expect(decode([0x66, 0x01, 0xc0]).opSize).toBe(16);
    expect(decode([0x66, 0x48, 0x01, 0xc0]).opSize).toBe(64);
    expect(decode([0x66, 0x01, 0xc0], 16).opSize).toBe(32);
    expect(decode([0x67, 0x8b, 0x00]).addrSize).toBe(32);
    expect(decode([0x67, 0x8b, 0x00], 16).addrSize).toBe(32);
  });

  it('a REX prefix not directly before the opcode is ignored', () => {
    const i = decode([0x48, 0x66, 0x01, 0xc0]);
    expect(i.opSize).toBe(16);
  });

  it('byte registers: AH without REX (16), SPL with REX (4)', () => {
    expect(decode([0x88, 0xe0]).reg).toBe(16); // mov al, ah: reg = AH
    expect(decode([0x40, 0x88, 0xe0]).reg).toBe(4); // mov al, spl
  });

  it('immediates: sign-extended Ib for group 1, imm64 for MOV r64, moffs64', () => {
    const i = decode([0x48, 0x83, 0xc0, 0xff]);
    expect([i.imm, i.immHi, i.len]).toEqual([0xffffffff, -1, 4]);
    const j = decode([0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect([j.imm, j.immHi >>> 0, j.len]).toEqual([0x04030201, 0x08070605, 10]);
    const k = decode([0xa1, 0, 0x30, 0, 0, 0, 0, 0, 0]);
    expect([k.disp, k.len, k.rm]).toEqual([0x3000, 9, -1]);
  });

  it('lengths of the group-3 TEST immediate and ENTER', () => {
    expect(decode([0xf7, 0xc0, 1, 2, 3, 4]).len).toBe(6);
    expect(decode([0xf6, 0xc0, 1]).len).toBe(3);
    const e = decode([0xc8, 0x10, 0x00, 0x02]);
    expect([e.len, e.imm, e.imm2]).toEqual([4, 0x10, 2]);
  });

  it('MOV CR ignores ModRM.mod; INC in 64-bit mode is a REX prefix', () => {
    const i = decode([0x0f, 0x22, 0x18]); // mov cr3, rax encoded with mod=0
    expect([i.rm, i.reg, i.len]).toEqual([0, 3, 3]);
    const j = decode([0x41, 0xff, 0xc0]); // inc r8d
    expect([j.rm, j.len]).toEqual([8, 3]);
  });
});
