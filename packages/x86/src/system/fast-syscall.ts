/**
 * SYSCALL/SYSRET (STAR, LSTAR, CSTAR, FMASK), SYSENTER/SYSEXIT (IA32_SYSENTER_*) and SWAPGS,
 * as SDM Vol. 2 and APM Vol. 3 define them: flat segments loaded without descriptor reads.
 */
import type { VirtCpu } from '../cpu/virt.js';
import { VEC } from '../cpu/events.js';
import { CR0, EFER, GPR, RFLAGS, SEG, type Segment } from '../cpu/state.js';
import { isLong64 } from '../seg/segments.js';
import { getReg64, isCanonical, setReg64 } from './regs.js';

/** Flat segments as SYSCALL/SYSENTER load them: base 0, limit 4 GiB, accessed; AR in the VMX layout. */
const AR_CODE64 = 0xa09b; // G, L, P, S, execute/read accessed
const AR_CODE32 = 0xc09b; // G, D
const AR_DATA = 0xc093; // G, B, P, S, read/write accessed
const USER_DPL = 3 << 5;

function flat(selector: number, ar: number): Segment {
  return { selector: selector & 0xffff, base: 0, limit: 0xffffffff, ar };
}

function syscallSupported(cpu: VirtCpu): boolean {
  return (cpu.model.cpuid(0x80000001, 0)[3] & (1 << 11)) !== 0;
}

export function syscallInsn(cpu: VirtCpu): void {
  const lma = (cpu.efer & EFER.LMA) !== 0;
  // Intel implements SYSCALL only in 64-bit mode; AMD also in legacy protected mode.
  if (!(cpu.efer & EFER.SCE) || !syscallSupported(cpu)) cpu.fault(VEC.UD);
  if (!(cpu.cr0 & CR0.PE) || cpu.rflags & RFLAGS.VM) cpu.fault(VEC.UD);
  if (cpu.model.vendor === 'intel' && !isLong64(cpu)) cpu.fault(VEC.UD);
  const sel = (cpu.starHi >>> 0) & 0xfffc;
  const flags = cpu.getRflags();
  if (lma) {
    setReg64(cpu, GPR.RCX, cpu.rip);
    setReg64(cpu, GPR.R11, flags & ~RFLAGS.RF);
    cpu.rip = isLong64(cpu) ? cpu.lstar : cpu.cstar;
    cpu.setRflags((flags & ~(cpu.sfmask | RFLAGS.RF)) | RFLAGS.FIXED1);
    cpu.seg[SEG.CS] = flat(sel, AR_CODE64);
  } else {
    cpu.gpr[GPR.RCX] = cpu.rip | 0;
    cpu.rip = cpu.starLo >>> 0;
    cpu.setRflags(flags & ~(RFLAGS.VM | RFLAGS.IF | RFLAGS.RF));
    cpu.seg[SEG.CS] = flat(sel, AR_CODE32);
  }
  cpu.seg[SEG.SS] = flat(sel + 8, AR_DATA);
  cpu.stateChanged();
}

export function sysretInsn(cpu: VirtCpu, opSize: 32 | 64): void {
  if (!(cpu.efer & EFER.SCE) || !syscallSupported(cpu)) cpu.fault(VEC.UD);
  if (!(cpu.cr0 & CR0.PE) || cpu.rflags & RFLAGS.VM) cpu.fault(VEC.UD);
  const lma = (cpu.efer & EFER.LMA) !== 0;
  if (cpu.model.vendor === 'intel' && !isLong64(cpu)) cpu.fault(VEC.UD);
  if (cpu.cpl !== 0) cpu.fault(VEC.GP, 0);
  const base = (cpu.starHi >>> 16) & 0xffff;
  if (lma && opSize === 64) {
    const rip = getReg64(cpu, GPR.RCX);
    if (!isCanonical(rip)) cpu.fault(VEC.GP, 0);
    cpu.rip = rip;
    cpu.seg[SEG.CS] = flat((base + 16) | 3, AR_CODE64 | USER_DPL);
  } else {
    cpu.rip = cpu.gpr[GPR.RCX]! >>> 0;
    cpu.seg[SEG.CS] = flat(base | 3, AR_CODE32 | USER_DPL);
  }
  if (lma) cpu.setRflags((cpu.gpr[GPR.R11]! & 0x3c7fd7) | RFLAGS.FIXED1);
  else cpu.setRflags(cpu.getRflags() | RFLAGS.IF);
  cpu.seg[SEG.SS] = flat((base + 8) | 3, AR_DATA | USER_DPL);
  cpu.stateChanged();
}

/** AMD processors raise #UD for SYSENTER/SYSEXIT in IA-32e mode (APM Vol. 3, SYSENTER). */
function sysenterUd(cpu: VirtCpu): void {
  if (cpu.model.vendor === 'amd' && cpu.efer & EFER.LMA) cpu.fault(VEC.UD);
}

export function sysenterInsn(cpu: VirtCpu): void {
  sysenterUd(cpu);
  if (!(cpu.cr0 & CR0.PE)) cpu.fault(VEC.GP, 0);
  const cs = cpu.sysenterCs & 0xfffc;
  if (cs === 0) cpu.fault(VEC.GP, 0);
  const lma = (cpu.efer & EFER.LMA) !== 0;
  cpu.setRflags(cpu.getRflags() & ~(RFLAGS.VM | RFLAGS.IF | RFLAGS.RF));
  cpu.seg[SEG.CS] = flat(cs, lma ? AR_CODE64 : AR_CODE32);
  cpu.seg[SEG.SS] = flat(cs + 8, AR_DATA);
  if (lma) {
    cpu.rip = cpu.sysenterEip;
    setReg64(cpu, GPR.RSP, cpu.sysenterEsp);
  } else {
    cpu.rip = cpu.sysenterEip >>> 0;
    cpu.gpr[GPR.RSP] = cpu.sysenterEsp | 0;
  }
  cpu.stateChanged();
}

export function sysexitInsn(cpu: VirtCpu, opSize: 32 | 64): void {
  sysenterUd(cpu);
  const cs = cpu.sysenterCs & 0xfffc;
  if (!(cpu.cr0 & CR0.PE) || cpu.rflags & RFLAGS.VM || cpu.cpl !== 0 || cs === 0) cpu.fault(VEC.GP, 0);
  if (opSize === 64) {
    const rip = getReg64(cpu, GPR.RDX);
    const rsp = getReg64(cpu, GPR.RCX);
    if (!isCanonical(rip) || !isCanonical(rsp)) cpu.fault(VEC.GP, 0);
    cpu.seg[SEG.CS] = flat((cs + 32) | 3, AR_CODE64 | USER_DPL);
    cpu.seg[SEG.SS] = flat((cs + 40) | 3, AR_DATA | USER_DPL);
    cpu.rip = rip;
    setReg64(cpu, GPR.RSP, rsp);
  } else {
    cpu.seg[SEG.CS] = flat((cs + 16) | 3, AR_CODE32 | USER_DPL);
    cpu.seg[SEG.SS] = flat((cs + 24) | 3, AR_DATA | USER_DPL);
    cpu.rip = cpu.gpr[GPR.RDX]! >>> 0;
    cpu.gpr[GPR.RSP] = cpu.gpr[GPR.RCX]!;
    if (cpu.efer & EFER.LMA) cpu.gprHi[GPR.RSP] = 0;
  }
  cpu.stateChanged();
}

export function swapgsInsn(cpu: VirtCpu): void {
  if (!isLong64(cpu)) cpu.fault(VEC.UD);
  if (cpu.cpl !== 0) cpu.fault(VEC.GP, 0);
  const gs = cpu.seg[SEG.GS]!;
  cpu.seg[SEG.GS] = { ...gs, base: cpu.kernelGsBase };
  cpu.kernelGsBase = gs.base;
}
