/**
 * What the silicon reports about SVM, and the enable bits: APM vol. 2 15.4 "Enabling SVM",
 * 15.30 "SVM related MSRs", and CPUID Fn8000_0001 / Fn8000_000A (APM vol. 3, Appendix E).
 */

/** MSR indices (APM 15.30, Linux msr-index.h). */
export const MSR_EFER = 0xc0000080;
export const MSR_VM_CR = 0xc0010114;
export const MSR_VM_HSAVE_PA = 0xc0010117;

/** VM_CR bits. */
export const SVM_VM_CR_LOCK = 1 << 3;
export const SVM_VM_CR_SVM_DISABLE = 1 << 4;
/** VM_CR bits software may write (DPD, R_INIT, DIS_A20M, LOCK, SVMDIS); the rest are reserved. */
export const SVM_VM_CR_VALID_MASK = 0x1f;

/** CPUID Fn8000_0001 ECX.SVM. */
export const CPUID_8000_0001_ECX_SVM = 1 << 2;

/** CPUID Fn8000_000A EDX feature bits (svm.h SVM_FEATURE_* / cpufeatures.h X86_FEATURE_*). */
export const SVM_FEATURE = {
  NPT: 1 << 0,
  LBRV: 1 << 1,
  SVML: 1 << 2,
  NRIPS: 1 << 3,
  TSCRATEMSR: 1 << 4,
  VMCBCLEAN: 1 << 5,
  FLUSHBYASID: 1 << 6,
  DECODEASSISTS: 1 << 7,
  PAUSEFILTER: 1 << 10,
  PFTHRESHOLD: 1 << 12,
  AVIC: 1 << 13,
  V_VMSAVE_VMLOAD: 1 << 15,
  VGIF: 1 << 16,
} as const;

/** SVM revision (Fn8000_000A EAX[7:0]). */
export const SVM_REVISION = 1;
/** Number of ASIDs (Fn8000_000A EBX), as Zen parts report. ASID 0 is the host's. */
export const SVM_NASID = 0x8000;
/** What this silicon implements, reported in Fn8000_000A EDX. */
export const SVM_FEATURES_IMPLEMENTED =
  SVM_FEATURE.NPT | SVM_FEATURE.SVML | SVM_FEATURE.NRIPS | SVM_FEATURE.VMCBCLEAN |
  SVM_FEATURE.FLUSHBYASID | SVM_FEATURE.DECODEASSISTS;

/** MAXPHYADDR (Fn8000_0008 EAX[7:0]): physical-address bits. Bits 51:48 of a PA are reserved. */
export const MAXPHYADDR = 48;
/** The highest byte address + 1 a physical address may name. */
export const MAX_PA = 2 ** MAXPHYADDR;

/** Whether `pa` is page aligned and below MAXPHYADDR (the VM_HSAVE_PA / VMRUN rAX checks). */
export function isPageAlignedPa(pa: number): boolean {
  // `& 0xfff` keeps the low bits of any integer below 2^53, without a floating-point remainder.
  return pa >= 0 && pa < MAX_PA && (pa & 0xfff) === 0;
}
