import { describe, expect, it } from 'vitest';
import { VEC } from '../cpu/events.js';
import { AR, SEG, makeSegment } from '../cpu/state.js';
import { STOP } from '../cpu/virt.js';
import { assemble, hasAssembler } from '../../test/asm.js';
import { realMode } from '../../test/helpers.js';

/** 32-bit protected mode at CPL 0 with a GDT at 0x800: null, code 0x08, data 0x10, read-only data DPL 3 0x18, exec-only code 0x20. */
function pmode(source: string): ReturnType<typeof realMode> {
  const m = realMode(assemble(`${source}\nhlt`, 32));
  const gdt = [0n, 0x00cf9a000000ffffn, 0x00cf92000000ffffn, 0x0040f0001000abcdn, 0x00cf98000000ffffn];
  gdt.forEach((d, k) => m.mem.write64(0x800 + k * 8, d));
  const { cpu } = m;
  cpu.gdtr = { base: 0x800, limit: gdt.length * 8 - 1 };
  cpu.cr0 |= 1;
  cpu.seg[SEG.CS] = makeSegment(0x08, 0, 0xffffffff, 0x9b | AR.DB | AR.G);
  for (const s of [SEG.DS, SEG.ES, SEG.SS]) cpu.seg[s] = makeSegment(0x10, 0, 0xffffffff, 0x93 | AR.DB | AR.G);
  cpu.gpr[4] = 0x7000;
  cpu.stateChanged();
  return m;
}

describe.skipIf(!hasAssembler)('LAR, LSL, VERR, VERW, ARPL', () => {
  it('report access rights, limits and readability in ZF without faulting', () => {
    const m = pmode(`
      mov ecx, 0x18
      lar eax, ecx
      setz bl
      lsl edx, ecx
      mov ecx, 0x20
      verr cx
      setz bh
      verw cx
      setz byte ptr [0x3000]
      mov ecx, 0x80          # past the GDT limit
      lar esi, ecx
      setz byte ptr [0x3001]
      mov ecx, 0x10
      verw cx
      setz byte ptr [0x3002]
      mov di, 0x10
      mov cx, 0x3
      arpl di, cx
      setz byte ptr [0x3003]`);
    expect(m.cpu.run(1000)).toBe(STOP.HLT);
    const g = m.cpu.gpr;
    expect(g[0]! >>> 0).toBe(0x0040f000); // type 0 (read-only data), DPL 3, P, D/B
    expect(g[3]! & 0xffff).toBe(0x0001); // LAR ok, VERR on exec-only code fails
    expect(g[2]! >>> 0).toBe(0xabcd);
    expect([m.mem.read8(0x3000), m.mem.read8(0x3001), m.mem.read8(0x3002), m.mem.read8(0x3003)]).toEqual([0, 0, 1, 1]);
    expect(g[7]! & 0xffff).toBe(0x13);
  });

  it('#UD in real mode', () => {
    const m = realMode(assemble('lar ax, cx\nhlt', 16));
    const seen: number[] = [];
    const orig = m.cpu.fault.bind(m.cpu);
    m.cpu.fault = (v: number, e = -1): never => { seen.push(v); return orig(v, e); };
    m.cpu.run(10);
    expect(seen[0]).toBe(VEC.UD);
  });
});
