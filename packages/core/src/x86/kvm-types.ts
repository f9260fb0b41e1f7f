/**
 * The shapes the common code and the vendor modules share: `struct kvm`, `struct kvm_vcpu`
 * and `struct kvm_vcpu_arch` as far as a vendor needs them, and the per-pCPU view of the host.
 * The core's classes implement these; a vendor module sees nothing else of the core.
 */
import type { VirtCpu, PhysMemory } from '@kvmts/x86';

/** kvm_segment (include/uapi/linux/kvm.h), with bases as signed canonical numbers. */
export interface KvmSegment {
  base: number;
  limit: number;
  selector: number;
  type: number;
  present: number;
  dpl: number;
  db: number;
  s: number;
  l: number;
  g: number;
  avl: number;
  unusable: number;
}

export interface KvmDtable {
  base: number;
  limit: number;
}

/** struct msr_data: `hostInitiated` is true for KVM_SET_MSRS, false for a guest WRMSR. */
export interface MsrData {
  index: number;
  data: bigint;
  hostInitiated: boolean;
}

/** VCPU_SREG_* order, as kvm_host.h numbers them. */
export const VCPU_SREG = { ES: 0, CS: 1, SS: 2, DS: 3, FS: 4, GS: 5, TR: 6, LDTR: 7 } as const;

/** An exit handler's verdict, the int returned by kvm_vmx_exit_handlers[] / svm_exit_handlers[]: 1 = resume, 0 = userspace. */
export type ExitResult = 'resume' | 'userspace';

/** A physical CPU of the host, as the kernel sees it (per_cpu data hangs off `vendor`). */
export interface Pcpu {
  readonly id: number;
  readonly cpu: VirtCpu;
  /** Per-cpu vendor data (vmxarea / svm_cpu_data). */
  vendor: unknown;
}

/** The host services a vendor module uses: the page allocator and the pCPUs. */
export interface HostKernel {
  readonly mem: PhysMemory;
  readonly pcpus: readonly Pcpu[];
  /** alloc_page(GFP_KERNEL | __GFP_ZERO): a zeroed 4 KiB page's HPA, or -1 when out of memory. */
  allocPage(): number;
  /** alloc_pages(order): 2^order contiguous zeroed pages, or -1. */
  allocPages(order: number): number;
  freePage(hpa: number): void;
  /** Pages allocated and not yet freed: what leak checks compare. */
  readonly pagesInUse: number;
  /**
   * hrtimer_start: `pcpu` takes a timer interrupt no later than its instruction count `expires`,
   * which kicks a running guest out as the hrtimer's callback does; the regular tick goes on.
   */
  hrtimerStart(pcpu: Pcpu, expires: number): void;
}

/** KVM_REQ_* bits that vendors raise or consume. */
export const KVM_REQ = {
  TLB_FLUSH: 1 << 0,
  MMU_RELOAD: 1 << 1,
  TRIPLE_FAULT: 1 << 2,
  EVENT: 1 << 3,
  TLB_FLUSH_CURRENT: 1 << 4,
  GET_NESTED_STATE_PAGES: 1 << 5,
  TLB_FLUSH_GUEST: 1 << 6,
  APF_READY: 1 << 7,
} as const;

/** kvm_vcpu_arch: the vendor-neutral vCPU state KVM keeps outside the VMCS/VMCB. */
export interface KvmVcpuArch {
  /** GPRs, low and high halves (VCPU_REGS_RAX .. R15), as __vmx_vcpu_run/__svm_vcpu_run swap them. */
  readonly regs: Int32Array;
  readonly regsHi: Int32Array;
  /** RIP, signed canonical. Vendors sync it with GUEST_RIP / VMCB save.rip. */
  rip: number;
  cr0: number;
  cr2: number;
  cr3: number;
  cr4: number;
  cr8: number;
  efer: number;
  /** Guest-owned CR0/CR4 bits (not intercepted). */
  cr0GuestOwnedBits: number;
  cr4GuestOwnedBits: number;
  dr6: number;
  dr7: number;
  readonly db: number[];
  /** KVM_MP_STATE_*. */
  mpState: number;
  /** Pending/injected exception (kvm_queued_exception). */
  exception: { pending: boolean; injected: boolean; nr: number; hasErrorCode: boolean; errorCode: number };
  /** Injected interrupt (kvm_queued_interrupt). */
  interrupt: { injected: boolean; soft: boolean; nr: number };
  nmiInjected: boolean;
  nmiPending: number;
  /** Virtual-NMI blocking as the vendor reports it (get/set_nmi_mask). */
  tscOffset: bigint;
  /** Guest mode (HF_GUEST_MASK): running L2. */
  guestMode: boolean;
  /** TDP root for this vCPU (EPT PML4 / NPT PML4 HPA), from the core's TDP MMU. */
  mmuRootHpa: number;
  /** The exit qualification / info the last exit carried, for the emulator and stats. */
  exitQualification: bigint;
  /**
   * Registers the common code changed behind the vendor's back, as kvm_register_mark_dirty
   * marks them: bit `1 << VCPU_REGS.*` (e.g. VCPU_EXREG_CR3 after KVM_SET_SREGS). The vendor
   * writes them to the VMCS/VMCB before entry and clears the bits.
   */
  regsDirty?: number;
}

/** struct kvm_vcpu as vendors see it. */
export interface KvmVcpu {
  readonly kvm: Kvm;
  readonly vcpuId: number;
  readonly arch: KvmVcpuArch;
  /** The pCPU this vCPU is loaded on (vcpu_load), or null. */
  pcpu: Pcpu | null;
  /** KVM_REQ_* bits. */
  requests: number;
  /** The kvm_run page, as bytes in Linux's layout (shared with the VMM's mmap). */
  readonly run: Uint8Array;
  /** The named per-vCPU counters (kvm_vcpu_stat). */
  readonly stat: Record<string, number>;
  /** The counters as userspace reads them: `stat` plus `exit_<NAME>` for each exit reason seen. */
  stats(): Record<string, number>;
  /** The vendor's container (vcpu_vmx / vcpu_svm), as to_vmx()/to_svm() would find it. */
  vendor: unknown;
  /** KVM_SET_GUEST_DEBUG's control (KVM_GUESTDBG_*): with SINGLESTEP, a #DB exits to userspace (kvmVcpuDebugExit). */
  guestDebug?: number;
}

/** struct kvm as vendors see it. */
export interface Kvm {
  readonly host: HostKernel;
  /** The vendor's container (kvm_vmx / kvm_svm). */
  vendor: unknown;
  readonly stat: Record<string, number>;
  /** The HPA behind guest-physical `gpa` through the memslots (gfn_to_hva, then the page), or -1. */
  gpaToHpa(gpa: number): number;
}
