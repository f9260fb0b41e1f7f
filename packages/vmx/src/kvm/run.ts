/**
 * Entering and leaving the guest, after arch/x86/kvm/vmx/vmx.c: vmx_vcpu_load_vmcs / vmx_vcpu_put
 * (VMPTRLD, loaded_vmcss_on_cpu, VMCLEAR when a vCPU moves), vmx_vcpu_run and __vmx_vcpu_run
 * (vmenter.S: the GPR swap, VMLAUNCH or VMRESUME), vmx_complete_interrupts, event injection
 * through VM_ENTRY_INTR_INFO_FIELD, interrupt and NMI windows, and the register, segment and
 * control-register accessors the common code reaches through kvm_x86_ops.
 */
import { CR0, EFER, RFLAGS, INTR_INFO, EVENT_TYPE, VEC, SEG, type VirtCpu } from '@kvmts/x86';
import {
  KVM_REQ, kvmMakeRequest, kvmClearExceptionQueue, kvmClearInterruptQueue, kvmQueueInterrupt, kvmRequeueException,
  type KvmVcpu, type KvmSegment, type KvmDtable,
} from '@kvmts/core';
import { VMCS, FIELD, FIELD_COUNT } from '../hw/fields.js';
import { CPU_BASED, PIN_BASED, VM_ENTRY } from '../hw/caps.js';
import { VMX_STATUS, vmreadRows } from '../hw/instructions.js';
import { VMX_EXIT_REASONS_FAILED_VMENTRY } from '../hw/exit.js';
import type { VmxSilicon } from '../hw/silicon.js';
import { EPTP } from '../hw/tdp.js';
import { toVmx, vmxCpuData, silicon, loadedVmcsClearLocal, vmxSetHostState, vmxHardwareEnable, type VcpuVmx } from './setup.js';

const RSP = 4;
const EXREG_CR3 = 19;
/** vmx->exit_reason.full when VMLAUNCH/VMRESUME itself failed (vmx->fail). */
export const VMX_FAIL_EXIT_REASON = 0xdead;

// ---- vcpu_load / vcpu_put ---------------------------------------------------------------------

/** vmx_vcpu_load_vmcs: make the vCPU's VMCS current on pCPU `cpuId`. */
export function vmxVcpuLoad(vcpu: KvmVcpu, cpuId: number): void {
  const vmx = toVmx(vcpu);
  const host = vmx.module.host;
  const pcpu = host.pcpus[cpuId]!;
  const d = vmxCpuData(pcpu);
  const l = vmx.loadedVmcs;
  // hardware_enable on a pCPU that has not done VMXON yet (kvm_arch_hardware_enable on CPU online).
  if (!silicon(pcpu.cpu).inVmxOperation) vmxHardwareEnable(host, cpuId);
  const alreadyLoaded = l.cpu === cpuId;
  if (!alreadyLoaded) {
    // loaded_vmcs_clear: VMCLEAR on the pCPU where it was active, so its data is in memory.
    if (l.cpu >= 0) loadedVmcsClearLocal(host.pcpus[l.cpu]!, l);
    d.loadedVmcss.add(l);
  }
  const s = silicon(pcpu.cpu);
  if (d.currentVmcs !== l.vmcs) {
    d.currentVmcs = l.vmcs;
    s.vmptrld(l.vmcs);
  }
  if (!alreadyLoaded) {
    // Linux updates HOST_TR_BASE, HOST_GDTR_BASE and SYSENTER_ESP here: per-cpu host state.
    vmxSetHostState(s, pcpu.cpu);
    l.cpu = cpuId;
    // The pCPU may hold stale mappings tagged with this VPID and EPTP: from this vCPU's earlier
    // stay, or from a destroyed VM whose VPID was freed and handed out again (vmx_vcpu_load_vmcs).
    kvmMakeRequest(KVM_REQ.TLB_FLUSH, vcpu);
  }
  vcpu.pcpu = pcpu;
}

export function vmxVcpuPut(_vcpu: KvmVcpu): void {
  // vmx_prepare_switch_to_host has nothing to restore: the TypeScript kernel keeps no state in the
  // pCPU's syscall MSRs or GPRs (vmxVcpuRun moves the guest's in and out).
}

/** The silicon on which the vCPU's VMCS is current, loading it first if it is active nowhere. */
export function vmcsSilicon(vmx: VcpuVmx): VmxSilicon {
  const l = vmx.loadedVmcs;
  if (l.cpu < 0) vmxVcpuLoad(vmx.vcpu, vmx.vcpu.pcpu?.id ?? 0);
  const pcpu = vmx.module.host.pcpus[l.cpu]!;
  const d = vmxCpuData(pcpu);
  const s = silicon(pcpu.cpu);
  if (d.currentVmcs !== l.vmcs) {
    d.currentVmcs = l.vmcs;
    s.vmptrld(l.vmcs);
  }
  return s;
}

// ---- controls (the vmx->*_controls shadow setters) ----------------------------------------------

export function execControlsSetbit(vmx: VcpuVmx, bits: number): void {
  const v = (vmx.execCtl | bits) >>> 0;
  if (v !== vmx.execCtl) { vmx.execCtl = v; vmcsSilicon(vmx).vmwrite32(VMCS.CPU_BASED_VM_EXEC_CONTROL, v); }
}

export function execControlsClearbit(vmx: VcpuVmx, bits: number): void {
  const v = (vmx.execCtl & ~bits) >>> 0;
  if (v !== vmx.execCtl) { vmx.execCtl = v; vmcsSilicon(vmx).vmwrite32(VMCS.CPU_BASED_VM_EXEC_CONTROL, v); }
}

function entryControlsSet(vmx: VcpuVmx, v: number): void {
  if (v !== vmx.entryCtl) { vmx.entryCtl = v >>> 0; vmcsSilicon(vmx).vmwrite32(VMCS.VM_ENTRY_CONTROLS, v >>> 0); }
}

function pinControlsSet(vmx: VcpuVmx, v: number): void {
  if (v !== vmx.pinCtl) { vmx.pinCtl = v >>> 0; vmcsSilicon(vmx).vmwrite32(VMCS.PIN_BASED_VM_EXEC_CONTROL, v >>> 0); }
}

// ---- vcpu_run ------------------------------------------------------------------------------

/**
 * The syscall MSRs and TSC_AUX KVM switches by software (vmx_prepare_switch_to_guest): the
 * guest's go on the pCPU for the entry, and come back after the exit. The TypeScript kernel runs
 * no code that uses them, so there are no host values to keep.
 */
function loadGuestMsrs(vmx: VcpuVmx, c: VirtCpu): void {
  const g = vmx.guestMsrs;
  c.kernelGsBase = g.kernelGsBase; c.starLo = g.starLo; c.starHi = g.starHi; c.lstar = g.lstar; c.cstar = g.cstar; c.sfmask = g.sfmask; c.tscAux = g.tscAux;
}

function saveGuestMsrs(vmx: VcpuVmx, c: VirtCpu): void {
  const g = vmx.guestMsrs;
  g.kernelGsBase = c.kernelGsBase; g.starLo = c.starLo; g.starHi = c.starHi; g.lstar = c.lstar; g.cstar = c.cstar; g.sfmask = c.sfmask; g.tscAux = c.tscAux;
}

/** The 16 GPR halves, unrolled: twice as fast as a loop or TypedArray.set for 16 elements. */
function copyGprs(to: Int32Array, from: Int32Array): void {
  to[0] = from[0]!; to[1] = from[1]!; to[2] = from[2]!; to[3] = from[3]!;
  to[4] = from[4]!; to[5] = from[5]!; to[6] = from[6]!; to[7] = from[7]!;
  to[8] = from[8]!; to[9] = from[9]!; to[10] = from[10]!; to[11] = from[11]!;
  to[12] = from[12]!; to[13] = from[13]!; to[14] = from[14]!; to[15] = from[15]!;
}

/**
 * vmx_vcpu_run: sync the registers KVM changed into the VMCS, swap GPRs (__vmx_vcpu_run), then
 * VMLAUNCH or VMRESUME; afterwards read the exit reason and recover what the exit interrupted.
 * Returns the fastpath verdict (EXIT_FASTPATH_NONE: 0).
 */
export function vmxVcpuRun(vcpu: KvmVcpu, forceImmediateExit: boolean): number {
  const vmx = toVmx(vcpu);
  const s = vmcsSilicon(vmx);
  const a = vcpu.arch;
  const cpu = s.cpu;
  s.vmwriteNum(VMCS.GUEST_RIP, a.rip);
  const lv = vmx.loadedVmcs;
  if (vmx.rspVmcs !== lv || a.regs[RSP] !== vmx.rspLo || a.regsHi[RSP] !== vmx.rspHi) {
    s.vmwriteNum(VMCS.GUEST_RSP, a.regsHi[RSP]! * 4294967296 + (a.regs[RSP]! >>> 0));
    vmx.rspLo = a.regs[RSP]!;
    vmx.rspHi = a.regsHi[RSP]!;
    vmx.rspVmcs = lv;
  }
  if ((a.regsDirty ?? 0) & (1 << EXREG_CR3)) {
    s.vmwriteNum(VMCS.GUEST_CR3, a.cr3);
    a.regsDirty! &= ~(1 << EXREG_CR3);
  }
  // An immediate exit after entry, as Linux gets from a zero VMX-preemption timer.
  const timerPin = forceImmediateExit ? vmx.pinCtl | PIN_BASED.VMX_PREEMPTION_TIMER : vmx.pinCtl & ~PIN_BASED.VMX_PREEMPTION_TIMER;
  if (forceImmediateExit) s.vmwrite32(VMCS.VMX_PREEMPTION_TIMER_VALUE, 0);
  pinControlsSet(vmx, timerPin);

  loadGuestMsrs(vmx, cpu);
  // __vmx_vcpu_run: guest GPRs from vcpu->arch.regs, and back after the exit. The TypeScript
  // kernel keeps nothing in the pCPU's GPRs, so there are no host GPRs to push and pop.
  copyGprs(cpu.gpr, a.regs);
  copyGprs(cpu.gprHi, a.regsHi);
  const st = vmx.loadedVmcs.launched ? s.vmresume() : s.vmlaunch();
  copyGprs(a.regs, cpu.gpr);
  copyGprs(a.regsHi, cpu.gprHi);
  saveGuestMsrs(vmx, cpu);
  vmx.lastStop = s.lastStop;
  // VMX_REGS_LAZY_LOAD_SET: what the exit may have changed is read again on demand.
  vmx.rflagsVmcs = null;

  if (st !== VMX_STATUS.SUCCEED) {
    vmx.fail = true;
    vmx.exitReason = VMX_FAIL_EXIT_REASON;
    return 0;
  }
  vmx.fail = false;
  // The exit reason, IDT-vectoring information, RSP and RIP: one run of VMREADs.
  vmreadRows(s, EXIT_READ_ROWS, EXIT_READ_ROWS.length, exitLo, exitHi);
  vmx.exitReason = exitLo[FIELD.VM_EXIT_REASON]! >>> 0;
  // The GPR slot for RSP holds the host's after the swap; the guest's is in the VMCS.
  a.regs[RSP] = vmx.rspLo = exitLo[FIELD.GUEST_RSP]!;
  a.regsHi[RSP] = vmx.rspHi = exitHi[FIELD.GUEST_RSP]!;
  vmx.rspVmcs = lv;
  a.rip = exitHi[FIELD.GUEST_RIP]! * 4294967296 + (exitLo[FIELD.GUEST_RIP]! >>> 0);
  if (vmx.exitReason & VMX_EXIT_REASONS_FAILED_VMENTRY) return 0;
  vmx.loadedVmcs.launched = true;
  vmxCompleteInterrupts(vmx, s, exitLo[FIELD.IDT_VECTORING_INFO_FIELD]! >>> 0);
  return 0;
}

/** What vmx_vcpu_run reads after every exit, and where vmreadRows puts it (arrays by field row). */
const EXIT_READ_ROWS = Int16Array.of(FIELD.VM_EXIT_REASON, FIELD.IDT_VECTORING_INFO_FIELD, FIELD.GUEST_RSP, FIELD.GUEST_RIP);
const exitLo = new Int32Array(FIELD_COUNT);
const exitHi = new Int32Array(FIELD_COUNT);

/** __vmx_complete_interrupts: an event whose delivery the exit interrupted (`idt`, vmx->idt_vectoring_info) is queued again. */
function vmxCompleteInterrupts(vmx: VcpuVmx, s: VmxSilicon, idt: number): void {
  const vcpu = vmx.vcpu;
  vcpu.arch.nmiInjected = false;
  kvmClearExceptionQueue(vcpu);
  kvmClearInterruptQueue(vcpu);
  if (!(idt & INTR_INFO.VALID)) return;
  kvmMakeRequest(KVM_REQ.EVENT, vcpu);
  const vector = idt & INTR_INFO.VECTOR_MASK;
  const type = (idt & INTR_INFO.TYPE_MASK) >> INTR_INFO.TYPE_SHIFT;
  switch (type) {
    case EVENT_TYPE.NMI:
      vcpu.arch.nmiInjected = true;
      vmxSetNmiMask(vcpu, false);
      break;
    case EVENT_TYPE.SW_EXCEPTION:
    case EVENT_TYPE.PRIV_SW_EXCEPTION:
      vmx.eventExitInstLen = s.vmread32(VMCS.VM_EXIT_INSTRUCTION_LEN);
      requeue(vcpu, s, idt, vector);
      break;
    case EVENT_TYPE.HW_EXCEPTION:
      requeue(vcpu, s, idt, vector);
      break;
    case EVENT_TYPE.SOFT_INTR:
      vmx.eventExitInstLen = s.vmread32(VMCS.VM_EXIT_INSTRUCTION_LEN);
      kvmQueueInterrupt(vcpu, vector, true);
      break;
    case EVENT_TYPE.EXT_INTR:
      kvmQueueInterrupt(vcpu, vector, false);
      break;
    default:
      break;
  }
}

function requeue(vcpu: KvmVcpu, s: VmxSilicon, idt: number, vector: number): void {
  if (idt & INTR_INFO.DELIVER_CODE) kvmRequeueException(vcpu, vector, s.vmread32(VMCS.IDT_VECTORING_ERROR_CODE));
  else kvmRequeueException(vcpu, vector);
}

// ---- event injection and windows ---------------------------------------------------------------

/** vmx_inject_irq. */
export function vmxInjectIrq(vcpu: KvmVcpu, _reinjected: boolean): void {
  const vmx = toVmx(vcpu);
  const s = vmcsSilicon(vmx);
  const irq = vcpu.arch.interrupt;
  let info = (irq.nr & 0xff) | INTR_INFO.VALID;
  if (irq.soft) {
    info |= EVENT_TYPE.SOFT_INTR << INTR_INFO.TYPE_SHIFT;
    s.vmwrite32(VMCS.VM_ENTRY_INSTRUCTION_LEN, vmx.eventExitInstLen);
  } else {
    info |= EVENT_TYPE.EXT_INTR << INTR_INFO.TYPE_SHIFT;
  }
  s.vmwrite32(VMCS.VM_ENTRY_INTR_INFO_FIELD, info >>> 0);
  vcpu.stat['irq_injections'] = (vcpu.stat['irq_injections'] ?? 0) + 1;
}

/** vmx_inject_nmi. */
export function vmxInjectNmi(vcpu: KvmVcpu): void {
  vmcsSilicon(toVmx(vcpu)).vmwrite32(VMCS.VM_ENTRY_INTR_INFO_FIELD, (VEC.NMI | (EVENT_TYPE.NMI << INTR_INFO.TYPE_SHIFT) | INTR_INFO.VALID) >>> 0);
  vcpu.stat['nmi_injections'] = (vcpu.stat['nmi_injections'] ?? 0) + 1;
}

const SOFT_EXCEPTIONS = new Set<number>([VEC.BP, VEC.OF]);

/** vmx_inject_exception: error codes only in protected mode (kvm_inject_exception's has_error_code &= is_protmode). */
export function vmxInjectException(vcpu: KvmVcpu): void {
  const vmx = toVmx(vcpu);
  const s = vmcsSilicon(vmx);
  const ex = vcpu.arch.exception;
  let info = (ex.nr & 0xff) | INTR_INFO.VALID;
  if (ex.hasErrorCode && vcpu.arch.cr0 & CR0.PE) {
    s.vmwrite32(VMCS.VM_ENTRY_EXCEPTION_ERROR_CODE, ex.errorCode);
    info |= INTR_INFO.DELIVER_CODE;
  }
  if (SOFT_EXCEPTIONS.has(ex.nr)) {
    s.vmwrite32(VMCS.VM_ENTRY_INSTRUCTION_LEN, vmx.eventExitInstLen);
    info |= EVENT_TYPE.SW_EXCEPTION << INTR_INFO.TYPE_SHIFT;
  } else {
    info |= EVENT_TYPE.HW_EXCEPTION << INTR_INFO.TYPE_SHIFT;
  }
  s.vmwrite32(VMCS.VM_ENTRY_INTR_INFO_FIELD, info >>> 0);
}

/** vmx_cancel_injection: an event written for an entry that did not happen goes back to the queues. */
export function vmxCancelInjection(vcpu: KvmVcpu): void {
  const s = vmcsSilicon(toVmx(vcpu));
  const info = s.vmread32(VMCS.VM_ENTRY_INTR_INFO_FIELD);
  if (info & INTR_INFO.VALID) {
    const vector = info & 0xff;
    const type = (info & INTR_INFO.TYPE_MASK) >> INTR_INFO.TYPE_SHIFT;
    if (type === EVENT_TYPE.NMI) vcpu.arch.nmiInjected = true;
    else if (type === EVENT_TYPE.EXT_INTR || type === EVENT_TYPE.SOFT_INTR) kvmQueueInterrupt(vcpu, vector, type === EVENT_TYPE.SOFT_INTR);
    else if (info & INTR_INFO.DELIVER_CODE) kvmRequeueException(vcpu, vector, s.vmread32(VMCS.VM_ENTRY_EXCEPTION_ERROR_CODE));
    else kvmRequeueException(vcpu, vector);
  }
  s.vmwrite32(VMCS.VM_ENTRY_INTR_INFO_FIELD, 0);
}

export function vmxGetInterruptShadow(vcpu: KvmVcpu): number {
  const i = vmcsSilicon(toVmx(vcpu)).vmread32(VMCS.GUEST_INTERRUPTIBILITY_INFO);
  // KVM_X86_SHADOW_INT_MOV_SS 1, _STI 2.
  return (i & 1 ? 2 : 0) | (i & 2 ? 1 : 0);
}

export function vmxSetInterruptShadow(vcpu: KvmVcpu, mask: number): void {
  const s = vmcsSilicon(toVmx(vcpu));
  const old = s.vmread32(VMCS.GUEST_INTERRUPTIBILITY_INFO);
  let v = old & ~3;
  if (mask & 1) v |= 2;
  else if (mask & 2) v |= 1;
  if (v !== old) s.vmwrite32(VMCS.GUEST_INTERRUPTIBILITY_INFO, v);
}

/** vmx_interrupt_allowed: RFLAGS.IF, and no STI/MOV SS shadow. */
export function vmxInterruptAllowed(vcpu: KvmVcpu, _forNested: boolean): number {
  if (!(vmxGetRflags(vcpu) & RFLAGS.IF)) return 0;
  return vmcsSilicon(toVmx(vcpu)).vmread32(VMCS.GUEST_INTERRUPTIBILITY_INFO) & 3 ? 0 : 1;
}

export function vmxNmiAllowed(vcpu: KvmVcpu, _forNested: boolean): number {
  return vmcsSilicon(toVmx(vcpu)).vmread32(VMCS.GUEST_INTERRUPTIBILITY_INFO) & 0xb ? 0 : 1;
}

export function vmxGetNmiMask(vcpu: KvmVcpu): boolean {
  return (vmcsSilicon(toVmx(vcpu)).vmread32(VMCS.GUEST_INTERRUPTIBILITY_INFO) & 8) !== 0;
}

export function vmxSetNmiMask(vcpu: KvmVcpu, masked: boolean): void {
  const s = vmcsSilicon(toVmx(vcpu));
  const i = s.vmread32(VMCS.GUEST_INTERRUPTIBILITY_INFO);
  s.vmwrite32(VMCS.GUEST_INTERRUPTIBILITY_INFO, masked ? i | 8 : i & ~8);
}

export function vmxEnableIrqWindow(vcpu: KvmVcpu): void {
  execControlsSetbit(toVmx(vcpu), CPU_BASED.INTR_WINDOW_EXITING);
}

export function vmxEnableNmiWindow(vcpu: KvmVcpu): void {
  const vmx = toVmx(vcpu);
  if (vmx.pinCtl & PIN_BASED.VIRTUAL_NMIS) execControlsSetbit(vmx, CPU_BASED.NMI_WINDOW_EXITING);
}

/** vmx_skip_emulated_instruction: RIP += VM_EXIT_INSTRUCTION_LEN, and the interrupt shadow ends. */
export function vmxSkipEmulatedInstruction(vcpu: KvmVcpu): number {
  const s = vmcsSilicon(toVmx(vcpu));
  vcpu.arch.rip += s.vmread32(VMCS.VM_EXIT_INSTRUCTION_LEN);
  const i = s.vmread32(VMCS.GUEST_INTERRUPTIBILITY_INFO);
  if (i & 3) s.vmwrite32(VMCS.GUEST_INTERRUPTIBILITY_INFO, i & ~3);
  return 1;
}

// ---- registers, segments, control registers --------------------------------------------------

const SREG_FIELD_OFFSET = [SEG.ES, SEG.CS, SEG.SS, SEG.DS, SEG.FS, SEG.GS, SEG.TR, SEG.LDTR] as const; // VCPU_SREG_* -> VMCS field order

export function vmxGetSegment(vcpu: KvmVcpu, seg: number): KvmSegment {
  const s = vmcsSilicon(toVmx(vcpu));
  const o = SREG_FIELD_OFFSET[seg]! * 2;
  const ar = s.vmread32(VMCS.GUEST_ES_AR_BYTES + o);
  return {
    base: s.vmreadNum(VMCS.GUEST_ES_BASE + o),
    limit: s.vmread32(VMCS.GUEST_ES_LIMIT + o),
    selector: s.vmread32(VMCS.GUEST_ES_SELECTOR + o),
    type: ar & 0xf, s: (ar >> 4) & 1, dpl: (ar >> 5) & 3, present: (ar >> 7) & 1, avl: (ar >> 12) & 1,
    l: (ar >> 13) & 1, db: (ar >> 14) & 1, g: (ar >> 15) & 1, unusable: (ar >> 16) & 1,
  };
}

/** vmx_segment_access_rights. */
function segmentAccessRights(v: KvmSegment): number {
  if (v.unusable || !v.present) return 1 << 16;
  return (v.type & 0xf) | ((v.s & 1) << 4) | ((v.dpl & 3) << 5) | ((v.present & 1) << 7) | ((v.avl & 1) << 12)
    | ((v.l & 1) << 13) | ((v.db & 1) << 14) | ((v.g & 1) << 15);
}

/** vmx_set_segment (__vmx_set_segment) for an unrestricted guest. */
export function vmxSetSegment(vcpu: KvmVcpu, seg: number, v: KvmSegment): void {
  const vmx = toVmx(vcpu);
  const s = vmcsSilicon(vmx);
  const o = SREG_FIELD_OFFSET[seg]! * 2;
  s.vmwriteNum(VMCS.GUEST_ES_BASE + o, v.base);
  s.vmwrite32(VMCS.GUEST_ES_LIMIT + o, v.limit);
  s.vmwrite32(VMCS.GUEST_ES_SELECTOR + o, v.selector);
  let ar = segmentAccessRights(v);
  // "Fix the Accessed bit in AR field of segment registers for older qemu binaries" (vmx.c).
  if (vmx.module.enableUnrestrictedGuest && seg !== 7 && !(ar & (1 << 16))) ar |= 1;
  s.vmwrite32(VMCS.GUEST_ES_AR_BYTES + o, ar);
}

export function vmxGetSegmentBase(vcpu: KvmVcpu, seg: number): number {
  return vmcsSilicon(toVmx(vcpu)).vmreadNum(VMCS.GUEST_ES_BASE + SREG_FIELD_OFFSET[seg]! * 2);
}

export function vmxGetCpl(vcpu: KvmVcpu): number {
  return (vmcsSilicon(toVmx(vcpu)).vmread32(VMCS.GUEST_SS_AR_BYTES) >> 5) & 3;
}

export function vmxGetCsDbLBits(vcpu: KvmVcpu): { db: number; l: number } {
  const ar = vmcsSilicon(toVmx(vcpu)).vmread32(VMCS.GUEST_CS_AR_BYTES);
  return { db: (ar >> 14) & 1, l: (ar >> 13) & 1 };
}

function dtable(vcpu: KvmVcpu, base: number, limit: number): KvmDtable {
  const s = vmcsSilicon(toVmx(vcpu));
  return { base: s.vmreadNum(base), limit: s.vmread32(limit) };
}

export const vmxGetIdt = (vcpu: KvmVcpu): KvmDtable => dtable(vcpu, VMCS.GUEST_IDTR_BASE, VMCS.GUEST_IDTR_LIMIT);
export const vmxGetGdt = (vcpu: KvmVcpu): KvmDtable => dtable(vcpu, VMCS.GUEST_GDTR_BASE, VMCS.GUEST_GDTR_LIMIT);
export function vmxSetIdt(vcpu: KvmVcpu, dt: KvmDtable): void {
  const s = vmcsSilicon(toVmx(vcpu));
  s.vmwriteNum(VMCS.GUEST_IDTR_BASE, dt.base);
  s.vmwrite32(VMCS.GUEST_IDTR_LIMIT, dt.limit);
}
export function vmxSetGdt(vcpu: KvmVcpu, dt: KvmDtable): void {
  const s = vmcsSilicon(toVmx(vcpu));
  s.vmwriteNum(VMCS.GUEST_GDTR_BASE, dt.base);
  s.vmwrite32(VMCS.GUEST_GDTR_LIMIT, dt.limit);
}

/** vmx_get_rflags: from vmx->rflags while VCPU_EXREG_RFLAGS is available, else a VMREAD that fills it. */
export function vmxGetRflags(vcpu: KvmVcpu): number {
  const vmx = toVmx(vcpu);
  if (vmx.rflagsVmcs === vmx.loadedVmcs) return vmx.rflags;
  vmx.rflags = vmcsSilicon(vmx).vmreadNum(VMCS.GUEST_RFLAGS) >>> 0;
  vmx.rflagsVmcs = vmx.loadedVmcs;
  return vmx.rflags;
}

export function vmxSetRflags(vcpu: KvmVcpu, rflags: number): void {
  const vmx = toVmx(vcpu);
  vmx.rflags = (rflags | RFLAGS.FIXED1) >>> 0;
  vmx.rflagsVmcs = vmx.loadedVmcs;
  vmcsSilicon(vmx).vmwriteNum(VMCS.GUEST_RFLAGS, vmx.rflags);
}

export function vmxGetIfFlag(vcpu: KvmVcpu): boolean {
  return (vmxGetRflags(vcpu) & RFLAGS.IF) !== 0;
}

/** vmx_cache_reg: the VMCS copy of a register into vcpu->arch (guest-owned CR bits may have changed). */
export function vmxCacheReg(vcpu: KvmVcpu, reg: number): void {
  const s = vmcsSilicon(toVmx(vcpu));
  const a = vcpu.arch;
  switch (reg) {
    case RSP: {
      const v = s.vmreadNum(VMCS.GUEST_RSP);
      const hi = Math.floor(v / 4294967296);
      a.regs[RSP] = v - hi * 4294967296;
      a.regsHi[RSP] = hi;
      break;
    }
    case 16: a.rip = s.vmreadNum(VMCS.GUEST_RIP); break;
    case 18: a.cr0 = (a.cr0 & ~a.cr0GuestOwnedBits) | (s.vmreadNum(VMCS.GUEST_CR0) & a.cr0GuestOwnedBits); break;
    case EXREG_CR3: a.cr3 = s.vmreadNum(VMCS.GUEST_CR3); break;
    case 20: a.cr4 = (a.cr4 & ~a.cr4GuestOwnedBits) | (s.vmreadNum(VMCS.GUEST_CR4) & a.cr4GuestOwnedBits); break;
    default: break;
  }
}

/** vmx_set_efer: the IA-32e mode entry control follows EFER.LMA. */
export function vmxSetEfer(vcpu: KvmVcpu, efer: number): number {
  const vmx = toVmx(vcpu);
  const s = vmcsSilicon(vmx);
  vcpu.arch.efer = efer;
  const lma = (efer & EFER.LMA) !== 0;
  entryControlsSet(vmx, lma ? vmx.entryCtl | VM_ENTRY.IA32E_MODE : vmx.entryCtl & ~VM_ENTRY.IA32E_MODE);
  s.vmwriteNum(VMCS.GUEST_IA32_EFER, (lma ? efer : efer & ~EFER.LME) >>> 0);
  return 0;
}

/** vmx_set_cr0 for an unrestricted guest with EPT: the read shadow is the guest's value, the real CR0 adds NE. */
export function vmxSetCr0(vcpu: KvmVcpu, cr0: number): void {
  const vmx = toVmx(vcpu);
  const s = vmcsSilicon(vmx);
  const old = vcpu.arch.cr0;
  if (vcpu.arch.efer & EFER.LME) {
    if (!(old & CR0.PG) && cr0 & CR0.PG) enterLmode(vcpu);
    if (old & CR0.PG && !(cr0 & CR0.PG)) vmxSetEfer(vcpu, vcpu.arch.efer & ~EFER.LMA);
  }
  s.vmwriteNum(VMCS.CR0_READ_SHADOW, cr0 >>> 0);
  s.vmwriteNum(VMCS.GUEST_CR0, (cr0 | CR0.NE) >>> 0);
  vcpu.arch.cr0 = cr0;
}

/** enter_lmode: EFER.LMA on, and TR made a busy 64-bit TSS if it is not one. */
function enterLmode(vcpu: KvmVcpu): void {
  const s = vmcsSilicon(toVmx(vcpu));
  const tr = s.vmread32(VMCS.GUEST_TR_AR_BYTES);
  if ((tr & 0xf) !== 11) s.vmwrite32(VMCS.GUEST_TR_AR_BYTES, (tr & ~0xf) | 11);
  vmxSetEfer(vcpu, vcpu.arch.efer | EFER.LMA);
}

/** vmx_set_cr4: VMXE stays set underneath, hidden by the read shadow. */
export function vmxSetCr4(vcpu: KvmVcpu, cr4: number): void {
  const s = vmcsSilicon(toVmx(vcpu));
  s.vmwriteNum(VMCS.CR4_READ_SHADOW, cr4 >>> 0);
  s.vmwriteNum(VMCS.GUEST_CR4, (cr4 | (1 << 13)) >>> 0);
  vcpu.arch.cr4 = cr4;
}

export function vmxSetDr7(vcpu: KvmVcpu, value: number): void {
  vmcsSilicon(toVmx(vcpu)).vmwriteNum(VMCS.GUEST_DR7, value >>> 0);
}

/** vmx_load_mmu_pgd: the EPTP (WB, 4-level, A/D when enabled) and the guest's own CR3. */
export function vmxLoadMmuPgd(vcpu: KvmVcpu, rootHpa: number, rootLevel: number): void {
  const vmx = toVmx(vcpu);
  const s = vmcsSilicon(vmx);
  const eptp = rootHpa + EPTP.MT_WB + ((rootLevel - 1) << 3) + (vmx.module.enableEptAdBits ? EPTP.AD_ENABLE : 0);
  s.vmwriteNum(VMCS.EPT_POINTER, eptp);
  vcpu.arch.mmuRootHpa = rootHpa;
  s.vmwriteNum(VMCS.GUEST_CR3, vcpu.arch.cr3);
}

export function vmxWriteTscOffset(vcpu: KvmVcpu): void {
  vmcsSilicon(toVmx(vcpu)).vmwrite64(VMCS.TSC_OFFSET, BigInt.asUintN(64, vcpu.arch.tscOffset));
}
