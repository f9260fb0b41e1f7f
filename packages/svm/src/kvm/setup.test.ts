import { describe, expect, it } from 'vitest';
import { Cpu, EFER } from '@kvmts/x86';
import { Host } from '@kvmts/core';
import { amdCpuModel } from '../hw/model.js';
import { svmInitOps } from './ops.js';
import { MSR_VM_HSAVE_PA } from '../hw/caps.js';
import { INTERCEPT_BIT, VMCB } from '../hw/fields.js';
import { createVm, load, realMode, kvmRun, KVM_EXIT } from '../../test/vm.js';
import { silicon, svmData, svmIsIntercept, toSvm } from './setup.js';
import { newAsid, preSvmRun } from './run.js';

function vcpuOf(vm: ReturnType<typeof createVm>) {
  return vm.host.module!.vms.values().next().value!.vcpus[0]!;
}

describe('svm_hardware_enable', () => {
  it('sets EFER.SVME and points VM_HSAVE_PA at the per-cpu save area', () => {
    const vm = createVm();
    const pcpu = vm.host.pcpus[0]!;
    const sd = svmData(pcpu);
    expect(pcpu.cpu.efer & EFER.SVME).toBe(EFER.SVME);
    expect(silicon(pcpu.cpu).rdmsr(MSR_VM_HSAVE_PA)).toBe(BigInt(sd.saveAreaPa));
    expect(sd.saveAreaPa % 4096).toBe(0);
    expect(sd.maxAsid).toBe(0x7fff);
  });
});

describe('init_vmcb', () => {
  it('sets the intercepts KVM sets with NPT, and NP_ENABLE', () => {
    const vm = createVm();
    const svm = toSvm(vcpuOf(vm));
    for (const bit of [INTERCEPT_BIT.INTR, INTERCEPT_BIT.NMI, INTERCEPT_BIT.CPUID, INTERCEPT_BIT.HLT, INTERCEPT_BIT.IOIO_PROT,
      INTERCEPT_BIT.MSR_PROT, INTERCEPT_BIT.SHUTDOWN, INTERCEPT_BIT.VMRUN, INTERCEPT_BIT.VMMCALL, INTERCEPT_BIT.VMLOAD,
      INTERCEPT_BIT.VMSAVE, INTERCEPT_BIT.STGI, INTERCEPT_BIT.CLGI, INTERCEPT_BIT.SKINIT, INTERCEPT_BIT.WBINVD,
      INTERCEPT_BIT.XSETBV, INTERCEPT_BIT.INVLPGA, INTERCEPT_BIT.TASK_SWITCH, INTERCEPT_BIT.RSM]) {
      expect(svmIsIntercept(svm, bit), `intercept ${bit}`).toBe(true);
    }
    // With NPT the guest's paging is its own.
    expect(svmIsIntercept(svm, INTERCEPT_BIT.INVLPG)).toBe(false);
    expect(svmIsIntercept(svm, 3)).toBe(false); // CR3 read
    expect(svmIsIntercept(svm, 64 + 14)).toBe(false); // #PF
    expect(svmIsIntercept(svm, 64 + 6)).toBe(true); // #UD
    expect(svm.vmcb.r32(VMCB.nested_ctl)).toBe(1);
    expect(svm.vmcb.r32(VMCB.int_ctl)).toBe(1 << 24); // V_INTR_MASKING
  });
});

describe('ASIDs (svm_cpu_data: asid_generation, next_asid, max_asid)', () => {
  it('hands out ASIDs from 1, and on wrap starts a generation with TLB_CONTROL = flush all', () => {
    const vm = createVm();
    const vcpu = vcpuOf(vm);
    const svm = toSvm(vcpu);
    const sd = { cpu: 0, asidGeneration: 1, maxAsid: 3, nextAsid: 4, minAsid: 1, saveAreaPa: 0, currentVmcb: -1 };
    preSvmRun(svm, sd);
    expect([svm.asid, sd.asidGeneration, svm.vmcb.r32(VMCB.asid)]).toEqual([1, 2, 1]);
    expect(svm.vmcb.r8(VMCB.tlb_ctl)).toBe(1);
    svm.vmcb.w8(VMCB.tlb_ctl, 0);
    preSvmRun(svm, sd); // same pCPU, same generation: keeps its ASID
    expect(svm.asid).toBe(1);
    newAsid(svm, sd);
    newAsid(svm, sd);
    expect([svm.asid, sd.nextAsid, svm.vmcb.r8(VMCB.tlb_ctl)]).toEqual([3, 4, 0]);
    newAsid(svm, sd);
    expect([svm.asid, sd.asidGeneration, svm.vmcb.r8(VMCB.tlb_ctl)]).toEqual([1, 3, 1]);
  });

  it('a VMCB that moves to another pCPU gets a new ASID there', () => {
    const vm = createVm();
    const svm = toSvm(vcpuOf(vm));
    const a = { cpu: 0, asidGeneration: 1, maxAsid: 100, nextAsid: 5, minAsid: 1, saveAreaPa: 0, currentVmcb: -1 };
    const b = { cpu: 1, asidGeneration: 1, maxAsid: 100, nextAsid: 9, minAsid: 1, saveAreaPa: 0, currentVmcb: -1 };
    preSvmRun(svm, a);
    expect(svm.asid).toBe(5);
    preSvmRun(svm, b);
    expect(svm.asid).toBe(9);
  });
});

describe('svm_vcpu_run', () => {
  it('keeps RAX/RSP/RIP in the VMCB, swaps the other GPRs, and leaves the host GPRs as they were', () => {
    const vm = createVm();
    // mov ebx, 0x11223344; mov esp, 0x5000; mov eax, 0x99; hlt
    load(vm, 0x1000, [0x66, 0xbb, 0x44, 0x33, 0x22, 0x11, 0x66, 0xbc, 0x00, 0x50, 0, 0, 0x66, 0xb8, 0x99, 0, 0, 0, 0xf4]);
    realMode(vm);
    const cpu = vm.host.pcpus[0]!.cpu;
    cpu.gpr[3] = 0x7777; cpu.gpr[0] = 0x1234; cpu.gpr[4] = 0x4321;
    expect(kvmRun(vm)).toBe(KVM_EXIT.HLT);
    const vcpu = vcpuOf(vm);
    expect([vcpu.arch.regs[3], vcpu.arch.regs[4], vcpu.arch.regs[0]]).toEqual([0x11223344, 0x5000, 0x99]);
    expect([cpu.gpr[3], cpu.gpr[0], cpu.gpr[4]]).toEqual([0x7777, 0x1234, 0x4321]);
    const v = toSvm(vcpu).vmcb;
    expect([v.r32(VMCB.rax), v.r32(VMCB.rsp), v.r32(VMCB.rip)]).toEqual([0x99, 0x5000, 0x1012]);
    expect(silicon(cpu).guest).toBe(false);
    expect(silicon(cpu).gif).toBe(true);
  });
});

describe('rmmod kvm_amd', () => {
  it('svm_hardware_disable clears VM_HSAVE_PA and EFER.SVME on every pCPU', () => {
    const host = new Host({ model: amdCpuModel(), pcpus: 2, memBytes: 16 << 20, createCpu: (bus, model) => new Cpu({ bus, model }) });
    expect(host.modprobe(svmInitOps)).toBe(0);
    for (const p of host.pcpus) expect(p.cpu.efer & EFER.SVME).toBe(EFER.SVME);
    const pages = host.pagesInUse;
    expect(host.rmmod()).toBe(0);
    for (const p of host.pcpus) {
      expect(p.cpu.efer & EFER.SVME).toBe(0);
      expect(silicon(p.cpu).rdmsr(MSR_VM_HSAVE_PA)).toBe(0n);
    }
    // The save areas and the IOPM went back to the allocator.
    expect(host.pagesInUse).toBe(pages - 2 - 4);
  });
});
