/**
 * kvm_task_switch (arch/x86/kvm/x86.c) and emulator_task_switch (emulate.c): a guest task
 * switch that exited (VMX exit reason 9, SVM #VMEXIT TASK_SWITCH) is done in software. The
 * instruction emulator's CPU gets the vCPU's state, performs the switch with @kvmts/x86's
 * `switchTasks` (SDM Vol. 3A 7.3) on the guest-physical bus, and the state comes back: GPRs,
 * RIP, RFLAGS, the segments with TR and LDTR, CR0.TS, CR3 and DR7 through the common code.
 * A fault raised by the switch is queued for the guest (X86EMUL_PROPAGATE_FAULT); a fault
 * after the commit point is taken in the new task, whose state is kept. MMIO or an internal
 * failure is KVM_EXIT_INTERNAL_ERROR / KVM_INTERNAL_ERROR_EMULATION with no data.
 */
import { AR, SEG, TASK_SOURCE, VEC, descAr, readDescriptor, readLinear, switchTasks, type Segment, type TaskSource, type VirtCpu } from '@kvmts/x86';
import { KVM_INTERNAL_ERROR } from '../uapi/constants.js';
import type { ExitResult, KvmVcpu } from './kvm-types.js';
import { emulatorOf, loadState, storeState } from './emulate.js';
import {
  kvmGetDr, kvmInjectPageFault, kvmQueueException, kvmRunInternalError, kvmSetDr, toVcpu,
} from './x86.js';

/** TASK_SWITCH_CALL, _IRET, _JMP and _GATE of kvm_host.h: the same numbers as the VMX qualification's source. */
export const TASK_SWITCH = TASK_SOURCE;

/** A fault the switch raised (x86_exception): what X86EMUL_PROPAGATE_FAULT hands back. */
type EmulatedFault = { vector: number; errorCode: number };

/**
 * emulator_do_task_switch: the checks KVM makes itself (the gate's DPL for INT n through a task
 * gate, a present TSS), then the switch. The old task saves RIP as the vendor left it: past the
 * instruction that caused the switch, or on the one an exception faulted.
 */
function emulatorDoTaskSwitch(cpu: VirtCpu, tssSelector: number, idtIndex: number, reason: TaskSource, errorCode: number): void {
  const next = readDescriptor(cpu, tssSelector, VEC.GP);
  if (reason === TASK_SWITCH.GATE && idtIndex !== -1) {
    // A software interrupt: the task gate's DPL against CPL and the selector's RPL.
    const gateHi = readLinear(cpu, cpu.idtr.base + idtIndex * 8 + 4, 4);
    const dpl = (gateHi >>> 13) & 3;
    if ((tssSelector & 3) > dpl || cpu.cpl > dpl) cpu.fault(VEC.GP, (idtIndex << 3) | 2);
  }
  if (!(descAr(next) & AR.P)) cpu.fault(VEC.TS, tssSelector & 0xfffc);
  switchTasks(cpu, tssSelector, next, reason, cpu.rip, errorCode, 0);
}

/**
 * Runs the switch on the emulator CPU, outside any instruction: a fault it raises comes back
 * (null after a clean switch); anything else thrown is an emulation failure.
 */
function emulatorTaskSwitch(cpu: VirtCpu, tssSelector: number, idtIndex: number, reason: TaskSource, errorCode: number): EmulatedFault | null {
  return cpu.catchFault(() => emulatorDoTaskSwitch(cpu, tssSelector, idtIndex, reason, errorCode));
}

/**
 * After a fault past the commit point, the registers the switch had not loaded yet hold the
 * new task's selectors over no descriptor (the CPU's placeholders until it reads the tables).
 * Linux's load_state_from_tss32 sets the selectors first and leaves the cached parts as they
 * were (set_segment_selector); so does this, which keeps CS usable for the next VM entry.
 * A segment is unloaded when it is unusable with a non-null selector, or is CS or SS (a null
 * CS or SS is itself a fault in a task switch).
 */
function keepUnloadedSegments(cpu: VirtCpu, before: readonly Segment[]): void {
  for (let i = 0; i < cpu.seg.length; i++) {
    const s = cpu.seg[i]!;
    if (!(s.ar & AR.UNUSABLE) || i === SEG.TR) continue;
    if ((s.selector & 0xfffc) === 0 && i !== SEG.CS && i !== SEG.SS) continue;
    cpu.seg[i] = { ...before[i]!, selector: s.selector };
  }
  cpu.stateChanged();
}

/**
 * kvm_task_switch. `idtIndex` is the vector of an INT n through a task gate (-1 otherwise),
 * `reason` one of TASK_SWITCH, and the error code is pushed on the new task's stack when
 * `hasErrorCode` (an exception through a task gate). Returns 'resume', or 'userspace' after
 * filling kvm_run with KVM_EXIT_INTERNAL_ERROR.
 */
export function kvmTaskSwitch(
  vcpu: KvmVcpu, tssSelector: number, idtIndex: number, reason: number, hasErrorCode: boolean, errorCode: number,
): ExitResult {
  const v = toVcpu(vcpu);
  const { cpu, bus } = emulatorOf(v);
  loadState(v, cpu);
  const before = cpu.seg.map((s) => ({ ...s }));
  cpu.dr[6] = kvmGetDr(v, 6);
  cpu.dr[7] = kvmGetDr(v, 7);
  bus.begin(null);
  // No access is answered by userspace here: a switch that needs MMIO fails (as Linux's does).
  const answered = v.userAccesses;
  v.userAccesses = [];
  let fault: EmulatedFault | null = null;
  let failed = false;
  try {
    fault = emulatorTaskSwitch(cpu, tssSelector & 0xffff, idtIndex, (reason & 3) as TaskSource, hasErrorCode ? errorCode >>> 0 : -1);
  } catch {
    failed = true;
  }
  v.userAccesses = answered;
  // X86EMUL_UNHANDLEABLE: a model error, or an access userspace would have to answer.
  if (failed || bus.pending) {
    v.stat['insn_emulation_fail']!++;
    return kvmRunInternalError(v, KVM_INTERNAL_ERROR.EMULATION, []);
  }
  if (fault) keepUnloadedSegments(cpu, before);
  storeState(v, cpu);
  // DR6.BT of a new task's T flag (its #DB is delivered by the emulator CPU, as the switch's last step).
  if (cpu.dr[6] !== kvmGetDr(v, 6)) kvmSetDr(v, 6, cpu.dr[6]!);
  if (cpu.dr[7] !== kvmGetDr(v, 7)) kvmSetDr(v, 7, cpu.dr[7]!);
  if (fault) {
    if (fault.vector === VEC.PF) kvmInjectPageFault(v, cpu.cr2, fault.errorCode);
    else if (fault.errorCode >= 0) kvmQueueException(v, fault.vector, fault.errorCode);
    else kvmQueueException(v, fault.vector);
  }
  return 'resume';
}
