/**
 * Common x86 code the vendor modules call from their exit handlers (arch/x86/kvm/x86.c,
 * cpuid.c, kvm_cache_regs.h), with Linux's names in camelCase. Handlers return 'resume' to
 * re-enter the guest or 'userspace' after filling kvm_run, as Linux's return 1 / return 0.
 */
import { CR0, CR4, EFER, RFLAGS, VEC } from '@kvmts/x86';
import type { KvmVcpu, ExitResult, MsrData } from './kvm-types.js';
import { KVM_REQ, VCPU_SREG } from './kvm-types.js';
import { KVM_EXIT, KVM_EXIT_IO, KVM_GUESTDBG, KVM_INTERNAL_ERROR, KVM_MSR_EXIT_REASON, KVM_LIMITS } from '../uapi/constants.js';
import type { Vcpu } from '../kvm/vcpu.js';
import { kvmCpuidEcx, kvmCpuidEntry } from './cpuid.js';

/** enum kvm_reg: GPRs 0-15 in the x86 encoding, RIP, then the cached extra registers. */
export const VCPU_REGS = {
  RAX: 0, RCX: 1, RDX: 2, RBX: 3, RSP: 4, RBP: 5, RSI: 6, RDI: 7,
  R8: 8, R9: 9, R10: 10, R11: 11, R12: 12, R13: 13, R14: 14, R15: 15,
  RIP: 16, EXREG_PDPTR: 17, EXREG_CR0: 18, EXREG_CR3: 19, EXREG_CR4: 20, EXREG_RFLAGS: 21,
  EXREG_SEGMENTS: 22, EXREG_EXIT_INFO_1: 23, EXREG_EXIT_INFO_2: 24,
} as const;

/** Page-fault error code bits (PFERR_*), which the vendors translate EPT/NPT faults into. */
export const PFERR = { PRESENT: 1 << 0, WRITE: 1 << 1, USER: 1 << 2, RSVD: 1 << 3, FETCH: 1 << 4 } as const;

/** Interrupt-shadow bits of get/setInterruptShadow (KVM_X86_SHADOW_INT_*). */
export const KVM_X86_SHADOW_INT = { MOV_SS: 1, STI: 2 } as const;

/** Hypercall return codes (include/uapi/linux/kvm_para.h). */
export const KVM_HC = { VAPIC_POLL_IRQ: 1, ENOSYS: 1000, EPERM: 1 } as const;

/** The core's own vCPU, which every vendor receives. */
export function toVcpu(vcpu: KvmVcpu): Vcpu {
  return vcpu as Vcpu;
}

// ---- registers (kvm_cache_regs.h) ----

export function kvmRegisterRead(vcpu: KvmVcpu, reg: number): bigint {
  if (reg === VCPU_REGS.RIP) return BigInt.asUintN(64, BigInt(vcpu.arch.rip));
  return (BigInt(vcpu.arch.regsHi[reg]! >>> 0) << 32n) | BigInt(vcpu.arch.regs[reg]! >>> 0);
}

/** Bits 31:0 of a GPR, unsigned: the hot-path read. */
export function kvmRegisterReadLo(vcpu: KvmVcpu, reg: number): number {
  return vcpu.arch.regs[reg]! >>> 0;
}

export function kvmRegisterWrite(vcpu: KvmVcpu, reg: number, value: bigint): void {
  if (reg === VCPU_REGS.RIP) { kvmRipWrite(vcpu, Number(BigInt.asIntN(64, value))); return; }
  vcpu.arch.regs[reg] = Number(BigInt.asIntN(32, value));
  vcpu.arch.regsHi[reg] = Number(BigInt.asIntN(32, value >> 32n));
}

/** Writes both halves without BigInt. */
export function kvmRegisterWriteLoHi(vcpu: KvmVcpu, reg: number, lo: number, hi: number): void {
  vcpu.arch.regs[reg] = lo | 0;
  vcpu.arch.regsHi[reg] = hi | 0;
}

export function kvmRipRead(vcpu: KvmVcpu): number {
  return vcpu.arch.rip;
}

export function kvmRipWrite(vcpu: KvmVcpu, rip: number): void {
  vcpu.arch.rip = rip;
}

/** is_long_mode && CS.L: 64-bit code. */
export function isLongMode(vcpu: KvmVcpu): boolean {
  return (vcpu.arch.efer & EFER.LMA) !== 0;
}

function is64BitMode(vcpu: KvmVcpu): boolean {
  return isLongMode(vcpu) && toVcpu(vcpu).ops.getCsDbLBits(vcpu).l === 1;
}

// ---- requests ----

export function kvmMakeRequest(req: number, vcpu: KvmVcpu): void {
  vcpu.requests |= req;
}

export function kvmTestRequest(req: number, vcpu: KvmVcpu): boolean {
  return (vcpu.requests & req) !== 0;
}

/** Tests and clears. */
export function kvmCheckRequest(req: number, vcpu: KvmVcpu): boolean {
  if (!(vcpu.requests & req)) return false;
  vcpu.requests &= ~req;
  return true;
}

// ---- exceptions (kvm_multiple_exception) ----

const CONTRIBUTORY = new Set<number>([VEC.DE, VEC.TS, VEC.NP, VEC.SS, VEC.GP]);
function exceptionClass(nr: number): 'benign' | 'contributory' | 'pf' {
  return nr === VEC.PF ? 'pf' : CONTRIBUTORY.has(nr) ? 'contributory' : 'benign';
}

function multipleException(vcpu: KvmVcpu, nr: number, errorCode: number | undefined, reinject: boolean): void {
  const ex = vcpu.arch.exception;
  kvmMakeRequest(KVM_REQ.EVENT, vcpu);
  if (!ex.pending && !ex.injected) {
    ex.pending = !reinject;
    ex.injected = reinject;
    ex.nr = nr;
    ex.hasErrorCode = errorCode !== undefined;
    ex.errorCode = errorCode ?? 0;
    return;
  }
  const prev = ex.nr;
  if (prev === VEC.DF) {
    // A fault while delivering #DF: triple fault.
    kvmMakeRequest(KVM_REQ.TRIPLE_FAULT, vcpu);
    return;
  }
  const c1 = exceptionClass(prev);
  const c2 = exceptionClass(nr);
  if ((c1 === 'contributory' && c2 === 'contributory') || (c1 === 'pf' && c2 !== 'benign')) {
    ex.pending = true; ex.injected = false; ex.nr = VEC.DF; ex.hasErrorCode = true; ex.errorCode = 0;
    return;
  }
  // Benign combinations: the new exception replaces the old, which re-occurs later.
  ex.pending = true; ex.injected = false; ex.nr = nr; ex.hasErrorCode = errorCode !== undefined; ex.errorCode = errorCode ?? 0;
}

export function kvmQueueException(vcpu: KvmVcpu, nr: number, errorCode?: number): void {
  multipleException(vcpu, nr, errorCode, false);
}

/** An exception that was being delivered when the exit happened (IDT-vectoring info): re-inject it as is. */
export function kvmRequeueException(vcpu: KvmVcpu, nr: number, errorCode?: number): void {
  multipleException(vcpu, nr, errorCode, true);
}

export function kvmInjectGp(vcpu: KvmVcpu, errorCode = 0): void {
  kvmQueueException(vcpu, VEC.GP, errorCode);
}

export function kvmInjectPageFault(vcpu: KvmVcpu, cr2: number, errorCode: number): void {
  vcpu.arch.cr2 = cr2;
  kvmQueueException(vcpu, VEC.PF, errorCode);
}

/** kvm_queue_interrupt: the vector the next entry injects. */
export function kvmQueueInterrupt(vcpu: KvmVcpu, nr: number, soft: boolean): void {
  vcpu.arch.interrupt.injected = true;
  vcpu.arch.interrupt.soft = soft;
  vcpu.arch.interrupt.nr = nr;
}

export function kvmClearInterruptQueue(vcpu: KvmVcpu): void {
  vcpu.arch.interrupt.injected = false;
}

export function kvmClearExceptionQueue(vcpu: KvmVcpu): void {
  vcpu.arch.exception.pending = false;
  vcpu.arch.exception.injected = false;
}

/** kvm_cpu_has_interrupt (kvm_cpu_has_extint) without an in-kernel irqchip: a KVM_INTERRUPT vector is queued. */
export function kvmCpuHasInterrupt(vcpu: KvmVcpu): boolean {
  return vcpu.arch.interrupt.injected;
}

/** Handles #UD for an instruction KVM does not emulate. */
export function kvmHandleInvalidOp(vcpu: KvmVcpu): ExitResult {
  kvmQueueException(vcpu, VEC.UD);
  return 'resume';
}

// ---- control and debug registers ----

const CR0_RESERVED_HI = 0xffffffff; // bits 63:32 of CR0 must be zero
const CR4_RESERVED = ~(CR4.VME | CR4.PVI | CR4.TSD | CR4.DE | CR4.PSE | CR4.PAE | CR4.MCE | CR4.PGE | CR4.PCE |
  CR4.OSFXSR | CR4.OSXMMEXCPT | CR4.UMIP | CR4.LA57 | CR4.VMXE | CR4.SMXE | CR4.FSGSBASE | CR4.PCIDE |
  CR4.OSXSAVE | CR4.SMEP | CR4.SMAP | CR4.PKE);

/** kvm_set_cr0. `cr0Hi` is bits 63:32. Returns 0, or 1 when the caller must inject #GP. */
export function kvmSetCr0(vcpu: KvmVcpu, cr0: number, cr0Hi = 0): number {
  const ops = toVcpu(vcpu).ops;
  if (cr0Hi & CR0_RESERVED_HI) return 1;
  let v = (cr0 | CR0.ET) >>> 0;
  v &= (CR0.PE | CR0.MP | CR0.EM | CR0.TS | CR0.ET | CR0.NE | CR0.WP | CR0.AM | CR0.NW | CR0.CD | CR0.PG) >>> 0;
  if (!ops.isValidCr0(vcpu, v)) return 1;
  if (v & CR0.NW && !(v & CR0.CD)) return 1;
  if (v & CR0.PG && !(v & CR0.PE)) return 1;
  const wasPaging = (vcpu.arch.cr0 & CR0.PG) !== 0;
  if (!wasPaging && v & CR0.PG && vcpu.arch.efer & EFER.LME) {
    if (!(vcpu.arch.cr4 & CR4.PAE)) return 1;
    if (ops.getCsDbLBits(vcpu).l) return 1;
  }
  if (!(v & CR0.PG) && vcpu.arch.cr4 & CR4.PCIDE) return 1;
  ops.setCr0(vcpu, v | 0);
  vcpu.arch.cr0 = v | 0;
  return 0;
}

/** kvm_set_cr4. Returns 0, or 1 for #GP. */
export function kvmSetCr4(vcpu: KvmVcpu, cr4: number): number {
  const ops = toVcpu(vcpu).ops;
  const old = vcpu.arch.cr4;
  if (cr4 & CR4_RESERVED || !ops.isValidCr4(vcpu, cr4)) return 1;
  if (isLongMode(vcpu)) {
    if (!(cr4 & CR4.PAE)) return 1;
    if ((cr4 ^ old) & CR4.LA57) return 1;
  }
  if (cr4 & CR4.PCIDE && !(old & CR4.PCIDE) && (vcpu.arch.cr3 & 0xfff || !isLongMode(vcpu))) return 1;
  ops.setCr4(vcpu, cr4);
  vcpu.arch.cr4 = cr4;
  return 0;
}

/** kvm_set_cr3. Returns 0, or 1 for #GP (reserved bits above MAXPHYADDR in long mode). */
export function kvmSetCr3(vcpu: KvmVcpu, cr3: number): number {
  if (isLongMode(vcpu) && cr3 >= 2 ** 52) return 1;
  vcpu.arch.cr3 = cr3;
  vcpu.arch.regsDirty = (vcpu.arch.regsDirty ?? 0) | (1 << VCPU_REGS.EXREG_CR3);
  toVcpu(vcpu).ops.postSetCr3?.(vcpu, cr3);
  kvmMakeRequest(KVM_REQ.TLB_FLUSH_GUEST, vcpu);
  return 0;
}

/** kvm_set_cr8: the TPR, without an in-kernel APIC kept in arch.cr8. */
export function kvmSetCr8(vcpu: KvmVcpu, cr8: number): number {
  if (cr8 & ~0xf) return 1;
  vcpu.arch.cr8 = cr8;
  return 0;
}

export function kvmGetCr8(vcpu: KvmVcpu): number {
  return vcpu.arch.cr8;
}

/** DR6/DR7 bits the guest can change, and the bits that read as 1 (asm/debugreg.h, kvm_host.h). */
const DR6_VOLATILE = 0x0001e80f;
const DR6_FIXED_1 = 0xfffe0ff0 | 0;
const DR7_VOLATILE = 0xffff2bff | 0;
const DR7_FIXED_1 = 0x400;

/** kvm_update_dr7: the DR7 the guest runs with is userspace's while it debugs with hardware breakpoints. */
export function kvmUpdateDr7(vcpu: KvmVcpu): void {
  const v = toVcpu(vcpu);
  v.ops.setDr7(vcpu, v.guestDebug & KVM_GUESTDBG.USE_HW_BP ? v.guestDebugDr7 : vcpu.arch.dr7);
}

/** kvm_set_dr. Returns 0, or 1 for #GP (bits 63:32 of DR6/DR7 are checked by the caller). */
export function kvmSetDr(vcpu: KvmVcpu, dr: number, value: number): number {
  switch (dr) {
    case 0: case 1: case 2: case 3:
      vcpu.arch.db[dr] = value;
      if (!(toVcpu(vcpu).guestDebug & KVM_GUESTDBG.USE_HW_BP)) toVcpu(vcpu).effDb[dr] = value;
      return 0;
    case 4: case 6:
      vcpu.arch.dr6 = (value & DR6_VOLATILE) | DR6_FIXED_1;
      return 0;
    case 5: case 7:
      vcpu.arch.dr7 = (value & DR7_VOLATILE) | DR7_FIXED_1;
      kvmUpdateDr7(vcpu);
      return 0;
    default:
      return 1;
  }
}

export function kvmGetDr(vcpu: KvmVcpu, dr: number): number {
  switch (dr) {
    case 0: case 1: case 2: case 3: return vcpu.arch.db[dr]!;
    case 4: case 6: return vcpu.arch.dr6;
    default: return vcpu.arch.dr7;
  }
}

/** kvm_get_rflags, with the TF KVM set for single-stepping hidden from the guest's view. */
export function kvmGetRflags(vcpu: KvmVcpu): number {
  const r = toVcpu(vcpu).ops.getRflags(vcpu);
  return toVcpu(vcpu).guestDebug & KVM_GUESTDBG.SINGLESTEP ? r & ~RFLAGS.TF : r;
}

export function kvmSetRflags(vcpu: KvmVcpu, rflags: number): void {
  const v = toVcpu(vcpu);
  v.ops.setRflags(vcpu, v.guestDebug & KVM_GUESTDBG.SINGLESTEP ? rflags | RFLAGS.TF : rflags);
  kvmMakeRequest(KVM_REQ.EVENT, vcpu);
}

// ---- instruction completion ----

/** DR6.BS, and the bits of DR6 that read as 1 (DR6_ACTIVE_LOW). */
const DR6_BS = 1 << 14;
const DR6_ACTIVE_LOW = 0xffff0ff0 | 0;

/**
 * kvm_vcpu_do_singlestep: the single-step trap an instruction KVM completed owes the TF set at
 * its start. KVM's own single-step (KVM_GUESTDBG_SINGLESTEP) becomes KVM_EXIT_DEBUG (returns 0),
 * the guest's a #DB with DR6.BS (returns 1).
 */
export function kvmVcpuDoSinglestep(vcpu: KvmVcpu): number {
  if (toVcpu(vcpu).guestDebug & KVM_GUESTDBG.SINGLESTEP) {
    kvmVcpuDebugExit(vcpu, DR6_BS | DR6_ACTIVE_LOW);
    return 0;
  }
  vcpu.arch.dr6 |= DR6_BS;
  kvmQueueException(vcpu, VEC.DB);
  return 1;
}

/**
 * kvm_skip_emulated_instruction. Returns 1 (resume), as Linux, or 0 when single-stepping exits
 * to userspace: the vendors' handlers resume regardless, so vcpu_run also reads `singlestepExit`.
 */
export function kvmSkipEmulatedInstruction(vcpu: KvmVcpu): number {
  const v = toVcpu(vcpu);
  const rflags = v.ops.getRflags(vcpu);
  if (!v.ops.skipEmulatedInstruction(vcpu)) return 0;
  if ((rflags & RFLAGS.TF) === 0 || kvmVcpuDoSinglestep(vcpu)) return 1;
  v.singlestepExit = true;
  return 0;
}

/** Skips and resumes: for handlers that end with `return kvm_skip_emulated_instruction(vcpu)`. */
function skipAndResume(vcpu: KvmVcpu): ExitResult {
  kvmSkipEmulatedInstruction(vcpu);
  return 'resume';
}

// ---- CPUID, HLT, hypercalls ----

export function kvmEmulateCpuid(vcpu: KvmVcpu): ExitResult {
  const v = toVcpu(vcpu);
  const fn = kvmRegisterReadLo(vcpu, VCPU_REGS.RAX);
  // The entry itself, not a tuple of it: nothing is allocated per CPUID exit.
  const e = kvmCpuidEntry(v.cpuid, fn, kvmRegisterReadLo(vcpu, VCPU_REGS.RCX));
  kvmRegisterWriteLoHi(vcpu, VCPU_REGS.RAX, e ? e.eax >>> 0 : 0, 0);
  kvmRegisterWriteLoHi(vcpu, VCPU_REGS.RBX, e ? e.ebx >>> 0 : 0, 0);
  kvmRegisterWriteLoHi(vcpu, VCPU_REGS.RCX, e ? kvmCpuidEcx(e, fn, (vcpu.arch.cr4 & CR4.OSXSAVE) !== 0) : 0, 0);
  kvmRegisterWriteLoHi(vcpu, VCPU_REGS.RDX, e ? e.edx >>> 0 : 0, 0);
  return skipAndResume(vcpu);
}

/** kvm_emulate_halt: without an in-kernel irqchip, HLT exits to userspace. */
export function kvmEmulateHalt(vcpu: KvmVcpu): ExitResult {
  kvmSkipEmulatedInstruction(vcpu);
  vcpu.stat['halt_exits']!++;
  toVcpu(vcpu).runView.exitReason = KVM_EXIT.HLT;
  return 'userspace';
}

/** kvm_emulate_hypercall: no paravirtual hypercalls are offered; unknown ones return -KVM_ENOSYS. */
export function kvmEmulateHypercall(vcpu: KvmVcpu): ExitResult {
  const ops = toVcpu(vcpu).ops;
  vcpu.stat['hypercalls']!++;
  const nr = kvmRegisterReadLo(vcpu, VCPU_REGS.RAX);
  let ret: number;
  if (ops.getCpl(vcpu) !== 0) ret = -KVM_HC.EPERM;
  else if (nr === KVM_HC.VAPIC_POLL_IRQ) ret = 0;
  else ret = -KVM_HC.ENOSYS;
  kvmRegisterWriteLoHi(vcpu, VCPU_REGS.RAX, ret, is64BitMode(vcpu) && ret < 0 ? -1 : 0);
  return skipAndResume(vcpu);
}

// ---- MSRs ----

/** MSRs the common code owns (kvm_get_msr_common / kvm_set_msr_common). */
export const MSR = {
  IA32_TSC: 0x10, IA32_PLATFORM_ID: 0x17, IA32_APICBASE: 0x1b, IA32_TSC_ADJUST: 0x3b, IA32_UCODE_REV: 0x8b,
  IA32_MTRRCAP: 0xfe, IA32_SYSENTER_CS: 0x174, IA32_SYSENTER_ESP: 0x175, IA32_SYSENTER_EIP: 0x176,
  IA32_MCG_CAP: 0x179, IA32_MCG_STATUS: 0x17a, IA32_MCG_CTL: 0x17b, IA32_MISC_ENABLE: 0x1a0,
  MTRR_PHYSBASE0: 0x200, MTRR_PHYSMASK9: 0x213, MTRR_FIX64K: 0x250, MTRR_FIX16K_80000: 0x258,
  MTRR_FIX16K_A0000: 0x259, MTRR_FIX4K_C0000: 0x268, MTRR_FIX4K_F8000: 0x26f, IA32_CR_PAT: 0x277,
  MTRR_DEF_TYPE: 0x2ff, IA32_PERF_CAPABILITIES: 0x345, EFER: 0xc0000080, STAR: 0xc0000081, LSTAR: 0xc0000082,
  CSTAR: 0xc0000083, SYSCALL_MASK: 0xc0000084, FS_BASE: 0xc0000100, GS_BASE: 0xc0000101,
  KERNEL_GS_BASE: 0xc0000102, TSC_AUX: 0xc0000103, PLATFORM_INFO: 0xce, AMD64_PATCH_LEVEL: 0x8b,
} as const;

/** KVM_GET_MSR_INDEX_LIST: msrs_to_save plus emulated_msrs (the ones this model keeps). */
export const MSRS_TO_SAVE = [
  MSR.IA32_SYSENTER_CS, MSR.IA32_SYSENTER_ESP, MSR.IA32_SYSENTER_EIP, MSR.STAR, MSR.CSTAR, MSR.KERNEL_GS_BASE,
  MSR.SYSCALL_MASK, MSR.LSTAR, MSR.IA32_TSC, MSR.TSC_AUX, MSR.IA32_APICBASE, MSR.IA32_CR_PAT, MSR.IA32_MISC_ENABLE,
  MSR.IA32_TSC_ADJUST, MSR.MTRR_DEF_TYPE, MSR.IA32_MCG_STATUS, MSR.IA32_MCG_CTL, MSR.PLATFORM_INFO, MSR.EFER,
] as const;

const PAT_DEFAULT = 0x0007040600070406n;
const MTRR_VALID_TYPES = new Set([0, 1, 4, 5, 6]);

function isMtrr(index: number): boolean {
  return (index >= MSR.MTRR_PHYSBASE0 && index <= MSR.MTRR_PHYSMASK9) || index === MSR.MTRR_FIX64K ||
    index === MSR.MTRR_FIX16K_80000 || index === MSR.MTRR_FIX16K_A0000 ||
    (index >= MSR.MTRR_FIX4K_C0000 && index <= MSR.MTRR_FIX4K_F8000) || index === MSR.MTRR_DEF_TYPE;
}

/** kvm_get_msr_common. Returns 0 (msr.data set) or 1 (#GP / unknown). */
export function kvmGetMsrCommon(vcpu: KvmVcpu, msr: { index: number; data: bigint; hostInitiated: boolean }): number {
  const v = toVcpu(vcpu);
  switch (msr.index) {
    case MSR.IA32_APICBASE: msr.data = v.apicBase; return 0;
    case MSR.EFER: msr.data = BigInt(vcpu.arch.efer >>> 0); return 0;
    case MSR.IA32_CR_PAT: msr.data = v.msrs.get(msr.index) ?? PAT_DEFAULT; return 0;
    case MSR.IA32_MTRRCAP: msr.data = 0x500n | 8n; return 0; // fixed MTRRs, WC, 8 variable ranges
    case MSR.IA32_UCODE_REV: case MSR.IA32_PLATFORM_ID: case MSR.IA32_MCG_CAP: case MSR.IA32_MCG_STATUS:
    case MSR.IA32_MCG_CTL: case MSR.IA32_TSC_ADJUST: case MSR.PLATFORM_INFO: case MSR.IA32_MISC_ENABLE:
      msr.data = v.msrs.get(msr.index) ?? (msr.index === MSR.IA32_MISC_ENABLE ? 1n : 0n); // MISC_ENABLE.FAST_STRING
      return 0;
    case MSR.IA32_PERF_CAPABILITIES:
      msr.data = 0n;
      return 0;
    default:
      if (isMtrr(msr.index)) { msr.data = v.msrs.get(msr.index) ?? 0n; return 0; }
      return 1;
  }
}

/** kvm_set_msr_common. Returns 0 or 1 (#GP / unknown). */
export function kvmSetMsrCommon(vcpu: KvmVcpu, msr: MsrData): number {
  const v = toVcpu(vcpu);
  const d = msr.data;
  switch (msr.index) {
    case MSR.IA32_APICBASE:
      // Reserved bits: 7:0, 9 and above MAXPHYADDR; x2APIC without xAPIC is invalid.
      if (d & 0x2ffn || ((d & 0x400n) !== 0n && (d & 0x800n) === 0n)) return 1;
      v.apicBase = d;
      return 0;
    case MSR.EFER: {
      const ops = v.ops;
      const efer = Number(d & 0xffffffffn);
      if (d >> 32n) return 1;
      if (!msr.hostInitiated && (efer ^ vcpu.arch.efer) & EFER.LME && vcpu.arch.cr0 & CR0.PG) return 1;
      if (ops.setEfer(vcpu, efer)) return 1;
      vcpu.arch.efer = efer;
      return 0;
    }
    case MSR.IA32_CR_PAT:
      for (let i = 0n; i < 8n; i++) if (!MTRR_VALID_TYPES.has(Number((d >> (i * 8n)) & 0xffn)) && ((d >> (i * 8n)) & 0xffn) !== 7n) return 1;
      v.msrs.set(msr.index, d);
      return 0;
    case MSR.IA32_MCG_STATUS: case MSR.IA32_MCG_CTL: case MSR.IA32_TSC_ADJUST: case MSR.IA32_MISC_ENABLE:
      v.msrs.set(msr.index, d);
      return 0;
    case MSR.IA32_UCODE_REV: case MSR.PLATFORM_INFO: case MSR.IA32_MCG_CAP: case MSR.IA32_PLATFORM_ID:
      if (!msr.hostInitiated) return msr.index === MSR.IA32_UCODE_REV ? 0 : 1;
      v.msrs.set(msr.index, d);
      return 0;
    default:
      if (isMtrr(msr.index)) { v.msrs.set(msr.index, d); return 0; }
      return 1;
  }
}

/** Exits to userspace for an MSR access when KVM_CAP_X86_USER_SPACE_MSR asked for it (kvm_msr_user_space). */
function msrUserSpace(vcpu: KvmVcpu, index: number, exitReason: number, data: bigint): boolean {
  const v = toVcpu(vcpu);
  if (!(v.userSpaceMsrMask & KVM_MSR_EXIT_REASON.UNKNOWN)) return false;
  v.runView.exitReason = exitReason;
  v.runView.msr.set({ error: 0, reason: KVM_MSR_EXIT_REASON.UNKNOWN, index, data });
  v.completeUserspaceIo = (vc) => {
    const m = vc.runView.msr.get();
    if (m.error) { kvmInjectGp(vc); return 'resume'; }
    if (exitReason === KVM_EXIT.X86_RDMSR) {
      kvmRegisterWriteLoHi(vc, VCPU_REGS.RAX, Number(m.data & 0xffffffffn), 0);
      kvmRegisterWriteLoHi(vc, VCPU_REGS.RDX, Number(m.data >> 32n), 0);
    }
    return skipAndResume(vc);
  };
  return true;
}

/** kvm_emulate_rdmsr: RDMSR through the vendor's getMsr (which falls back to kvmGetMsrCommon). */
export function kvmEmulateRdmsr(vcpu: KvmVcpu): ExitResult {
  const index = kvmRegisterReadLo(vcpu, VCPU_REGS.RCX);
  const msr = { index, data: 0n, hostInitiated: false };
  if (toVcpu(vcpu).ops.getMsr(vcpu, msr)) {
    if (msrUserSpace(vcpu, index, KVM_EXIT.X86_RDMSR, 0n)) return 'userspace';
    kvmInjectGp(vcpu);
    return 'resume';
  }
  kvmRegisterWriteLoHi(vcpu, VCPU_REGS.RAX, Number(msr.data & 0xffffffffn), 0);
  kvmRegisterWriteLoHi(vcpu, VCPU_REGS.RDX, Number((msr.data >> 32n) & 0xffffffffn), 0);
  return skipAndResume(vcpu);
}

export function kvmEmulateWrmsr(vcpu: KvmVcpu): ExitResult {
  const index = kvmRegisterReadLo(vcpu, VCPU_REGS.RCX);
  const data = (BigInt(kvmRegisterReadLo(vcpu, VCPU_REGS.RDX)) << 32n) | BigInt(kvmRegisterReadLo(vcpu, VCPU_REGS.RAX));
  if (toVcpu(vcpu).ops.setMsr(vcpu, { index, data, hostInitiated: false })) {
    if (msrUserSpace(vcpu, index, KVM_EXIT.X86_WRMSR, data)) return 'userspace';
    kvmInjectGp(vcpu);
    return 'resume';
  }
  return skipAndResume(vcpu);
}

// ---- port I/O ----

/** Fills kvm_run for a PIO exit, the data in the PIO page (KVM_PIO_PAGE_OFFSET). */
export function kvmPioExit(vcpu: KvmVcpu, port: number, size: number, count: number, isIn: boolean): void {
  const v = toVcpu(vcpu);
  v.runView.exitReason = KVM_EXIT.IO;
  v.runView.io.set({ direction: isIn ? KVM_EXIT_IO.IN : KVM_EXIT_IO.OUT, size, port, count, dataOffset: KVM_LIMITS.PIO_PAGE_OFFSET * 4096 });
  vcpu.stat['io_exits']!++;
}

/**
 * kvm_fast_pio: a non-string IN/OUT. Goes to userspace with RIP still at the instruction; the
 * next KVM_RUN completes it (complete_fast_pio_in/out): IN loads RAX from the PIO page, then
 * the instruction is skipped.
 */
export function kvmFastPio(vcpu: KvmVcpu, size: number, port: number, isIn: boolean): ExitResult {
  const v = toVcpu(vcpu);
  v.pioRip = vcpu.arch.rip;
  if (isIn) {
    v.pioData.fill(0, 0, size);
    v.completeUserspaceIo = completeFastPioIn;
  } else {
    const rax = vcpu.arch.regs[VCPU_REGS.RAX]!;
    for (let i = 0; i < size; i++) v.pioData[i] = (rax >>> (8 * i)) & 0xff;
    v.completeUserspaceIo = completeFastPioOut;
  }
  kvmPioExit(vcpu, port, size, 1, isIn);
  return 'userspace';
}

function completeFastPioOut(v: Vcpu): ExitResult {
  if (v.arch.rip !== v.pioRip) return 'resume'; // userspace moved RIP: the instruction is not ours to finish
  return skipAndResume(v);
}

function completeFastPioIn(v: Vcpu): ExitResult {
  if (v.arch.rip !== v.pioRip) return 'resume';
  const size = v.runView.io.get().size;
  let val = size < 4 ? v.arch.regs[VCPU_REGS.RAX]! : 0;
  for (let i = 0; i < size; i++) {
    const shift = 8 * i;
    val = (val & ~(0xff << shift)) | (v.pioData[i]! << shift);
  }
  if (size === 4) v.arch.regsHi[VCPU_REGS.RAX] = 0;
  v.arch.regs[VCPU_REGS.RAX] = val;
  return skipAndResume(v);
}

// ---- exits that end in userspace ----

/** A failed VM entry: KVM_EXIT_FAIL_ENTRY with the hardware reason and the pCPU. */
export function kvmRunFailEntry(vcpu: KvmVcpu, hardwareReason: bigint | number, cpu: number): ExitResult {
  const v = toVcpu(vcpu);
  v.runView.exitReason = KVM_EXIT.FAIL_ENTRY;
  v.runView.failEntry.set(BigInt(hardwareReason), cpu);
  return 'userspace';
}

/** KVM_EXIT_INTERNAL_ERROR with a suberror (KVM_INTERNAL_ERROR_*) and up to 16 data words. */
export function kvmRunInternalError(vcpu: KvmVcpu, suberror: number, data: readonly (bigint | number)[] = []): ExitResult {
  const v = toVcpu(vcpu);
  v.runView.exitReason = KVM_EXIT.INTERNAL_ERROR;
  v.runView.internal.set(suberror, data.map((d) => BigInt.asUintN(64, BigInt(d))));
  return 'userspace';
}

/** KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON, as vendors report exits they have no handler for. */
export function kvmUnexpectedExitReason(vcpu: KvmVcpu, reason: number): ExitResult {
  return kvmRunInternalError(vcpu, KVM_INTERNAL_ERROR.UNEXPECTED_EXIT_REASON, [reason, vcpu.pcpu?.id ?? 0]);
}

/** A triple fault: KVM_EXIT_SHUTDOWN. */
export function kvmHandleTripleFault(vcpu: KvmVcpu): ExitResult {
  const v = toVcpu(vcpu);
  v.runView.exitReason = KVM_EXIT.SHUTDOWN;
  v.userAccesses = [];
  return 'userspace';
}

/** A #DB the VMM asked for (KVM_GUESTDBG_SINGLESTEP / hardware breakpoints): KVM_EXIT_DEBUG. */
export function kvmVcpuDebugExit(vcpu: KvmVcpu, dr6: number, exception = VEC.DB): ExitResult {
  const v = toVcpu(vcpu);
  const csBase = v.ops.getSegmentBase(vcpu, VCPU_SREG.CS);
  v.runView.exitReason = KVM_EXIT.DEBUG;
  v.runView.debug.set({
    exception, pc: BigInt.asUintN(64, BigInt(csBase) + BigInt(vcpu.arch.rip)),
    // The DR7 the guest ran with (GUEST_DR7 / the VMCB's), userspace's own while it uses hardware breakpoints.
    dr6: BigInt(dr6 >>> 0), dr7: BigInt((v.guestDebug & KVM_GUESTDBG.USE_HW_BP ? v.guestDebugDr7 : vcpu.arch.dr7) >>> 0),
  });
  return 'userspace';
}
