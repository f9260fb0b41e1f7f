/** One guest per exit path of kvm_amd, through the core's /dev/kvm (KVM_RUN and kvm_run). */
import { describe, expect, it } from 'vitest';
import { KVM, KVM_INTERRUPT_STRUCT, encodeStruct, type StructValue } from '@kvmts/core';
import { createVm, getRegs, getSregs, kvmRun, load, realMode, setSregs, KVM_EXIT, type TestVm } from './vm.js';
import { toSvm } from '../src/kvm/setup.js';
import { VMCB } from '../src/hw/fields.js';

/** An IVT entry (real mode): vector -> 0000:handler. */
function ivt(vm: TestVm, vector: number, handler: number): void {
  load(vm, vector * 4, [handler & 0xff, handler >> 8, 0, 0]);
}

function interrupt(vm: TestVm, vector: number): void {
  expect(vm.proc.ioctl(vm.vcpuFd, KVM.KVM_INTERRUPT, encodeStruct(KVM_INTERRUPT_STRUCT, { irq: vector }))).toBe(0);
}

function ioData(vm: TestVm): number {
  const io = vm.run.io.get();
  return vm.runBytes[io.dataOffset]!;
}

describe('kvm_amd exit paths', () => {
  it('VMEXIT_INVALID becomes KVM_EXIT_FAIL_ENTRY with hardware_entry_failure_reason = SVM_EXIT_ERR', () => {
    const vm = createVm();
    load(vm, 0x1000, [0xf4]);
    realMode(vm);
    // Long mode with a code segment that is both L and D: legal to KVM_SET_SREGS, illegal to VMRUN.
    setSregs(vm, (s) => {
      const cs = s['cs'] as StructValue;
      cs['l'] = 1; cs['db'] = 1; cs['type'] = 0xb; cs['s'] = 1; cs['present'] = 1;
      s['cr0'] = 0x80000011n; s['cr4'] = 0x20n; s['efer'] = 0x500n; s['cr3'] = 0x10000n;
    });
    expect(kvmRun(vm)).toBe(KVM_EXIT.FAIL_ENTRY);
    expect(vm.run.failEntry.get().hardwareEntryFailureReason).toBe(0xffffffffffffffffn);
  });

  it('a triple fault is a SHUTDOWN intercept and KVM_EXIT_SHUTDOWN', () => {
    const vm = createVm();
    load(vm, 0x1000, [0x0f, 0x01, 0x1e, 0x00, 0x11, 0xcc]); // lidt [0x1100] (limit 0); int3
    realMode(vm);
    expect(kvmRun(vm)).toBe(KVM_EXIT.SHUTDOWN);
  });

  it('KVM_INTERRUPT at HLT is injected through EVENTINJ into the guest IVT', () => {
    const vm = createVm();
    ivt(vm, 0x20, 0x2000);
    load(vm, 0x2000, [0xb0, 0x55, 0xcf]); // mov al, 0x55; iret
    load(vm, 0x1000, [0xfb, 0xf4, 0xe6, 0x99, 0xf4]); // sti; hlt; out 0x99, al; hlt
    realMode(vm);
    expect(kvmRun(vm)).toBe(KVM_EXIT.HLT);
    interrupt(vm, 0x20);
    expect(kvmRun(vm)).toBe(KVM_EXIT.IO);
    expect([vm.run.io.get().port, ioData(vm)]).toEqual([0x99, 0x55]);
  });

  it('request_interrupt_window opens through V_IRQ + the VINTR intercept once the guest sets IF', () => {
    const vm = createVm();
    ivt(vm, 0x21, 0x2000);
    load(vm, 0x2000, [0xb0, 0x77, 0xcf]); // mov al, 0x77; iret
    // cli; out 0x98, al; sti; nop; nop; out 0x99, al; hlt
    load(vm, 0x1000, [0xfa, 0xe6, 0x98, 0xfb, 0x90, 0x90, 0xe6, 0x99, 0xf4]);
    realMode(vm);
    expect(kvmRun(vm)).toBe(KVM_EXIT.IO);
    expect(vm.run.readyForInterruptInjection).toBe(0);
    vm.run.requestInterruptWindow = 1;
    expect(kvmRun(vm)).toBe(KVM_EXIT.IRQ_WINDOW_OPEN);
    expect(vm.run.readyForInterruptInjection).toBe(1);
    expect(getRegs(vm)['rip']).toBeGreaterThanOrEqual(0x1004n);
    interrupt(vm, 0x21);
    vm.run.requestInterruptWindow = 0;
    expect(kvmRun(vm)).toBe(KVM_EXIT.IO);
    expect([vm.run.io.get().port, ioData(vm)]).toEqual([0x99, 0x77]);
  });

  it('#UD is intercepted and reinjected: VMRUN in a real-mode guest reaches the guest IVT', () => {
    const vm = createVm();
    ivt(vm, 6, 0x2000);
    load(vm, 0x2000, [0xb0, 0x06, 0xe6, 0x99, 0xf4]); // mov al, 6; out 0x99, al; hlt
    load(vm, 0x1000, [0x0f, 0x01, 0xd8]); // vmrun
    realMode(vm);
    expect(kvmRun(vm)).toBe(KVM_EXIT.IO);
    expect(ioData(vm)).toBe(6);
    expect(vm.kvmStat()['exit_excp_6']).toBe(1);
  });

  it('VMMCALL is a hypercall: unknown numbers return -KVM_ENOSYS', () => {
    const vm = createVm();
    load(vm, 0x1000, [0x66, 0x31, 0xc0, 0x0f, 0x01, 0xd9, 0xf4]); // xor eax, eax; vmmcall; hlt
    realMode(vm);
    expect(kvmRun(vm)).toBe(KVM_EXIT.HLT);
    expect(getRegs(vm)['rax']).toBe(0xfffffc18n);
    expect(getRegs(vm)['rip']).toBe(0x1007n);
  });

  it('KVM_NMI is injected as an NMI; a second one waits for the IRET intercept and a single step', () => {
    const vm = createVm();
    ivt(vm, 2, 0x2000);
    load(vm, 0x2000, [0xfe, 0xc3, 0xe6, 0x99, 0xcf]); // inc bl; out 0x99, al; iret
    load(vm, 0x1000, [0xe6, 0x98, 0x90, 0x90, 0x88, 0xd8, 0xe6, 0x97, 0xf4]); // out 0x98; nop; nop; mov al, bl; out 0x97; hlt
    realMode(vm);
    expect(kvmRun(vm)).toBe(KVM_EXIT.IO);
    expect(vm.proc.ioctl(vm.vcpuFd, KVM.KVM_NMI, 0)).toBe(0);
    expect(kvmRun(vm)).toBe(KVM_EXIT.IO); // the handler's OUT: NMIs now blocked until its IRET
    expect([vm.run.io.get().port, getRegs(vm)['rip']]).toEqual([0x99, 0x2002n]); // RIP moves past an OUT on the next KVM_RUN
    expect(vm.proc.ioctl(vm.vcpuFd, KVM.KVM_NMI, 0)).toBe(0);
    // The IRET exits (IRET intercept), KVM single-steps it (TF + #DB intercept, as
    // svm_enable_nmi_window does), and the second NMI goes in right after the IRET.
    expect(kvmRun(vm)).toBe(KVM_EXIT.IO);
    expect([vm.run.io.get().port, getRegs(vm)['rip']]).toEqual([0x99, 0x2002n]);
    expect(vm.kvmStat()['exit_iret']).toBe(1);
    expect(vm.kvmStat()['exit_excp_1']).toBe(1);
    const svm = toSvm(vm.host.module!.vms.values().next().value!.vcpus[0]!);
    expect(svm.nmiSinglestep).toBe(false);
    expect(svm.vmcb.r32(VMCB.rflags) & 0x100).toBe(0); // TF gone again
    expect(kvmRun(vm)).toBe(KVM_EXIT.IO);
    expect([vm.run.io.get().port, ioData(vm)]).toEqual([0x97, 2]);
  });
});

describe('VMCB clean bits kept by kvm_amd', () => {
  it('state userspace sets between runs reaches the guest: KVM marks the groups it writes dirty', () => {
    const vm = createVm();
    load(vm, 0x1000, [0xe6, 0x98, 0xcd, 0x21, 0xf4]); // out 0x98, al; int 0x21; hlt
    load(vm, 0x3000 + 0x21 * 4, [0x00, 0x20, 0, 0]); // the moved IVT's entry 0x21: 0000:2000
    load(vm, 0x2000, [0xa0, 0x10, 0x00, 0xe6, 0x99, 0xf4]); // mov al, [0x10]; out 0x99, al; hlt
    load(vm, 0x4010, [0x42]);
    realMode(vm);
    expect(kvmRun(vm)).toBe(KVM_EXIT.IO);
    const svm = toSvm(vm.host.module!.vms.values().next().value!.vcpus[0]!);
    expect(svm.vmcb.r32(VMCB.clean)).not.toBe(0); // all clean after the run, but INTR and CR2
    setSregs(vm, (s) => {
      (s['idt'] as StructValue)['base'] = 0x3000n;
      const ds = s['ds'] as StructValue;
      ds['base'] = 0x4000n; ds['selector'] = 0x400;
    });
    expect(kvmRun(vm)).toBe(KVM_EXIT.IO);
    expect([vm.run.io.get().port, ioData(vm)]).toEqual([0x99, 0x42]);
  });
});

describe('CR3 from KVM_SET_SREGS', () => {
  it('reaches the VMCB (the guest runs with it and KVM_GET_SREGS reads it back after the next exit)', () => {
    const vm = createVm();
    load(vm, 0x1000, [0xe6, 0x98, 0x0f, 0x20, 0xd8, 0xe6, 0x99, 0xf4]); // out 0x98, al; mov eax, cr3; out 0x99, al; hlt (NPT: CR3 reads do not exit)
    realMode(vm);
    expect(kvmRun(vm)).toBe(KVM_EXIT.IO);
    setSregs(vm, (s) => { s['cr3'] = 0x5000n; });
    expect(kvmRun(vm)).toBe(KVM_EXIT.IO);
    expect(getRegs(vm)['rax']).toBe(0x5000n);
    expect(getSregs(vm)['cr3']).toBe(0x5000n);
  });
});
