/**
 * Nested VMX (nested.c): L1 hypervisors from the guest catalog run their L2 guests on kvm_intel.
 */
import { describe, it, expect } from 'vitest';
import { Host } from '@kvmts/core';
import { intelCpuModel } from '../src/hw/model.js';
import { vmxX86Ops, vmxInitOps } from '../src/kvm/ops.js';
import { toVmx, silicon } from '../src/kvm/setup.js';
import { toNested } from '../src/kvm/nested.js';
import { VMCS12_REVISION } from '../src/kvm/vmcs12.js';
import { loadGuest, runGuest, kernelVcpu } from './nested-harness.js';

describe('nested-vmx-basic: an L1 hypervisor runs a 64-bit L2', () => {
  it('passes its own checks and L2 writes COM1 straight through L1', () => {
    const r = runGuest(loadGuest('nested-vmx-basic'));
    expect(r.exit).toBe('debug_exit');
    expect(r.code).toBe(0);
    expect(r.serial).toContain('L2: hello through COM1, not intercepted by L1\n');
    expect(r.serial).toContain('SUMMARY: 24 tests, 0 failures\n');
  });

  it('routes L2 exits: five reflected to L1, the COM1 OUTs handled by L0', () => {
    const r = runGuest(loadGuest('nested-vmx-basic'));
    const vcpu = kernelVcpu(r.vm);
    const n = toNested(toVmx(vcpu));
    // CPUID, VMCALL, OUT 0x510, RDMSR, HLT went to L1; the 46 COM1 bytes of L2's message did not.
    expect(n.stats.l2ExitsReflected).toBe(5);
    expect(n.stats.l2ExitsHandledInL0).toBe('L2: hello through COM1, not intercepted by L1\n'.length);
    // One VMLAUNCH and four VMRESUMEs entered L2.
    expect(n.stats.nestedEntries).toBe(5);
    expect(vcpu.arch.guestMode).toBe(false);
    // cached_vmcs12 came from L1's VMCS page: KVM's revision, launched once.
    expect(n.currentVmptr).toBe(-1); // VMXOFF released it
    expect(n.cachedVmcs12.revisionId).toBe(VMCS12_REVISION);
    expect(n.cachedVmcs12.launchState).toBe(1);
  });

  it('inspect() shows vmcs01, vmcs02 and the nested counters', () => {
    const vm = loadGuest('nested-vmx-basic');
    const vcpu = kernelVcpu(vm);
    // Stop at L2's first COM1 byte: that KVM_EXIT_IO happens while the vCPU is in guest mode (L2).
    let inL2 = false;
    const r = runGuest(vm, 100000, () => { inL2 = vcpu.arch.guestMode; return inL2; });
    expect(r.exit).toBe('stopped');
    const ins = vmxX86Ops.inspect(vcpu);
    expect(ins.structures.map((s) => s.name)).toEqual(['vmcs01', 'vmcs02', 'vmcs12', 'shadow vmcs']);
    const field = (s: number, name: string) => ins.structures[s]!.groups.flatMap((g) => g.fields).find((f) => f.name === name)!;
    // vmcs02 runs L2 at L1's l2_main; vmcs01 still holds L1 at its VMRESUME.
    expect(field(1, 'GUEST_RIP').value).not.toBe(field(0, 'GUEST_RIP').value);
    // L2 uses L0's EPT (EPT01) and its own VPID.
    expect(field(1, 'EPT_POINTER').value).toBe(field(0, 'EPT_POINTER').value);
    expect(field(1, 'VIRTUAL_PROCESSOR_ID').value).not.toBe(field(0, 'VIRTUAL_PROCESSOR_ID').value);
    // L1's I/O bitmaps became unconditional I/O exiting in vmcs02 (bit 24 set, bit 25 clear).
    expect(Number(field(1, 'CPU_BASED_VM_EXEC_CONTROL').value) & (3 << 24)).toBe(1 << 24);
    // vmcs12 holds what L1 wrote: its HLT, I/O-bitmap and MSR-bitmap exiting.
    expect(Number(field(2, 'CPU_BASED_VM_EXEC_CONTROL').value) & ((1 << 7) | (1 << 25) | (1 << 28))).toBe((1 << 7) | (1 << 25) | (1 << 28));
    // The shadow VMCS holds vmcs12's shadowed fields while L2 runs (copy_vmcs12_to_shadow).
    expect(field(3, 'GUEST_RIP').value).toBe(field(2, 'GUEST_RIP').value);
    expect(field(3, 'VM_EXIT_REASON').value).toBe(field(2, 'VM_EXIT_REASON').value);
    expect(ins.counters['nested_guest_mode']).toBe(1);
    expect(ins.counters['l2_exits_reflected_to_l1']).toBe(3);
    expect(ins.counters['prepare_vmcs02_fields_changed']).toBeGreaterThan(0);
  });
});

describe('nested-vmx-fail: L1 mistakes come back as the SDM says', () => {
  it('VMfailInvalid, VMfailValid with each error number, and entry failures', () => {
    const r = runGuest(loadGuest('nested-vmx-fail'));
    expect(r.serial).toContain('SUMMARY: 38 tests, 0 failures\n');
    expect(r.serial).not.toContain('FAIL');
    expect(r.exit).toBe('debug_exit');
    expect(r.code).toBe(0);
    const n = toNested(toVmx(kernelVcpu(r.vm)));
    // Two vmcs02 entries: the 16-bit-TSS one (the silicon's entry failure, reflected) and the good one (HLT).
    expect(n.stats.nestedEntries).toBe(2);
    expect(n.stats.l2ExitsReflected).toBe(2);
    expect(n.stats.l2ExitsHandledInL0).toBe(0);
  });
});

describe('nested-vmx-ept: L2 on EPT02, built from L1\'s EPT12', () => {
  it('EPT12 faults go to L1, EPT02 fills stay in L0, and L2 sees L1\'s mapping', () => {
    const vm = loadGuest('nested-vmx-ept');
    const n = toNested(toVmx(kernelVcpu(vm)));
    // EPT02 lives from the first entry to L2 until L1's VMXOFF: its size is seen at L1's COM1 writes.
    let ept02Pages = 0;
    const r = runGuest(vm, 100000, () => { ept02Pages = Math.max(ept02Pages, n.ept02?.pages.length ?? 0); return false; });
    expect(r.serial).toContain('SUMMARY: 14 tests, 0 failures\n');
    expect(r.exit).toBe('debug_exit');
    expect(r.code).toBe(0);
    expect(n.vmcs02OnEpt01).toBe(false);
    // Two EPT violations and the HLT went to L1.
    expect(n.stats.l2ExitsReflected).toBe(3);
    // Every page L2 touched (code, stack, page tables, data) was filled into EPT02 by L0.
    expect(n.stats.l2ExitsHandledInL0).toBeGreaterThan(5);
    expect(ept02Pages).toBeGreaterThanOrEqual(4);
    // VMXOFF freed it with vmcs02 (free_nested).
    expect(n.ept02).toBeNull();
    expect(n.vmcs02).toBeNull();
  });
});

describe('nested-vmx-irq: an interrupt while L2 runs is L1\'s when L1 exits on external interrupts', () => {
  it('KVM_INTERRUPT at L2\'s HLT becomes an EXTERNAL_INTERRUPT exit to L1 with the vector acknowledged', () => {
    const r = runGuest(loadGuest('nested-vmx-irq'), 1000, undefined, 0x20);
    expect(r.serial).toContain('SUMMARY: 10 tests, 0 failures\n');
    expect(r.serial).not.toContain('Unhandled');
    expect(r.exit).toBe('debug_exit');
    expect(r.code).toBe(0);
    const vcpu = kernelVcpu(r.vm);
    expect(vcpu.arch.interrupt.injected).toBe(false);
    // The interrupt and the VMCALL went to L1; the HLT stayed in L0.
    expect(toNested(toVmx(vcpu)).stats.l2ExitsReflected).toBe(2);
  });
});

describe('VMXOFF: free_nested', () => {
  it('VMCLEARs and frees vmcs02 with its MSR bitmap and VPID02, and frees the shadow VMCS and its bitmaps', () => {
    const vm = loadGuest('nested-vmx-basic');
    const vcpu = kernelVcpu(vm);
    const vmx = toVmx(vcpu);
    const n = toNested(vmx);
    const host = vmx.module.host;
    let vmcs02 = -1;
    let shadow = -1;
    let vpid02 = 0;
    let inUse = 0;
    const r = runGuest(vm, 100000, () => {
      if (n.vmcs02) { vmcs02 = n.vmcs02.vmcs; vpid02 = n.vpid02; inUse = host.pagesInUse; }
      if (n.shadowVmcs >= 0) shadow = n.shadowVmcs;
      return false;
    });
    expect(r.exit).toBe('debug_exit');
    expect(r.code).toBe(0);
    expect(vmcs02).toBeGreaterThan(0);
    expect(shadow).toBeGreaterThan(0);
    expect(vpid02).toBeGreaterThan(0);
    expect([n.vmxon, n.vmcs02, n.shadowVmcs, n.vpid02]).toEqual([false, null, -1, 0]);
    // Five pages back: vmcs02, its MSR bitmap, the shadow VMCS, the VMREAD and VMWRITE bitmaps.
    expect(host.pagesInUse).toBeLessThanOrEqual(inUse - 5);
    expect(vmx.module.vpidBitmap[vpid02 >> 3]! & (1 << (vpid02 & 7))).toBe(0);
    // Neither VMCS is left active on the pCPU.
    const s = silicon(host.pcpus[0]!.cpu);
    expect(s.vmcsCache.find(vmcs02)).toBeUndefined();
    expect(s.vmcsCache.find(shadow)).toBeUndefined();
  });
});

describe('vmx_free_vcpu', () => {
  it('a VMM that exits while its vCPU runs L2 leaves no page behind (nested state freed with the vCPU)', () => {
    // A fresh host with kvm_intel loaded, as the harness makes one: the pages the module itself holds.
    const base = new Host({ model: intelCpuModel(), pcpus: 1, memBytes: 256 << 20 });
    expect(base.modprobe(vmxInitOps)).toBe(0);
    const modulePages = base.pagesInUse;

    const vm = loadGuest('nested-vmx-basic');
    const n = toNested(toVmx(kernelVcpu(vm)));
    // Stop while L2 runs: vmcs02, its MSR bitmap and the shadow VMCS exist.
    const r = runGuest(vm, 100000, () => kernelVcpu(vm).arch.guestMode && n.vmcs02 !== null);
    expect(r.exit).toBe('stopped');
    expect(vm.host.pagesInUse).toBeGreaterThan(modulePages);
    vm.proc.exit();
    expect(vm.host.pagesInUse).toBe(modulePages);
  });
});
