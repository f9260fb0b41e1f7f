/**
 * What the VMM needs from KVM, in the uapi's terms: the few ioctls a minimal VMM makes
 * (CREATE_VM, SET_USER_MEMORY_REGION, CREATE_VCPU, GET/SET_REGS, GET/SET_SREGS, RUN, INTERRUPT)
 * and the `kvm_run` exits it reads back. The VMM is written against this port so that it can be
 * tested with a scripted fake; `api-port.ts` implements it over the core's typed façade.
 */
import { KVM_REGS_NAMES, type KvmRegs as KvmApiRegs, type KvmSregs as KvmApiSregs, type VendorInspection } from '@kvmts/core';
import type { MigrationOptions } from '@kvmts/migrate';

/** struct kvm_regs, field order as include/uapi/asm-x86/kvm.h has it. */
export const KVM_REGS_FIELDS = KVM_REGS_NAMES;
export type KvmRegName = (typeof KVM_REGS_FIELDS)[number];
/** 64-bit values at the API edge are BigInt, unsigned. */
export type KvmRegs = KvmApiRegs;

/** The control registers of kvm_sregs, which the VMM's view keeps as numbers. */
export const SREGS_NUMBERS = ['cr0', 'cr2', 'cr3', 'cr4', 'cr8', 'efer'] as const;

/**
 * struct kvm_sregs as the VMM shows it: control registers and EFER as numbers (exact in every
 * state the contract sets up; CR3 has at most 52 bits), and no interrupt bitmap, which this VMM
 * never uses (it injects with KVM_INTERRUPT).
 */
export type KvmSregs = Omit<KvmApiSregs, (typeof SREGS_NUMBERS)[number] | 'interruptBitmap'> & Record<(typeof SREGS_NUMBERS)[number], number>;

/**
 * The userspace exits of KVM_RUN as the VMM handles them: the façade's VcpuExit in the trace's
 * words (one `io` and one `mmio` kind with a direction), plus a failed KVM_RUN as `errno`.
 */
export type VcpuExit =
  /** `data` is the PIO data page window (size × count bytes): fill it for `in` before the next run. */
  | { readonly kind: 'io'; readonly dir: 'in' | 'out'; readonly port: number; readonly size: number; readonly count: number; readonly data: Uint8Array }
  /** `data` is kvm_run.mmio.data (len bytes): fill it for a read before the next run. */
  | { readonly kind: 'mmio'; readonly isWrite: boolean; readonly addr: bigint; readonly len: number; readonly data: Uint8Array }
  | { readonly kind: 'hlt' }
  | { readonly kind: 'shutdown' }
  | { readonly kind: 'fail_entry'; readonly reason: bigint; readonly cpu: number }
  | { readonly kind: 'internal_error'; readonly suberror: number }
  | { readonly kind: 'irq_window_open' }
  /** KVM_RUN returned -EINTR (a kick, the host tick, or immediate_exit): the guest was only preempted. */
  | { readonly kind: 'intr' }
  /** KVM_RUN itself failed (not an exit): -errno. */
  | { readonly kind: 'errno'; readonly errno: number }
  | { readonly kind: 'unknown'; readonly reason: number };

export interface VcpuPort {
  getRegs(): KvmRegs;
  setRegs(regs: KvmRegs): void;
  getSregs(): KvmSregs;
  setSregs(sregs: KvmSregs): void;
  run(): VcpuExit;
  /** KVM_INTERRUPT: returns 0 or -errno. */
  interrupt(vector: number): number;
  /** kvm_run.ready_for_interrupt_injection after the last run. */
  readonly readyForInterruptInjection: boolean;
  /** kvm_run.request_interrupt_window for the next run. */
  requestInterruptWindow: boolean;
  /** kvm_run.if_flag after the last run. */
  readonly ifFlag: boolean;
  /** kvm_run.immediate_exit: KVM_RUN only completes pending I/O and returns -EINTR (before a migration). */
  immediateExit?: boolean;
  /** KVM_TRANSLATE: the guest-physical address of a guest-linear one, or null when unmapped. */
  translate?(gva: bigint): number | null;
  /** is_guest_mode(): the vCPU is running a nested (L2) guest, when the port can tell. */
  isGuestMode?(): boolean;
  /** Per-vCPU binary stats (exits, io_exits, exit reasons …). */
  stats(): Readonly<Record<string, number>>;
  /** The vendor's VMCS/VMCB view, when the module provides one. */
  inspect(): VendorInspection | null;
}

export interface MemslotInfo {
  readonly slot: number;
  readonly gpa: number;
  readonly size: number;
  readonly flags: number;
  readonly hva: number;
}

export interface VmPort {
  /** KVM_SET_USER_MEMORY_REGION over anonymous memory the port maps; returns the region's bytes writer. */
  addMemslot(slot: number, gpa: number, size: number): GuestMemory | number;
  createVcpu(id: number): VcpuPort | number;
  memslots(): readonly MemslotInfo[];
  /** TDP pages mapped and dirty pages, for the dashboard's memory view (null while unknown). */
  mmuStats(): { readonly tdpPages: number; readonly dirtyPages: number } | null;
  stats(): Readonly<Record<string, number>>;
  destroy(): void;
  /**
   * Live migration to `target` (issue 9), through the uapi: on success this VM and `vcpus` are
   * gone and the returned ones run on the target; a string says why not, and the VM is untouched.
   */
  migrate?(vcpus: readonly VcpuPort[], target: HostPort, opts?: MigrateOptions): MigratedVm | string;
}

/** Pre-copy options: how the guest runs between rounds, how many rounds, when to stop. */
export type MigrateOptions = MigrationOptions;

/** What a migration did, as the dashboard and the bench show it. */
export interface MigrationReport {
  readonly from: 'intel' | 'amd';
  readonly to: 'intel' | 'amd';
  /** Pre-copy rounds after the first full copy. */
  readonly rounds: number;
  readonly pagesSent: number;
  /** Stop-and-copy, µs. */
  readonly downtimeUs: number;
  /** The whole migration, ms. */
  readonly totalMs: number;
}

export interface MigratedVm {
  readonly vm: VmPort;
  readonly vcpus: readonly VcpuPort[];
  /** The memslots' backing on the target, in the order of `memslots()`. */
  readonly memory: readonly GuestMemory[];
  readonly report: MigrationReport;
}

/** The VMM's view of a memslot's backing (an anonymous mmap in the VMM's address space). */
export interface GuestMemory {
  readonly hva: number;
  readonly size: number;
  write(offset: number, bytes: Uint8Array): void;
  read(offset: number, len: number): Uint8Array;
}

export interface HostInfo {
  readonly vendor: 'intel' | 'amd';
  readonly cpuModel: string;
  /** The loaded vendor module, as lsmod names it: kvm_intel or kvm_amd. */
  readonly module: string;
  readonly apiVersion: number;
  readonly pcpus: number;
}

/** One physical machine with its kvm vendor module loaded, as seen through /dev/kvm. */
export interface HostPort {
  readonly info: HostInfo;
  createVm(): VmPort | number;
  /** Bytes of host memory the model has backed (RSS-like), when known. */
  residentBytes(): number | null;
}
