/**
 * The SVM instructions (APM vol. 3 "VMRUN", "VMLOAD", "VMSAVE", "STGI", "CLGI", "INVLPGA",
 * "VMMCALL", "SKINIT"; APM vol. 2 15.5 and 15.5.2). One implementation serves both callers: a
 * hypervisor's code executing the opcode on this CPU (execute(), which checks, faults and
 * intercepts), and the TypeScript kernel, which "executes" them as methods on the silicon.
 *
 * RIP convention with the CPU (Bochs style): during execute() cpu.rip is already the next RIP
 * and cpu.insnStart the instruction's own; a fault restores RIP to the start.
 */
import { EFER, CR0, RFLAGS, SEG, VEC, VIRT_OP, STOP, makeSegment, type InsnOperand, type StopReason, type VirtOp } from '@kvmts/x86';
import { MAX_PA } from './caps.js';
import { INTERCEPT_BIT, SVM_EXIT, VMCB, VMCB_SEG } from './fields.js';
import { getAddr, getSeg, put64, putSeg, type VmcbRegion } from './region.js';
import { exitInsn, isIntercept } from './intercepts.js';
import { svmVmexit } from './exit.js';
import { svmEnterGuest } from './entry.js';
import type { SvmSilicon } from './silicon.js';

const FS = VMCB_SEG.fs >>> 2, GS = VMCB_SEG.gs >>> 2, TR = VMCB_SEG.tr >>> 2, LDTR = VMCB_SEG.ldtr >>> 2;
/** The segment registers VMLOAD and VMSAVE move, and their vmcb_seg dwords. */
const VMLOAD_SEG = [SEG.FS, SEG.GS, SEG.TR, SEG.LDTR] as const;
const VMLOAD_SEG_DW = [FS, GS, TR, LDTR] as const;
const KERNEL_GS_BASE = VMCB.kernel_gs_base >>> 2, STAR = VMCB.star >>> 2, LSTAR = VMCB.lstar >>> 2, CSTAR = VMCB.cstar >>> 2;
const SFMASK = VMCB.sfmask >>> 2, SYSENTER_CS = VMCB.sysenter_cs >>> 2, SYSENTER_ESP = VMCB.sysenter_esp >>> 2, SYSENTER_EIP = VMCB.sysenter_eip >>> 2;

/** VMLOAD (15.5.2): FS, GS, TR, LDTR with their hidden state, KernelGsBase, STAR, LSTAR, CSTAR, SFMASK, SYSENTER_CS/ESP/EIP. */
export function vmloadState(svm: SvmSilicon, v: VmcbRegion): void {
  const cpu = svm.cpu;
  const m = v.u32;
  const seg = cpu.seg;
  const objs = v.vmloadSegs;
  const c = v.vmloadDwords;
  for (let i = 0; i < 4; i++) {
    const d = VMLOAD_SEG_DW[i]!;
    const k = i * 4;
    let o = objs[i]!;
    if (o === null || m[d] !== c[k] || m[d + 1] !== c[k + 1] || m[d + 2] !== c[k + 2] || m[d + 3] !== c[k + 3]) {
      const fresh = makeSegment();
      getSeg(m, d, fresh);
      objs[i] = o = Object.freeze(fresh);
      putSeg(c, k, o);
    }
    seg[VMLOAD_SEG[i]!] = o;
  }
  cpu.kernelGsBase = getAddr(m, KERNEL_GS_BASE);
  cpu.starLo = m[STAR]!;
  cpu.starHi = m[STAR + 1]!;
  cpu.lstar = getAddr(m, LSTAR);
  cpu.cstar = getAddr(m, CSTAR);
  cpu.sfmask = m[SFMASK]!;
  cpu.sysenterCs = m[SYSENTER_CS]!;
  cpu.sysenterEsp = getAddr(m, SYSENTER_ESP);
  cpu.sysenterEip = getAddr(m, SYSENTER_EIP);
  // FS, GS, TR and LDTR decide nothing stateChanged() caches (mode, CPL, sizes).
}

/** VMSAVE: the same subset, stored (SFMASK and SYSENTER_CS are 32 bits wide: their high dwords are zero). */
export function vmsaveState(svm: SvmSilicon, v: VmcbRegion): void {
  const cpu = svm.cpu;
  const m = v.u32;
  const seg = cpu.seg;
  const objs = v.vmloadSegs;
  const c = v.vmloadDwords;
  for (let i = 0; i < 4; i++) {
    const s = seg[VMLOAD_SEG[i]!]!;
    const k = i * 4;
    if (s !== objs[i]) {
      objs[i] = s;
      putSeg(c, k, s);
    }
    const d = VMLOAD_SEG_DW[i]!;
    m[d] = c[k]!; m[d + 1] = c[k + 1]!; m[d + 2] = c[k + 2]!; m[d + 3] = c[k + 3]!;
  }
  put64(m, KERNEL_GS_BASE, cpu.kernelGsBase);
  m[STAR] = cpu.starLo;
  m[STAR + 1] = cpu.starHi;
  put64(m, LSTAR, cpu.lstar);
  put64(m, CSTAR, cpu.cstar);
  m[SFMASK] = cpu.sfmask;
  m[SFMASK + 1] = 0;
  m[SYSENTER_CS] = cpu.sysenterCs;
  m[SYSENTER_CS + 1] = 0;
  put64(m, SYSENTER_ESP, cpu.sysenterEsp);
  put64(m, SYSENTER_EIP, cpu.sysenterEip);
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
