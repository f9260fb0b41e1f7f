/** What the vCPU view shows, derived from KVM_GET_REGS / KVM_GET_SREGS as a VMM sees them. */
import { KVM_REGS_FIELDS, type KvmRegs, type KvmSregs } from '@kvmts/vmm';

const CR0_PE = 1 << 0;
const EFER_LMA = 1 << 10;

/** The mode the vCPU is in, from CR0.PE, EFER.LMA, CS.L and CS.D/B. */
export function cpuMode(s: KvmSregs): string {
  if (!(s.cr0 & CR0_PE)) return 'real';
  if (s.efer & EFER_LMA) return s.cs.l ? 'long (64-bit)' : 'long (compat)';
  return s.cs.db ? 'protected (32-bit)' : 'protected (16-bit)';
}

/** CPL: 0 in real mode, else SS.DPL (which VM entry keeps equal to CS.DPL). */
export function cpuCpl(s: KvmSregs): number {
  return s.cr0 & CR0_PE ? s.ss.dpl : 0;
}

/** RFLAGS as flag letters, set ones upper-case: the way debuggers print them. */
const FLAG_LETTERS = [
  [11, 'o'], [10, 'd'], [9, 'i'], [8, 't'], [7, 's'], [6, 'z'], [4, 'a'], [2, 'p'], [0, 'c'],
] as const;

export function rflagsLetters(rflags: number): string {
  const letters = FLAG_LETTERS.map(([bit, l]) => (rflags & (1 << bit) ? l.toUpperCase() : l)).join('');
  const iopl = (rflags >>> 12) & 3;
  return `${letters} iopl=${iopl}`;
}

/** The linear address of RIP (CS.base + RIP; CS.base is 0 in 64-bit mode). */
export function ripLinear(regs: KvmRegs, s: KvmSregs): bigint {
  const base = s.efer & EFER_LMA && s.cs.l ? 0n : BigInt(s.cs.base >>> 0);
  return BigInt.asUintN(64, base + regs.rip);
}

export function gprList(regs: KvmRegs): (readonly [string, bigint])[] {
  return KVM_REGS_FIELDS.filter((n) => n !== 'rip' && n !== 'rflags').map((n) => [n, regs[n]] as const);
}

/** Decoder bitness for the current mode. */
export function codeBitness(s: KvmSregs): 16 | 32 | 64 {
  if (!(s.cr0 & CR0_PE)) return 16;
  if (s.efer & EFER_LMA && s.cs.l) return 64;
  return s.cs.db ? 32 : 16;
}
