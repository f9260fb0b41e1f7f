/**
 * The guest state L2 seldom changes (is_vmcs12_ext_field) travels between vmcs02 and vmcs12 only
 * when needed: sync_vmcs02_to_vmcs12_rare before an exiting VMREAD/VMWRITE of such a field or
 * before vmcs12 goes back to L1's memory, prepare_vmcs02_rare after L1 dirtied vmcs12. The
 * catalog guest nested-vmx-sync checks the VMREADs and VMWRITEs; here, vmcs12 in L1's memory
 * after L1's VMCLEAR holds what L2 last did, which L1 never read.
 */
import { describe, it, expect } from 'vitest';
import { toVmx } from '../src/kvm/setup.js';
import { toNested } from '../src/kvm/nested.js';
import { FIELD } from '../src/hw/fields.js';
import { VMCS12_OFFSET, VMCS12_LAUNCH_STATE } from '../src/kvm/vmcs12.js';
import { loadGuest, runGuest, kernelVcpu } from './nested-harness.js';

const u32 = (b: Uint8Array): number => new DataView(b.buffer, b.byteOffset).getUint32(0, true);
const u16 = (b: Uint8Array): number => new DataView(b.buffer, b.byteOffset).getUint16(0, true);

describe('nested-vmx-sync: rarely changed guest state between vmcs02 and vmcs12', () => {
  it('reaches L1 through VMREAD, L2 through VMWRITE, and L1 memory at VMCLEAR', () => {
    const vm = loadGuest('nested-vmx-sync');
    const n = toNested(toVmx(kernelVcpu(vm)));
    let vmcs12 = -1;
    let gdtLimit = -1;
    let lagging = false;
    const r = runGuest(vm, 100000, () => {
      if (n.currentVmptr >= 0) vmcs12 = n.currentVmptr;
      if (n.vmcs02 && gdtLimit < 0 && n.cachedVmcs12.lo(FIELD.GUEST_GDTR_LIMIT)) gdtLimit = n.cachedVmcs12.lo(FIELD.GUEST_GDTR_LIMIT);
      // While L1 runs after an exit, vmcs12's rare fields may lag vmcs02: the laziness under test.
      lagging ||= n.needSyncVmcs02ToVmcs12Rare;
      return false;
    });
    expect(r.serial).toContain('SUMMARY: 20 tests, 0 failures\n');
    expect(r.exit).toBe('debug_exit');
    expect(r.code).toBe(0);
    expect(lagging).toBe(true);
    expect(vmcs12).toBeGreaterThan(0);
    // L2's last run: a null ES, the GDT limit 8 below L1's, GS base 0x7000; L1 read none of them.
    expect(u16(vm.read(vmcs12 + VMCS12_OFFSET[FIELD.GUEST_ES_SELECTOR]!, 2))).toBe(0);
    expect(u32(vm.read(vmcs12 + VMCS12_OFFSET[FIELD.GUEST_GDTR_LIMIT]!, 4))).toBe(gdtLimit - 8);
    expect(u32(vm.read(vmcs12 + VMCS12_OFFSET[FIELD.GUEST_GS_BASE]!, 4))).toBe(0x7000);
    expect(u32(vm.read(vmcs12 + VMCS12_LAUNCH_STATE, 4))).toBe(0);
  });
});
