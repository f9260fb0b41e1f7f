/**
 * svm_x86_ops and svm_init_ops (arch/x86/kvm/svm/svm.c): the kvm_x86_ops table kvm_amd hands
 * to the common code, with the small hooks that only move state between kvm_vcpu_arch and
 * the VMCB (segments, CRs, RFLAGS, MSRs, TLB flushes, the NPT root).
 */
import { CR0, CR4, EFER, RFLAGS } from '@kvmts/x86';
import {
  VCPU_SREG, kvmGetMsrCommon, kvmSetMsrCommon,
  type KvmDtable, type KvmSegment, type KvmVcpu, type KvmX86InitOps, type KvmX86Ops, type MsrData,
  type TdpFormat,
} from '@kvmts/core';
import { SVM_EXIT, VMCB, VMCB_CLEAN, VMCB_SEG, SVM_NESTED_CTL_NP_ENABLE, TLB_CONTROL, type VmcbFieldName } from '../hw/fields.js';
import { MSR_VM_CR, MSR_VM_HSAVE_PA } from '../hw/caps.js';
import {
  initVmcb, silicon, svmGlobals, vmcbMarkDirty, svmHardwareDisable, svmHardwareEnable, svmHardwareSetup,
  svmHardwareUnsetup, svmSetCr0Hw, svmVcpuCreate, svmVcpuFree, svmVmInit, toSvm,
} from './setup.js';
import {
  svmCancelInjection, svmEnableIrqWindow, svmEnableNmiWindow, svmGetInterruptShadow, svmGetNmiMask,
  svmInjectException, svmInjectIrq, svmInjectNmi, svmInterruptAllowed, svmNmiAllowed,
  svmPrepareSwitchToGuest, svmSetInterruptShadow, svmSetNmiMask, svmUpdateCr8Intercept, svmVcpuLoad,
  svmUpdateExceptionBitmap, svmVcpuPut, svmVcpuRun,
} from './run.js';
import { svmHandleExit, svmSkipEmulatedInstruction } from './exit-handlers.js';
import { svmInspect } from './inspect.js';

/** VCPU_SREG order (ES CS SS DS FS GS TR LDTR) to the VMCB save-area segment offsets. */
const SEG_OFFSET = [VMCB_SEG.es, VMCB_SEG.cs, VMCB_SEG.ss, VMCB_SEG.ds, VMCB_SEG.fs, VMCB_SEG.gs, VMCB_SEG.tr, VMCB_SEG.ldtr] as const;

/** The syscall MSRs VMLOAD/VMSAVE switch live in vmcb01's save area, as do G_PAT and DBGCTL. */
const VMCB_MSRS = new Map<number, VmcbFieldName>([
  [0xc0000081, 'star'], [0xc0000082, 'lstar'], [0xc0000083, 'cstar'], [0xc0000084, 'sfmask'],
  [0xc0000102, 'kernel_gs_base'], [0x174, 'sysenter_cs'], [0x175, 'sysenter_esp'],
  [0x176, 'sysenter_eip'], [0x277, 'g_pat'], [0x1d9, 'dbgctl'],
]);

/** The VMCB_MSRS kept under a clean bit: G_PAT is nested paging's (NP), DBGCTL the LBR group's. */
const VMCB_MSR_CLEAN = new Map<number, number>([[0x277, VMCB_CLEAN.NPT], [0x1d9, VMCB_CLEAN.LBR]]);

/** svm_get_rflags: the single-step flags KVM added for an NMI window are hidden from the guest's view. */
function svmGetRflags(vcpu: KvmVcpu): number {
  const svm = toSvm(vcpu);
  let rflags = svm.vmcb.r32(VMCB.rflags);
  if (svm.nmiSinglestep) {
    if (!(svm.nmiSinglestepGuestRflags & RFLAGS.TF)) rflags &= ~RFLAGS.TF;
    if (!(svm.nmiSinglestepGuestRflags & RFLAGS.RF)) rflags &= ~RFLAGS.RF;
  }
  return rflags;
}

function svmGetSegment(vcpu: KvmVcpu, seg: number): KvmSegment {
  const v = toSvm(vcpu).vmcb;
  const off = SEG_OFFSET[seg]!;
  const attrib = v.r16(off + 2);
  const limit = v.r32(off + 4);
  const s: KvmSegment = {
    base: v.rAddr(off + 8), limit, selector: v.r16(off),
    type: attrib & 0xf, s: (attrib >> 4) & 1, dpl: (attrib >> 5) & 3, present: (attrib >> 7) & 1,
    avl: (attrib >> 8) & 1, l: (attrib >> 9) & 1, db: (attrib >> 10) & 1,
    // The APM says G is not observed: synthesize a legal one, as svm_get_segment does.
    g: limit > 0xfffff ? 1 : 0,
    unusable: 0,
  };
  s.unusable = s.present ? 0 : 1;
  switch (seg) {
    case VCPU_SREG.TR: s.type |= 0x2; break;
    case VCPU_SREG.DS: case VCPU_SREG.ES: case VCPU_SREG.FS: case VCPU_SREG.GS:
      if (!s.unusable) s.type |= 0x1;
      break;
    case VCPU_SREG.SS:
      if (s.unusable) s.db = 0;
      s.dpl = v.r8(VMCB.cpl);
      break;
  }
  return s;
}

function svmSetSegment(vcpu: KvmVcpu, seg: number, s: KvmSegment): void {
  const v = toSvm(vcpu).vmcb;
  const off = SEG_OFFSET[seg]!;
  v.w16(off, s.selector);
  v.w32(off + 4, s.limit);
  v.w64(off + 8, s.base);
  const present = s.present && !s.unusable ? 1 : 0;
  v.w16(off + 2, (s.type & 0xf) | ((s.s & 1) << 4) | ((s.dpl & 3) << 5) | (present << 7) |
    ((s.avl & 1) << 8) | ((s.l & 1) << 9) | ((s.db & 1) << 10) | ((s.g & 1) << 11));
  if (seg === VCPU_SREG.SS) v.w8(VMCB.cpl, s.dpl & 3);
  vmcbMarkDirty(v, VMCB_CLEAN.SEG);
}

/** svm_set_cr0: LMA follows PG under LME; the hardware CR0 and its intercepts follow the guest's. */
function svmSetCr0(vcpu: KvmVcpu, cr0: number): void {
  const svm = toSvm(vcpu);
  const arch = vcpu.arch;
  const paging = (arch.cr0 & CR0.PG) !== 0;
  if (arch.efer & EFER.LME) {
    if (!paging && cr0 & CR0.PG) {
      arch.efer |= EFER.LMA;
      svm.vmcb.w32(VMCB.efer, svm.vmcb.r32(VMCB.efer) | EFER.LMA | EFER.LME);
    }
    if (paging && !(cr0 & CR0.PG)) {
      arch.efer &= ~EFER.LMA;
      svm.vmcb.w32(VMCB.efer, svm.vmcb.r32(VMCB.efer) & ~(EFER.LMA | EFER.LME));
    }
  }
  arch.cr0 = cr0 >>> 0;
  svmSetCr0Hw(svm, cr0);
}

function svmSetCr4(vcpu: KvmVcpu, cr4: number): void {
  vcpu.arch.cr4 = cr4;
  let hw = cr4;
  if (!svmGlobals.nptEnabled) {
    hw |= CR4.PAE;
    if (!(vcpu.arch.cr0 & CR0.PG)) hw &= ~(CR4.SMEP | CR4.SMAP | CR4.PKE);
  }
  // The host's CR4.MCE stays on in the guest (host_cr4_mce).
  if (vcpu.pcpu) hw |= vcpu.pcpu.cpu.cr4 & CR4.MCE;
  const v = toSvm(vcpu).vmcb;
  v.w64(VMCB.cr4, hw >>> 0);
  vmcbMarkDirty(v, VMCB_CLEAN.CR);
}

/** svm_set_efer: the VMCB's EFER always has SVME (the VMRUN check), and without NPT NX and a consistent LME. */
function svmSetEfer(vcpu: KvmVcpu, efer: number): number {
  vcpu.arch.efer = efer;
  let hw = efer;
  if (!svmGlobals.nptEnabled) {
    hw |= EFER.NXE;
    if (!(hw & EFER.LMA)) hw &= ~EFER.LME;
  }
  const v = toSvm(vcpu).vmcb;
  v.w64(VMCB.efer, hw | EFER.SVME);
  vmcbMarkDirty(v, VMCB_CLEAN.CR);
  return 0;
}

function svmGetMsr(vcpu: KvmVcpu, msr: { index: number; data: bigint; hostInitiated: boolean }): number {
  const field = VMCB_MSRS.get(msr.index);
  if (field !== undefined) { msr.data = toSvm(vcpu).vmcb.get(field); return 0; }
  return kvmGetMsrCommon(vcpu, msr);
}

function svmSetMsr(vcpu: KvmVcpu, msr: MsrData): number {
  const field = VMCB_MSRS.get(msr.index);
  if (field !== undefined) {
    if (msr.index === 0x277) { const r = kvmSetMsrCommon(vcpu, msr); if (r) return r; }
    const v = toSvm(vcpu).vmcb;
    v.set(field, msr.data);
    const group = VMCB_MSR_CLEAN.get(msr.index);
    if (group !== undefined) vmcbMarkDirty(v, group);
    return 0;
  }
  // Without nested SVM the guest has no VM_CR or VM_HSAVE_PA to program.
  if (msr.index === MSR_VM_CR || msr.index === MSR_VM_HSAVE_PA) return msr.hostInitiated ? 0 : 1;
  return kvmSetMsrCommon(vcpu, msr);
}

/** svm_flush_tlb_asid: TLB_CONTROL flush of this ASID at the next VMRUN, or a new ASID without FlushByAsid. */
function svmFlushTlbAsid(vcpu: KvmVcpu): void {
  const svm = toSvm(vcpu);
  if (svmGlobals.flushByAsid) svm.vmcb.w8(VMCB.tlb_ctl, TLB_CONTROL.FLUSH_ASID);
  else svm.asidGeneration--;
}

/** NPT entries are x86 long-mode PTEs; guest accesses are user accesses; bit 51 is reserved (MAXPHYADDR 48). */
const NPT_FORMAT: TdpFormat = {
  kind: 'npt',
  read: 0x1, // P
  write: 0x2, // RW
  exec: 0, // execute is "no NX"
  nonLeaf: 0x7, // P | RW | US
  leafExtra: 0x4, // US
  mmioSpte: { lo: 0x7, hi: 1 << 19 },
};

const SVM_EXIT_NAMES = new Map<number, string>(Object.entries(SVM_EXIT).map(([n, c]) => [c, n.toLowerCase()]));

function svmExitReasonName(reason: number): string {
  const r = reason | 0;
  if (r >= SVM_EXIT.READ_CR0 && r < SVM_EXIT.READ_DR0) return r < SVM_EXIT.WRITE_CR0 ? `read_cr${r}` : `write_cr${r - 16}`;
  if (r >= SVM_EXIT.READ_DR0 && r < SVM_EXIT.EXCP_BASE) return r < SVM_EXIT.WRITE_DR0 ? `read_dr${r - 0x20}` : `write_dr${r - 0x30}`;
  if (r >= SVM_EXIT.EXCP_BASE && r < SVM_EXIT.INTR) return `excp_${r - SVM_EXIT.EXCP_BASE}`;
  if (r === SVM_EXIT.IOIO) return 'io';
  return SVM_EXIT_NAMES.get(r) ?? `unknown_0x${(r >>> 0).toString(16)}`;
}

export const svmX86Ops: KvmX86Ops = {
  name: 'kvm_amd',
  checkProcessorCompatibility: () => 0,
  hardwareEnable: svmHardwareEnable,
  hardwareDisable: svmHardwareDisable,
  hardwareUnsetup: svmHardwareUnsetup,
  hasEmulatedMsr: (_kvm, index) => index !== 0x4d0 /* MSR_IA32_MCG_EXT_CTL */,
  vcpuAfterSetCpuid: () => {},
  vmInit: svmVmInit,
  vcpuCreate: svmVcpuCreate,
  vcpuFree: svmVcpuFree,
  vcpuReset: (vcpu) => initVmcb(vcpu),
  prepareSwitchToGuest: svmPrepareSwitchToGuest,
  vcpuLoad: svmVcpuLoad,
  vcpuPut: svmVcpuPut,
  updateExceptionBitmap: svmUpdateExceptionBitmap,
  getMsrFeature: () => undefined,
  getMsr: svmGetMsr,
  setMsr: svmSetMsr,
  getSegmentBase: (vcpu, seg) => toSvm(vcpu).vmcb.rAddr(SEG_OFFSET[seg]! + 8),
  getSegment: svmGetSegment,
  getCpl: (vcpu) => toSvm(vcpu).vmcb.r8(VMCB.cpl),
  setSegment: svmSetSegment,
  getCsDbLBits: (vcpu) => {
    const attrib = toSvm(vcpu).vmcb.r16(VMCB_SEG.cs + 2);
    return { db: (attrib >> 10) & 1, l: (attrib >> 9) & 1 };
  },
  isValidCr0: () => true,
  setCr0: svmSetCr0,
  isValidCr4: () => true,
  setCr4: svmSetCr4,
  setEfer: svmSetEfer,
  getIdt: (vcpu): KvmDtable => toSvm(vcpu).vmcb.readDtr(VMCB_SEG.idtr),
  setIdt: (vcpu, dt) => { const v = toSvm(vcpu).vmcb; v.writeDtr(VMCB_SEG.idtr, dt); vmcbMarkDirty(v, VMCB_CLEAN.DT); },
  getGdt: (vcpu): KvmDtable => toSvm(vcpu).vmcb.readDtr(VMCB_SEG.gdtr),
  setGdt: (vcpu, dt) => { const v = toSvm(vcpu).vmcb; v.writeDtr(VMCB_SEG.gdtr, dt); vmcbMarkDirty(v, VMCB_CLEAN.DT); },
  syncDirtyDebugRegs: () => {},
  setDr7: (vcpu, value) => { const v = toSvm(vcpu).vmcb; v.w64(VMCB.dr7, value >>> 0); vmcbMarkDirty(v, VMCB_CLEAN.DR); },
  // RAX, RSP and RIP are copied out of the VMCB at every exit (svm_vcpu_run), so nothing is lazy.
  cacheReg: () => {},
  getRflags: svmGetRflags,
  setRflags: (vcpu, rflags) => {
    const svm = toSvm(vcpu);
    // While single-stepping for an NMI window, TF and RF stay on (svm_set_rflags).
    svm.vmcb.w64(VMCB.rflags, (rflags | RFLAGS.FIXED1 | (svm.nmiSinglestep ? RFLAGS.TF | RFLAGS.RF : 0)) >>> 0);
  },
  getIfFlag: (vcpu) => (toSvm(vcpu).vmcb.r32(VMCB.rflags) & RFLAGS.IF) !== 0,
  flushTlbAll: svmFlushTlbAsid,
  flushTlbCurrent: svmFlushTlbAsid,
  flushTlbGva: (vcpu, gva) => {
    if (vcpu.pcpu) silicon(vcpu.pcpu.cpu).invlpga(gva, toSvm(vcpu).vmcb.r32(VMCB.asid));
  },
  flushTlbGuest: svmFlushTlbAsid,
  vcpuPreRun: () => 1,
  vcpuRun: svmVcpuRun,
  handleExit: svmHandleExit,
  skipEmulatedInstruction: svmSkipEmulatedInstruction,
  setInterruptShadow: svmSetInterruptShadow,
  getInterruptShadow: svmGetInterruptShadow,
  injectIrq: svmInjectIrq,
  injectNmi: svmInjectNmi,
  injectException: svmInjectException,
  cancelInjection: svmCancelInjection,
  interruptAllowed: svmInterruptAllowed,
  nmiAllowed: svmNmiAllowed,
  getNmiMask: svmGetNmiMask,
  setNmiMask: svmSetNmiMask,
  enableNmiWindow: svmEnableNmiWindow,
  enableIrqWindow: svmEnableIrqWindow,
  updateCr8Intercept: svmUpdateCr8Intercept,
  /**
   * A CR3 KVM set (KVM_SET_SREGS, emulation): with NPT it is the guest's own, in the VMCB, as
   * svm_load_mmu_pgd writes it on KVM_REQ_LOAD_MMU_PGD.
   */
  postSetCr3: (vcpu, cr3) => {
    if (!svmGlobals.nptEnabled) return;
    const v = toSvm(vcpu).vmcb;
    v.w64(VMCB.cr3, cr3);
    vmcbMarkDirty(v, VMCB_CLEAN.CR);
  },
  /** svm_load_mmu_pgd: nCR3 = the TDP root; the guest's CR3 is its own. */
  loadMmuPgd: (vcpu, rootHpa) => {
    const v = toSvm(vcpu).vmcb;
    v.w64(VMCB.nested_cr3, rootHpa);
    v.w64(VMCB.nested_ctl, SVM_NESTED_CTL_NP_ENABLE);
    vmcbMarkDirty(v, VMCB_CLEAN.NPT);
    v.w64(VMCB.cr3, vcpu.arch.cr3);
    vmcbMarkDirty(v, VMCB_CLEAN.CR);
  },
  getExitInfo: (vcpu) => toSvm(vcpu).exitInfo,
  exitReasonName: svmExitReasonName,
  writeTscOffset: (vcpu) => {
    const v = toSvm(vcpu).vmcb;
    v.set('tsc_offset', vcpu.arch.tscOffset);
    vmcbMarkDirty(v, VMCB_CLEAN.INTERCEPTS);
  },
  tdpFormat: () => NPT_FORMAT,
  inspect: svmInspect,
};

/** svm_init_ops: modprobe kvm_amd. */
export const svmInitOps: KvmX86InitOps = {
  hardwareSetup: svmHardwareSetup,
  runtimeOps: svmX86Ops,
};
