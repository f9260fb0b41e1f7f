import { describe, expect, it } from 'vitest';
import { Host } from '../host/host.js';
import { fakeVendor, testModel } from '../../test/fake-vendor.js';
import type { KvmSegment } from '../x86/kvm-types.js';
import { Kvm } from './kvm.js';
import { LONG64, long64Sregs, long64Tables, segmentFromDescriptor, setupLong64 } from './long64.js';
import type { KvmSregs } from './types.js';

const MEM = 0x200000;

function qword(bytes: Uint8Array, index: number): bigint {
  return new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(index * 8, true);
}

const seg = (selector: number, base: number, type: number, s = 1): KvmSegment =>
  ({ base, limit: 0xffff, selector, type, present: 1, dpl: 0, db: 0, s, l: 0, g: 0, avl: 0, unusable: 0 });

/** kvm_vcpu_reset's state (SDM Table 10-1), with kvm_amd's 16-bit busy TSS. */
function resetSregs(): KvmSregs {
  return {
    cs: seg(0xf000, 0xffff0000, 0xb), ds: seg(0, 0, 3), es: seg(0, 0, 3), fs: seg(0, 0, 3), gs: seg(0, 0, 3), ss: seg(0, 0, 3),
    tr: seg(0, 0, 3, 0), ldt: seg(0, 0, 2, 0), gdt: { base: 0, limit: 0xffff }, idt: { base: 0, limit: 0xffff },
    cr0: 0x60000010n, cr2: 0n, cr3: 0n, cr4: 0n, cr8: 0n, efer: 0n, apicBase: 0xfee00900n, interruptBitmap: [0n, 0n, 0n, 0n],
  };
}

describe('long64 tables', () => {
  const writes = long64Tables(MEM);
  const at = (gpa: number) => writes.find((w) => w.gpa === gpa)!.bytes;

  it('puts the GDT at mem-0x4000: null, code 0x08, data 0x10', () => {
    const gdt = at(MEM - 0x4000);
    expect(gdt.length).toBe(24);
    expect(Array.from(gdt.subarray(8, 16))).toEqual([0xff, 0xff, 0, 0, 0, 0x9b, 0xaf, 0x00]);
    expect([qword(gdt, 0), qword(gdt, 1), qword(gdt, 2)]).toEqual([0n, 0x00af9b000000ffffn, 0x00cf93000000ffffn]);
  });

  it('links PML4 -> PDPT -> PD with present+writable entries', () => {
    expect(qword(at(MEM - 0x3000), 0)).toBe(BigInt(MEM - 0x2000 + 3));
    expect(qword(at(MEM - 0x2000), 0)).toBe(BigInt(MEM - 0x1000 + 3));
  });

  it('links tables that sit above 2 GiB (a 4 GiB guest) without sign trouble', () => {
    const pml4 = long64Tables(4 * 1024 ** 3).find((w) => w.gpa === 0xffffd000)!.bytes;
    expect(qword(pml4, 0)).toBe(0xffffe003n);
  });

  it('identity-maps 1 GiB with 512 2 MiB pages', () => {
    const pd = at(MEM - 0x1000);
    expect(pd.length).toBe(4096);
    expect([qword(pd, 0), qword(pd, 1), qword(pd, 511)]).toEqual([0x83n, 0x200083n, 0x3fe00083n]);
  });
});

describe('long64 sregs', () => {
  const s = long64Sregs(resetSregs(), MEM);

  it('sets the control registers of the contract', () => {
    expect([s.cr0, s.cr3, s.cr4, s.efer]).toEqual([0x80000033n, BigInt(MEM - 0x3000), 0x20n, 0x500n]);
    expect(s.gdt).toEqual({ base: MEM - 0x4000, limit: 23 });
  });

  it('loads CS as a 64-bit code segment and the others as flat data', () => {
    expect(s.cs).toEqual({ selector: 0x08, base: 0, limit: 0xffffffff, type: 0xb, s: 1, dpl: 0, present: 1, avl: 0, l: 1, db: 0, g: 1, unusable: 0 });
    for (const d of [s.ds, s.es, s.fs, s.gs, s.ss]) expect(d).toEqual({ ...s.cs, selector: 0x10, type: 3, l: 0, db: 1 });
  });

  it('keeps LDTR, the IDT and the APIC base as reset, and TR but as a busy 64-bit TSS', () => {
    expect(s.tr).toEqual({ ...resetSregs().tr, type: 11 });
    expect([s.ldt, s.idt, s.apicBase]).toEqual([resetSregs().ldt, resetSregs().idt, 0xfee00900n]);
  });

  it('decodes a byte-granular descriptor', () => {
    expect(segmentFromDescriptor(0x18, 0x00409a123456ffffn)).toMatchObject({ base: 0x123456, limit: 0xffff, g: 0, db: 1, type: 0xa });
  });
});

describe('setupLong64', () => {
  it('writes the tables through the writer and returns the sregs', () => {
    const mem = new Uint8Array(0x8000);
    const s = setupLong64(mem.length, (gpa, b) => mem.set(b, gpa), resetSregs());
    expect(qword(mem.subarray(0x8000 - 0x4000), 1)).toBe(LONG64.GDT[1]);
    expect(qword(mem.subarray(0x8000 - 0x1000), 2)).toBe(0x400083n);
    expect(s.cr3).toBe(0x5000n);
  });

  it('refuses a guest too small for its tables', () => {
    expect(() => setupLong64(0x3000, () => {}, resetSregs())).toThrow(RangeError);
  });

  it('is what KVM_SET_SREGS takes and KVM_GET_SREGS gives back', () => {
    const host = new Host({ model: testModel, pcpus: 1, memBytes: 64 << 20 });
    host.modprobe(fakeVendor().initOps);
    const vm = Kvm.open(host.spawn()).createVm();
    vm.allocGuestMemory(0, 0, MEM);
    const vcpu = vm.createVcpu(0);
    const want = setupLong64(MEM, (gpa, b) => vm.memory.write(gpa, b), vcpu.getSregs());
    vcpu.setSregs(want);
    const got = vcpu.getSregs();
    expect([got.cr0, got.cr3, got.cr4, got.efer & 0x500n]).toEqual([0x80000033n, BigInt(MEM - 0x3000), 0x20n, 0x500n]);
    expect(got.cs).toMatchObject({ selector: 8, l: 1, type: 0xb });
    expect(vm.memory.read32(MEM - 0x1000 + 8)).toBe(0x200083);
  });
});
