/**
 * KVM_GET/SET_NESTED_STATE: a VM stopped while its vCPU runs L2 is saved (memory, registers,
 * special registers, nested state) and restored into a new VM, where L2 runs on, exits to L1 as
 * before, and the L1 hypervisor finishes with all its checks passing.
 */
import { describe, it, expect } from 'vitest';
import { KVM, KVM_STATE_NESTED, KVM_NESTED_STATE_STRUCT, KVM_VMX_NESTED_STATE_HDR_STRUCT, decodeStruct, encodeStruct } from '@kvmts/core';
import { toVmx } from '../src/kvm/setup.js';
import { toNested } from '../src/kvm/nested.js';
import { VMCS12_REVISION } from '../src/kvm/vmcs12.js';
import { loadGuest, runGuest, kernelVcpu } from './nested-harness.js';
import { makeVm } from './vm.js';

const MEM = 0x200000;
const SIZE = 128 + 4096;

describe('KVM_GET/SET_NESTED_STATE round trip of a vCPU in L2', () => {
  it('saves in L2, restores into a new VM, and L2 and L1 finish correctly', () => {
    const a = loadGuest('nested-vmx-basic');
    const va = kernelVcpu(a);
    // Stop at L2's first COM1 byte: the vCPU is in guest mode.
    const first = runGuest(a, 100000, () => va.arch.guestMode);
    expect(first.exit).toBe('stopped');
    // Finish the pending OUT without entering the guest (immediate_exit), as a VMM does before saving.
    a.run.immediateExit = 1;
    expect(a.kvmRun()).toBeLessThan(0);
    a.run.immediateExit = 0;

    const buf = new Uint8Array(SIZE);
    buf.set(encodeStruct(KVM_NESTED_STATE_STRUCT, { size: SIZE }));
    expect(a.proc.ioctl(a.vcpuFd, KVM.KVM_GET_NESTED_STATE, buf)).toBe(0);
    const h = decodeStruct(KVM_NESTED_STATE_STRUCT, buf.subarray(0, 128));
    expect(h['flags']).toBe(KVM_STATE_NESTED.GUEST_MODE);
    expect(h['format']).toBe(KVM_STATE_NESTED.FORMAT_VMX);
    expect(h['size']).toBe(SIZE);
    const vh = decodeStruct(KVM_VMX_NESTED_STATE_HDR_STRUCT, Uint8Array.from(h['hdr'] as number[]));
    const na = toNested(toVmx(va));
    expect(vh['vmxon_pa']).toBe(BigInt(na.vmxonPtr));
    expect(vh['vmcs12_pa']).toBe(BigInt(na.currentVmptr));
    expect(new DataView(buf.buffer).getUint32(128, true)).toBe(VMCS12_REVISION);
    // Too small a buffer: E2BIG with the size needed.
    const small = encodeStruct(KVM_NESTED_STATE_STRUCT, { size: 128 });
    expect(a.proc.ioctl(a.vcpuFd, KVM.KVM_GET_NESTED_STATE, small)).toBeLessThan(0);
    expect(decodeStruct(KVM_NESTED_STATE_STRUCT, small)['size']).toBe(SIZE);

    const regs = a.getRegs();
    const sregs = a.getSregs();
    const mem = a.read(0, MEM);

    const b = makeVm(MEM);
    b.write(0, mem);
    expect(b.proc.ioctl(b.vcpuFd, KVM.KVM_SET_NESTED_STATE, buf)).toBe(0);
    const vb = kernelVcpu(b);
    expect(vb.arch.guestMode).toBe(true);
    b.setSregs((s) => { Object.assign(s, sregs); });
    b.setRegs(regs as Record<string, bigint>);
    const rest = runGuest(b);
    expect(rest.exit).toBe('debug_exit');
    expect(rest.code).toBe(0);
    // The rest of L2's message came out of B, then L1's remaining checks.
    expect(rest.serial).toContain('hello through COM1, not intercepted by L1\n');
    expect(rest.serial).toContain('PASS: L2 saw L1\'s RDMSR EDX\n');
    expect(rest.serial).toContain('SUMMARY: 24 tests, 0 failures\n');
    expect(rest.serial).not.toContain('FAIL');
    // In B, L2 exits went to L1: RDMSR and HLT.
    expect(toNested(toVmx(vb)).stats.l2ExitsReflected).toBe(2);
  });

  it('a vCPU outside VMX operation saves a bare header, and SET with an invalid vmxon_pa turns nesting off', () => {
    const vm = makeVm(MEM);
    const buf = new Uint8Array(SIZE);
    buf.set(encodeStruct(KVM_NESTED_STATE_STRUCT, { size: SIZE }));
    expect(vm.proc.ioctl(vm.vcpuFd, KVM.KVM_GET_NESTED_STATE, buf)).toBe(0);
    const h = decodeStruct(KVM_NESTED_STATE_STRUCT, buf.subarray(0, 128));
    expect(h['size']).toBe(128);
    expect(h['flags']).toBe(0);
    const vh = decodeStruct(KVM_VMX_NESTED_STATE_HDR_STRUCT, Uint8Array.from(h['hdr'] as number[]));
    expect(vh['vmxon_pa']).toBe(0xffffffffffffffffn);
    expect(vm.proc.ioctl(vm.vcpuFd, KVM.KVM_SET_NESTED_STATE, buf.subarray(0, 128))).toBe(0);
    // GUEST_MODE without a vmcs12 is refused.
    const bad = encodeStruct(KVM_NESTED_STATE_STRUCT, {
      flags: KVM_STATE_NESTED.GUEST_MODE, format: 0, size: 128,
      hdr: Array.from(encodeStruct(KVM_VMX_NESTED_STATE_HDR_STRUCT, { vmxon_pa: 0x10000n, vmcs12_pa: 0xffffffffffffffffn })),
    });
    expect(vm.proc.ioctl(vm.vcpuFd, KVM.KVM_SET_NESTED_STATE, bad)).toBeLessThan(0);
  });
});
