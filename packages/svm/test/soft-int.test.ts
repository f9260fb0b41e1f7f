/**
 * INTn, INT3 and INTO whose delivery meets an empty NPT (the first run, or the first run after a
 * migration): the CPU exits with EXITINTINFO naming the event and no next_rip, and kvm_amd
 * re-injects it (svm_complete_interrupts, svm_update_soft_interrupt_rip) so that the handler
 * sees the return address the instruction itself would have pushed.
 */
import { describe, expect, it } from 'vitest';
import { createVm, getRegs, kvmRun, load, realMode, KVM_EXIT, type TestVm } from './vm.js';
import { VMCB } from '../src/hw/fields.js';
import { toSvm } from '../src/kvm/setup.js';
import { svmCompleteInterrupts } from '../src/kvm/run.js';

const HANDLER = 0x2000;
/** pop ax (the pushed IP); out 0x99, ax; hlt */
const REPORT_RETURN_IP = [0x58, 0xe7, 0x99, 0xf4];

function ivt(vm: TestVm, vector: number, handler: number): void {
  load(vm, vector * 4, [handler & 0xff, handler >> 8, 0, 0]);
}

/** Runs `code` at 0x1000 with `vector`'s IVT entry on the reporting handler; the IP it pushed. */
function pushedIp(code: number[], vector: number): { ip: number; vm: TestVm } {
  const vm = createVm();
  ivt(vm, vector, HANDLER);
  load(vm, HANDLER, REPORT_RETURN_IP);
  load(vm, 0x1000, code);
  realMode(vm);
  expect(kvmRun(vm)).toBe(KVM_EXIT.IO);
  const io = vm.run.io.get();
  expect([io.port, io.size]).toEqual([0x99, 2]);
  const ip = vm.runBytes[io.dataOffset]! | (vm.runBytes[io.dataOffset + 1]! << 8);
  return { ip, vm };
}

describe('soft events re-injected after an exit during their delivery', () => {
  it('INT3 as the first instruction (its IVT read and pushes meet #NPF) returns past the INT3', () => {
    const { ip, vm } = pushedIp([0xcc], 3);
    expect(ip).toBe(0x1001);
    // The vector table and the stack each faulted in the NPT while the #BP was being delivered.
    expect(vm.kvmStat()['pf_taken']).toBeGreaterThanOrEqual(3);
    // One frame of FLAGS, CS, IP was pushed (SP 0 -> 0xfffa), and the handler popped the IP.
    expect(getRegs(vm)['rsp']).toBe(0xfffcn);
  });

  it('INT 0x21 (type SOFT) returns past its two bytes', () => {
    expect(pushedIp([0xcd, 0x21], 0x21).ip).toBe(0x1002);
  });

  it('INTO with OF set (type EXCEPTION, vector 4) returns past the INTO', () => {
    // mov al, 0x7f; add al, 1 (OF=1); into
    expect(pushedIp([0xb0, 0x7f, 0x04, 0x01, 0xce], 4).ip).toBe(0x1005);
  });

  it('a prefixed INT 0x21 returns past the prefix too', () => {
    expect(pushedIp([0x2e, 0xcd, 0x21], 0x21).ip).toBe(0x1003);
  });
});

describe('svm_complete_soft_interrupt', () => {
  /** A vCPU that just had KVM inject INT 0x21 at 0x1000 (next RIP 0x1002) and exited while vectoring `exitIntInfo`. */
  function exitWhileVectoring(exitIntInfo: number) {
    const vm = createVm();
    load(vm, 0x1000, [0xf4]);
    realMode(vm);
    expect(kvmRun(vm)).toBe(KVM_EXIT.HLT);
    const vcpu = vm.host.module!.vms.values().next().value!.vcpus[0]!;
    const svm = toSvm(vcpu);
    vcpu.arch.rip = 0x1000;
    Object.assign(svm, { softIntInjected: true, softIntCsbase: 0, softIntOldRip: 0x1000, softIntNextRip: 0x1002 });
    svm.vmcb.w64(VMCB.next_rip, 0); // cleared by the exit (#NPF)
    svm.vmcb.w32(VMCB.exit_int_info, exitIntInfo);
    svmCompleteInterrupts(svm);
    return { vcpu, svm };
  }

  it('puts next_rip back for the re-injection of the same INTn, and queues it as a soft interrupt', () => {
    const { vcpu, svm } = exitWhileVectoring(0x80000421);
    expect(svm.vmcb.get('next_rip')).toBe(0x1002n);
    expect(vcpu.arch.interrupt).toMatchObject({ injected: true, soft: true, nr: 0x21 });
    expect(svm.softIntInjected).toBe(false);
  });

  it('leaves next_rip alone when the exit came while vectoring a fault instead (#NP of the gate)', () => {
    const { vcpu, svm } = exitWhileVectoring(0x80000b0b);
    expect(svm.vmcb.get('next_rip')).toBe(0n);
    expect(vcpu.arch.exception).toMatchObject({ injected: true, nr: 11 });
  });
});
