import { describe, expect, it } from 'vitest';
import { Host } from '../host/host.js';
import { KVM_CAP } from '../uapi/caps.js';
import { KVM_MP_STATE } from '../uapi/constants.js';
import { fakeVendor, testModel } from '../../test/fake-vendor.js';
import { Kvm } from './kvm.js';
import { KvmError } from './kvm-error.js';

function setup() {
  const host = new Host({ model: testModel, pcpus: 1, memBytes: 64 << 20 });
  host.modprobe(fakeVendor().initOps);
  const kvm = Kvm.open(host.spawn());
  const vm = kvm.createVm();
  vm.allocGuestMemory(0, 0, 0x10000);
  return { host, kvm, vm, vcpu: vm.createVcpu(0) };
}

describe('typed façade', () => {
  it('answers system queries', () => {
    const { kvm } = setup();
    expect(kvm.apiVersion()).toBe(12);
    expect(kvm.vcpuMmapSize()).toBe(3 * 4096);
    expect(kvm.checkExtension(KVM_CAP.NR_VCPUS)).toBe(1);
    const cpuid = kvm.getSupportedCpuid();
    expect(cpuid.find((e) => e.function === 0)?.ebx).toBe(0x756e6547); // "Genu"
    expect((cpuid.find((e) => e.function === 1)!.ecx >>> 31) & 1).toBe(1); // hypervisor bit
    expect(kvm.getMsrIndexList()).toContain(0xc0000080);
  });

  it('round-trips CPUID, vCPU events, MP state and registers', () => {
    const { vcpu, kvm } = setup();
    const table = kvm.getSupportedCpuid().slice(0, 5);
    vcpu.setCpuid2(table);
    expect(vcpu.getCpuid2()).toEqual(table);
    expect(vcpu.getMpState()).toBe(KVM_MP_STATE.RUNNABLE);
    const ev = vcpu.getVcpuEvents();
    vcpu.setVcpuEvents({ ...ev, nmi: { injected: 0, pending: 1, masked: 1 } });
    expect(vcpu.getVcpuEvents().nmi).toEqual({ injected: 0, pending: 1, masked: 1 });
    const regs = vcpu.getRegs();
    vcpu.setRegs({ ...regs, r15: 0xfedcba9876543210n, rsp: 0x8000n, rip: 0xffffffff80001000n, rflags: 0x246n });
    expect(vcpu.getRegs()).toMatchObject({ r15: 0xfedcba9876543210n, rsp: 0x8000n, rip: 0xffffffff80001000n, rflags: 0x246n, rax: 0n });
    const sregs = vcpu.getSregs();
    expect(sregs.cs.selector).toBe(0);
    expect(sregs.apicBase).toBe(0xfee00900n);
    vcpu.setSregs({ ...sregs, gdt: { base: 0x5000, limit: 0x27 } });
    expect(vcpu.getSregs().gdt).toEqual({ base: 0x5000, limit: 0x27 });
  });

  it('keeps common MSRs and stops KVM_SET_MSRS at the first refused one', () => {
    const { vcpu } = setup();
    // The test vendor owns no MSRs, so only the common ones (kvm_get_msr_common) answer.
    expect(vcpu.getMsrs([0x277]).size).toBe(0);
    expect(vcpu.setMsrs([{ index: 0x12345, data: 1n }])).toBe(0);
  });

  it('translates through the guest page tables', () => {
    const { vcpu, vm } = setup();
    // Protected mode with 32-bit paging: PD at 0x2000, PT at 0x3000, 0x400000+0x1000 -> 0x7000.
    vm.memory.write32(0x2000 + 1 * 4, 0x3000 | 3);
    vm.memory.write32(0x3000 + 1 * 4, 0x7000 | 3);
    const s = vcpu.getSregs();
    vcpu.setSregs({ ...s, cr0: 0x80000011n, cr3: 0x2000n, cr4: 0n });
    expect(vcpu.translate(0x401234n)).toEqual({ physicalAddress: 0x7234n, valid: true, writeable: true, usermode: false });
    expect(vcpu.translate(0x801000n).valid).toBe(false);
  });

  it('throws KvmError with the errno and the ioctl', () => {
    const { vm } = setup();
    try {
      vm.createVcpu(0);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(KvmError);
      expect((e as KvmError).errno).toBe(17);
      expect((e as KvmError).ioctl).toBe('KVM_CREATE_VCPU');
    }
  });
});

describe('debug registers', () => {
  it('keep DR6/DR7 fixed bits as kvm_set_dr does', async () => {
    const { kvmSetDr, kvmGetDr } = await import('../x86/x86.js');
    const { vm, vcpu } = setup();
    const v = (vm.proc.file(vcpu.fd) as unknown as { vcpu: import('../kvm/vcpu.js').Vcpu }).vcpu;
    expect(kvmSetDr(v, 6, 0)).toBe(0);
    expect(kvmGetDr(v, 6) >>> 0).toBe(0xfffe0ff0);
    expect(kvmSetDr(v, 7, 0xffffffff)).toBe(0);
    expect(kvmGetDr(v, 7) >>> 0).toBe(0xffff2fff);
    expect(kvmSetDr(v, 8, 0)).toBe(1);
  });
});
