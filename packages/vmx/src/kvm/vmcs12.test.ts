/** struct vmcs12's layout, swept over the field table: alignment, widths, byte order. */
import { describe, it, expect } from 'vitest';
import { VMCS_FIELDS, FIELD_WIDTH, VMCS_WIDTH } from '../hw/fields.js';
import { Vmcs12, VMCS12_OFFSET, VMCS12_LAUNCH_STATE, VMCS12_ABORT } from './vmcs12.js';

const BYTES = { [VMCS_WIDTH.U16]: 2, [VMCS_WIDTH.U32]: 4, [VMCS_WIDTH.U64]: 8, [VMCS_WIDTH.NATURAL]: 8 } as Record<number, number>;

describe('struct vmcs12', () => {
  it('every field sits at a multiple of its width, inside the page, without overlapping another', () => {
    const owner = new Int16Array(4096).fill(-1);
    VMCS_FIELDS.forEach(([name], i) => {
      const off = VMCS12_OFFSET[i]!;
      if (off < 0) return;
      const n = BYTES[FIELD_WIDTH[i]!]!;
      expect([name, off % n]).toEqual([name, 0]);
      expect(off + n).toBeLessThanOrEqual(4096);
      for (let b = off; b < off + n; b++) {
        expect([name, owner[b]]).toEqual([name, -1]);
        owner[b] = i;
      }
    });
  });

  it('each field round-trips at its width, little-endian at its offset', () => {
    const v = new Vmcs12();
    VMCS_FIELDS.forEach(([name], i) => {
      const off = VMCS12_OFFSET[i]!;
      if (off < 0) return;
      v.set(i, 0x89abcdef, 0x01234567);
      const w = FIELD_WIDTH[i]!;
      const lo = w === VMCS_WIDTH.U16 ? 0xcdef : 0x89abcdef;
      const hi = w === VMCS_WIDTH.U16 || w === VMCS_WIDTH.U32 ? 0 : 0x01234567;
      expect([name, v.lo(i), v.hi(i)]).toEqual([name, lo, hi]);
      v.toPage();
      expect([name, v.bytes[off], v.bytes[off + 1]]).toEqual([name, 0xef, 0xcd]);
      if (hi) expect([name, v.bytes[off + 4], v.bytes[off + 7]]).toEqual([name, 0x67, 0x01]);
      v.setNum(i, -2);
      if (hi !== 0) expect([name, v.num(i)]).toEqual([name, -2]);
    });
    v.launchState = 1;
    v.abort = 4;
    expect([v.bytes[VMCS12_LAUNCH_STATE], v.bytes[VMCS12_ABORT]]).toEqual([1, 4]);
  });

  it('a page read in gives every field its bytes; a write-back changes only the fields, not the bytes between them', () => {
    const v = new Vmcs12();
    for (let b = 0; b < v.bytes.length; b++) v.bytes[b] = (b * 7 + 3) & 0xff;
    v.fromPage();
    const page = Uint8Array.from(v.bytes);
    const dv = new DataView(page.buffer);
    VMCS_FIELDS.forEach(([name], i) => {
      const off = VMCS12_OFFSET[i]!;
      if (off < 0) return expect([name, v.lo(i), v.hi(i)]).toEqual([name, 0, 0]);
      const w = FIELD_WIDTH[i]!;
      const lo = w === VMCS_WIDTH.U16 ? dv.getUint16(off, true) : dv.getUint32(off, true);
      const hi = w === VMCS_WIDTH.U16 || w === VMCS_WIDTH.U32 ? 0 : dv.getUint32(off + 4, true);
      expect([name, v.lo(i), v.hi(i)]).toEqual([name, lo, hi]);
    });
    expect(v.toPage()).toEqual(page);
    v.set(0, 0x1234);
    const off0 = VMCS12_OFFSET[0]!;
    const out = v.toPage();
    expect(out.subarray(0, off0)).toEqual(page.subarray(0, off0));
    expect(out.subarray(off0 + 2)).toEqual(page.subarray(off0 + 2));
  });
});
