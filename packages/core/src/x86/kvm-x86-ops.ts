/**
 * kvm_x86_ops: the one interface between the common x86 code and a vendor module, after
 * arch/x86/include/asm/kvm-x86-ops.h. Each hook is listed once in KVM_X86_OPS, as
 * KVM_X86_OP (required), KVM_X86_OP_OPTIONAL or KVM_X86_OP_OPTIONAL_RET0; the KvmX86Ops type
 * and the check kvm_ops_update makes at registration both come from that list.
 */
import type { Kvm, KvmVcpu, KvmSegment, KvmDtable, MsrData, ExitResult, HostKernel } from './kvm-types.js';

/** Every hook's signature. Names are Linux's, in camelCase. */
export interface KvmX86OpsSignatures {
  /** The module's name, as lsmod shows it: kvm_intel or kvm_amd. */
  name: string;
  checkProcessorCompatibility: () => number;
  hardwareEnable: (pcpuId: number) => number;
  hardwareDisable: (pcpuId: number) => void;
  hardwareUnsetup: () => void;
  hasEmulatedMsr: (kvm: Kvm | null, index: number) => boolean;
  vcpuAfterSetCpuid: (vcpu: KvmVcpu) => void;
  /** Size of the vendor's struct kvm part is implicit: vmInit fills kvm.vendor. */
  vmInit: (kvm: Kvm) => number;
  vmDestroy: (kvm: Kvm) => void;
  vcpuPrecreate: (kvm: Kvm) => number;
  vcpuCreate: (vcpu: KvmVcpu) => number;
  vcpuFree: (vcpu: KvmVcpu) => void;
  vcpuReset: (vcpu: KvmVcpu, initEvent: boolean) => void;
  prepareSwitchToGuest: (vcpu: KvmVcpu) => void;
  vcpuLoad: (vcpu: KvmVcpu, pcpuId: number) => void;
  vcpuPut: (vcpu: KvmVcpu) => void;
  updateExceptionBitmap: (vcpu: KvmVcpu) => void;
  getMsrFeature: (index: number) => bigint | undefined;
  /** Returns 0, or 1 for a #GP (unknown or refused), as vmx_get_msr does. */
  getMsr: (vcpu: KvmVcpu, msr: { index: number; data: bigint; hostInitiated: boolean }) => number;
  setMsr: (vcpu: KvmVcpu, msr: MsrData) => number;
  getSegmentBase: (vcpu: KvmVcpu, seg: number) => number;
  getSegment: (vcpu: KvmVcpu, seg: number) => KvmSegment;
  getCpl: (vcpu: KvmVcpu) => number;
  setSegment: (vcpu: KvmVcpu, seg: number, value: KvmSegment) => void;
  getCsDbLBits: (vcpu: KvmVcpu) => { db: number; l: number };
  isValidCr0: (vcpu: KvmVcpu, cr0: number) => boolean;
  setCr0: (vcpu: KvmVcpu, cr0: number) => void;
  postSetCr3: (vcpu: KvmVcpu, cr3: number) => void;
  isValidCr4: (vcpu: KvmVcpu, cr4: number) => boolean;
  setCr4: (vcpu: KvmVcpu, cr4: number) => void;
  setEfer: (vcpu: KvmVcpu, efer: number) => number;
  getIdt: (vcpu: KvmVcpu) => KvmDtable;
  setIdt: (vcpu: KvmVcpu, dt: KvmDtable) => void;
  getGdt: (vcpu: KvmVcpu) => KvmDtable;
  setGdt: (vcpu: KvmVcpu, dt: KvmDtable) => void;
  syncDirtyDebugRegs: (vcpu: KvmVcpu) => void;
  setDr7: (vcpu: KvmVcpu, value: number) => void;
  /** Reads a register the vendor keeps in the VMCS/VMCB (RSP, RIP, CR3, …) into vcpu.arch. */
  cacheReg: (vcpu: KvmVcpu, reg: number) => void;
  getRflags: (vcpu: KvmVcpu) => number;
  setRflags: (vcpu: KvmVcpu, rflags: number) => void;
  getIfFlag: (vcpu: KvmVcpu) => boolean;
  flushTlbAll: (vcpu: KvmVcpu) => void;
  flushTlbCurrent: (vcpu: KvmVcpu) => void;
  flushTlbGva: (vcpu: KvmVcpu, gva: number) => void;
  flushTlbGuest: (vcpu: KvmVcpu) => void;
  vcpuPreRun: (vcpu: KvmVcpu) => number;
  /** Enters the guest and returns after the next VM exit (fastpath result: 0 none, 1 exit handled, 2 reenter). */
  vcpuRun: (vcpu: KvmVcpu, forceImmediateExit: boolean) => number;
  handleExit: (vcpu: KvmVcpu, fastpath: number) => ExitResult;
  skipEmulatedInstruction: (vcpu: KvmVcpu) => number;
  setInterruptShadow: (vcpu: KvmVcpu, mask: number) => void;
  getInterruptShadow: (vcpu: KvmVcpu) => number;
  injectIrq: (vcpu: KvmVcpu, reinjected: boolean) => void;
  injectNmi: (vcpu: KvmVcpu) => void;
  injectException: (vcpu: KvmVcpu) => void;
  cancelInjection: (vcpu: KvmVcpu) => void;
  /** 1 when an interrupt can be injected now, 0 when not, -EBUSY when a nested exit must happen first. */
  interruptAllowed: (vcpu: KvmVcpu, forNested: boolean) => number;
  nmiAllowed: (vcpu: KvmVcpu, forNested: boolean) => number;
  getNmiMask: (vcpu: KvmVcpu) => boolean;
  setNmiMask: (vcpu: KvmVcpu, masked: boolean) => void;
  enableNmiWindow: (vcpu: KvmVcpu) => void;
  enableIrqWindow: (vcpu: KvmVcpu) => void;
  updateCr8Intercept: (vcpu: KvmVcpu, tpr: number, irr: number) => void;
  /** Points the vendor at the TDP root (EPTP / nCR3) for this vCPU. */
  loadMmuPgd: (vcpu: KvmVcpu, rootHpa: number, rootLevel: number) => void;
  /** The last exit in the vendor's terms, for tracing and stats: reason, info1, info2, intr info, error code. */
  getExitInfo: (vcpu: KvmVcpu) => { reason: number; info1: bigint; info2: bigint; intrInfo: number; errorCode: number };
  /** The vendor's name for an exit reason (EXIT_REASON_* / SVM_EXIT_*), for stats. */
  exitReasonName: (reason: number) => string;
  writeTscOffset: (vcpu: KvmVcpu) => void;
  /** The TDP page-table format the vendor's silicon walks (EPT or NPT): see the core's TDP MMU. */
  tdpFormat: () => TdpFormat;
  /** nested ops (kvm_x86_nested_ops), when the vendor supports nesting. */
  nestedGetState: (vcpu: KvmVcpu, maxSize: number) => Uint8Array | number;
  nestedSetState: (vcpu: KvmVcpu, state: Uint8Array) => number;
  nestedCheckEvents: (vcpu: KvmVcpu) => number;
  /** Vendor state for the dashboard: VMCS/VMCB fields by group, the host save area, nested views. */
  inspect: (vcpu: KvmVcpu) => VendorInspection;
}

/** The leaf-entry format of the vendor's TDP tables (EPT entries or x86 PTEs for NPT). */
export interface TdpFormat {
  readonly kind: 'ept' | 'npt';
  /** Bits of a present leaf/non-leaf entry granting read, write, execute (as 32-bit low-word masks). */
  readonly read: number;
  readonly write: number;
  readonly exec: number;
  /** Low-word bits to set in every non-leaf entry. */
  readonly nonLeaf: number;
  /** Low-word bits to set in a leaf entry besides permissions (memory type, A/D, user). */
  readonly leafExtra: number;
  /** The entry the core installs for an MMIO GFN so the next access faults fast (EPT misconfig / NPT reserved bit), or null. */
  readonly mmioSpte: { lo: number; hi: number } | null;
}

/** What the dashboard's VMCS/VMCB inspector shows: field groups with values as BigInt (API edge). */
export interface VendorInspection {
  readonly vendor: 'intel' | 'amd';
  readonly structures: readonly {
    readonly name: string; // "vmcs01", "vmcs02", "vmcs12", "shadow vmcs", "vmcb", "host save area"
    readonly hpa: number;
    readonly groups: readonly { readonly name: string; readonly fields: readonly { readonly name: string; readonly value: bigint; readonly changed: boolean }[] }[];
  }[];
  readonly counters: Readonly<Record<string, number>>;
}

/** kvm_x86_init_ops: what a vendor module hands to kvm_x86_vendor_init (modprobe). */
export interface KvmX86InitOps {
  hardwareSetup: (host: HostKernel) => number;
  runtimeOps: KvmX86Ops;
}

export const KVM_X86_OPS = [
  ['name', 'required'],
  ['checkProcessorCompatibility', 'required'],
  ['hardwareEnable', 'required'],
  ['hardwareDisable', 'required'],
  ['hardwareUnsetup', 'required'],
  ['hasEmulatedMsr', 'required'],
  ['vcpuAfterSetCpuid', 'required'],
  ['vmInit', 'required'],
  ['vmDestroy', 'optional'],
  ['vcpuPrecreate', 'optional_ret0'],
  ['vcpuCreate', 'required'],
  ['vcpuFree', 'required'],
  ['vcpuReset', 'required'],
  ['prepareSwitchToGuest', 'required'],
  ['vcpuLoad', 'required'],
  ['vcpuPut', 'required'],
  ['updateExceptionBitmap', 'required'],
  ['getMsrFeature', 'required'],
  ['getMsr', 'required'],
  ['setMsr', 'required'],
  ['getSegmentBase', 'required'],
  ['getSegment', 'required'],
  ['getCpl', 'required'],
  ['setSegment', 'required'],
  ['getCsDbLBits', 'required'],
  ['isValidCr0', 'required'],
  ['setCr0', 'required'],
  ['postSetCr3', 'optional'],
  ['isValidCr4', 'required'],
  ['setCr4', 'required'],
  ['setEfer', 'required'],
  ['getIdt', 'required'],
  ['setIdt', 'required'],
  ['getGdt', 'required'],
  ['setGdt', 'required'],
  ['syncDirtyDebugRegs', 'required'],
  ['setDr7', 'required'],
  ['cacheReg', 'required'],
  ['getRflags', 'required'],
  ['setRflags', 'required'],
  ['getIfFlag', 'required'],
  ['flushTlbAll', 'required'],
  ['flushTlbCurrent', 'required'],
  ['flushTlbGva', 'required'],
  ['flushTlbGuest', 'required'],
  ['vcpuPreRun', 'required'],
  ['vcpuRun', 'required'],
  ['handleExit', 'required'],
  ['skipEmulatedInstruction', 'required'],
  ['setInterruptShadow', 'required'],
  ['getInterruptShadow', 'required'],
  ['injectIrq', 'required'],
  ['injectNmi', 'required'],
  ['injectException', 'required'],
  ['cancelInjection', 'required'],
  ['interruptAllowed', 'required'],
  ['nmiAllowed', 'required'],
  ['getNmiMask', 'required'],
  ['setNmiMask', 'required'],
  ['enableNmiWindow', 'required'],
  ['enableIrqWindow', 'required'],
  ['updateCr8Intercept', 'optional'],
  ['loadMmuPgd', 'required'],
  ['getExitInfo', 'required'],
  ['exitReasonName', 'required'],
  ['writeTscOffset', 'required'],
  ['tdpFormat', 'required'],
  ['nestedGetState', 'optional'],
  ['nestedSetState', 'optional'],
  ['nestedCheckEvents', 'optional'],
  ['inspect', 'required'],
] as const satisfies readonly (readonly [keyof KvmX86OpsSignatures, 'required' | 'optional' | 'optional_ret0'])[];

type Listed = (typeof KVM_X86_OPS)[number];
type RequiredHook = Extract<Listed, readonly [string, 'required']>[0];
type OptionalHook = Exclude<Listed[0], RequiredHook>;

/** Compile-time check that every signature is listed exactly as a hook. */
type Unlisted = Exclude<keyof KvmX86OpsSignatures, Listed[0]>;
const everyHookListed: [Unlisted] extends [never] ? true : Unlisted = true;
void everyHookListed;

export type KvmX86Ops = { readonly [K in RequiredHook]: KvmX86OpsSignatures[K] } & {
  readonly [K in OptionalHook]?: KvmX86OpsSignatures[K];
};
