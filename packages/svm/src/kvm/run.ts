/**
 * Entering and leaving the guest, after svm.c: svm_vcpu_load/put, svm_prepare_switch_to_guest,
 * pre_svm_run with new_asid (ASIDs per pCPU generation), svm_vcpu_run and __svm_vcpu_run
 * (arch/x86/kvm/svm/vmenter.S), svm_complete_interrupts, event injection through EVENTINJ, and
 * interrupt/NMI windows through V_IRQ + VINTR and the IRET intercept.
 */
import { EFER, RFLAGS, type VirtCpu } from '@kvmts/x86';
import { KVM_GUESTDBG, KVM_REQ, type KvmVcpu } from '@kvmts/core';
import {
  INTERCEPT_BIT, SVM_EVTINJ, SVM_INTERRUPT_SHADOW_MASK, TLB_CONTROL, V_INTR_PRIO_MASK,
  V_INTR_PRIO_SHIFT, V_IRQ_MASK, VMCB, VMCB_CLEAN, VMCB_SEG,
} from '../hw/fields.js';
import { svmSkipInstruction } from './exit-handlers.js';
import {
  silicon, svmClrIntercept, svmData, svmGlobals, svmSetIntercept, toSvm, vmcbMarkAllClean,
  vmcbMarkAllDirty, vmcbMarkDirty,
  type SvmCpuData, type VcpuSvm,
} from './setup.js';

const RAX = 0;
const RSP = 4;
/** The VMCB segment attribute's L bit (long-mode code). */
const SEG_ATTRIB_L = 1 << 9;
/** DR6 with no debug condition: the bits that read as 1 (DR6_ACTIVE_LOW). */
const DR6_ACTIVE_LOW = 0xffff0ff0;

export function svmVcpuLoad(vcpu: KvmVcpu, pcpuId: number): void {
  const svm = toSvm(vcpu);
  vcpu.pcpu = vcpu.kvm.host.pcpus[pcpuId] ?? null;
  svm.guestStateLoaded = false;
}

/** svm_prepare_host_switch (vcpu_put): the next load VMSAVEs host state again. */
export function svmVcpuPut(vcpu: KvmVcpu): void {
  toSvm(vcpu).guestStateLoaded = false;
}

/** svm_prepare_switch_to_guest: VMSAVE the host's FS/GS/TR/LDTR/syscall MSRs into the save area, once per load. */
export function svmPrepareSwitchToGuest(vcpu: KvmVcpu): void {
  const svm = toSvm(vcpu);
  if (svm.guestStateLoaded || !vcpu.pcpu) return;
  silicon(vcpu.pcpu.cpu).vmsave(svmData(vcpu.pcpu).saveAreaPa);
  svm.guestStateLoaded = true;
}

/** new_asid: the next ASID of this pCPU; on wrap a new generation and a flush of every ASID. */
export function newAsid(svm: VcpuSvm, sd: SvmCpuData): void {
  if (sd.nextAsid > sd.maxAsid) {
    ++sd.asidGeneration;
    sd.nextAsid = sd.minAsid;
    svm.vmcb.w8(VMCB.tlb_ctl, TLB_CONTROL.FLUSH_ALL_ASID);
  }
  svm.asidGeneration = sd.asidGeneration;
  svm.asid = sd.nextAsid++;
}

/**
 * pre_svm_run: a VMCB that moved to another pCPU is all dirty (clean bits are per logical CPU)
 * and, like an old generation, gets a new ASID.
 */
export function preSvmRun(svm: VcpuSvm, sd: SvmCpuData): void {
  if (svm.vmcbCpu !== sd.cpu) {
    svm.asidGeneration = 0;
    vmcbMarkAllDirty(svm.vmcb);
    svm.vmcbCpu = sd.cpu;
  }
  if (svm.asidGeneration !== sd.asidGeneration) newAsid(svm, sd);
  if (svm.vmcb.r32(VMCB.asid) !== svm.asid) {
    svm.vmcb.w32(VMCB.asid, svm.asid);
    vmcbMarkDirty(svm.vmcb, VMCB_CLEAN.ASID);
  }
  sd.currentVmcb = svm.vmcbPa;
}

/** Host GPRs __svm_vcpu_run preserves across VMRUN (the callee-saved set; we keep all of them). */
const hostRegs = new Int32Array(16);
const hostRegsHi = new Int32Array(16);

/** dst[r] = src[r] for every GPR but RAX and RSP (those travel in the VMCB); straight-line, which V8 compiles to plain moves. */
function copyGprs(dst: Int32Array, src: Int32Array): void {
  dst[1] = src[1]!; dst[2] = src[2]!; dst[3] = src[3]!; dst[5] = src[5]!; dst[6] = src[6]!; dst[7] = src[7]!;
  dst[8] = src[8]!; dst[9] = src[9]!; dst[10] = src[10]!; dst[11] = src[11]!; dst[12] = src[12]!;
  dst[13] = src[13]!; dst[14] = src[14]!; dst[15] = src[15]!;
}

/** The GPRs but RAX and RSP, both halves: `save` takes the CPU's, the CPU takes `load`'s. */
function swapGprs(cpu: VirtCpu, load: Int32Array, loadHi: Int32Array, save: Int32Array, saveHi: Int32Array): void {
  copyGprs(save, cpu.gpr);
  copyGprs(saveHi, cpu.gprHi);
  copyGprs(cpu.gpr, load);
  copyGprs(cpu.gprHi, loadHi);
}

/**
 * svm_vcpu_run: RAX, RSP and RIP travel in the VMCB; CLGI; __svm_vcpu_run (VMLOAD vmcb01,
 * the other GPRs by software, VMRUN, GPRs back, VMSAVE vmcb01, VMLOAD the host save area);
 * STGI; then the interrupt state the exit left. Returns the fastpath verdict (0: none).
 */
export function svmVcpuRun(vcpu: KvmVcpu, forceImmediateExit: boolean): number {
  const svm = toSvm(vcpu);
  const v = svm.vmcb;
  const arch = vcpu.arch;
  const pcpu = vcpu.pcpu!;
  const cpu = pcpu.cpu;
  const sd = svmData(pcpu);
  const hw = silicon(cpu);

  v.w64Halves(VMCB.rax, arch.regs[RAX]!, arch.regsHi[RAX]!);
  v.w64Halves(VMCB.rsp, arch.regs[RSP]!, arch.regsHi[RSP]!);
  v.w64(VMCB.rip, arch.rip);
  preSvmRun(svm, sd);
  v.w64(VMCB.cr2, arch.cr2);
  // Run with a clean DR6 so that a #DB intercept sees exactly its own conditions; the guest's DR6
  // is KVM's (every DR access is intercepted). svm_set_dr6 marks it dirty only when it changes.
  if (v.r32(VMCB.dr6) !== DR6_ACTIVE_LOW >>> 0 || v.r32(VMCB.dr6 + 4) !== 0) {
    v.w64(VMCB.dr6, DR6_ACTIVE_LOW);
    vmcbMarkDirty(v, VMCB_CLEAN.DR);
  }
  if (forceImmediateExit) cpu.raiseInterrupt(0xf2); // smp_send_reschedule: an IPI to ourselves
  if (svm.snapshot) snapshot(svm, sd);

  hw.clgi();
  // __svm_vcpu_run.
  hw.vmload(svm.vmcbPa);
  swapGprs(cpu, arch.regs, arch.regsHi, hostRegs, hostRegsHi);
  const stop = hw.vmrun(svm.vmcbPa);
  swapGprs(cpu, hostRegs, hostRegsHi, arch.regs, arch.regsHi);
  hw.vmsave(svm.vmcbPa);
  hw.vmload(sd.saveAreaPa);
  hw.stgi();
  // local_irq_enable: the host takes the interrupt that ended the guest (its tick, or the kick).
  if (cpu.pendingInterrupt >= 0) cpu.pendingInterrupt = -1;

  arch.cr2 = v.rAddr(VMCB.cr2);
  arch.regs[RAX] = v.r32(VMCB.rax); arch.regsHi[RAX] = v.r32(VMCB.rax + 4);
  arch.regs[RSP] = v.r32(VMCB.rsp); arch.regsHi[RSP] = v.r32(VMCB.rsp + 4);
  arch.rip = v.rAddr(VMCB.rip);
  svm.nextRip = 0;
  v.w8(VMCB.tlb_ctl, TLB_CONTROL.DO_NOTHING);
  vmcbMarkAllClean(v);
  svm.lastStop = stop;
  svmCompleteInterrupts(svm);
  return 0;
}

function snapshot(svm: VcpuSvm, sd: SvmCpuData): void {
  const mem = svm.vcpu.kvm.host.mem;
  svm.snapshot = mem.readBytes(svm.vmcbPa, 4096);
  svm.hsaveSnapshot = mem.readBytes(sd.saveAreaPa, 4096);
}

/** kvm_get_linear_rip: CS.base + RIP, truncated to 32 bits outside 64-bit mode. */
function linearRip(svm: VcpuSvm): number {
  const arch = svm.vcpu.arch;
  const v = svm.vmcb;
  if (arch.efer & EFER.LMA && v.r16(VMCB_SEG.cs + 2) & SEG_ATTRIB_L) return arch.rip;
  return (v.rAddr(VMCB_SEG.cs + 8) + arch.rip) >>> 0;
}

/**
 * svm_complete_soft_interrupt: an exit while the CPU vectored the INTn/INT3/INTO KVM injected.
 * With NRIPS, next_rip (cleared by the exit) is set back so the re-injection returns to the same
 * place; without it, the RIP KVM advanced before injecting is unwound.
 */
function svmCompleteSoftInterrupt(svm: VcpuSvm, vector: number, type: number): void {
  const isException = type === SVM_EVTINJ.TYPE_EXEPT;
  const isSoft = type === SVM_EVTINJ.TYPE_SOFT;
  if (svmGlobals.nrips && (isSoft || (isException && kvmExceptionIsSoft(vector))) &&
      linearRip(svm) === svm.softIntOldRip + svm.softIntCsbase) {
    svm.vmcb.w64(VMCB.next_rip, svm.softIntNextRip);
  } else if (!svmGlobals.nrips && (isSoft || isException) && linearRip(svm) === svm.softIntNextRip + svm.softIntCsbase) {
    svm.vcpu.arch.rip = svm.softIntOldRip;
  }
}

/** svm_complete_interrupts: an event the exit interrupted goes back to KVM's queues, to be reinjected. */
export function svmCompleteInterrupts(svm: VcpuSvm): void {
  const vcpu = svm.vcpu;
  const arch = vcpu.arch;
  const v = svm.vmcb;
  const softIntInjected = svm.softIntInjected;
  svm.softIntInjected = false;
  // An IRET intercepted for an NMI window has completed once RIP moved past it.
  if (svm.awaitingIretCompletion && arch.rip !== svm.nmiIretRip) {
    svm.awaitingIretCompletion = false;
    svm.nmiMasked = false;
    vcpu.requests |= KVM_REQ.EVENT;
  }
  arch.nmiInjected = false;
  arch.exception.pending = false;
  arch.exception.injected = false;
  arch.interrupt.injected = false;
  const info = v.r32(VMCB.exit_int_info);
  if (!(info & SVM_EVTINJ.VALID)) return;
  vcpu.requests |= KVM_REQ.EVENT;
  const vector = info & SVM_EVTINJ.VEC_MASK;
  const type = info & SVM_EVTINJ.TYPE_MASK;
  if (softIntInjected) svmCompleteSoftInterrupt(svm, vector, type);
  switch (type) {
    case SVM_EVTINJ.TYPE_NMI:
      arch.nmiInjected = true;
      break;
    case SVM_EVTINJ.TYPE_EXEPT:
      arch.exception.injected = true;
      arch.exception.nr = vector;
      arch.exception.hasErrorCode = (info & SVM_EVTINJ.VALID_ERR) !== 0;
      arch.exception.errorCode = v.r32(VMCB.exit_int_info_err);
      break;
    case SVM_EVTINJ.TYPE_INTR:
    case SVM_EVTINJ.TYPE_SOFT:
      arch.interrupt.injected = true;
      arch.interrupt.soft = type === SVM_EVTINJ.TYPE_SOFT;
      arch.interrupt.nr = vector;
      break;
  }
}

/** kvm_exception_is_soft: #BP and #OF come from INT3 and INTO, and return past them. */
function kvmExceptionIsSoft(vector: number): boolean {
  return vector === BP_VECTOR || vector === OF_VECTOR;
}

/**
 * svm_update_soft_interrupt_rip: injecting INTn/INT3/INTO needs the instruction's end. Skip it
 * (next_rip, else the emulator) to learn that RIP, put it in the VMCB's next_rip, where the CPU
 * takes the return address from, and keep RIP at the instruction; remember both for
 * svm_complete_soft_interrupt. Returns false when the instruction cannot be skipped: the event
 * is dropped and the instruction runs again.
 */
function svmUpdateSoftInterruptRip(vcpu: KvmVcpu): boolean {
  const svm = toSvm(vcpu);
  const oldRip = vcpu.arch.rip;
  if (!svmSkipInstruction(vcpu, !svmGlobals.nrips)) return false;
  const rip = vcpu.arch.rip;
  svm.softIntInjected = true;
  svm.softIntCsbase = svm.vmcb.rAddr(VMCB_SEG.cs + 8);
  svm.softIntOldRip = oldRip;
  svm.softIntNextRip = rip;
  if (svmGlobals.nrips) vcpu.arch.rip = oldRip;
  // The silicon has NRIPS (X86_FEATURE_NRIPS) even when KVM does not use it: it reads next_rip.
  svm.vmcb.w64(VMCB.next_rip, rip);
  return true;
}

/** svm_cancel_injection: the event not yet delivered returns to the queues. */
export function svmCancelInjection(vcpu: KvmVcpu): void {
  const svm = toSvm(vcpu);
  const v = svm.vmcb;
  v.w32(VMCB.exit_int_info, v.r32(VMCB.event_inj));
  v.w32(VMCB.exit_int_info_err, v.r32(VMCB.event_inj_err));
  v.w32(VMCB.event_inj, 0);
  svmCompleteInterrupts(svm);
}

export function svmInjectIrq(vcpu: KvmVcpu, _reinjected: boolean): void {
  const it = vcpu.arch.interrupt;
  if (it.soft && !svmUpdateSoftInterruptRip(vcpu)) return;
  const type = it.soft ? SVM_EVTINJ.TYPE_SOFT : SVM_EVTINJ.TYPE_INTR;
  toSvm(vcpu).vmcb.w32(VMCB.event_inj, (it.nr & 0xff) | SVM_EVTINJ.VALID | type);
  vcpu.stat['irq_injections'] = (vcpu.stat['irq_injections'] ?? 0) + 1;
}

export function svmInjectNmi(vcpu: KvmVcpu): void {
  const svm = toSvm(vcpu);
  svm.vmcb.w32(VMCB.event_inj, 2 | SVM_EVTINJ.VALID | SVM_EVTINJ.TYPE_NMI);
  svm.nmiMasked = true;
  svmSetIntercept(svm, INTERCEPT_BIT.IRET);
  vcpu.stat['nmi_injections'] = (vcpu.stat['nmi_injections'] ?? 0) + 1;
}

/** svm_inject_exception: EVENTINJ type exception, with the error code when the vector has one. */
export function svmInjectException(vcpu: KvmVcpu): void {
  const ex = vcpu.arch.exception;
  if (kvmExceptionIsSoft(ex.nr) && !svmUpdateSoftInterruptRip(vcpu)) return;
  const v = toSvm(vcpu).vmcb;
  v.w32(VMCB.event_inj, (ex.nr & 0xff) | SVM_EVTINJ.VALID | (ex.hasErrorCode ? SVM_EVTINJ.VALID_ERR : 0) | SVM_EVTINJ.TYPE_EXEPT);
  v.w32(VMCB.event_inj_err, ex.errorCode);
}

/** svm_set_vintr: a dummy virtual interrupt whose VINTR intercept opens the IRQ window. */
export function svmSetVintr(svm: VcpuSvm): void {
  svmSetIntercept(svm, INTERCEPT_BIT.VINTR);
  const v = svm.vmcb;
  v.w32(VMCB.int_vector, 0);
  v.w32(VMCB.int_ctl, (v.r32(VMCB.int_ctl) & ~V_INTR_PRIO_MASK) | V_IRQ_MASK | (0xf << V_INTR_PRIO_SHIFT));
  vmcbMarkDirty(v, VMCB_CLEAN.INTR);
}

export function svmClearVintr(svm: VcpuSvm): void {
  svmClrIntercept(svm, INTERCEPT_BIT.VINTR);
  const v = svm.vmcb;
  v.w32(VMCB.int_ctl, v.r32(VMCB.int_ctl) & ~(V_IRQ_MASK | V_INTR_PRIO_MASK));
  vmcbMarkDirty(v, VMCB_CLEAN.INTR);
}

function gifSet(vcpu: KvmVcpu): boolean {
  return vcpu.pcpu ? silicon(vcpu.pcpu.cpu).gif || !silicon(vcpu.pcpu.cpu).guest : true;
}

/** svm_enable_irq_window. */
export function svmEnableIrqWindow(vcpu: KvmVcpu): void {
  if (gifSet(vcpu)) svmSetVintr(toSvm(vcpu));
}

const DB_VECTOR = 1;
const BP_VECTOR = 3;
const OF_VECTOR = 4;

/**
 * svm_enable_nmi_window: a masked NMI waits for the IRET intercept; once the IRET has been seen
 * (or something else blocks the NMI), single-step the guest with TF and a #DB intercept, so the
 * next instruction boundary exits and KVM can inject.
 */
export function svmEnableNmiWindow(vcpu: KvmVcpu): void {
  const svm = toSvm(vcpu);
  if (svm.nmiMasked && !svm.awaitingIretCompletion) return; // IRET will cause a vm exit
  if (svm.nmiSinglestep) return;
  const v = svm.vmcb;
  svm.nmiSinglestepGuestRflags = v.r32(VMCB.rflags);
  svm.nmiSinglestep = true;
  v.w64(VMCB.rflags, (v.r32(VMCB.rflags) | RFLAGS.TF | RFLAGS.RF) >>> 0);
  svmSetIntercept(svm, 64 + DB_VECTOR);
}

/** disable_nmi_singlestep: TF and RF back as the guest had them, unless userspace single-steps too. */
export function svmDisableNmiSinglestep(svm: VcpuSvm): void {
  svm.nmiSinglestep = false;
  svmUpdateExceptionBitmap(svm.vcpu);
  if ((svm.vcpu.guestDebug ?? 0) & KVM_GUESTDBG.SINGLESTEP) return;
  const v = svm.vmcb;
  const keep = svm.nmiSinglestepGuestRflags & (RFLAGS.TF | RFLAGS.RF);
  v.w64(VMCB.rflags, ((v.r32(VMCB.rflags) & ~(RFLAGS.TF | RFLAGS.RF)) | keep) >>> 0);
}

/**
 * update_exception_bitmap (svm.c update_db_bp_intercept): #DB while KVM single-steps for the NMI
 * window or userspace debugs (single-step, hardware breakpoints); #BP for software breakpoints.
 */
export function svmUpdateExceptionBitmap(vcpu: KvmVcpu): void {
  const svm = toSvm(vcpu);
  svmClrIntercept(svm, 64 + DB_VECTOR);
  svmClrIntercept(svm, 64 + BP_VECTOR);
  const dbg = vcpu.guestDebug ?? 0;
  if (svm.nmiSinglestep || (dbg & KVM_GUESTDBG.ENABLE && dbg & (KVM_GUESTDBG.SINGLESTEP | KVM_GUESTDBG.USE_HW_BP))) {
    svmSetIntercept(svm, 64 + DB_VECTOR);
  }
  if (dbg & KVM_GUESTDBG.ENABLE && dbg & KVM_GUESTDBG.USE_SW_BP) svmSetIntercept(svm, 64 + BP_VECTOR);
}

export function svmGetInterruptShadow(vcpu: KvmVcpu): number {
  // KVM_X86_SHADOW_INT_MOV_SS | KVM_X86_SHADOW_INT_STI
  return toSvm(vcpu).vmcb.r32(VMCB.int_state) & SVM_INTERRUPT_SHADOW_MASK ? 3 : 0;
}

export function svmSetInterruptShadow(vcpu: KvmVcpu, mask: number): void {
  const v = toSvm(vcpu).vmcb;
  v.w32(VMCB.int_state, mask ? v.r32(VMCB.int_state) | SVM_INTERRUPT_SHADOW_MASK : v.r32(VMCB.int_state) & ~SVM_INTERRUPT_SHADOW_MASK);
}

/** svm_interrupt_blocked, inverted as interrupt_allowed returns it. */
export function svmInterruptAllowed(vcpu: KvmVcpu, _forNested: boolean): number {
  const v = toSvm(vcpu).vmcb;
  if ((v.r32(VMCB.rflags) & RFLAGS.IF) === 0) return 0;
  if (v.r32(VMCB.int_state) & SVM_INTERRUPT_SHADOW_MASK) return 0;
  return 1;
}

export function svmNmiAllowed(vcpu: KvmVcpu, _forNested: boolean): number {
  const svm = toSvm(vcpu);
  if (svm.nmiMasked) return 0;
  if (svm.vmcb.r32(VMCB.int_state) & SVM_INTERRUPT_SHADOW_MASK) return 0;
  return 1;
}

export function svmGetNmiMask(vcpu: KvmVcpu): boolean {
  return toSvm(vcpu).nmiMasked;
}

export function svmSetNmiMask(vcpu: KvmVcpu, masked: boolean): void {
  const svm = toSvm(vcpu);
  svm.nmiMasked = masked;
  if (masked) svmSetIntercept(svm, INTERCEPT_BIT.IRET);
  else { svm.awaitingIretCompletion = false; svmClrIntercept(svm, INTERCEPT_BIT.IRET); }
}

/** svm_update_cr8_intercept: exit on CR8 writes only while a pending interrupt is masked by the TPR. */
export function svmUpdateCr8Intercept(vcpu: KvmVcpu, tpr: number, irr: number): void {
  const svm = toSvm(vcpu);
  svmClrIntercept(svm, 16 + 8);
  if (irr === -1) return;
  if (tpr >= irr) svmSetIntercept(svm, 16 + 8);
}

/** The VINTR exit opened the window: drop the dummy interrupt and let KVM inject. */
export function svmIrqWindowOpened(svm: VcpuSvm): void {
  svmClearVintr(svm);
  svm.vcpu.requests |= KVM_REQ.EVENT;
}
