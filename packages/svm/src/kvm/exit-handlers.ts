/**
 * svm_exit_handlers[] and svm_handle_exit (arch/x86/kvm/svm/svm.c): one handler per SVM exit
 * code, returning 'resume' to re-enter the guest or 'userspace' after filling kvm_run. The
 * work itself is the common code's (CPUID, HLT, MSRs, PIO, the MMU, the emulator).
 */
import { STOP, VEC } from '@kvmts/x86';
import {
  EMULTYPE, KVM_GUESTDBG, KVM_REQ, kvmEmulateCpuid, kvmEmulateHalt, kvmEmulateHypercall, kvmEmulateInstruction,
  kvmEmulateRdmsr, kvmEmulateWrmsr, kvmFastPio, kvmHandleInvalidOp, kvmHandleTripleFault,
  kvmMmuPageFault, kvmQueueException, kvmRunFailEntry, kvmRunInternalError, kvmSetCr0, kvmSetCr3,
  kvmSetCr4, kvmSetCr8, kvmGetCr8, kvmSetDr, kvmGetDr, kvmSkipEmulatedInstruction,
  kvmUnexpectedExitReason, kvmVcpuDebugExit, kvmClearExceptionQueue, kvmClearInterruptQueue, kvmTaskSwitch, TASK_SWITCH,
  type ExitResult, type KvmVcpu,
} from '@kvmts/core';
import { INTERCEPT_BIT, SVM_EVTINJ, SVM_EXIT, SVM_INTERRUPT_SHADOW_MASK, SVM_IOIO, VMCB } from '../hw/fields.js';
import { svmClrIntercept, svmGlobals, svmIsIntercept, toSvm, type VcpuSvm } from './setup.js';
import { svmDisableNmiSinglestep, svmIrqWindowOpened } from './run.js';

type Handler = (vcpu: KvmVcpu) => ExitResult;

/** return kvm_skip_emulated_instruction(vcpu): for instructions KVM completes by doing nothing. */
function skip(vcpu: KvmVcpu): ExitResult {
  kvmSkipEmulatedInstruction(vcpu);
  return 'resume';
}

/** KVM_INTERNAL_ERROR_EMULATION (uapi kvm.h): the model itself failed while the guest ran. */
const KVM_INTERNAL_ERROR_EMULATION = 1;
const EMULTYPE_NONE = 0;
const UD_VECTOR = 6;
const GP_VECTOR = 13;
const AC_VECTOR = 17;

const CR_VALID = 1 << 31; // EXITINFO1 bit 63, in the high dword

function info1Lo(svm: VcpuSvm): number { return svm.vmcb.r32(VMCB.exit_info_1); }
function info1Hi(svm: VcpuSvm): number { return svm.vmcb.r32(VMCB.exit_info_1 + 4); }

/** kvm_register_read/write of a GPR as a number (64-bit in long mode, else the low 32 bits). */
function regRead(vcpu: KvmVcpu, reg: number): number {
  const a = vcpu.arch;
  return (a.regsHi[reg]! >>> 0) * 2 ** 32 + (a.regs[reg]! >>> 0);
}

function regWrite(vcpu: KvmVcpu, reg: number, value: number): void {
  vcpu.arch.regs[reg] = value >>> 0;
  vcpu.arch.regsHi[reg] = Math.floor(value / 2 ** 32) | 0;
}

/** kvm_complete_insn_gp: #GP(0) on error, else skip the instruction. */
function completeInsnGp(vcpu: KvmVcpu, err: number): ExitResult {
  if (err) { kvmQueueException(vcpu, GP_VECTOR, 0); return 'resume'; }
  return skip(vcpu);
}

/** cr_interception, with decode assists giving the GPR. */
function crInterception(vcpu: KvmVcpu): ExitResult {
  const svm = toSvm(vcpu);
  if (!(info1Hi(svm) & CR_VALID)) return kvmEmulateInstruction(vcpu, EMULTYPE_NONE);
  const reg = info1Lo(svm) & 15;
  const code = svm.vmcb.r32(VMCB.exit_code);
  let cr = code - SVM_EXIT.READ_CR0;
  let err = 0;
  if (cr >= 16) {
    cr -= 16;
    const val = regRead(vcpu, reg);
    switch (cr) {
      case 0: err = kvmSetCr0(vcpu, val); break;
      case 3: err = kvmSetCr3(vcpu, val); break;
      case 4: err = kvmSetCr4(vcpu, val); break;
      case 8: err = kvmSetCr8(vcpu, val); break;
      default: kvmQueueException(vcpu, UD_VECTOR); return 'resume';
    }
  } else {
    let val: number;
    switch (cr) {
      case 0: val = vcpu.arch.cr0 >>> 0; break;
      case 2: val = vcpu.arch.cr2; break;
      case 3: val = vcpu.arch.cr3; break;
      case 4: val = vcpu.arch.cr4 >>> 0; break;
      case 8: val = kvmGetCr8(vcpu); break;
      default: kvmQueueException(vcpu, UD_VECTOR); return 'resume';
    }
    regWrite(vcpu, reg, val);
  }
  return completeInsnGp(vcpu, err);
}

/** The selective CR0 write (LMSW/CLTS, or a MOV that changes more than TS/MP): emulate. */
function cr0SelectiveInterception(vcpu: KvmVcpu): ExitResult {
  return kvmEmulateInstruction(vcpu, EMULTYPE_NONE);
}

/** dr_interception with decode assists. */
function drInterception(vcpu: KvmVcpu): ExitResult {
  const svm = toSvm(vcpu);
  if (!(info1Hi(svm) & CR_VALID)) return kvmEmulateInstruction(vcpu, EMULTYPE_NONE);
  const reg = info1Lo(svm) & 15;
  const dr = svm.vmcb.r32(VMCB.exit_code) - SVM_EXIT.READ_DR0;
  let err = 0;
  if (dr >= 16) err = kvmSetDr(vcpu, dr - 16, regRead(vcpu, reg));
  else regWrite(vcpu, reg, kvmGetDr(vcpu, dr));
  return completeInsnGp(vcpu, err);
}

/** io_interception: string I/O through the emulator, the rest through kvm_fast_pio. */
function ioInterception(vcpu: KvmVcpu): ExitResult {
  const svm = toSvm(vcpu);
  const io = info1Lo(svm);
  const isIn = (io & SVM_IOIO.TYPE_MASK) !== 0;
  if (io & SVM_IOIO.STR_MASK) return kvmEmulateInstruction(vcpu, EMULTYPE_NONE);
  const port = io >>> SVM_IOIO.PORT_SHIFT;
  const size = (io >>> SVM_IOIO.SIZE_SHIFT) & 7;
  svm.nextRip = svm.vmcb.rAddr(VMCB.exit_info_2);
  return kvmFastPio(vcpu, size === 4 ? 4 : size, port, isIn);
}

function msrInterception(vcpu: KvmVcpu): ExitResult {
  return info1Lo(toSvm(vcpu)) ? kvmEmulateWrmsr(vcpu) : kvmEmulateRdmsr(vcpu);
}

/** npf_interception: EXITINFO2 is the GPA, EXITINFO1 the error code (with bits 32/33). */
function npfInterception(vcpu: KvmVcpu): ExitResult {
  const v = toSvm(vcpu).vmcb;
  const gpa = v.rPa(VMCB.exit_info_2);
  return kvmMmuPageFault(vcpu, gpa, v.r32(VMCB.exit_info_1));
}

/** shutdown_interception: the VMCB is undefined after a shutdown, so KVM reinitialises it. */
function shutdownInterception(vcpu: KvmVcpu): ExitResult {
  return kvmHandleTripleFault(vcpu);
}

/** iret_interception: the NMI window opens once the IRET retires. */
function iretInterception(vcpu: KvmVcpu): ExitResult {
  const svm = toSvm(vcpu);
  vcpu.stat['nmi_window_exits'] = (vcpu.stat['nmi_window_exits'] ?? 0) + 1;
  svm.awaitingIretCompletion = true;
  svmClrIntercept(svm, INTERCEPT_BIT.IRET);
  svm.nmiIretRip = vcpu.arch.rip;
  vcpu.requests |= KVM_REQ.EVENT;
  return 'resume';
}

/**
 * db_interception: the single step that looked for the NMI window, userspace's single-step or
 * hardware breakpoint (KVM_EXIT_DEBUG with the DR6 the CPU wrote to the VMCB), or a #DB for the guest.
 */
function dbInterception(vcpu: KvmVcpu): ExitResult {
  const svm = toSvm(vcpu);
  const userDebug = (vcpu.guestDebug ?? 0) & (KVM_GUESTDBG.SINGLESTEP | KVM_GUESTDBG.USE_HW_BP);
  if (!userDebug && !svm.nmiSinglestep) { kvmQueueException(vcpu, 1); return 'resume'; }
  if (svm.nmiSinglestep) {
    svmDisableNmiSinglestep(svm);
    vcpu.requests |= KVM_REQ.EVENT;
  }
  if (userDebug) return kvmVcpuDebugExit(vcpu, svm.vmcb.r32(VMCB.dr6));
  return 'resume';
}

/** bp_interception: a software breakpoint userspace asked for (KVM_GUESTDBG_USE_SW_BP) is a KVM_EXIT_DEBUG. */
function bpInterception(vcpu: KvmVcpu): ExitResult {
  if (!((vcpu.guestDebug ?? 0) & KVM_GUESTDBG.USE_SW_BP)) { kvmQueueException(vcpu, 3); return 'resume'; }
  // kvmVcpuDebugExit types its vector as #DB's; #BP is the other one it reports.
  return kvmVcpuDebugExit(vcpu, 0xffff0ff0, VEC.BP as typeof VEC.DB);
}

function interruptWindowInterception(vcpu: KvmVcpu): ExitResult {
  svmIrqWindowOpened(toSvm(vcpu));
  vcpu.stat['irq_window_exits'] = (vcpu.stat['irq_window_exits'] ?? 0) + 1;
  return 'resume';
}

function intrInterception(vcpu: KvmVcpu): ExitResult {
  vcpu.stat['irq_exits'] = (vcpu.stat['irq_exits'] ?? 0) + 1;
  return 'resume';
}

const resume: Handler = () => 'resume';
const invalidOp: Handler = (vcpu) => kvmHandleInvalidOp(vcpu);

/** EXITINFO2 of a task switch (svm.h SVM_EXITINFOSHIFT_TS_*), bits of its high dword. */
const TS_REASON_IRET = 1 << (36 - 32);
const TS_REASON_JMP = 1 << (38 - 32);
const TS_HAS_ERROR_CODE = 1 << (44 - 32);

/**
 * task_switch_interception: EXITINFO1 is the TSS selector, EXITINFO2 says IRET or JMP and
 * carries an exception's error code, EXITINTINFO the event a task gate was delivering (which
 * the switch completes). An instruction's switch (and INT n, INT3, INTO through a gate) is
 * skipped first: the exit has fault semantics and no next RIP.
 */
function taskSwitchInterception(vcpu: KvmVcpu): ExitResult {
  const svm = toSvm(vcpu);
  const v = svm.vmcb;
  const exitIntInfo = v.r32(VMCB.exit_int_info);
  const intType = exitIntInfo & SVM_EVTINJ.TYPE_MASK;
  let intVec = exitIntInfo & SVM_EVTINJ.VEC_MASK;
  const idtV = (exitIntInfo & SVM_EVTINJ.VALID) !== 0;
  const tssSelector = info1Lo(svm) & 0xffff;
  const info2Hi = v.r32(VMCB.exit_info_2 + 4);
  let hasErrorCode = false;
  let errorCode = 0;
  const reason = info2Hi & TS_REASON_IRET ? TASK_SWITCH.IRET
    : info2Hi & TS_REASON_JMP ? TASK_SWITCH.JMP
      : idtV ? TASK_SWITCH.GATE : TASK_SWITCH.CALL;
  if (reason === TASK_SWITCH.GATE) {
    switch (intType) {
      case SVM_EVTINJ.TYPE_NMI:
        vcpu.arch.nmiInjected = false;
        break;
      case SVM_EVTINJ.TYPE_EXEPT:
        if (info2Hi & TS_HAS_ERROR_CODE) {
          hasErrorCode = true;
          errorCode = v.r32(VMCB.exit_info_2);
        }
        kvmClearExceptionQueue(vcpu);
        break;
      case SVM_EVTINJ.TYPE_INTR:
      case SVM_EVTINJ.TYPE_SOFT:
        kvmClearInterruptQueue(vcpu);
        break;
      default:
        break;
    }
  }
  if (reason !== TASK_SWITCH.GATE || intType === SVM_EVTINJ.TYPE_SOFT
    || (intType === SVM_EVTINJ.TYPE_EXEPT && (intVec === VEC.OF || intVec === VEC.BP))) {
    if (!svmSkipInstruction(vcpu, true)) return 'userspace';
  }
  if (intType !== SVM_EVTINJ.TYPE_SOFT) intVec = -1;
  return kvmTaskSwitch(vcpu, tssSelector, intVec, reason, hasErrorCode, errorCode);
}

/** svm_exit_handlers[]: exit code -> handler. */
export const svmExitHandlers: ReadonlyMap<number, Handler> = new Map<number, Handler>([
  [SVM_EXIT.READ_CR0, crInterception],
  [SVM_EXIT.READ_CR0 + 3, crInterception],
  [SVM_EXIT.READ_CR0 + 4, crInterception],
  [SVM_EXIT.READ_CR0 + 8, crInterception],
  [SVM_EXIT.WRITE_CR0, crInterception],
  [SVM_EXIT.WRITE_CR0 + 3, crInterception],
  [SVM_EXIT.WRITE_CR0 + 4, crInterception],
  [SVM_EXIT.WRITE_CR0 + 8, crInterception],
  [SVM_EXIT.CR0_SEL_WRITE, cr0SelectiveInterception],
  ...Array.from({ length: 8 }, (_, n) => [SVM_EXIT.READ_DR0 + n, drInterception] as const),
  ...Array.from({ length: 8 }, (_, n) => [SVM_EXIT.WRITE_DR0 + n, drInterception] as const),
  [SVM_EXIT.EXCP_BASE + 1, dbInterception],
  [SVM_EXIT.EXCP_BASE + 3, bpInterception],
  [SVM_EXIT.EXCP_BASE + UD_VECTOR, invalidOp],
  [SVM_EXIT.EXCP_BASE + 18, resume], // #MC: the host's machine check handler ran
  [SVM_EXIT.EXCP_BASE + AC_VECTOR, (vcpu) => { kvmQueueException(vcpu, AC_VECTOR, 0); return 'resume'; }],
  [SVM_EXIT.INTR, intrInterception],
  [SVM_EXIT.NMI, resume],
  [SVM_EXIT.SMI, resume],
  [SVM_EXIT.VINTR, interruptWindowInterception],
  [SVM_EXIT.RDPMC, invalidOp],
  [SVM_EXIT.CPUID, (vcpu) => kvmEmulateCpuid(vcpu)],
  [SVM_EXIT.IRET, iretInterception],
  [SVM_EXIT.INVD, skip],
  [SVM_EXIT.PAUSE, skip],
  [SVM_EXIT.HLT, (vcpu) => kvmEmulateHalt(vcpu)],
  [SVM_EXIT.INVLPG, skip],
  [SVM_EXIT.INVLPGA, invalidOp],
  [SVM_EXIT.IOIO, ioInterception],
  [SVM_EXIT.MSR, msrInterception],
  [SVM_EXIT.TASK_SWITCH, taskSwitchInterception],
  [SVM_EXIT.SHUTDOWN, shutdownInterception],
  // Without nested SVM the guest's SVM instructions are #UD (nested_svm_check_permissions).
  [SVM_EXIT.VMRUN, invalidOp],
  [SVM_EXIT.VMMCALL, (vcpu) => kvmEmulateHypercall(vcpu)],
  [SVM_EXIT.VMLOAD, invalidOp],
  [SVM_EXIT.VMSAVE, invalidOp],
  [SVM_EXIT.STGI, invalidOp],
  [SVM_EXIT.CLGI, invalidOp],
  [SVM_EXIT.SKINIT, invalidOp],
  [SVM_EXIT.RDTSCP, invalidOp],
  [SVM_EXIT.WBINVD, skip],
  [SVM_EXIT.MONITOR, invalidOp],
  [SVM_EXIT.MWAIT, invalidOp],
  [SVM_EXIT.XSETBV, (vcpu) => kvmEmulateInstruction(vcpu, EMULTYPE_NONE)],
  [SVM_EXIT.RDPRU, invalidOp],
  [SVM_EXIT.RSM, invalidOp],
  [SVM_EXIT.NPF, npfInterception],
]);

/** The handlers by exit code in an array (every code KVM handles is at most SVM_EXIT.NPF), so an exit costs no map lookup. */
const HANDLER_BY_CODE: readonly (Handler | undefined)[] = Array.from({ length: SVM_EXIT.NPF + 1 }, (_, code) => svmExitHandlers.get(code));

/** svm_handle_exit. */
export function svmHandleExit(vcpu: KvmVcpu, _fastpath: number): ExitResult {
  const svm = toSvm(vcpu);
  const v = svm.vmcb;
  if (svm.lastStop === STOP.INTERNAL || svm.lastStop === -1) {
    kvmRunInternalError(vcpu, KVM_INTERNAL_ERROR_EMULATION, [BigInt(svm.lastStop)]);
    return 'userspace';
  }
  const exitCode = v.r32(VMCB.exit_code) | 0;
  // The guest's paging and (unintercepted) CR0 are its own: read them back.
  if (svmGlobals.nptEnabled) vcpu.arch.cr3 = v.rPa(VMCB.cr3);
  if (!svmIsIntercept(svm, 16)) vcpu.arch.cr0 = v.r32(VMCB.cr0);
  if (exitCode === SVM_EXIT.ERR) {
    kvmRunFailEntry(vcpu, BigInt.asUintN(64, BigInt(SVM_EXIT.ERR)), vcpu.pcpu?.id ?? 0);
    return 'userspace';
  }
  const handler = exitCode >= 0 ? HANDLER_BY_CODE[exitCode] : undefined;
  if (!handler) {
    return kvmUnexpectedExitReason(vcpu, exitCode);
  }
  return handler(vcpu);
}

/**
 * __svm_skip_emulated_instruction: RIP to the VMCB's next_rip (NRIPS), else to svm->next_rip
 * (IOIO's EXITINFO2), else past the instruction as the emulator decodes it. Committing side
 * effects also ends the interrupt shadow. Returns false when the instruction cannot be skipped.
 */
export function svmSkipInstruction(vcpu: KvmVcpu, commitSideEffects: boolean): boolean {
  const svm = toSvm(vcpu);
  const v = svm.vmcb;
  if (svmGlobals.nrips) {
    const next = v.rAddr(VMCB.next_rip);
    if (next !== 0) svm.nextRip = next;
  }
  if (svm.nextRip === 0) {
    if (kvmEmulateInstruction(vcpu, EMULTYPE.SKIP) !== 'resume') return false;
  } else {
    vcpu.arch.rip = svm.nextRip;
  }
  if (commitSideEffects) v.w32(VMCB.int_state, v.r32(VMCB.int_state) & ~SVM_INTERRUPT_SHADOW_MASK);
  return true;
}

/** svm_skip_emulated_instruction. */
export function svmSkipEmulatedInstruction(vcpu: KvmVcpu): number {
  return svmSkipInstruction(vcpu, true) ? 1 : 0;
}
