/**
 * The model-specific registers the CPU itself implements (SDM Vol. 4, Table 2-2 "IA-32
 * Architectural MSRs"; APM Vol. 2, Appendix A). VMX/SVM MSRs belong to the extension.
 */

/** How a write is validated; everything else about an MSR is derived from its table row. */
export const MSR_CHECK = {
  ANY: 0, // any 64-bit value
  READ_ONLY: 1, // WRMSR raises #GP(0)
  CANONICAL: 2, // a linear address: #GP(0) unless canonical
  LOW32: 3, // bits 63:32 reserved
  PAT: 4, // eight memory types, each 0, 1, 4, 5, 6 or 7
  MTRR_DEF_TYPE: 5, // type 7:0, FE 10, E 11
  MTRR_PHYSBASE: 6, // type 7:0, base above bit 12 below MAXPHYADDR
  MTRR_PHYSMASK: 7, // valid 11, mask above bit 12 below MAXPHYADDR
  MTRR_FIXED: 8, // eight MTRR memory types
  EFER: 9,
  APIC_BASE: 10,
  TSC: 11, // a write moves the TSC (through IA32_TSC_ADJUST)
  FIELD: 12, // held in a CpuState field (SYSCALL/SYSENTER MSRs, segment bases); checked in msr.ts
} as const;

export interface MsrInfo {
  readonly index: number;
  readonly name: string;
  readonly check: number;
  /** Value after reset for MSRs kept in cpu.msrs. */
  readonly reset: bigint;
}

const row = (index: number, name: string, check: number, reset = 0n): MsrInfo => ({ index, name, check, reset });

export const MSR = {
  TSC: 0x10, PLATFORM_ID: 0x17, APIC_BASE: 0x1b, TSC_ADJUST: 0x3b, BIOS_SIGN_ID: 0x8b, MTRRCAP: 0xfe,
  SYSENTER_CS: 0x174, SYSENTER_ESP: 0x175, SYSENTER_EIP: 0x176, MCG_CAP: 0x179, MCG_STATUS: 0x17a,
  MISC_ENABLE: 0x1a0, MTRR_PHYSBASE0: 0x200, MTRR_PHYSMASK0: 0x201, MTRR_FIX64K_00000: 0x250,
  MTRR_FIX16K_80000: 0x258, MTRR_FIX16K_A0000: 0x259, MTRR_FIX4K_C0000: 0x268, MTRR_FIX4K_F8000: 0x26f,
  PAT: 0x277, MTRR_DEF_TYPE: 0x2ff,
  EFER: 0xc0000080, STAR: 0xc0000081, LSTAR: 0xc0000082, CSTAR: 0xc0000083, FMASK: 0xc0000084,
  FS_BASE: 0xc0000100, GS_BASE: 0xc0000101, KERNEL_GS_BASE: 0xc0000102, TSC_AUX: 0xc0000103,
} as const;

/** Number of variable-range MTRR pairs, as MTRRCAP.VCNT reports. */
export const MTRR_VCNT = 8;

export const MSR_TABLE: readonly MsrInfo[] = [
  row(MSR.TSC, 'IA32_TIME_STAMP_COUNTER', MSR_CHECK.TSC),
  row(MSR.PLATFORM_ID, 'IA32_PLATFORM_ID', MSR_CHECK.READ_ONLY),
  // BSP (bit 8) and global enable (bit 11) at the default base 0xfee00000.
  row(MSR.APIC_BASE, 'IA32_APIC_BASE', MSR_CHECK.APIC_BASE, 0xfee00900n),
  row(MSR.TSC_ADJUST, 'IA32_TSC_ADJUST', MSR_CHECK.ANY),
  row(MSR.BIOS_SIGN_ID, 'IA32_BIOS_SIGN_ID', MSR_CHECK.ANY),
  // WC (bit 10), FIX (bit 8), VCNT = 8.
  row(MSR.MTRRCAP, 'IA32_MTRRCAP', MSR_CHECK.READ_ONLY, BigInt(0x500 | MTRR_VCNT)),
  row(MSR.SYSENTER_CS, 'IA32_SYSENTER_CS', MSR_CHECK.FIELD),
  row(MSR.SYSENTER_ESP, 'IA32_SYSENTER_ESP', MSR_CHECK.FIELD),
  row(MSR.SYSENTER_EIP, 'IA32_SYSENTER_EIP', MSR_CHECK.FIELD),
  row(MSR.MCG_CAP, 'IA32_MCG_CAP', MSR_CHECK.READ_ONLY),
  row(MSR.MCG_STATUS, 'IA32_MCG_STATUS', MSR_CHECK.ANY),
  // Fast strings (bit 0).
  row(MSR.MISC_ENABLE, 'IA32_MISC_ENABLE', MSR_CHECK.ANY, 1n),
  ...Array.from({ length: MTRR_VCNT }, (_, n) => [
    row(MSR.MTRR_PHYSBASE0 + 2 * n, `IA32_MTRR_PHYSBASE${n}`, MSR_CHECK.MTRR_PHYSBASE),
    row(MSR.MTRR_PHYSMASK0 + 2 * n, `IA32_MTRR_PHYSMASK${n}`, MSR_CHECK.MTRR_PHYSMASK),
  ]).flat(),
  row(MSR.MTRR_FIX64K_00000, 'IA32_MTRR_FIX64K_00000', MSR_CHECK.MTRR_FIXED),
  row(MSR.MTRR_FIX16K_80000, 'IA32_MTRR_FIX16K_80000', MSR_CHECK.MTRR_FIXED),
  row(MSR.MTRR_FIX16K_A0000, 'IA32_MTRR_FIX16K_A0000', MSR_CHECK.MTRR_FIXED),
  ...Array.from({ length: 8 }, (_, n) =>
    row(MSR.MTRR_FIX4K_C0000 + n, `IA32_MTRR_FIX4K_${(0xc0000 + n * 0x8000).toString(16).toUpperCase()}`, MSR_CHECK.MTRR_FIXED)),
  // WB, WT, UC-, UC, WB, WT, UC-, UC (SDM Vol. 3A, Table 13-12).
  row(MSR.PAT, 'IA32_PAT', MSR_CHECK.PAT, 0x0007040600070406n),
  row(MSR.MTRR_DEF_TYPE, 'IA32_MTRR_DEF_TYPE', MSR_CHECK.MTRR_DEF_TYPE),
  row(MSR.EFER, 'IA32_EFER', MSR_CHECK.EFER),
  row(MSR.STAR, 'IA32_STAR', MSR_CHECK.FIELD),
  row(MSR.LSTAR, 'IA32_LSTAR', MSR_CHECK.FIELD),
  row(MSR.CSTAR, 'IA32_CSTAR', MSR_CHECK.FIELD),
  row(MSR.FMASK, 'IA32_FMASK', MSR_CHECK.FIELD),
  row(MSR.FS_BASE, 'IA32_FS_BASE', MSR_CHECK.FIELD),
  row(MSR.GS_BASE, 'IA32_GS_BASE', MSR_CHECK.FIELD),
  row(MSR.KERNEL_GS_BASE, 'IA32_KERNEL_GS_BASE', MSR_CHECK.FIELD),
  row(MSR.TSC_AUX, 'IA32_TSC_AUX', MSR_CHECK.FIELD),
];

export const MSR_BY_INDEX: ReadonlyMap<number, MsrInfo> = new Map(MSR_TABLE.map((m) => [m.index, m]));

/** Memory types valid in PAT entries (UC 0, WC 1, WT 4, WP 5, WB 6, UC- 7) and in MTRRs (no UC-). */
export const PAT_TYPES: readonly number[] = [0, 1, 4, 5, 6, 7];
export const MTRR_TYPES: readonly number[] = [0, 1, 4, 5, 6];
