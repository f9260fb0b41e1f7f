import { describe, it, expect } from 'vitest';
import { KVM, KVM_EXIT, Host, MAP, PROT, encodeStruct, KVM_USERSPACE_MEMORY_REGION_STRUCT, type KvmVcpu } from '@kvmts/core';
import { intelCpuModel, vmxInitOps, vmxX86Ops, VMCS, type VcpuVmx, type VmxSilicon } from '../src/index.js';
import { makeVm } from './vm.js';

const CPUID_HLT = [0x0f, 0xa2, 0xf4];

function kernelVcpu(vm: ReturnType<typeof makeVm>): KvmVcpu {
  const f = vm.proc.file(vm.vcpuFd) as unknown as { vcpu: KvmVcpu };
  return f.vcpu;
}

function realMode(vm: ReturnType<typeof makeVm>, code: number[]): void {
  vm.write(0x1000, code);
  vm.setSregs((s) => { const cs = s['cs'] as Record<string, unknown>; cs['base'] = 0n; cs['selector'] = 0; });
  vm.setRegs({ rip: 0x1000n, rflags: 2n });
}

describe('kvm_intel', () => {
  it('hardware_setup settles vmcs_config from the capability MSRs; hardware_enable did VMXON', () => {
    const vm = makeVm();
    const vmx = kernelVcpu(vm).vendor as VcpuVmx;
    const c = vmx.module.config;
    expect(c.revisionId).toBe(4);
    expect(c.size).toBe(4096);
    expect(c.cpuBasedExec2Ctrl & 0x82).toBe(0x82); // EPT and unrestricted guest
    expect(c.cpuBasedExecCtrl & (1 << 15)).toBe(0); // no CR3-load exiting with EPT
    expect(vmx.vpid).toBeGreaterThan(0);
    const s = vm.host.pcpus[0]!.cpu.ext as VmxSilicon;
    expect(s.inVmxOperation).toBe(true);
    expect(s.vmcs.hpa).toBe(vmx.vmcs01.vmcs);
    expect(vm.host.mem.read32(vmx.vmcs01.vmcs)).toBe(4);
  });

  it('CPUID is handled in the kernel: one KVM_RUN runs to HLT, with the CPUID result in the registers', () => {
    const vm = makeVm();
    realMode(vm, CPUID_HLT);
    expect(vm.kvmRun()).toBe(0);
    expect(vm.run.exitReason).toBe(KVM_EXIT.HLT);
    // No KVM_SET_CPUID2: every leaf reads as zeros, as in Linux.
    const r = vm.getRegs();
    expect(r['rbx']).toBe(0n);
    expect(r['rip']).toBe(0x1003n);
    expect(kernelVcpu(vm).stats()['exit_CPUID']).toBe(1);
  });

  it('inspect() groups the VMCS as the SDM does and marks what the last exit changed', () => {
    const vm = makeVm();
    realMode(vm, CPUID_HLT);
    vm.kvmRun();
    const ins = vmxX86Ops.inspect(kernelVcpu(vm));
    expect(ins.vendor).toBe('intel');
    const groups = ins.structures[0]!.groups;
    expect(groups.map((g) => g.name)).toEqual(['controls', 'exit information', 'guest state', 'host state']);
    const exitInfo = groups[1]!.fields;
    const reason = exitInfo.find((f) => f.name === 'VM_EXIT_REASON')!;
    expect(reason.value).toBe(12n);
    expect(reason.changed).toBe(true); // CPUID (10) before, HLT (12) now
    const rip = groups[2]!.fields.find((f) => f.name === 'GUEST_RIP')!;
    expect(rip.value).toBe(0x1002n);
    expect(groups[3]!.fields.find((f) => f.name === 'HOST_RIP')!.changed).toBe(false);
  });

  it('a vCPU that moves to another pCPU is VMCLEARed there first and relaunched with VMLAUNCH', () => {
    const host = new Host({ model: intelCpuModel(), pcpus: 2, memBytes: 256 << 20 });
    expect(host.modprobe(vmxInitOps)).toBe(0);
    const proc = host.spawn();
    const kvm = proc.open('/dev/kvm');
    const vmFd = proc.ioctl(kvm, KVM.KVM_CREATE_VM, 0);
    const hva = proc.mmap(0x200000, PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.ANONYMOUS);
    proc.ioctl(vmFd, KVM.KVM_SET_USER_MEMORY_REGION, encodeStruct(KVM_USERSPACE_MEMORY_REGION_STRUCT, {
      slot: 0, flags: 0, guest_phys_addr: 0n, memory_size: 0x200000n, userspace_addr: BigInt(hva),
    }));
    const fd = proc.ioctl(vmFd, KVM.KVM_CREATE_VCPU, 0);
    const vcpu = (proc.file(fd) as unknown as { vcpu: KvmVcpu }).vcpu;
    const vmx = vcpu.vendor as VcpuVmx;
    const s0 = host.pcpus[0]!.cpu.ext as VmxSilicon;
    const s1 = host.pcpus[1]!.cpu.ext as VmxSilicon;
    vmxX86Ops.vcpuLoad(vcpu, 0);
    vmxX86Ops.loadMmuPgd(vcpu, host.allocPage(), 4); // an empty EPT: the first fetch is an EPT violation
    vmxX86Ops.vcpuRun(vcpu, false); // enters at the reset vector: whatever it exits on, it launched
    expect([vmx.fail, vmx.exitReason.toString(16), s0.lastFailedCheck?.name]).toEqual([false, '30', undefined]);
    expect(vmx.loadedVmcs.launched).toBe(true);
    vmxX86Ops.vcpuLoad(vcpu, 1);
    expect(s0.vmcs.hpa).toBe(-1); // VMCLEARed on the old pCPU
    expect(s1.vmcs.hpa).toBe(vmx.vmcs01.vmcs);
    expect(vmx.loadedVmcs.cpu).toBe(1);
    expect(vmx.loadedVmcs.launched).toBe(false);
    vmxX86Ops.vcpuRun(vcpu, false);
    expect(vmx.fail).toBe(false);
    expect(vmx.loadedVmcs.launched).toBe(true);
    expect(s1.vmread32(VMCS.VIRTUAL_PROCESSOR_ID)).toBe(vmx.vpid);
  });
});
