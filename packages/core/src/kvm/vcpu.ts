/** struct kvm_vcpu with its kvm_vcpu_arch: the state the common code keeps per vCPU. */
import { PAGE_SIZE } from '@kvmts/x86';
import type { KvmVcpu, KvmVcpuArch, Pcpu } from '../x86/kvm-types.js';
import { KVM_LIMITS, KVM_MP_STATE } from '../uapi/constants.js';
import { KvmRun } from '../x86/kvm-run.js';
import type { Vm } from './vm.js';
import type { CpuidEntry } from '../x86/cpuid.js';
import { GuestFpu } from '../x86/fpu.js';
import type { ExitResult } from '../x86/kvm-types.js';

/** An I/O or MMIO access the emulator handed to userspace, replayed when the instruction is re-run. */
export interface UserAccess {
  kind: 'pio' | 'mmio';
  isWrite: boolean;
  addr: number;
  size: number;
  /** For reads: the bytes userspace supplied (count × size for string input). */
  data: Uint8Array;
}

/** Named counters of KVM's binary stats (kvm_vcpu_stat); Vcpu.stats() adds exits by reason as `exit_<NAME>`. */
export const VCPU_STAT_NAMES = [
  'exits', 'io_exits', 'mmio_exits', 'halt_exits', 'irq_injections', 'irq_window_exits', 'nmi_window_exits',
  'nmi_injections', 'insn_emulation', 'insn_emulation_fail', 'signal_exits', 'request_irq_exits',
  'irq_exits', 'pf_taken', 'pf_fixed', 'pf_spurious', 'pf_mmio_spte_created', 'tlb_flush', 'hypercalls',
  'fastpath_exits', 'guest_instructions',
] as const;

/** Exit reasons fold into this many counter slots: VMX basic reasons and SVM exit codes are below it. */
const EXIT_SLOT_MASK = 0xfff;

export class Vcpu implements KvmVcpu {
  readonly kvm: Vm;
  readonly vcpuId: number;
  readonly arch: KvmVcpuArch;
  pcpu: Pcpu | null = null;
  requests = 0;
  /** The mmap'd pages: kvm_run, the PIO data page, the coalesced MMIO page. */
  readonly pages = new Uint8Array(KVM_LIMITS.VCPU_MMAP_PAGES * PAGE_SIZE);
  readonly run = this.pages.subarray(0, PAGE_SIZE);
  readonly pioData = this.pages.subarray(KVM_LIMITS.PIO_PAGE_OFFSET * PAGE_SIZE, (KVM_LIMITS.PIO_PAGE_OFFSET + 1) * PAGE_SIZE);
  readonly runView = new KvmRun(this.run);
  readonly stat: Record<string, number> = Object.fromEntries(VCPU_STAT_NAMES.map((n) => [n, 0]));
  /** Exits by reason (slot: reason & EXIT_SLOT_MASK), counted on the exit path without building a key. */
  readonly exitCounts = new Float64Array(EXIT_SLOT_MASK + 1);
  /** The full reason last counted in each slot (SVM's VMEXIT_INVALID is -1), for its name. */
  readonly exitSlotReason = new Int32Array(EXIT_SLOT_MASK + 1);
  vendor: unknown = null;
  /** vcpu->arch.guest_fpu with xcr0: what KVM_GET/SET_FPU, _XSAVE and _XCRS read and write. */
  readonly guestFpu = new GuestFpu();

  /** KVM_SET_CPUID2's table. */
  cpuid: CpuidEntry[] = [];
  /** MSRs the common code keeps (kvm_get_msr_common's), by index. */
  readonly msrs = new Map<number, bigint>();
  apicBase = 0xfee00000n | 0x800n;
  /** KVM_SET_GUEST_DEBUG's control word. */
  guestDebug = 0;
  /** eff_db: the breakpoint addresses loaded into DR0-DR3 for the run (the guest's, or userspace's with KVM_GUESTDBG_USE_HW_BP). */
  readonly effDb = [0, 0, 0, 0];
  /** guest_debug_dr7: the DR7 userspace's hardware breakpoints run with. */
  guestDebugDr7 = 0x400;
  /** complete_userspace_io: what to finish on the next KVM_RUN. */
  completeUserspaceIo: ((vcpu: Vcpu) => ExitResult) | null = null;
  /** The emulator's replay log for the instruction being emulated. */
  userAccesses: UserAccess[] = [];
  /** RIP of the PIO instruction that went to userspace (pio.linear_rip). */
  pioRip = 0;
  /** A -errno KVM_RUN must return instead of an exit (e.g. -EFAULT for an unbacked memslot). */
  runErrno = 0;
  /** kvm_skip_emulated_instruction filled kvm_run with KVM_EXIT_DEBUG: return to userspace after this exit. */
  singlestepExit = false;
  /** KVM_CAP_X86_USER_SPACE_MSR's reasons (KVM_MSR_EXIT_REASON_*). */
  userSpaceMsrMask = 0;

  constructor(kvm: Vm, id: number) {
    this.kvm = kvm;
    this.vcpuId = id;
    this.arch = {
      regs: new Int32Array(16), regsHi: new Int32Array(16), rip: 0xfff0, cr0: 0x60000010, cr2: 0, cr3: 0, cr4: 0, cr8: 0,
      efer: 0, cr0GuestOwnedBits: 0, cr4GuestOwnedBits: 0, dr6: 0xffff0ff0, dr7: 0x400, db: [0, 0, 0, 0],
      mpState: KVM_MP_STATE.RUNNABLE,
      exception: { pending: false, injected: false, nr: 0, hasErrorCode: false, errorCode: 0 },
      interrupt: { injected: false, soft: false, nr: 0 },
      nmiInjected: false, nmiPending: 0, tscOffset: 0n, guestMode: false, mmuRootHpa: -1, exitQualification: 0n,
      regsDirty: 0,
    };
    // The BSP flag, as kvm_vcpu_reset sets MSR_IA32_APICBASE for vCPU 0.
    if (id === 0) this.apicBase |= 0x100n;
  }

  /** kvm_vcpu_stat as userspace reads it: the named counters, then `exit_<NAME>` for each reason seen. */
  stats(): Record<string, number> {
    const out: Record<string, number> = { ...this.stat };
    for (let i = 0; i <= EXIT_SLOT_MASK; i++) {
      const n = this.exitCounts[i]!;
      if (n === 0) continue;
      const k = `exit_${this.ops.exitReasonName(this.exitSlotReason[i]!)}`;
      out[k] = (out[k] ?? 0) + n;
    }
    return out;
  }

  get ops() {
    return this.kvm.module.ops;
  }
}
