import { describe, expect, it } from 'vitest';
import { long64Sregs, realSregs, sregsFromKvm, sregsToKvm } from './sregs.js';
import { resetSregs } from '../test/fake-kvm.js';

const MEM = 0x200000;

describe('the VMM sregs and kvm_sregs', () => {
  it('convert both ways, control registers as numbers here and unsigned BigInt there', () => {
    const s = { ...resetSregs(), cr3: 0xfffff000, efer: 0xd01 };
    const k = sregsToKvm(s);
    expect([k.cr0, k.cr3, k.efer, k.apicBase]).toEqual([0x60000010n, 0xfffff000n, 0xd01n, 0xfee00900n]);
    expect(k.interruptBitmap).toEqual([0n, 0n, 0n, 0n]);
    expect(k.cs).toEqual(s.cs);
    expect(sregsFromKvm(k)).toEqual(s);
  });
});

describe('start states', () => {
  it('long64: the core set-up in the VMM terms', () => {
    const s = long64Sregs(resetSregs(), MEM);
    expect([s.cr0, s.cr3, s.cr4, s.efer]).toEqual([0x80000033, MEM - 0x3000, 0x20, 0x500]);
    expect(s.gdt).toEqual({ base: MEM - 0x4000, limit: 23 });
    expect(s.cs).toMatchObject({ selector: 0x08, l: 1, type: 0xb });
    expect(s.tr).toEqual({ ...resetSregs().tr, type: 11 });
    expect('interruptBitmap' in s).toBe(false);
  });

  it('real: CS selector and base 0, the rest as reset', () => {
    const s = realSregs(resetSregs());
    expect(s.cs).toMatchObject({ selector: 0, base: 0, limit: 0xffff, type: 0xb });
    expect(s.cr0).toBe(resetSregs().cr0);
  });
});
