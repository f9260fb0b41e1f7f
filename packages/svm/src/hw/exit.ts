/**
 * #VMEXIT (APM 15.6): write the exit information and the guest state into the VMCB, then load
 * the host state VMRUN saved at VM_HSAVE_PA, clear GIF and return to the host. A VMRUN that
 * fails its consistency checks exits the same way with exit_code VMEXIT_INVALID (-1).
 */
import { CR0, EVENT_TYPE, INTERRUPTIBILITY, STOP } from '@kvmts/x86';
import { SVM_EXIT, SVM_EVTINJ, SVM_INTERRUPT_SHADOW_MASK, SWITCHED_SEG, V_IRQ_MASK, V_TPR_MASK, VMCB, VMCB_SEG } from './fields.js';
import type { VmcbRegion } from './region.js';
import { notePaging } from './tdp.js';
import { HOST_SAVED } from './host-saved.js';
import type { SvmSilicon } from './silicon.js';

/** The CPU's event layout (VMX interruption information) to EXITINTINFO: types 0, 2, 3, 4 coincide; INT1/INT3/INTO are exceptions. */
export function toExitIntInfo(vectoring: number): number {
  if (!(vectoring & SVM_EVTINJ.VALID)) return 0;
  const type = (vectoring >>> 8) & 7;
  const svmType = type === EVENT_TYPE.PRIV_SW_EXCEPTION || type === EVENT_TYPE.SW_EXCEPTION ? EVENT_TYPE.HW_EXCEPTION : type;
  return ((vectoring & (0xff | SVM_EVTINJ.VALID_ERR | SVM_EVTINJ.VALID)) | (svmType << 8)) >>> 0;
}

/**
 * Performs #VMEXIT with `exitCode` and the exit information, and unwinds the CPU's run loop
 * when the guest was running inside it. `guestRip` is the RIP to save (the intercepted
 * instruction's own, or the boundary for interrupts); `nextRip` is the guest's next RIP for
 * instruction intercepts (NRIPS), or 0.
 */
export function svmVmexit(svm: SvmSilicon, exitCode: number, info1Lo: number, info1Hi: number, info2Lo: number, info2Hi: number, guestRip: number, nextRip: number): void {
  recordVmexit(svm, exitCode, info1Lo, info1Hi, info2Lo, info2Hi, guestRip, nextRip);
  if (svm.inRun) {
    svm.inRun = false;
    svm.cpu.stop(STOP.VMEXIT);
  }
}

/**
 * The same #VMEXIT for an intercepted instruction, ended without a throw (cpu.endInsn): its
 * handler returns, and Cpu.run returns STOP.VMEXIT at the instruction boundary. Returns true,
 * the VirtExtension.intercept verdict.
 */
export function svmVmexitInsn(svm: SvmSilicon, exitCode: number, info1Lo: number, info1Hi: number, info2Lo: number, info2Hi: number, guestRip: number, nextRip: number): true {
  recordVmexit(svm, exitCode, info1Lo, info1Hi, info2Lo, info2Hi, guestRip, nextRip);
  if (svm.inRun) {
    svm.inRun = false;
    svm.cpu.endInsn(STOP.VMEXIT);
  }
  return true;
}

/** #VMEXIT proper: exit information, guest-state save, host-state load. */
function recordVmexit(svm: SvmSilicon, exitCode: number, info1Lo: number, info1Hi: number, info2Lo: number, info2Hi: number, guestRip: number, nextRip: number): void {
  const cpu = svm.cpu;
  const v = svm.vmcb!;
  cpu.rip = guestRip;
  // Exit information.
  v.w32(VMCB.exit_code, exitCode);
  v.w32(VMCB.exit_code_hi, exitCode < 0 ? -1 : 0);
  v.w64Halves(VMCB.exit_info_1, info1Lo, info1Hi);
  v.w64Halves(VMCB.exit_info_2, info2Lo, info2Hi);
  const intInfo = svm.pendingInj !== 0 ? svm.pendingInj : toExitIntInfo(cpu.vectoringInfo);
  v.w32(VMCB.exit_int_info, intInfo);
  v.w32(VMCB.exit_int_info_err, svm.pendingInj !== 0 ? svm.pendingInjErr : intInfo & SVM_EVTINJ.VALID_ERR ? cpu.vectoringErrorCode : 0);
  v.w64(VMCB.next_rip, nextRip);
  v.w32(VMCB.event_inj, 0);
  svm.pendingInj = 0;
  cpu.vectoringInfo = 0;
  // Guest state (the VMRUN subset; FS, GS, TR, LDTR and the syscall MSRs are VMSAVE's).
  saveGuest(svm, v);
  notePaging(cpu, svm.asid, svm.paging);
  svm.exitCount++;
  svm.lastExitCode = exitCode;
  loadHost(svm);
}

function saveGuest(svm: SvmSilicon, v: VmcbRegion): void {
  const cpu = svm.cpu;
  // The guest's registers are kept as they are (the CPU may have replaced the objects) for the next VMRUN.
  for (let i = 0; i < 4; i++) {
    const g = cpu.seg[i]!;
    svm.guestSeg[i] = g;
    v.writeSeg(SWITCHED_SEG[i]!, g);
  }
  svm.guestGdtr = cpu.gdtr;
  svm.guestIdtr = cpu.idtr;
  v.writeDtr(VMCB_SEG.gdtr, cpu.gdtr);
  v.writeDtr(VMCB_SEG.idtr, cpu.idtr);
  v.w8(VMCB.cpl, cpu.cpl);
  // EFER, CR0, CR4, DR6, DR7 and RFLAGS are 32 bits wide here: their high halves are zero.
  v.w64Halves(VMCB.efer, (svm.guestEfer = cpu.efer), 0);
  v.w64Halves(VMCB.cr0, (svm.guestCr0 = cpu.cr0), 0);
  v.w64(VMCB.cr2, cpu.cr2);
  v.w64(VMCB.cr3, (svm.guestCr3 = cpu.cr3));
  v.w64Halves(VMCB.cr4, (svm.guestCr4 = cpu.cr4), 0);
  v.w64Halves(VMCB.dr6, (svm.guestDr6 = cpu.dr[6]!), 0);
  v.w64Halves(VMCB.dr7, (svm.guestDr7 = cpu.dr[7]!), 0);
  v.w64Halves(VMCB.rflags, cpu.getRflags(), 0);
  v.w64(VMCB.rip, cpu.rip);
  v.w64Halves(VMCB.rsp, cpu.gpr[4]!, cpu.gprHi[4]!);
  v.w64Halves(VMCB.rax, cpu.gpr[0]!, cpu.gprHi[0]!);
  v.w64Halves(VMCB.g_pat, svm.gPatLo, svm.gPatHi);
  // The virtual interrupt state the guest leaves behind: V_TPR follows CR8, V_IRQ is cleared once taken.
  v.w32(VMCB.int_ctl, (svm.intCtl & ~(V_TPR_MASK | V_IRQ_MASK)) | (cpu.cr8 & V_TPR_MASK) | (svm.intCtl & V_IRQ_MASK));
  v.w32(VMCB.int_state, cpu.interruptibility & (INTERRUPTIBILITY.STI | INTERRUPTIBILITY.MOV_SS) ? SVM_INTERRUPT_SHADOW_MASK : 0);
}

/** Loads the host state VMRUN saved, as the processor kept it (APM 15.6 list), with DR7 disabled and CPL 0. */
export function loadHost(svm: SvmSilicon): void {
  const cpu = svm.cpu;
  const rec = svm.hostSaved;
  for (let i = 0; i < 4; i++) cpu.seg[i] = svm.hostSeg[i]!;
  cpu.gdtr = svm.hostGdtr;
  cpu.idtr = svm.hostIdtr;
  cpu.efer = rec[HOST_SAVED.EFER]!;
  cpu.cr0 = rec[HOST_SAVED.CR0]! | CR0.PE;
  cpu.cr4 = rec[HOST_SAVED.CR4]!;
  cpu.cr3 = rec[HOST_SAVED.CR3]!;
  cpu.setRflags(rec[HOST_SAVED.RFLAGS]!);
  cpu.rip = rec[HOST_SAVED.RIP]!;
  cpu.gpr[4] = rec[HOST_SAVED.RSP_LO]!; cpu.gprHi[4] = rec[HOST_SAVED.RSP_HI]!;
  cpu.gpr[0] = rec[HOST_SAVED.RAX_LO]!; cpu.gprHi[0] = rec[HOST_SAVED.RAX_HI]!;
  cpu.dr[7] = 0x400;
  cpu.cr8 = svm.hostCr8;
  cpu.interruptibility = 0;
  svm.guest = false;
  svm.gif = false;
  cpu.stateChanged();
  cpu.setTlbTag(0);
}

/** #VMEXIT(INVALID) from VMRUN: nothing of the guest was loaded, so only the exit code is written. */
export function svmVmexitInvalid(svm: SvmSilicon, v: VmcbRegion): void {
  svm.cachedVmcbPa = -1;
  v.w32(VMCB.exit_code, SVM_EXIT.ERR);
  v.w32(VMCB.exit_code_hi, -1);
  v.w64(VMCB.exit_info_1, 0);
  v.w64(VMCB.exit_info_2, 0);
  v.w32(VMCB.exit_int_info, 0);
  svm.lastExitCode = SVM_EXIT.ERR;
  loadHost(svm);
}
