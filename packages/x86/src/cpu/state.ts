/**
 * Architectural state of one logical processor: what VMX saves into the guest-state area of a
 * VMCS, what SVM keeps in the VMCB save area, and what KVM's kvm_regs/kvm_sregs expose.
 *
 * Representation (DESIGN.md, "no BigInt on a hot path"):
 * - a GPR is two int32 halves, `gpr[i]` (bits 31:0) and `gprHi[i]` (bits 63:32);
 * - linear addresses (RIP, segment bases, CR2, DR0-3, LSTAR, …) are canonical, so they are kept
 *   as *signed* numbers in [-2^63, 2^63) that are exact: a canonical 48- or 57-bit address
 *   sign-extended fits in a double's 53-bit mantissa. 0xffff_8000_0000_0000 is -2^47.
 * - physical addresses (CR3, table bases) are non-negative numbers below 2^52;
 * - MSRs no hot path reads live in `msrs` as BigInt.
 */

/** Segment registers in the SDM's encoding order (ES, CS, SS, DS, FS, GS), then LDTR and TR. */
export const SEG = { ES: 0, CS: 1, SS: 2, DS: 3, FS: 4, GS: 5, LDTR: 6, TR: 7 } as const;
export type SegIndex = (typeof SEG)[keyof typeof SEG];

export const GPR = {
  RAX: 0, RCX: 1, RDX: 2, RBX: 3, RSP: 4, RBP: 5, RSI: 6, RDI: 7,
  R8: 8, R9: 9, R10: 10, R11: 11, R12: 12, R13: 13, R14: 14, R15: 15,
} as const;

/**
 * Segment access rights in the VMX layout (SDM Vol. 3C, Table 25-2 "Format of Access Rights"):
 * type 3:0, S 4, DPL 6:5, P 7, AVL 12, L 13, D/B 14, G 15, unusable 16.
 */
export const AR = {
  TYPE_MASK: 0xf, S: 1 << 4, DPL_SHIFT: 5, DPL_MASK: 3 << 5, P: 1 << 7,
  AVL: 1 << 12, L: 1 << 13, DB: 1 << 14, G: 1 << 15, UNUSABLE: 1 << 16,
} as const;

/**
 * A segment register's hidden part. Instructions never change one in place: a new value is a
 * new object in `seg[]`, so whoever installed an object can tell by identity that it still holds.
 * The VM-exit silicon saves only the registers the guest replaced, SVM's VMSAVE re-encodes only
 * those VMLOAD did not install (both vendors freeze what they install, so an in-place write would
 * throw), and chains between decoded blocks are checked against the CS object.
 */
export interface Segment {
  selector: number;
  /** Signed canonical number (FS/GS/TR/LDTR bases may be 64-bit). */
  base: number;
  /** Byte-granular limit, already expanded by G (0..0xffffffff). */
  limit: number;
  /** Access rights, AR layout above. */
  ar: number;
}

/** GDTR or IDTR; like a Segment, never changed in place (LGDT and LIDT install a new one). */
export interface DescriptorTableReg {
  base: number;
  limit: number;
}

export const CR0 = {
  PE: 1 << 0, MP: 1 << 1, EM: 1 << 2, TS: 1 << 3, ET: 1 << 4, NE: 1 << 5,
  WP: 1 << 16, AM: 1 << 18, NW: 1 << 29, CD: 1 << 30, PG: 1 << 31,
} as const;

export const CR4 = {
  VME: 1 << 0, PVI: 1 << 1, TSD: 1 << 2, DE: 1 << 3, PSE: 1 << 4, PAE: 1 << 5, MCE: 1 << 6,
  PGE: 1 << 7, PCE: 1 << 8, OSFXSR: 1 << 9, OSXMMEXCPT: 1 << 10, UMIP: 1 << 11, LA57: 1 << 12,
  VMXE: 1 << 13, SMXE: 1 << 14, FSGSBASE: 1 << 16, PCIDE: 1 << 17, OSXSAVE: 1 << 18,
  SMEP: 1 << 20, SMAP: 1 << 21, PKE: 1 << 22,
} as const;

export const EFER = { SCE: 1 << 0, LME: 1 << 8, LMA: 1 << 10, NXE: 1 << 11, SVME: 1 << 12, FFXSR: 1 << 14 } as const;

export const RFLAGS = {
  CF: 1 << 0, FIXED1: 1 << 1, PF: 1 << 2, AF: 1 << 4, ZF: 1 << 6, SF: 1 << 7, TF: 1 << 8, IF: 1 << 9,
  DF: 1 << 10, OF: 1 << 11, IOPL_SHIFT: 12, IOPL: 3 << 12, NT: 1 << 14, RF: 1 << 16, VM: 1 << 17,
  AC: 1 << 18, VIF: 1 << 19, VIP: 1 << 20, ID: 1 << 21,
} as const;

/** Activity states, in the VMX guest activity-state encoding (SDM 25.4.2). */
export const ACTIVITY = { ACTIVE: 0, HLT: 1, SHUTDOWN: 2, WAIT_SIPI: 3 } as const;

/** Interruptibility bits, in the VMX guest interruptibility-state layout (SDM 25.4.2). */
export const INTERRUPTIBILITY = { STI: 1 << 0, MOV_SS: 1 << 1, SMI: 1 << 2, NMI: 1 << 3 } as const;

export function makeSegment(selector = 0, base = 0, limit = 0xffff, ar = 0x93): Segment {
  return { selector, base, limit, ar };
}

export class CpuState {
  readonly gpr = new Int32Array(16);
  readonly gprHi = new Int32Array(16);
  rip = 0xfff0;
  /** RFLAGS as the architecture defines it; the interpreter may keep arithmetic flags lazily and must materialise them on read (see Cpu.getRflags). */
  rflags = RFLAGS.FIXED1;
  readonly seg: Segment[] = [
    makeSegment(0, 0, 0xffff, 0x93), // ES
    makeSegment(0xf000, 0xffff0000, 0xffff, 0x9b), // CS (reset state, SDM Table 10-1)
    makeSegment(0, 0, 0xffff, 0x93), // SS
    makeSegment(0, 0, 0xffff, 0x93), // DS
    makeSegment(0, 0, 0xffff, 0x93), // FS
    makeSegment(0, 0, 0xffff, 0x93), // GS
    makeSegment(0, 0, 0xffff, 0x82), // LDTR
    makeSegment(0, 0, 0xffff, 0x8b), // TR
  ];
  gdtr: DescriptorTableReg = { base: 0, limit: 0xffff };
  idtr: DescriptorTableReg = { base: 0, limit: 0xffff };
  cr0 = CR0.ET | CR0.CD | CR0.NW;
  cr2 = 0;
  cr3 = 0;
  cr4 = 0;
  /** CR8 = TPR[7:4]. */
  cr8 = 0;
  efer = 0;
  xcr0 = 1;
  /** DR0-DR3 (linear addresses), DR4/DR5 alias DR6/DR7 and are unused, DR6, DR7. */
  readonly dr: number[] = [0, 0, 0, 0, 0, 0, 0xffff0ff0, 0x400];

  // MSRs read by SYSCALL/SYSENTER/SWAPGS are fields; STAR is split at bit 32.
  starLo = 0;
  starHi = 0;
  lstar = 0;
  cstar = 0;
  /** SFMASK: only bits 31:0 are defined. */
  sfmask = 0;
  kernelGsBase = 0;
  sysenterCs = 0;
  sysenterEsp = 0;
  sysenterEip = 0;
  /** IA32_TSC_AUX, for RDTSCP and RDPID. */
  tscAux = 0;
  /**
   * IA32_PAT as int32 halves (reset value 0007040600070406H, SDM vol. 3A 13.12.4): every VMX
   * entry and exit that loads or saves it compares it, which a BigInt in `msrs` made costly.
   */
  patLo = 0x00070406;
  patHi = 0x00070406;
  /** Every other MSR (MTRRs, APIC_BASE, MISC_ENABLE, …) by index. */
  readonly msrs = new Map<number, bigint>();

  activity: number = ACTIVITY.ACTIVE;
  interruptibility = 0;
  /**
   * The debug conditions (DR6 layout: B0-B3, BD, BS) of the #DB being delivered. A VM exit for
   * that #DB reports exactly these as its exit qualification (SDM 28.2.1, Table 28-1), whatever
   * sticky bits DR6 holds from earlier ones.
   */
  debugConditions = 0;

  /**
   * The event being delivered, in the VMX IDT-vectoring information layout (SDM 25.9.3:
   * vector 7:0, type 10:8, error-code valid 11, valid 31), or 0. Set while the CPU delivers an
   * event, so that a VM exit in the middle can report it (IDT-vectoring info / EXITINTINFO).
   */
  vectoringInfo = 0;
  vectoringErrorCode = 0;

  /** Instructions retired since reset. The bare TSC is derived from it, so runs are deterministic. */
  icount = 0;
}
