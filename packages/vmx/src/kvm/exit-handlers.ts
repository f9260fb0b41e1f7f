/**
 * kvm_vmx_exit_handlers[] and vmx_handle_exit (arch/x86/kvm/vmx/vmx.c): one handler per basic
 * exit reason, returning 'resume' to re-enter the guest or 'userspace' after filling kvm_run.
 * The work itself is the common code's: CPUID, HLT, MSRs, port I/O, the MMU, the emulator.
 */
import { STOP, VEC, INTR_INFO, EVENT_TYPE } from '@kvmts/x86';
import {
  KVM_REQ, KVM_INTERNAL_ERROR, PFERR, kvmMakeRequest, kvmEmulateCpuid, kvmEmulateHalt, kvmEmulateHypercall,
  kvmEmulateInstruction, kvmEmulateRdmsr, kvmEmulateWrmsr, kvmFastPio, kvmHandleInvalidOp, kvmHandleTripleFault,
  kvmMmuPageFault, kvmQueueException, kvmRunFailEntry, kvmRunInternalError, kvmSetCr0, kvmSetCr3, kvmSetCr4, kvmSetCr8,
  kvmGetCr8, kvmSetDr, kvmGetDr, kvmSkipEmulatedInstruction, kvmUnexpectedExitReason, kvmVcpuDebugExit,
  kvmClearExceptionQueue, kvmClearInterruptQueue, kvmTaskSwitch, TASK_SWITCH,
  type ExitResult, type KvmVcpu,
} from '@kvmts/core';
import { VMCS } from '../hw/fields.js';
import { CPU_BASED } from '../hw/caps.js';
import { EXIT_REASON, VMX_EXIT_REASONS_FAILED_VMENTRY } from '../hw/exit.js';
import { EPT_VIOLATION } from '../hw/tdp.js';
import { CR_ACCESS, IO_QUAL } from '../hw/intercepts.js';
import { toVmx, type VcpuVmx } from './setup.js';
import { vmcsSilicon, execControlsClearbit, vmxCacheReg, vmxSetNmiMask } from './run.js';
import {
  handleVmxon, handleVmxoff, handleVmclear, handleVmptrld, handleVmptrst, handleVmread, handleVmwrite, handleInvept,
  handleInvvpid, nestedVmxRun, nestedVmxReflectVmexit,
} from './nested.js';

type Handler = (vcpu: KvmVcpu) => ExitResult;

const EXREG_CR0 = 18;

function exitQual(vmx: VcpuVmx): number {
  return vmcsSilicon(vmx).vmreadNum(VMCS.EXIT_QUALIFICATION);
}

function regRead(vcpu: KvmVcpu, reg: number): number {
  return vcpu.arch.regsHi[reg]! * 4294967296 + (vcpu.arch.regs[reg]! >>> 0);
}

function regWrite(vcpu: KvmVcpu, reg: number, value: number): void {
  const hi = Math.floor(value / 4294967296);
  vcpu.arch.regs[reg] = value - hi * 4294967296;
  vcpu.arch.regsHi[reg] = hi;
}

function skip(vcpu: KvmVcpu): ExitResult {
  kvmSkipEmulatedInstruction(vcpu);
  return 'resume';
}

/** kvm_complete_insn_gp: #GP(0) when the common code refused, else skip the instruction. */
function completeInsnGp(vcpu: KvmVcpu, err: number): ExitResult {
  if (err) { kvmQueueException(vcpu, VEC.GP, 0); return 'resume'; }
  return skip(vcpu);
}

/** handle_exception_nmi: NMIs and #MC were handled on the way out; the rest the VMM or the guest gets. */
function handleExceptionNmi(vcpu: KvmVcpu): ExitResult {
  const vmx = toVmx(vcpu);
  const s = vmcsSilicon(vmx);
  const intrInfo = s.vmread32(VMCS.VM_EXIT_INTR_INFO);
  const vector = intrInfo & INTR_INFO.VECTOR_MASK;
  const type = (intrInfo & INTR_INFO.TYPE_MASK) >> INTR_INFO.TYPE_SHIFT;
  if (type === EVENT_TYPE.NMI || vector === VEC.MC) return 'resume';
  const errorCode = intrInfo & INTR_INFO.DELIVER_CODE ? s.vmread32(VMCS.VM_EXIT_INTR_ERROR_CODE) : undefined;
  if ((vector === VEC.DB || vector === VEC.BP) && vcpu.guestDebug) {
    if (vector === VEC.BP) vmx.eventExitInstLen = s.vmread32(VMCS.VM_EXIT_INSTRUCTION_LEN);
    return kvmVcpuDebugExit(vcpu, vector === VEC.DB ? exitQual(vmx) | 0xffff0ff0 : 0xffff0ff0, vector as 1);
  }
  if (vector === VEC.PF) vcpu.arch.cr2 = exitQual(vmx);
  if (type === EVENT_TYPE.SW_EXCEPTION) vmx.eventExitInstLen = s.vmread32(VMCS.VM_EXIT_INSTRUCTION_LEN);
  // Reflect it into the guest (the #AC case of Linux, and every other intercepted vector).
  kvmQueueException(vcpu, vector, errorCode);
  return 'resume';
}

/** handle_external_interrupt: the host's interrupt was acknowledged on exit and handled (vmx_handle_exit_irqoff). */
function handleExternalInterrupt(vcpu: KvmVcpu): ExitResult {
  const vmx = toVmx(vcpu);
  vcpu.stat['irq_exits'] = (vcpu.stat['irq_exits'] ?? 0) + 1;
  // The pCPU stopped in guest mode for a reason of its own: an internal error of the model.
  if (vmx.lastStop === STOP.INTERNAL) return kvmRunInternalError(vcpu, KVM_INTERNAL_ERROR.EMULATION, [vmx.lastStop]);
  return 'resume';
}

function handleInterruptWindow(vcpu: KvmVcpu): ExitResult {
  execControlsClearbit(toVmx(vcpu), CPU_BASED.INTR_WINDOW_EXITING);
  kvmMakeRequest(KVM_REQ.EVENT, vcpu);
  vcpu.stat['irq_window_exits'] = (vcpu.stat['irq_window_exits'] ?? 0) + 1;
  return 'resume';
}

function handleNmiWindow(vcpu: KvmVcpu): ExitResult {
  execControlsClearbit(toVmx(vcpu), CPU_BASED.NMI_WINDOW_EXITING);
  kvmMakeRequest(KVM_REQ.EVENT, vcpu);
  vcpu.stat['nmi_window_exits'] = (vcpu.stat['nmi_window_exits'] ?? 0) + 1;
  return 'resume';
}

/**
 * handle_task_switch: the qualification gives the TSS selector (15:0) and the source (31:30,
 * Table 28-2). A switch through an IDT task gate completes the event being delivered (its
 * IDT-vectoring info), so it is not injected again; one caused by an instruction (CALL, JMP,
 * IRET, INT n) is skipped first, so the old task saves the next RIP.
 */
function handleTaskSwitch(vcpu: KvmVcpu): ExitResult {
  const vmx = toVmx(vcpu);
  const s = vmcsSilicon(vmx);
  const idtVectoringInfo = s.vmread32(VMCS.IDT_VECTORING_INFO_FIELD);
  const idtV = (idtVectoringInfo & INTR_INFO.VALID) !== 0;
  const idtIndex = idtVectoringInfo & INTR_INFO.VECTOR_MASK;
  const type = (idtVectoringInfo & INTR_INFO.TYPE_MASK) >> INTR_INFO.TYPE_SHIFT;
  const q = exitQual(vmx);
  const reason = q >>> 30;
  let hasErrorCode = false;
  let errorCode = 0;
  if (reason === TASK_SWITCH.GATE && idtV) {
    switch (type) {
      case EVENT_TYPE.NMI:
        vcpu.arch.nmiInjected = false;
        vmxSetNmiMask(vcpu, true);
        break;
      case EVENT_TYPE.EXT_INTR:
      case EVENT_TYPE.SOFT_INTR:
        kvmClearInterruptQueue(vcpu);
        break;
      case EVENT_TYPE.HW_EXCEPTION:
        if (idtVectoringInfo & INTR_INFO.DELIVER_CODE) {
          hasErrorCode = true;
          errorCode = s.vmread32(VMCS.IDT_VECTORING_ERROR_CODE);
        }
        kvmClearExceptionQueue(vcpu);
        break;
      case EVENT_TYPE.SW_EXCEPTION:
        kvmClearExceptionQueue(vcpu);
        break;
      default:
        break;
    }
  }
  const tssSelector = q & 0xffff;
  if (!idtV || (type !== EVENT_TYPE.HW_EXCEPTION && type !== EVENT_TYPE.EXT_INTR && type !== EVENT_TYPE.NMI)) {
    kvmSkipEmulatedInstruction(vcpu);
  }
  return kvmTaskSwitch(vcpu, tssSelector, type === EVENT_TYPE.SOFT_INTR ? idtIndex : -1, reason, hasErrorCode, errorCode);
}

/** handle_cr: MOV to/from CR0/3/4/8 and LMSW, through the common kvm_set_cr*. */
function handleCr(vcpu: KvmVcpu): ExitResult {
  const q = exitQual(toVmx(vcpu));
  const cr = q & 15;
  const reg = (q >> 8) & 15;
  switch ((q >> 4) & 3) {
    case CR_ACCESS.MOV_TO_CR: {
      const val = regRead(vcpu, reg);
      const lo = vcpu.arch.regs[reg]! >>> 0;
      switch (cr) {
        case 0:
          vmxCacheReg(vcpu, EXREG_CR0);
          return completeInsnGp(vcpu, kvmSetCr0(vcpu, lo, vcpu.arch.regsHi[reg]! >>> 0));
        case 3: return completeInsnGp(vcpu, kvmSetCr3(vcpu, val));
        case 4: return completeInsnGp(vcpu, vcpu.arch.regsHi[reg] ? 1 : kvmSetCr4(vcpu, lo));
        case 8: return completeInsnGp(vcpu, kvmSetCr8(vcpu, lo & 0xff));
        default: break;
      }
      break;
    }
    case CR_ACCESS.MOV_FROM_CR:
      if (cr === 3) { regWrite(vcpu, reg, vcpu.arch.cr3); return skip(vcpu); }
      if (cr === 8) { regWrite(vcpu, reg, kvmGetCr8(vcpu)); return skip(vcpu); }
      break;
    case CR_ACCESS.LMSW: {
      // kvm_lmsw: only PE, MP, EM and TS, and LMSW never clears PE.
      vmxCacheReg(vcpu, EXREG_CR0);
      const msw = (q >>> 16) & 0x0f;
      const cr0 = (vcpu.arch.cr0 & ~0x0e) | msw;
      return completeInsnGp(vcpu, kvmSetCr0(vcpu, cr0 >>> 0));
    }
    default:
      break;
  }
  return kvmRunInternalError(vcpu, KVM_INTERNAL_ERROR.UNEXPECTED_EXIT_REASON, [EXIT_REASON.CR_ACCESS, q]);
}

/** handle_dr: MOV to/from DR through kvm_set_dr / kvm_get_dr (#GP outside CPL 0). */
function handleDr(vcpu: KvmVcpu): ExitResult {
  const q = exitQual(toVmx(vcpu));
  const dr = q & 7;
  const reg = (q >> 8) & 15;
  if (guestCpl(vcpu) > 0) return completeInsnGp(vcpu, 1);
  if (q & 0x10) {
    regWrite(vcpu, reg, kvmGetDr(vcpu, dr) >>> 0);
    return skip(vcpu);
  }
  return completeInsnGp(vcpu, kvmSetDr(vcpu, dr, regRead(vcpu, reg)));
}

function guestCpl(vcpu: KvmVcpu): number {
  return (vmcsSilicon(toVmx(vcpu)).vmread32(VMCS.GUEST_SS_AR_BYTES) >> 5) & 3;
}

/** handle_io: string I/O goes to the emulator, the rest to kvm_fast_pio. */
function handleIo(vcpu: KvmVcpu): ExitResult {
  const q = exitQual(toVmx(vcpu));
  if (q & IO_QUAL.STRING) return kvmEmulateInstruction(vcpu, 0);
  return kvmFastPio(vcpu, (q & 7) + 1, q >>> IO_QUAL.PORT_SHIFT, (q & IO_QUAL.IN) !== 0);
}

/** handle_ept_violation: the qualification becomes a PFERR_* error code for kvm_mmu_page_fault. */
function handleEptViolation(vcpu: KvmVcpu): ExitResult {
  const vmx = toVmx(vcpu);
  const s = vmcsSilicon(vmx);
  const q = exitQual(vmx);
  const gpa = s.vmreadNum(VMCS.GUEST_PHYSICAL_ADDRESS);
  let errorCode = 0;
  if (q & EPT_VIOLATION.ACC_WRITE) errorCode |= PFERR.WRITE;
  if (q & EPT_VIOLATION.ACC_INSTR) errorCode |= PFERR.FETCH;
  if (q & (EPT_VIOLATION.READABLE | EPT_VIOLATION.WRITABLE | EPT_VIOLATION.EXECUTABLE)) errorCode |= PFERR.PRESENT;
  vcpu.arch.exitQualification = BigInt(q);
  return kvmMmuPageFault(vcpu, gpa, errorCode);
}

/** handle_ept_misconfig: the MMIO SPTE the MMU installed; the access is emulated (no fast MMIO bus here). */
function handleEptMisconfig(vcpu: KvmVcpu): ExitResult {
  const gpa = vmcsSilicon(toVmx(vcpu)).vmreadNum(VMCS.GUEST_PHYSICAL_ADDRESS);
  return kvmMmuPageFault(vcpu, gpa, PFERR.RSVD);
}

function handleMonitorTrap(vcpu: KvmVcpu): ExitResult {
  execControlsClearbit(toVmx(vcpu), CPU_BASED.MONITOR_TRAP_FLAG);
  return 'resume';
}

const handleVmxInstruction: Handler = (vcpu) => kvmHandleInvalidOp(vcpu);

/** kvm_vmx_exit_handlers[], keyed by basic exit reason. */
export const kvmVmxExitHandlers: Readonly<Partial<Record<number, Handler>>> = {
  [EXIT_REASON.EXCEPTION_NMI]: handleExceptionNmi,
  [EXIT_REASON.EXTERNAL_INTERRUPT]: handleExternalInterrupt,
  [EXIT_REASON.TRIPLE_FAULT]: kvmHandleTripleFault,
  [EXIT_REASON.INTERRUPT_WINDOW]: handleInterruptWindow,
  [EXIT_REASON.NMI_WINDOW]: handleNmiWindow,
  [EXIT_REASON.CPUID]: kvmEmulateCpuid,
  [EXIT_REASON.HLT]: kvmEmulateHalt,
  [EXIT_REASON.INVD]: skip,
  [EXIT_REASON.INVLPG]: skip,
  [EXIT_REASON.RDPMC]: (vcpu) => completeInsnGp(vcpu, 1),
  [EXIT_REASON.VMCALL]: kvmEmulateHypercall,
  [EXIT_REASON.VMCLEAR]: handleVmclear,
  [EXIT_REASON.VMLAUNCH]: (vcpu) => nestedVmxRun(vcpu, true),
  [EXIT_REASON.VMPTRLD]: handleVmptrld,
  [EXIT_REASON.VMPTRST]: handleVmptrst,
  [EXIT_REASON.VMREAD]: handleVmread,
  [EXIT_REASON.VMRESUME]: (vcpu) => nestedVmxRun(vcpu, false),
  [EXIT_REASON.VMWRITE]: handleVmwrite,
  [EXIT_REASON.VMOFF]: handleVmxoff,
  [EXIT_REASON.VMON]: handleVmxon,
  [EXIT_REASON.INVEPT]: handleInvept,
  [EXIT_REASON.INVVPID]: handleInvvpid,
  [EXIT_REASON.VMFUNC]: handleVmxInstruction,
  [EXIT_REASON.TASK_SWITCH]: handleTaskSwitch,
  [EXIT_REASON.CR_ACCESS]: handleCr,
  [EXIT_REASON.DR_ACCESS]: handleDr,
  [EXIT_REASON.IO_INSTRUCTION]: handleIo,
  [EXIT_REASON.MSR_READ]: kvmEmulateRdmsr,
  [EXIT_REASON.MSR_WRITE]: kvmEmulateWrmsr,
  [EXIT_REASON.MWAIT_INSTRUCTION]: kvmHandleInvalidOp,
  [EXIT_REASON.MONITOR_INSTRUCTION]: kvmHandleInvalidOp,
  [EXIT_REASON.MONITOR_TRAP_FLAG]: handleMonitorTrap,
  [EXIT_REASON.PAUSE_INSTRUCTION]: skip,
  [EXIT_REASON.EPT_VIOLATION]: handleEptViolation,
  [EXIT_REASON.EPT_MISCONFIG]: handleEptMisconfig,
  [EXIT_REASON.PREEMPTION_TIMER]: () => 'resume',
  [EXIT_REASON.WBINVD]: skip,
  [EXIT_REASON.XSETBV]: kvmHandleInvalidOp,
};

/** vmx_handle_exit (__vmx_handle_exit): failed entries first, then the table. */
export function vmxHandleExit(vcpu: KvmVcpu, _fastpath: number): ExitResult {
  const vmx = toVmx(vcpu);
  const cpuId = vcpu.pcpu?.id ?? 0;
  // An L2 exit goes to L1 when vmcs12 asked for it (nested_vmx_reflect_vmexit), else L0 handles it below.
  if (vcpu.arch.guestMode && nestedVmxReflectVmexit(vcpu)) return 'resume';
  if (vmx.fail) return kvmRunFailEntry(vcpu, vmcsSilicon(vmx).vmread32(VMCS.VM_INSTRUCTION_ERROR), cpuId);
  const reason = vmx.exitReason;
  if (reason & VMX_EXIT_REASONS_FAILED_VMENTRY) return kvmRunFailEntry(vcpu, reason >>> 0, cpuId);
  const basic = reason & 0xffff;
  const h = kvmVmxExitHandlers[basic];
  if (!h) return kvmUnexpectedExitReason(vcpu, basic);
  return h(vcpu);
}

