/**
 * The SVM instructions (APM vol. 3 "VMRUN", "VMLOAD", "VMSAVE", "STGI", "CLGI", "INVLPGA",
 * "VMMCALL", "SKINIT"; APM vol. 2 15.5 and 15.5.2). One implementation serves both callers: a
 * hypervisor's code executing the opcode on this CPU (execute(), which checks, faults and
 * intercepts), and the TypeScript kernel, which "executes" them as methods on the silicon.
 *
 * RIP convention with the CPU (Bochs style): during execute() cpu.rip is already the next RIP
 * and cpu.insnStart the instruction's own; a fault restores RIP to the start.
 */
import { EFER, CR0, RFLAGS, VEC, VIRT_OP, STOP, type InsnOperand, type StopReason, type VirtOp } from '@kvmts/x86';
import { MAX_PA } from './caps.js';
import { INTERCEPT_BIT, SVM_EXIT, VMCB, VMCB_SEG } from './fields.js';
import type { VmcbRegion } from './region.js';
import { exitInsn, isIntercept } from './intercepts.js';
import { svmVmexit } from './exit.js';
import { svmEnterGuest } from './entry.js';
import type { SvmSilicon } from './silicon.js';

/** VMLOAD (15.5.2): FS, GS, TR, LDTR with their hidden state, KernelGsBase, STAR, LSTAR, CSTAR, SFMASK, SYSENTER_CS/ESP/EIP. */
export function vmloadState(svm: SvmSilicon, v: VmcbRegion): void {
  const cpu = svm.cpu;
  v.loadSeg(VMCB_SEG.fs, cpu.seg[4]!);
  v.loadSeg(VMCB_SEG.gs, cpu.seg[5]!);
  v.loadSeg(VMCB_SEG.tr, cpu.seg[7]!);
  v.loadSeg(VMCB_SEG.ldtr, cpu.seg[6]!);
  cpu.kernelGsBase = v.rAddr(VMCB.kernel_gs_base);
  cpu.starLo = v.r32(VMCB.star);
  cpu.starHi = v.r32(VMCB.star + 4);
  cpu.lstar = v.rAddr(VMCB.lstar);
  cpu.cstar = v.rAddr(VMCB.cstar);
  cpu.sfmask = v.r32(VMCB.sfmask);
  cpu.sysenterCs = v.r32(VMCB.sysenter_cs);
  cpu.sysenterEsp = v.rAddr(VMCB.sysenter_esp);
  cpu.sysenterEip = v.rAddr(VMCB.sysenter_eip);
  // FS, GS, TR and LDTR decide nothing stateChanged() caches (mode, CPL, sizes).
}

/** VMSAVE: the same subset, stored. */
export function vmsaveState(svm: SvmSilicon, v: VmcbRegion): void {
  const cpu = svm.cpu;
  v.writeSeg(VMCB_SEG.fs, cpu.seg[4]!);
  v.writeSeg(VMCB_SEG.gs, cpu.seg[5]!);
  v.writeSeg(VMCB_SEG.tr, cpu.seg[7]!);
  v.writeSeg(VMCB_SEG.ldtr, cpu.seg[6]!);
  v.w64(VMCB.kernel_gs_base, cpu.kernelGsBase);
  v.w64Halves(VMCB.star, cpu.starLo, cpu.starHi);
  v.w64(VMCB.lstar, cpu.lstar);
  v.w64(VMCB.cstar, cpu.cstar);
  v.w64(VMCB.sfmask, cpu.sfmask >>> 0);
  v.w64(VMCB.sysenter_cs, cpu.sysenterCs >>> 0);
  v.w64(VMCB.sysenter_esp, cpu.sysenterEsp);
  v.w64(VMCB.sysenter_eip, cpu.sysenterEip);
}

const INSN_INTERCEPT: Partial<Record<VirtOp, readonly [number, number]>> = {
  [VIRT_OP.VMRUN]: [INTERCEPT_BIT.VMRUN, SVM_EXIT.VMRUN],
  [VIRT_OP.VMMCALL]: [INTERCEPT_BIT.VMMCALL, SVM_EXIT.VMMCALL],
  [VIRT_OP.VMLOAD]: [INTERCEPT_BIT.VMLOAD, SVM_EXIT.VMLOAD],
  [VIRT_OP.VMSAVE]: [INTERCEPT_BIT.VMSAVE, SVM_EXIT.VMSAVE],
  [VIRT_OP.STGI]: [INTERCEPT_BIT.STGI, SVM_EXIT.STGI],
  [VIRT_OP.CLGI]: [INTERCEPT_BIT.CLGI, SVM_EXIT.CLGI],
  [VIRT_OP.SKINIT]: [INTERCEPT_BIT.SKINIT, SVM_EXIT.SKINIT],
  [VIRT_OP.INVLPGA]: [INTERCEPT_BIT.INVLPGA, SVM_EXIT.INVLPGA],
};

/** svmInsnChecks' verdict when the instruction #VMEXITed: it ends with no effect. */
const EXITED = -2;

/**
 * The checks every SVM instruction but VMMCALL and SKINIT makes before it acts: #UD without
 * EFER.SVME or outside protected mode, then the intercept in guest mode, then #GP(0) at CPL>0.
 * Returns the fault vector to raise, EXITED after a guest intercept's #VMEXIT, or -1 when clear.
 */
function svmInsnChecks(svm: SvmSilicon, op: VirtOp): number {
  const cpu = svm.cpu;
  if (!(cpu.efer & EFER.SVME) || !(cpu.cr0 & CR0.PE) || (cpu.getRflags() & RFLAGS.VM)) return VEC.UD;
  const icpt = INSN_INTERCEPT[op];
  if (svm.guest && icpt && isIntercept(svm, icpt[0])) { exitInsn(svm, icpt[1], 0, 0); return EXITED; }
  if (cpu.cpl !== 0) return VEC.GP;
  return -1;
}

/**
 * rAX as the instruction's address-size operand: a page-aligned physical address below
 * MAXPHYADDR, or -1 (#GP). A page the machine does not have is refused the same way: this
 * model keeps VMCBs in DRAM only.
 */
function raxPa(svm: SvmSilicon, addrSize: number): number {
  const cpu = svm.cpu;
  const lo = cpu.gpr[0]! >>> 0;
  const pa = addrSize === 64 ? (cpu.gprHi[0]! >>> 0) * 2 ** 32 + lo : addrSize === 32 ? lo : lo & 0xffff;
  return pa % 4096 === 0 && pa < MAX_PA && svm.mem.contains(pa) ? pa : -1;
}

/** A guest's VMLOAD/VMSAVE operand is guest-physical: through NPT when it is on. */
function operandHpa(svm: SvmSilicon, pa: number): number {
  return svm.guest && svm.npEnable ? svm.translate(pa, 1, 0) : pa;
}

/** Executes an SVM opcode the CPU decoded (bare CPU or guest). */
export function svmExecute(svm: SvmSilicon, op: VirtOp, operand: InsnOperand): void {
  const cpu = svm.cpu;
  const next = cpu.rip;
  switch (op) {
    case VIRT_OP.VMMCALL:
    case VIRT_OP.SKINIT: {
      // Without its intercept VMMCALL is #UD; SKINIT is not implemented (CPUID SKINIT clear).
      const icpt = INSN_INTERCEPT[op]!;
      if (svm.guest && isIntercept(svm, icpt[0])) { exitInsn(svm, icpt[1], 0, 0); return; }
      cpu.fault(VEC.UD);
    }
    case VIRT_OP.VMRUN: case VIRT_OP.VMLOAD: case VIRT_OP.VMSAVE: {
      const f = svmInsnChecks(svm, op);
      if (f === EXITED) return;
      if (f >= 0) cpu.fault(f, f === VEC.GP ? 0 : -1);
      const pa = raxPa(svm, operand.addrSize);
      if (pa < 0) cpu.fault(VEC.GP, 0);
      if (op === VIRT_OP.VMRUN) {
        if (!svm.mem.contains(svm.hsavePa)) cpu.fault(VEC.GP, 0);
        // In guest mode VMRUN is always intercepted (checked at entry); here the host runs a guest.
        if (svmEnterGuest(svm, pa, next)) svm.inRun = true;
        return;
      }
      const hpa = operandHpa(svm, pa);
      if (!svm.mem.contains(hpa)) cpu.fault(VEC.GP, 0);
      const v = svm.vmcbAt(hpa);
      if (op === VIRT_OP.VMLOAD) vmloadState(svm, v); else vmsaveState(svm, v);
      return;
    }
    case VIRT_OP.STGI: case VIRT_OP.CLGI: {
      const f = svmInsnChecks(svm, op);
      if (f === EXITED) return;
      if (f >= 0) cpu.fault(f, f === VEC.GP ? 0 : -1);
      if (op === VIRT_OP.STGI) svm.stgi(); else svm.clgi();
      return;
    }
    case VIRT_OP.INVLPGA: {
      const f = svmInsnChecks(svm, op);
      if (f === EXITED) return;
      if (f >= 0) cpu.fault(f, f === VEC.GP ? 0 : -1);
      const lin = operand.addrSize === 64 ? cpu.gprHi[0]! * 2 ** 32 + (cpu.gpr[0]! >>> 0) : cpu.gpr[0]! >>> 0;
      cpu.flushTlb(cpu.gpr[1]! >>> 0, lin);
      return;
    }
    default:
      // VMX opcodes on an AMD CPU.
      cpu.fault(VEC.UD);
  }
}

/**
 * Runs the guest VMRUN entered from TypeScript until its #VMEXIT. A guest that stops the CPU
 * without an intercept exits as the hardware would: a triple fault as SHUTDOWN, anything else
 * (budget, a kick, an internal error) as INTR, the way a host IPI ends guest execution.
 */
export function runGuest(svm: SvmSilicon): StopReason {
  svm.inRun = true;
  const reason = svm.cpu.run(Infinity);
  if (svm.guest) {
    svm.inRun = false;
    const code = reason === STOP.SHUTDOWN ? SVM_EXIT.SHUTDOWN : SVM_EXIT.INTR;
    if (reason === STOP.SHUTDOWN) svm.cpu.activity = 0;
    svmVmexit(svm, code, 0, 0, 0, 0, svm.cpu.rip, 0);
  }
  return reason;
}
