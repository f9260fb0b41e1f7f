import { describe, expect, it, vi } from 'vitest';
import { Host } from '../host/host.js';
import { KVM_CAP } from '../uapi/caps.js';
import { KVM_LIMITS, KVM_MP_STATE } from '../uapi/constants.js';
import { KVM } from '../uapi/ioctls.js';
import { fakeVendor, testModel } from '../../test/fake-vendor.js';
import { Kvm } from './kvm.js';
import { KvmError, errnoOf } from './kvm-error.js';

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

describe('CPUID ioctls (what a VMM sets before the first KVM_RUN)', () => {
  it('lays kvm_cpuid2 out as kvm.h: nent, padding, then 40-byte kvm_cpuid_entry2', () => {
    const { vcpu } = setup();
    const spy = vi.spyOn(vcpu.proc, 'ioctl');
    vcpu.setCpuid2([
      { function: 0, index: 0, flags: 0, eax: 0xd, ebx: 0x756e6547, ecx: 0x6c65746e, edx: 0x49656e69 },
      { function: 7, index: 1, flags: 1, eax: 0x11, ebx: 0x22, ecx: 0x33, edx: 0x44 },
    ]);
    const call = spy.mock.calls.find((c) => c[1] === KVM.KVM_SET_CPUID2)!;
    const b = call[2] as Uint8Array;
    const u32 = (off: number): number => new DataView(b.buffer, b.byteOffset).getUint32(off, true);
    expect(b.length).toBe(8 + 2 * 40);
    expect([u32(0), u32(4)]).toEqual([2, 0]);
    expect([u32(8), u32(8 + 16)]).toEqual([0, 0x756e6547]);
    expect([0, 4, 8, 12, 16, 20, 24, 28, 32, 36].map((o) => u32(48 + o))).toEqual([7, 1, 1, 0x11, 0x22, 0x33, 0x44, 0, 0, 0]);
  });

  it('answers E2BIG for too many entries or too small a buffer, EINVAL for a new table after KVM_RUN', () => {
    const { kvm, vcpu, vm } = setup();
    const table = kvm.getSupportedCpuid();
    expect(errnoOf(() => kvm.getSupportedCpuid(0))).toBe(7);
    expect(errnoOf(() => kvm.getSupportedCpuid(table.length - 1))).toBe(7);
    const tooMany = Array.from({ length: KVM_LIMITS.MAX_CPUID_ENTRIES + 1 }, (_, i) => ({ ...table[0]!, function: i }));
    expect(errnoOf(() => vcpu.setCpuid2(tooMany))).toBe(7);
    vcpu.setCpuid2(table);
    expect(errnoOf(() => vcpu.getCpuid2(table.length - 1))).toBe(7);
    expect(vcpu.getCpuid2(table.length)).toEqual(table);
    vm.memory.write(0x1000, Uint8Array.of(0xf4));
    const s = vcpu.getSregs();
    vcpu.setSregs({ ...s, cs: { ...s.cs, selector: 0, base: 0 } });
    vcpu.setRegs({ ...vcpu.getRegs(), rip: 0x1000n });
    expect(vcpu.run()).toEqual({ kind: 'Hlt' });
    // kvm_cpuid_check_equal: after KVM_RUN only the same table is taken.
    expect(errnoOf(() => vcpu.setCpuid2(table))).toBe(0);
    expect(errnoOf(() => vcpu.setCpuid2(table.slice(1)))).toBe(22);
  });
});

describe('vCPU mapping', () => {
  it('is as large as KVM_GET_VCPU_MMAP_SIZE says, asked once per VM', () => {
    const host = new Host({ model: testModel, pcpus: 1, memBytes: 64 << 20 });
    host.modprobe(fakeVendor().initOps);
    const kvm = Kvm.open(host.spawn());
    const spy = vi.spyOn(kvm.proc, 'ioctl');
    const vm = kvm.createVm();
    vm.createVcpu(0);
    vm.createVcpu(1);
    expect(spy.mock.calls.filter((c) => c[1] === KVM.KVM_GET_VCPU_MMAP_SIZE)).toHaveLength(1);
    expect(vm.vcpuMmapSize).toBe(3 * 4096);
    const mmap = vi.spyOn(kvm.proc, 'mmap');
    vm.createVcpu(2);
    expect(mmap.mock.calls[0]?.[0]).toBe(3 * 4096);
  });
});

describe('kvm_run flags the VMM sets', () => {
  it('reads back immediate_exit (byte 1) and request_interrupt_window (byte 0) from the mapping', () => {
    const { vcpu } = setup();
    const page = new Uint8Array(vcpu.runData.bytes.buffer, vcpu.runData.bytes.byteOffset, 2);
    vcpu.immediateExit = true;
    vcpu.requestInterruptWindow = true;
    expect([page[0], page[1], vcpu.immediateExit, vcpu.requestInterruptWindow]).toEqual([1, 1, true, true]);
    // immediate_exit: KVM_RUN returns -EINTR without entering the guest.
    expect(vcpu.run()).toEqual({ kind: 'Intr' });
    vcpu.immediateExit = false;
    vcpu.requestInterruptWindow = false;
    expect([page[0], page[1], vcpu.immediateExit, vcpu.requestInterruptWindow]).toEqual([0, 0, false, false]);
  });
});
