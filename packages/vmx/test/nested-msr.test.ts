/**
 * vmcs12's MSR lists (nested_vmx_load_msr / nested_vmx_store_msr): the catalog guest
 * nested-vmx-msr checks what L2 and L1 see from inside; here, the kernel's side of it, and the
 * exit-side failure, which is a VMX abort (SDM 28.7): the indicator in vmcs12 and a shutdown.
 */
import { describe, it, expect } from 'vitest';
import { KVM_EXIT } from '@kvmts/core';
import { toVmx } from '../src/kvm/setup.js';
import { toNested, VMX_ABORT } from '../src/kvm/nested.js';
import { FIELD } from '../src/hw/fields.js';
import { VMCS12_ABORT } from '../src/kvm/vmcs12.js';
import { loadGuest, runGuest, kernelVcpu } from './nested-harness.js';

const MSR_KERNEL_GS_BASE = 0xc0000102;
const MSR_FS_BASE = 0xc0000100;
const u32 = (b: Uint8Array, off = 0): number => new DataView(b.buffer, b.byteOffset).getUint32(off, true);
const u64 = (b: Uint8Array, off = 0): bigint => new DataView(b.buffer, b.byteOffset).getBigUint64(off, true);

describe('vmcs12 MSR-load and MSR-store lists', () => {
  it('nested-vmx-msr passes, and the lists in L1 memory hold what the SDM says', () => {
    const vm = loadGuest('nested-vmx-msr');
    const r = runGuest(vm);
    expect(r.exit).toBe('debug_exit');
    expect(r.code).toBe(0);
    expect(r.serial).toContain('SUMMARY: 19 tests, 0 failures\n');
    const v = toNested(toVmx(kernelVcpu(vm))).cachedVmcs12;
    // The exit store list, as L0 left it in L1's memory after the HLT exit.
    const store = vm.read(v.num(FIELD.VM_EXIT_MSR_STORE_ADDR), 32);
    expect(u32(store, 0)).toBe(MSR_KERNEL_GS_BASE);
    expect(u64(store, 8)).toBe(0x7777000n);
    expect(u32(store, 16)).toBe(0x175);
    expect(u64(store, 24)).toBe(0x3333000n);
    expect(v.lo(FIELD.VM_EXIT_MSR_STORE_COUNT)).toBe(2);
  });

  it('a VM-exit MSR-load entry that cannot be loaded is a VMX abort: indicator 4 in vmcs12, then shutdown', () => {
    const vm = loadGuest('nested-vmx-msr');
    const n = toNested(toVmx(kernelVcpu(vm)));
    const marker = "PASS: VM-exit MSR-load list: L1's KERNEL_GS_BASE\n";
    const first = runGuest(vm, 100000, (_, serial) => serial.includes(marker));
    expect(first.exit).toBe('stopped');
    // L1 is between exits; its next VM exit loads the exit list: make its one entry FS_BASE.
    const list = n.cachedVmcs12.num(FIELD.VM_EXIT_MSR_LOAD_ADDR);
    vm.write(list, [MSR_FS_BASE & 0xff, (MSR_FS_BASE >>> 8) & 0xff, (MSR_FS_BASE >>> 16) & 0xff, MSR_FS_BASE >>> 24]);
    const vmcs12 = n.currentVmptr;
    expect(u32(vm.read(vmcs12 + VMCS12_ABORT, 4))).toBe(0);
    const rest = runGuest(vm);
    expect(rest.exit).toBe(`exit ${KVM_EXIT.SHUTDOWN}`);
    expect(u32(vm.read(vmcs12 + VMCS12_ABORT, 4))).toBe(VMX_ABORT.LOAD_HOST_MSR_FAIL);
    expect(rest.serial).not.toContain('SUMMARY');
  });
});
