/**
 * VMX capability reporting (SDM vol. 3C, Appendix A "VMX Capability Reporting Facility") and the
 * control bits it reports on (SDM 25.6-25.8). The silicon's capabilities are data; every
 * IA32_VMX_* MSR value is derived from them.
 */

export const MSR_IA32_FEATURE_CONTROL = 0x3a;
export const FEATURE_CONTROL = { LOCKED: 1 << 0, VMXON_IN_SMX: 1 << 1, VMXON_OUTSIDE_SMX: 1 << 2 } as const;

export const MSR_IA32_VMX = {
  BASIC: 0x480,
  PINBASED_CTLS: 0x481,
  PROCBASED_CTLS: 0x482,
  EXIT_CTLS: 0x483,
  ENTRY_CTLS: 0x484,
  MISC: 0x485,
  CR0_FIXED0: 0x486,
  CR0_FIXED1: 0x487,
  CR4_FIXED0: 0x488,
  CR4_FIXED1: 0x489,
  VMCS_ENUM: 0x48a,
  PROCBASED_CTLS2: 0x48b,
  EPT_VPID_CAP: 0x48c,
  TRUE_PINBASED_CTLS: 0x48d,
  TRUE_PROCBASED_CTLS: 0x48e,
  TRUE_EXIT_CTLS: 0x48f,
  TRUE_ENTRY_CTLS: 0x490,
  VMFUNC: 0x491,
} as const;

/** Pin-based VM-execution controls (SDM 25.6.1, Table 25-5). */
export const PIN_BASED = {
  EXT_INTR_MASK: 1 << 0,
  NMI_EXITING: 1 << 3,
  VIRTUAL_NMIS: 1 << 5,
  VMX_PREEMPTION_TIMER: 1 << 6,
  POSTED_INTR: 1 << 7,
} as const;

/** Primary processor-based VM-execution controls (SDM 25.6.2, Table 25-6). */
export const CPU_BASED = {
  INTR_WINDOW_EXITING: 1 << 2,
  USE_TSC_OFFSETTING: 1 << 3,
  HLT_EXITING: 1 << 7,
  INVLPG_EXITING: 1 << 9,
  MWAIT_EXITING: 1 << 10,
  RDPMC_EXITING: 1 << 11,
  RDTSC_EXITING: 1 << 12,
  CR3_LOAD_EXITING: 1 << 15,
  CR3_STORE_EXITING: 1 << 16,
  CR8_LOAD_EXITING: 1 << 19,
  CR8_STORE_EXITING: 1 << 20,
  TPR_SHADOW: 1 << 21,
  NMI_WINDOW_EXITING: 1 << 22,
  MOV_DR_EXITING: 1 << 23,
  UNCOND_IO_EXITING: 1 << 24,
  USE_IO_BITMAPS: 1 << 25,
  MONITOR_TRAP_FLAG: 1 << 27,
  USE_MSR_BITMAPS: 1 << 28,
  MONITOR_EXITING: 1 << 29,
  PAUSE_EXITING: 1 << 30,
  ACTIVATE_SECONDARY_CONTROLS: 1 << 31,
} as const;

/** Secondary processor-based VM-execution controls (SDM 25.6.2, Table 25-7). */
export const SECONDARY_EXEC = {
  VIRTUALIZE_APIC_ACCESSES: 1 << 0,
  ENABLE_EPT: 1 << 1,
  DESC: 1 << 2,
  ENABLE_RDTSCP: 1 << 3,
  VIRTUALIZE_X2APIC_MODE: 1 << 4,
  ENABLE_VPID: 1 << 5,
  WBINVD_EXITING: 1 << 6,
  UNRESTRICTED_GUEST: 1 << 7,
  APIC_REGISTER_VIRT: 1 << 8,
  VIRTUAL_INTR_DELIVERY: 1 << 9,
  PAUSE_LOOP_EXITING: 1 << 10,
  RDRAND_EXITING: 1 << 11,
  ENABLE_INVPCID: 1 << 12,
  ENABLE_VMFUNC: 1 << 13,
  SHADOW_VMCS: 1 << 14,
  RDSEED_EXITING: 1 << 16,
  ENABLE_PML: 1 << 17,
  EPT_VIOLATION_VE: 1 << 18,
  ENABLE_XSAVES: 1 << 20,
  TSC_SCALING: 1 << 25,
} as const;

/** VM-exit controls (SDM 25.7.1, Table 25-13). */
export const VM_EXIT = {
  SAVE_DEBUG_CONTROLS: 1 << 2,
  HOST_ADDR_SPACE_SIZE: 1 << 9,
  LOAD_IA32_PERF_GLOBAL_CTRL: 1 << 12,
  ACK_INTR_ON_EXIT: 1 << 15,
  SAVE_IA32_PAT: 1 << 18,
  LOAD_IA32_PAT: 1 << 19,
  SAVE_IA32_EFER: 1 << 20,
  LOAD_IA32_EFER: 1 << 21,
  SAVE_VMX_PREEMPTION_TIMER: 1 << 22,
  CLEAR_BNDCFGS: 1 << 23,
} as const;

/** VM-entry controls (SDM 25.8.1, Table 25-15). */
export const VM_ENTRY = {
  LOAD_DEBUG_CONTROLS: 1 << 2,
  IA32E_MODE: 1 << 9,
  SMM: 1 << 10,
  DEACT_DUAL_MONITOR: 1 << 11,
  LOAD_IA32_PERF_GLOBAL_CTRL: 1 << 13,
  LOAD_IA32_PAT: 1 << 14,
  LOAD_IA32_EFER: 1 << 15,
  LOAD_BNDCFGS: 1 << 16,
} as const;

/** A control word's allowed settings: `must1` bits are fixed to 1, bits outside `may1` fixed to 0. */
export interface CtlCap {
  readonly must1: number;
  readonly may1: number;
}

const or = (o: Record<string, number>): number => Object.values(o).reduce((a, b) => (a | b) >>> 0, 0);

/** The "default1" classes (SDM A.2): bits reserved as 1 in the non-TRUE MSRs. */
const PIN_DEFAULT1 = 0x16;
const PROC_DEFAULT1 = 0x0401e172;
const EXIT_DEFAULT1 = 0x00036dff;
const ENTRY_DEFAULT1 = 0x000011ff;

/** What this silicon implements. */
const PIN_SUPPORTED = PIN_BASED.EXT_INTR_MASK | PIN_BASED.NMI_EXITING | PIN_BASED.VIRTUAL_NMIS | PIN_BASED.VMX_PREEMPTION_TIMER;
const PROC_SUPPORTED = or({ ...CPU_BASED }) & ~CPU_BASED.TPR_SHADOW;
const PROC2_SUPPORTED = SECONDARY_EXEC.ENABLE_EPT | SECONDARY_EXEC.DESC | SECONDARY_EXEC.ENABLE_RDTSCP
  | SECONDARY_EXEC.ENABLE_VPID | SECONDARY_EXEC.WBINVD_EXITING | SECONDARY_EXEC.UNRESTRICTED_GUEST
  | SECONDARY_EXEC.PAUSE_LOOP_EXITING | SECONDARY_EXEC.ENABLE_INVPCID | SECONDARY_EXEC.SHADOW_VMCS;
const EXIT_SUPPORTED = or({ ...VM_EXIT }) & ~VM_EXIT.CLEAR_BNDCFGS;
const ENTRY_SUPPORTED = (or({ ...VM_ENTRY }) & ~(VM_ENTRY.SMM | VM_ENTRY.DEACT_DUAL_MONITOR | VM_ENTRY.LOAD_BNDCFGS)) >>> 0;

export const VMX_CAPS = {
  pin: { must1: PIN_DEFAULT1, may1: (PIN_DEFAULT1 | PIN_SUPPORTED) >>> 0 },
  proc: { must1: PROC_DEFAULT1, may1: (PROC_DEFAULT1 | PROC_SUPPORTED) >>> 0 },
  proc2: { must1: 0, may1: PROC2_SUPPORTED },
  exit: { must1: EXIT_DEFAULT1, may1: (EXIT_DEFAULT1 | EXIT_SUPPORTED) >>> 0 },
  entry: { must1: ENTRY_DEFAULT1, may1: (ENTRY_DEFAULT1 | ENTRY_SUPPORTED) >>> 0 },
  // TRUE_ MSRs (SDM A.3.1-A.5): CR3-load/store exiting and the debug-control bits may be 0.
  truePin: { must1: PIN_DEFAULT1, may1: (PIN_DEFAULT1 | PIN_SUPPORTED) >>> 0 },
  trueProc: { must1: (PROC_DEFAULT1 & ~(CPU_BASED.CR3_LOAD_EXITING | CPU_BASED.CR3_STORE_EXITING)) >>> 0, may1: (PROC_DEFAULT1 | PROC_SUPPORTED) >>> 0 },
  trueExit: { must1: (EXIT_DEFAULT1 & ~VM_EXIT.SAVE_DEBUG_CONTROLS) >>> 0, may1: (EXIT_DEFAULT1 | EXIT_SUPPORTED) >>> 0 },
  trueEntry: { must1: (ENTRY_DEFAULT1 & ~VM_ENTRY.LOAD_DEBUG_CONTROLS) >>> 0, may1: (ENTRY_DEFAULT1 | ENTRY_SUPPORTED) >>> 0 },
} as const satisfies Record<string, CtlCap>;

/** VMCS revision identifier this silicon reports in IA32_VMX_BASIC[30:0] and expects at offset 0 of a VMCS/VMXON region. */
export const VMCS_REVISION_ID = 0x4;
export const VMCS_REGION_SIZE = 0x1000;
/** The VMX-preemption timer counts down once every 2^rate TSC ticks (IA32_VMX_MISC[4:0]). */
export const PREEMPTION_TIMER_RATE = 5;
export const CR3_TARGET_MAX = 4;

/** IA32_VMX_BASIC (SDM A.1). */
export const VMX_BASIC = {
  REVISION_MASK: 0x7fffffff,
  /** Bits 44:32 VMCS region size; 53:50 memory type (6 = WB); 54 INS/OUTS info; 55 TRUE controls. */
  value: BigInt(VMCS_REVISION_ID) | (BigInt(VMCS_REGION_SIZE) << 32n) | (6n << 50n) | (1n << 54n) | (1n << 55n),
  INOUT: 1n << 54n,
  TRUE_CTLS: 1n << 55n,
} as const;

/** IA32_VMX_MISC (SDM A.6). */
export const VMX_MISC = {
  STORE_LMA: 1 << 5,
  ACTIVITY_HLT: 1 << 6,
  ACTIVITY_SHUTDOWN: 1 << 7,
  ACTIVITY_WAIT_SIPI: 1 << 8,
  /** Bit 29: VMWRITE may write any field, the VM-exit information fields included. */
  VMWRITE_ANY_FIELD: 1 << 29,
  /** Bit 30: injection of software exceptions/interrupts with instruction length 0. */
  ZERO_LEN_INS: 1 << 30,
} as const;
export const VMX_MISC_VALUE = (PREEMPTION_TIMER_RATE | VMX_MISC.STORE_LMA | VMX_MISC.ACTIVITY_HLT | VMX_MISC.ACTIVITY_SHUTDOWN
  | VMX_MISC.ACTIVITY_WAIT_SIPI | (CR3_TARGET_MAX << 16) | VMX_MISC.VMWRITE_ANY_FIELD | VMX_MISC.ZERO_LEN_INS) >>> 0;

/** CR0/CR4 bits fixed in VMX operation (SDM A.7, A.8). CR0.PE and PG are relaxed for unrestricted guests. */
export const CR0_FIXED0 = 0x80000021;
export const CR0_FIXED1 = 0xffffffff;
export const CR4_FIXED0 = 0x2000;
/** The CR4 bits the CPU implements (LA57 and SMXE not). */
export const CR4_FIXED1 = 0x00773fff & ~(1 << 12) & ~(1 << 14);
/** Physical-address width (CPUID.80000008H:EAX[7:0]): addresses in VMCS fields must fit. */
export const MAXPHYADDR = 46;

/** IA32_VMX_EPT_VPID_CAP (SDM A.10). */
export const VMX_EPT_VPID_CAP = {
  EXECUTE_ONLY: 1n << 0n,
  PAGE_WALK_4: 1n << 6n,
  UC: 1n << 8n,
  WB: 1n << 14n,
  PAGE_2M: 1n << 16n,
  PAGE_1G: 1n << 17n,
  INVEPT: 1n << 20n,
  AD: 1n << 21n,
  INVEPT_SINGLE_CONTEXT: 1n << 25n,
  INVEPT_ALL_CONTEXT: 1n << 26n,
  INVVPID: 1n << 32n,
  INVVPID_INDIVIDUAL_ADDR: 1n << 40n,
  INVVPID_SINGLE_CONTEXT: 1n << 41n,
  INVVPID_ALL_CONTEXT: 1n << 42n,
  INVVPID_SINGLE_CONTEXT_RETAIN_GLOBALS: 1n << 43n,
} as const;
export const VMX_EPT_VPID_CAP_VALUE = Object.values(VMX_EPT_VPID_CAP).reduce((a, b) => a | b, 0n);

function ctlMsr(c: CtlCap): bigint {
  return (BigInt(c.may1 >>> 0) << 32n) | BigInt(c.must1 >>> 0);
}

/** The value of every IA32_VMX_* MSR, derived from the tables above. */
export function vmxCapabilityMsrs(vmcsEnum: number): ReadonlyMap<number, bigint> {
  return new Map<number, bigint>([
    [MSR_IA32_VMX.BASIC, VMX_BASIC.value],
    [MSR_IA32_VMX.PINBASED_CTLS, ctlMsr(VMX_CAPS.pin)],
    [MSR_IA32_VMX.PROCBASED_CTLS, ctlMsr(VMX_CAPS.proc)],
    [MSR_IA32_VMX.EXIT_CTLS, ctlMsr(VMX_CAPS.exit)],
    [MSR_IA32_VMX.ENTRY_CTLS, ctlMsr(VMX_CAPS.entry)],
    [MSR_IA32_VMX.MISC, BigInt(VMX_MISC_VALUE)],
    [MSR_IA32_VMX.CR0_FIXED0, BigInt(CR0_FIXED0)],
    [MSR_IA32_VMX.CR0_FIXED1, BigInt(CR0_FIXED1)],
    [MSR_IA32_VMX.CR4_FIXED0, BigInt(CR4_FIXED0)],
    [MSR_IA32_VMX.CR4_FIXED1, BigInt(CR4_FIXED1)],
    [MSR_IA32_VMX.VMCS_ENUM, BigInt(vmcsEnum)],
    [MSR_IA32_VMX.PROCBASED_CTLS2, ctlMsr(VMX_CAPS.proc2)],
    [MSR_IA32_VMX.EPT_VPID_CAP, VMX_EPT_VPID_CAP_VALUE],
    [MSR_IA32_VMX.TRUE_PINBASED_CTLS, ctlMsr(VMX_CAPS.truePin)],
    [MSR_IA32_VMX.TRUE_PROCBASED_CTLS, ctlMsr(VMX_CAPS.trueProc)],
    [MSR_IA32_VMX.TRUE_EXIT_CTLS, ctlMsr(VMX_CAPS.trueExit)],
    [MSR_IA32_VMX.TRUE_ENTRY_CTLS, ctlMsr(VMX_CAPS.trueEntry)],
    [MSR_IA32_VMX.VMFUNC, 0n],
  ]);
}

/** True when `value` honours a control capability (SDM 27.2.1.1). */
export function ctlAllowed(value: number, c: CtlCap): boolean {
  return (value & c.must1) === c.must1 && (value & ~c.may1) === 0;
}
