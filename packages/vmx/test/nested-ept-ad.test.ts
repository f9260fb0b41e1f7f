/**
 * EPT accessed/dirty flags for L1 (SDM 29.3.5): the catalog guest nested-vmx-ept-ad checks the
 * flags in its EPT12 from inside; here, the same tables read from outside, and EPT02 as L0 built
 * it: a page whose EPT12 entry is not dirty is mapped in EPT02 without write permission, so that
 * L2's first write comes back to L0 to set the flag.
 */
import { describe, it, expect } from 'vitest';
import { toVmx } from '../src/kvm/setup.js';
import { toNested } from '../src/kvm/nested.js';
import { FIELD } from '../src/hw/fields.js';
import { EPT, EPTP } from '../src/hw/tdp.js';
import { loadGuest, runGuest, kernelVcpu } from './nested-harness.js';

const entry = (bytes: Uint8Array): bigint => new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true);
const ADDR = 0xffffffffff000n;

describe('EPT A/D flags for L1', () => {
  it('nested-vmx-ept-ad passes; EPT12 and EPT02 hold what the SDM and KVM say', () => {
    const vm = loadGuest('nested-vmx-ept-ad');
    const vcpu = kernelVcpu(vm);
    // Stopped at L1's last check before VMXOFF, which frees EPT02.
    const before = runGuest(vm, 100000, (_, serial) => serial.includes('PASS: EPT PTE of the page read again: accessed, not dirty\n'));
    expect(before.exit).toBe('stopped');
    const n = toNested(toVmx(vcpu));
    const eptp12 = n.cachedVmcs12.num(FIELD.EPT_POINTER);
    expect(eptp12 & EPTP.AD_ENABLE).toBe(EPTP.AD_ENABLE);
    // EPT12 in L1's memory: the walk for GPA 0 went through these, so each is accessed.
    let table = BigInt(eptp12) & ADDR;
    for (let level = 4; level > 1; level--) {
      const e = entry(vm.read(Number(table), 8));
      expect(e & BigInt(EPT.ACCESSED)).toBe(BigInt(EPT.ACCESSED));
      expect(e & BigInt(EPT.DIRTY)).toBe(0n);
      table = e & ADDR;
    }
    const pt = vm.read(Number(table), 4096);
    const flags = Array.from({ length: 512 }, (_, i) => Number(entry(pt.subarray(i * 8)) & BigInt(EPT.ACCESSED | EPT.DIRTY)));
    // Some pages accessed (code, stack, page tables, the two data pages), many untouched.
    expect(flags.filter((f) => f !== 0).length).toBeGreaterThan(3);
    expect(flags.filter((f) => f === 0).length).toBeGreaterThan(400);
    // Dirty implies accessed.
    expect(flags.filter((f) => f === EPT.DIRTY)).toEqual([]);
    // EPT02: every 4 KiB leaf is writable exactly when its EPT12 entry is dirty.
    const mem = vcpu.kvm.host.mem;
    const ept02 = n.ept02!;
    let leaves = 0;
    const walk = (t: number, level: number, base: number): void => {
      for (let i = 0; i < 512; i++) {
        const lo = mem.read32(t + i * 8);
        if (!(lo & 7)) continue;
        const gpa = base + i * 2 ** (12 + 9 * (level - 1));
        if (level > 1) { walk((lo & ~0xfff) >>> 0, level - 1, gpa); continue; }
        leaves++;
        const f12 = flags[(gpa / 4096) % 512]!;
        expect([gpa, (lo & EPT.WRITE) !== 0]).toEqual([gpa, (f12 & EPT.DIRTY) !== 0]);
      }
    };
    walk(ept02.root, 4, 0);
    expect(leaves).toBeGreaterThan(3);
    const r = runGuest(vm);
    expect(r.exit).toBe('debug_exit');
    expect(r.code).toBe(0);
    expect(before.serial + r.serial).toContain('SUMMARY: 24 tests, 0 failures\n');
    expect(n.ept02).toBeNull();
  });
});
