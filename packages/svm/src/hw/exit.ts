/**
 * #VMEXIT (APM 15.6): write the exit information and the guest state into the VMCB, then load
 * the host state VMRUN saved at VM_HSAVE_PA, clear GIF and return to the host. A VMRUN that
 * fails its consistency checks exits the same way with exit_code VMEXIT_INVALID (-1).
 */
import { CR0, EVENT_TYPE, INTERRUPTIBILITY, STOP } from '@kvmts/x86';
import { SVM_EXIT, SVM_EVTINJ, SVM_INTERRUPT_SHADOW_MASK, SWITCHED_SEG, V_IRQ_MASK, V_TPR_MASK, VMCB, VMCB_SEG } from './fields.js';
import { put64, putSeg, type VmcbRegion } from './region.js';
import { notePaging } from './tdp.js';
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

const EXIT_CODE = VMCB.exit_code >>> 2, EXIT_INFO_1 = VMCB.exit_info_1 >>> 2, EXIT_INFO_2 = VMCB.exit_info_2 >>> 2;
const EXIT_INT_INFO = VMCB.exit_int_info >>> 2, NEXT_RIP = VMCB.next_rip >>> 2, EVENT_INJ = VMCB.event_inj >>> 2;

/** #VMEXIT proper: exit information, guest-state save, host-state load. */
function recordVmexit(svm: SvmSilicon, exitCode: number, info1Lo: number, info1Hi: number, info2Lo: number, info2Hi: number, guestRip: number, nextRip: number): void {
  const cpu = svm.cpu;
  const v = svm.vmcb!;
  const m = v.u32;
  cpu.rip = guestRip;
  // Exit information.
  m[EXIT_CODE] = exitCode;
  m[EXIT_CODE + 1] = exitCode < 0 ? -1 : 0;
  m[EXIT_INFO_1] = info1Lo;
  m[EXIT_INFO_1 + 1] = info1Hi;
  m[EXIT_INFO_2] = info2Lo;
  m[EXIT_INFO_2 + 1] = info2Hi;
  const injecting = svm.pendingInj !== 0;
  const intInfo = injecting ? svm.pendingInj : toExitIntInfo(cpu.vectoringInfo);
  m[EXIT_INT_INFO] = intInfo;
  m[EXIT_INT_INFO + 1] = injecting ? svm.pendingInjErr : intInfo & SVM_EVTINJ.VALID_ERR ? cpu.vectoringErrorCode : 0;
  put64(m, NEXT_RIP, nextRip);
  m[EVENT_INJ] = 0;
  svm.pendingInj = 0;
  cpu.vectoringInfo = 0;
  // Guest state (the VMRUN subset; FS, GS, TR, LDTR and the syscall MSRs are VMSAVE's).
  saveGuest(svm, v);
  notePaging(cpu, svm.asid, svm.paging);
  svm.exitCount++;
  svm.lastExitCode = exitCode;
  loadHost(svm);
}

const SWITCHED_SEG_DW = SWITCHED_SEG.map((off) => off >>> 2);
const GDTR = VMCB_SEG.gdtr >>> 2, IDTR = VMCB_SEG.idtr >>> 2;
const EFER_DW = VMCB.efer >>> 2, CR0_DW = VMCB.cr0 >>> 2, CR2_DW = VMCB.cr2 >>> 2, CR3_DW = VMCB.cr3 >>> 2, CR4_DW = VMCB.cr4 >>> 2;
const DR6_DW = VMCB.dr6 >>> 2, DR7_DW = VMCB.dr7 >>> 2, RFLAGS_DW = VMCB.rflags >>> 2, RIP_DW = VMCB.rip >>> 2;
const RSP_DW = VMCB.rsp >>> 2, RAX_DW = VMCB.rax >>> 2, G_PAT_DW = VMCB.g_pat >>> 2, INT_CTL_DW = VMCB.int_ctl >>> 2, INT_STATE_DW = VMCB.int_state >>> 2;

/**
 * The guest's ES, CS, SS, DS, GDTR and IDTR into the VMCB, kept (as the CPU holds them, objects
 * included) for the next VMRUN. While the VMCB holds the kept values, a register the guest did
 * not replace is already there.
 */
function saveGuestSegments(svm: SvmSilicon, m: Uint32Array): void {
  const cpu = svm.cpu;
  const seg = cpu.seg;
  const kept = svm.guestSeg;
  const all = !svm.vmcbSegsCurrent;
  // A loop, not four calls: V8 inlines putSeg once, within its inlining budget.
  for (let i = 0; i < 4; i++) if (all || seg[i] !== kept[i]) putSeg(m, SWITCHED_SEG_DW[i]!, (kept[i] = seg[i]!));
  if (all || cpu.gdtr !== svm.guestGdtr) {
    const gdtr = (svm.guestGdtr = cpu.gdtr);
    m[GDTR + 1] = gdtr.limit;
    put64(m, GDTR + 2, gdtr.base);
  }
  if (all || cpu.idtr !== svm.guestIdtr) {
    const idtr = (svm.guestIdtr = cpu.idtr);
    m[IDTR + 1] = idtr.limit;
    put64(m, IDTR + 2, idtr.base);
  }
  svm.vmcbSegsCurrent = true;
}

function saveGuest(svm: SvmSilicon, v: VmcbRegion): void {
  const cpu = svm.cpu;
  const m = v.u32;
  saveGuestSegments(svm, m);
  v.w8(VMCB.cpl, cpu.cpl);
  // EFER, CR0, CR4, DR6, DR7 and RFLAGS are 32 bits wide here: their high halves are zero.
  m[EFER_DW] = svm.guestEfer = cpu.efer;
  m[EFER_DW + 1] = 0;
  m[CR0_DW] = svm.guestCr0 = cpu.cr0;
  m[CR0_DW + 1] = 0;
  put64(m, CR2_DW, cpu.cr2);
  put64(m, CR3_DW, (svm.guestCr3 = cpu.cr3));
  m[CR4_DW] = svm.guestCr4 = cpu.cr4;
  m[CR4_DW + 1] = 0;
  const dr = cpu.dr;
  m[DR6_DW] = svm.guestDr6 = dr[6]!;
  m[DR6_DW + 1] = 0;
  m[DR7_DW] = svm.guestDr7 = dr[7]!;
  m[DR7_DW + 1] = 0;
  m[RFLAGS_DW] = cpu.getRflags();
  m[RFLAGS_DW + 1] = 0;
  put64(m, RIP_DW, cpu.rip);
  m[RSP_DW] = cpu.gpr[4]!;
  m[RSP_DW + 1] = cpu.gprHi[4]!;
  m[RAX_DW] = cpu.gpr[0]!;
  m[RAX_DW + 1] = cpu.gprHi[0]!;
  m[G_PAT_DW] = svm.gPatLo;
  m[G_PAT_DW + 1] = svm.gPatHi;
  // The virtual interrupt state the guest leaves behind: V_TPR follows CR8, V_IRQ is cleared once taken.
  const intCtl = svm.intCtl;
  m[INT_CTL_DW] = (intCtl & ~(V_TPR_MASK | V_IRQ_MASK)) | (cpu.cr8 & V_TPR_MASK) | (intCtl & V_IRQ_MASK);
  m[INT_STATE_DW] = cpu.interruptibility & (INTERRUPTIBILITY.STI | INTERRUPTIBILITY.MOV_SS) ? SVM_INTERRUPT_SHADOW_MASK : 0;
}

/** Loads the host state VMRUN saved, as the processor kept it (APM 15.6 list), with DR7 disabled and CPL 0. */
export function loadHost(svm: SvmSilicon): void {
  const cpu = svm.cpu;
  const host = svm.host;
  const seg = cpu.seg;
  const kept = host.seg;
  seg[0] = kept[0]!;
  seg[1] = kept[1]!;
  seg[2] = kept[2]!;
  seg[3] = kept[3]!;
  cpu.gdtr = host.gdtr;
  cpu.idtr = host.idtr;
  cpu.efer = host.efer;
  cpu.cr0 = host.cr0 | CR0.PE;
  cpu.cr4 = host.cr4;
  cpu.cr3 = host.cr3;
  cpu.setRflags(host.rflags);
  cpu.rip = host.rip;
  cpu.gpr[4] = host.rspLo; cpu.gprHi[4] = host.rspHi;
  cpu.gpr[0] = host.raxLo; cpu.gprHi[0] = host.raxHi;
  cpu.dr[7] = 0x400;
  cpu.cr8 = svm.hostCr8;
  cpu.interruptibility = 0;
  svm.guest = false;
  svm.gif = false;
  cpu.worldSwitched();
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
