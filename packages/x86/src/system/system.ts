/**
 * System instructions that the executor hands over whole: CPUID, RDMSR/WRMSR, RDTSC(P), HLT,
 * CLI/STI, I/O permission, plus re-exports of the control-register, descriptor-table and
 * fast-system-call groups. Each applies its privilege checks, then the guest-mode intercept
 * (cpu/virt.ts), then its effect.
 */
import type { InterceptKind, VirtCpu } from '../cpu/virt.js';
import { INTERCEPT } from '../cpu/virt.js';
import { VEC } from '../cpu/events.js';
import { ACTIVITY, CR0, CR4, GPR, INTERRUPTIBILITY, RFLAGS, SEG } from '../cpu/state.js';
import { readLinear } from '../mmu/linear.js';
import { SYS_TYPE } from '../seg/descriptor.js';
import { readTsc, rdmsrValue, wrmsrValue } from './msr.js';
import { setReg32 } from './regs.js';

export { rdmsrValue, wrmsrValue } from './msr.js';
export {
  movToCr, movFromCr, movToDr, movFromDr, cltsInsn, lmswInsn, smswValue, invlpgInsn,
} from './control-regs.js';
export { descTableInsn } from './desc-table.js';
export { syscallInsn, sysretInsn, sysenterInsn, sysexitInsn, swapgsInsn } from './fast-syscall.js';

/** True when the event VM-exited: the instruction ends without effect. */
function guestIntercept(cpu: VirtCpu, kind: InterceptKind, a: number, b: number): boolean {
  const ext = cpu.ext;
  return ext !== null && ext.guest && ext.intercept(kind, a, b);
}

function iopl(cpu: VirtCpu): number {
  return (cpu.rflags & RFLAGS.IOPL) >>> RFLAGS.IOPL_SHIFT;
}

export function cpuidInsn(cpu: VirtCpu): void {
  const leaf = cpu.gpr[GPR.RAX]! >>> 0;
  const sub = cpu.gpr[GPR.RCX]! >>> 0;
  if (guestIntercept(cpu, INTERCEPT.CPUID, leaf, sub)) return;
  const r = cpu.model.cpuid(leaf, sub);
  let ecx = r[2];
  // CPUID.1:ECX.OSXSAVE[27] mirrors CR4.OSXSAVE.
  if (leaf === 1) ecx = cpu.cr4 & CR4.OSXSAVE ? ecx | (1 << 27) : ecx & ~(1 << 27);
  setReg32(cpu, GPR.RAX, r[0]);
  setReg32(cpu, GPR.RBX, r[1]);
  setReg32(cpu, GPR.RCX, ecx);
  setReg32(cpu, GPR.RDX, r[3]);
}

export function rdmsrInsn(cpu: VirtCpu): void {
  if (cpu.cpl !== 0) cpu.fault(VEC.GP, 0);
  const index = cpu.gpr[GPR.RCX]! >>> 0;
  if (guestIntercept(cpu, INTERCEPT.MSR_READ, index, 0)) return;
  const v = rdmsrValue(cpu, index);
  setReg32(cpu, GPR.RAX, Number(v & 0xffffffffn));
  setReg32(cpu, GPR.RDX, Number(v >> 32n));
}

export function wrmsrInsn(cpu: VirtCpu): void {
  if (cpu.cpl !== 0) cpu.fault(VEC.GP, 0);
  const index = cpu.gpr[GPR.RCX]! >>> 0;
  if (guestIntercept(cpu, INTERCEPT.MSR_WRITE, index, 0)) return;
  const v = (BigInt(cpu.gpr[GPR.RDX]! >>> 0) << 32n) | BigInt(cpu.gpr[GPR.RAX]! >>> 0);
  wrmsrValue(cpu, index, v);
}

/** RDTSC/RDTSCP: CR4.TSD restricts them to CPL 0; the TSC counts retired instructions. */
export function rdtscInsn(cpu: VirtCpu, withAux: boolean): void {
  // RDTSCP exists when CPUID.80000001H:EDX.RDTSCP[27] is set.
  if (withAux && !(cpu.model.cpuid(0x80000001, 0)[3] & (1 << 27))) cpu.fault(VEC.UD);
  if (cpu.cr4 & CR4.TSD && cpu.cpl !== 0 && cpu.cr0 & CR0.PE) cpu.fault(VEC.GP, 0);
  if (guestIntercept(cpu, withAux ? INTERCEPT.RDTSCP : INTERCEPT.RDTSC, 0, 0)) return;
  const tsc = readTsc(cpu);
  setReg32(cpu, GPR.RAX, Number(tsc & 0xffffffffn));
  setReg32(cpu, GPR.RDX, Number(tsc >> 32n));
  if (withAux) setReg32(cpu, GPR.RCX, cpu.tscAux);
}

export function hltInsn(cpu: VirtCpu): void {
  if (cpu.cpl !== 0) cpu.fault(VEC.GP, 0);
  if (guestIntercept(cpu, INTERCEPT.HLT, 0, 0)) return;
  cpu.activity = ACTIVITY.HLT;
}

/**
 * CLI/STI (SDM Vol. 2, CLI/STI tables): IF when CPL <= IOPL (always in real mode); with
 * IOPL < 3, VIF in virtual-8086 mode with CR4.VME or at CPL 3 with CR4.PVI; else #GP(0).
 */
function interruptFlagTarget(cpu: VirtCpu): number {
  if (!(cpu.cr0 & CR0.PE)) return RFLAGS.IF;
  const v86 = (cpu.rflags & RFLAGS.VM) !== 0;
  if (v86 ? iopl(cpu) === 3 : cpu.cpl <= iopl(cpu)) return RFLAGS.IF;
  if (v86 ? cpu.cr4 & CR4.VME : cpu.cpl === 3 && cpu.cr4 & CR4.PVI) return RFLAGS.VIF;
  return cpu.fault(VEC.GP, 0);
}

export function cliInsn(cpu: VirtCpu): void {
  const bit = interruptFlagTarget(cpu);
  cpu.setRflags(cpu.getRflags() & ~bit);
}

export function stiInsn(cpu: VirtCpu): void {
  const bit = interruptFlagTarget(cpu);
  const flags = cpu.getRflags();
  if (bit === RFLAGS.VIF && flags & RFLAGS.VIP) cpu.fault(VEC.GP, 0);
  if (bit === RFLAGS.IF && !(flags & RFLAGS.IF)) {
    // Interrupts stay blocked until the next instruction has run (the STI shadow).
    cpu.interruptibility |= INTERRUPTIBILITY.STI;
    cpu.attention = true;
  }
  cpu.setRflags(flags | bit);
}

/**
 * IN/OUT/INS/OUTS permission (SDM Vol. 1, 19.5): when CPL > IOPL or in virtual-8086 mode,
 * every bit for the accessed ports in the TSS I/O bitmap must be 0, else #GP(0).
 */
export function checkIoPermission(cpu: VirtCpu, port: number, size: number): void {
  if (!(cpu.cr0 & CR0.PE)) return;
  const v86 = (cpu.rflags & RFLAGS.VM) !== 0;
  if (!v86 && cpu.cpl <= iopl(cpu)) return;
  const tr = cpu.seg[SEG.TR]!;
  const type = tr.ar & 0xf;
  if (type !== SYS_TYPE.TSS_AVAIL && type !== SYS_TYPE.TSS_BUSY) cpu.fault(VEC.GP, 0);
  if (tr.limit < 0x67) cpu.fault(VEC.GP, 0);
  const bitmap = readLinear(cpu, tr.base + 0x66, 2);
  const first = bitmap + (port >>> 3);
  if (first + 1 > tr.limit) cpu.fault(VEC.GP, 0);
  const bits = readLinear(cpu, tr.base + first, 2);
  const mask = ((1 << size) - 1) << (port & 7);
  if (bits & mask) cpu.fault(VEC.GP, 0);
}
