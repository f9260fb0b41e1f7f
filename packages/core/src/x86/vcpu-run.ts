/**
 * KVM_RUN (arch/x86/kvm/x86.c): kvm_arch_vcpu_ioctl_run -> vcpu_run -> vcpu_enter_guest.
 * Requests are serviced, pending events injected (or an interrupt window opened), the vendor
 * enters the guest, and its exit handler decides: resume, or return to userspace.
 */
import type { KvmVcpu, ExitResult } from './kvm-types.js';
import { KVM_REQ } from './kvm-types.js';
import { ERRNO } from '../uapi/errno.js';
import type { Vcpu } from '../kvm/vcpu.js';
import { KVM_EXIT, KVM_INTERNAL_ERROR, KVM_MP_STATE } from '../uapi/constants.js';
import { kvmCheckRequest, kvmCpuHasInterrupt, kvmGetCr8, kvmHandleTripleFault, kvmRunInternalError, toVcpu } from './x86.js';

/** Root level of the TDP tables the core builds (4-level EPT/NPT). */
const TDP_ROOT_LEVEL = 4;

/** dm_request_for_irq_injection: userspace asked for an interrupt window (no in-kernel PIC). */
function dmRequestForIrqInjection(v: Vcpu): boolean {
  return v.runView.requestInterruptWindow !== 0;
}

/** kvm_vcpu_ready_for_interrupt_injection without an irqchip: IF-and-no-shadow, and no vector queued yet. */
function readyForInterruptInjection(v: Vcpu): boolean {
  return v.ops.interruptAllowed(v, false) > 0 && !kvmCpuHasInterrupt(v);
}

/**
 * kvm_check_and_inject_events: re-inject what was in flight, else the highest-priority pending
 * event. Without an in-kernel irqchip a KVM_INTERRUPT vector is already queued as injected
 * (kvm_queue_interrupt), so it goes in on this entry: userspace waits for
 * ready_for_interrupt_injection before it asks. The vendor's injectIrq counts irq_injections.
 */
function checkAndInjectEvents(v: Vcpu): void {
  const ops = v.ops;
  const a = v.arch;
  if (a.exception.injected) ops.injectException(v);
  else if (a.nmiInjected) ops.injectNmi(v);
  else if (a.interrupt.injected) ops.injectIrq(v, true);
  else if (a.exception.pending) {
    a.exception.pending = false;
    a.exception.injected = true;
    ops.injectException(v);
  } else if (a.nmiPending > 0 && ops.nmiAllowed(v, true) > 0) {
    a.nmiPending--;
    a.nmiInjected = true;
    ops.injectNmi(v);
  }
  if (a.nmiPending > 0) ops.enableNmiWindow(v);
}

/** kvm_mmu_load: point the vendor at this VM's TDP root. */
function kvmMmuLoad(v: Vcpu): void {
  const root = v.kvm.mmu.root;
  if (v.arch.mmuRootHpa !== root) {
    v.arch.mmuRootHpa = root;
    v.ops.loadMmuPgd(v, root, TDP_ROOT_LEVEL);
  }
}

/** vcpu_enter_guest: one entry and one exit. */
export function vcpuEnterGuest(vcpu: KvmVcpu): ExitResult {
  const v = toVcpu(vcpu);
  const ops = v.ops;
  if (v.requests) {
    if (kvmCheckRequest(KVM_REQ.MMU_RELOAD, v)) v.arch.mmuRootHpa = -1;
    if (kvmCheckRequest(KVM_REQ.TLB_FLUSH, v)) { v.stat['tlb_flush']!++; ops.flushTlbAll(v); }
    if (kvmCheckRequest(KVM_REQ.TLB_FLUSH_CURRENT, v)) ops.flushTlbCurrent(v);
    if (kvmCheckRequest(KVM_REQ.TLB_FLUSH_GUEST, v)) ops.flushTlbGuest(v);
    if (kvmCheckRequest(KVM_REQ.TRIPLE_FAULT, v)) return kvmHandleTripleFault(v);
    if (kvmCheckRequest(KVM_REQ.GET_NESTED_STATE_PAGES, v) && ops.nestedCheckEvents) ops.nestedCheckEvents(v);
    kvmCheckRequest(KVM_REQ.EVENT, v);
  }
  kvmMmuLoad(v);
  checkAndInjectEvents(v);
  // Userspace wants to inject: open a window as soon as the guest can take it.
  if (dmRequestForIrqInjection(v) && !kvmCpuHasInterrupt(v)) ops.enableIrqWindow(v);
  ops.prepareSwitchToGuest(v);
  const pcpu = v.pcpu;
  // switch_db_regs: DR0-DR3 are not part of the VMCS/VMCB; the breakpoint addresses go in by
  // hand, when they are not already there.
  if (pcpu) {
    const dr = pcpu.cpu.dr;
    const e = v.effDb;
    if (dr[0] !== e[0] || dr[1] !== e[1] || dr[2] !== e[2] || dr[3] !== e[3]) {
      dr[0] = e[0]!; dr[1] = e[1]!; dr[2] = e[2]!; dr[3] = e[3]!;
    }
  }
  const before = pcpu ? pcpu.cpu.icount : 0;
  const fastpath = ops.vcpuRun(v, false);
  if (pcpu) {
    const ran = pcpu.cpu.icount - before;
    v.stat['guest_instructions']! += ran;
    v.kvm.proc.chargeInstructions(ran);
  }
  v.stat['exits']!++;
  const reason = ops.getExitInfo(v).reason;
  const slot = reason & (v.exitCounts.length - 1);
  v.exitCounts[slot]! += 1;
  v.exitSlotReason[slot] = reason;
  return ops.handleExit(v, fastpath);
}

/** vcpu_run: enter and handle exits until one needs userspace or a signal arrives. */
export function vcpuRun(vcpu: KvmVcpu): number {
  const v = toVcpu(vcpu);
  const proc = v.kvm.proc;
  for (;;) {
    const r = vcpuEnterGuest(v);
    const stepped = takeSinglestepExit(v);
    if (v.runErrno) {
      const e = v.runErrno;
      v.runErrno = 0;
      return e;
    }
    if (r === 'userspace' || stepped) return 0;
    if (dmRequestForIrqInjection(v) && readyForInterruptInjection(v)) {
      v.runView.exitReason = KVM_EXIT.IRQ_WINDOW_OPEN;
      v.stat['request_irq_exits']!++;
      return 0;
    }
    if (proc.takeSignal()) {
      v.runView.exitReason = KVM_EXIT.INTR;
      v.stat['signal_exits']!++;
      return -ERRNO.EINTR;
    }
  }
}

/** post_kvm_run_save: what userspace sees of the interrupt state after every KVM_RUN. */
function postKvmRunSave(v: Vcpu): void {
  const run = v.runView;
  run.ifFlag = v.ops.getIfFlag(v) ? 1 : 0;
  run.setCr8(kvmGetCr8(v));
  run.apicBase = v.apicBase;
  run.readyForInterruptInjection = readyForInterruptInjection(v) ? 1 : 0;
}

/** kvm_arch_vcpu_ioctl_run. Returns 0 or -errno; kvm_run holds the exit. */
export function kvmArchVcpuIoctlRun(vcpu: KvmVcpu): number {
  const v = toVcpu(vcpu);
  const ops = v.ops;
  const pcpu = v.kvm.host.pcpus[v.vcpuId % v.kvm.host.pcpus.length];
  if (!pcpu) return -ERRNO.EIO;
  v.runView.flags = 0;
  // vcpu_load: the vCPU runs on a pCPU for the duration of the ioctl.
  v.pcpu = pcpu;
  ops.vcpuLoad(v, pcpu.id);
  let r: number;
  try {
    r = runLoaded(v);
  } catch (e) {
    // A model bug must not escape the ioctl: report it as KVM does an unexpected state.
    v.kvm.host.log(`KVM_RUN vcpu ${v.vcpuId}: ${String(e)}`);
    kvmRunInternalError(v, KVM_INTERNAL_ERROR.UNEXPECTED_EXIT_REASON, []);
    r = 0;
  }
  postKvmRunSave(v);
  ops.vcpuPut(v);
  v.pcpu = null;
  return r;
}

function runLoaded(v: Vcpu): number {
  if (v.arch.mpState === KVM_MP_STATE.UNINITIALIZED) {
    // An AP waiting for INIT/SIPI: without an in-kernel APIC nothing will wake it.
    if (v.runView.immediateExit) return -ERRNO.EINTR;
    return -ERRNO.EAGAIN;
  }
  if (v.completeUserspaceIo) {
    const cui = v.completeUserspaceIo;
    v.completeUserspaceIo = null;
    const r = cui(v);
    if (takeSinglestepExit(v) || r === 'userspace') return v.runErrno ? takeErrno(v) : 0;
  }
  if (v.runView.immediateExit) return -ERRNO.EINTR;
  if (v.kvm.proc.takeSignal()) {
    v.runView.exitReason = KVM_EXIT.INTR;
    v.stat['signal_exits']!++;
    return -ERRNO.EINTR;
  }
  if (v.ops.vcpuPreRun(v) <= 0) return -ERRNO.EINTR;
  return vcpuRun(v);
}

/** The KVM_EXIT_DEBUG kvm_skip_emulated_instruction filled behind a handler that returned 'resume'. */
function takeSinglestepExit(v: Vcpu): boolean {
  const r = v.singlestepExit;
  v.singlestepExit = false;
  return r;
}

function takeErrno(v: Vcpu): number {
  const e = v.runErrno;
  v.runErrno = 0;
  return e;
}
