import { describe, expect, it } from 'vitest';
import { LONG64, long64Sregs, long64Tables, realSregs, segmentFromDescriptor } from './long64.js';
import { resetSregs } from '../test/fake-kvm.js';

const MEM = 0x200000;

function qword(bytes: Uint8Array, index: number): bigint {
  return new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(index * 8, true);
}

describe('long64 tables', () => {
  const writes = long64Tables(MEM);
  const at = (gpa: number) => writes.find((w) => w.gpa === gpa)!.bytes;

  it('puts the GDT at mem-0x4000: null, code 0x08, data 0x10', () => {
    const gdt = at(MEM - 0x4000);
    expect(gdt.length).toBe(24);
    expect(Array.from(gdt.subarray(8, 16))).toEqual([0xff, 0xff, 0, 0, 0, 0x9b, 0xaf, 0x00]);
    expect(qword(gdt, 0)).toBe(0n);
    expect(qword(gdt, 1)).toBe(0x00af9b000000ffffn);
    expect(qword(gdt, 2)).toBe(0x00cf93000000ffffn);
  });

  it('links PML4 -> PDPT -> PD with present+writable entries', () => {
    expect(qword(at(MEM - 0x3000), 0)).toBe(BigInt(MEM - 0x2000 + 3));
    expect(qword(at(MEM - 0x2000), 0)).toBe(BigInt(MEM - 0x1000 + 3));
  });

  it('links tables that sit above 2 GiB (a 4 GiB guest) without sign trouble', () => {
    const big = long64Tables(4 * 1024 ** 3);
    const pml4 = big.find((w) => w.gpa === 0xffffd000)!.bytes;
    expect(qword(pml4, 0)).toBe(0xffffe003n);
  });

  it('identity-maps 1 GiB with 512 2 MiB pages', () => {
    const pd = at(MEM - 0x1000);
    expect(pd.length).toBe(4096);
    expect(qword(pd, 0)).toBe(0x83n);
    expect(qword(pd, 1)).toBe(0x200083n);
    expect(qword(pd, 511)).toBe(0x3fe00083n);
  });
});

describe('long64 sregs', () => {
  const s = long64Sregs(resetSregs(), MEM);

  it('sets the control registers of the contract', () => {
    expect([s.cr0, s.cr3, s.cr4, s.efer]).toEqual([0x80000033, MEM - 0x3000, 0x20, 0x500]);
    expect(s.gdt).toEqual({ base: MEM - 0x4000, limit: 23 });
  });

  it('loads CS as a 64-bit code segment and the others as flat data', () => {
    expect(s.cs).toMatchObject({ selector: 0x08, base: 0, limit: 0xffffffff, type: 0xb, s: 1, dpl: 0, present: 1, l: 1, db: 0, g: 1 });
    for (const d of [s.ds, s.es, s.fs, s.gs, s.ss]) expect(d).toMatchObject({ selector: 0x10, type: 3, l: 0, db: 1, g: 1, limit: 0xffffffff });
  });

  it('keeps LDTR as reset, and TR but as a busy 64-bit TSS', () => {
    expect(s.tr).toEqual({ ...resetSregs().tr, type: 11 });
    expect(long64Sregs({ ...resetSregs(), tr: { ...resetSregs().tr, type: 3 } }, MEM).tr.type).toBe(11);
    expect(s.ldt).toEqual(resetSregs().ldt);
  });

  it('decodes a byte-granular descriptor', () => {
    expect(segmentFromDescriptor(0x18, 0x00409a123456ffffn)).toMatchObject({ base: 0x123456, limit: 0xffff, g: 0, db: 1, type: 0xa });
  });
});

describe('real sregs', () => {
  it('sets CS selector and base to 0 and leaves the rest', () => {
    const s = realSregs(resetSregs());
    expect(s.cs).toMatchObject({ selector: 0, base: 0, limit: 0xffff, type: 0xb });
    expect(s.cr0).toBe(resetSregs().cr0);
  });
});
