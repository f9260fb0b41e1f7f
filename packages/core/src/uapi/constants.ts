/** Constants of include/uapi/linux/kvm.h and arch/x86/include/uapi/asm/kvm.h, spelled as there. */

export const KVM_API_VERSION = 12;

export const KVM_EXIT = {
  UNKNOWN: 0, EXCEPTION: 1, IO: 2, HYPERCALL: 3, DEBUG: 4, HLT: 5, MMIO: 6, IRQ_WINDOW_OPEN: 7,
  SHUTDOWN: 8, FAIL_ENTRY: 9, INTR: 10, SET_TPR: 11, TPR_ACCESS: 12, S390_SIEIC: 13, S390_RESET: 14,
  DCR: 15, NMI: 16, INTERNAL_ERROR: 17, OSI: 18, PAPR_HCALL: 19, S390_UCONTROL: 20, WATCHDOG: 21,
  S390_TSCH: 22, EPR: 23, SYSTEM_EVENT: 24, S390_STSI: 25, IOAPIC_EOI: 26, HYPERV: 27, ARM_NISV: 28,
  X86_RDMSR: 29, X86_WRMSR: 30, DIRTY_RING_FULL: 31, AP_RESET_HOLD: 32, X86_BUS_LOCK: 33, XEN: 34,
  RISCV_SBI: 35, RISCV_CSR: 36, NOTIFY: 37, LOONGARCH_IOCSR: 38, MEMORY_FAULT: 39,
} as const;

export const KVM_INTERNAL_ERROR = { EMULATION: 1, SIMUL_EX: 2, DELIVERY_EV: 3, UNEXPECTED_EXIT_REASON: 4 } as const;

export const KVM_EXIT_IO = { IN: 0, OUT: 1 } as const;

export const KVM_SYSTEM_EVENT = { SHUTDOWN: 1, RESET: 2, CRASH: 3, WAKEUP: 4, SUSPEND: 5, SEV_TERM: 6 } as const;

export const KVM_MP_STATE = { RUNNABLE: 0, UNINITIALIZED: 1, INIT_RECEIVED: 2, HALTED: 3, SIPI_RECEIVED: 4 } as const;

export const KVM_MEM = { LOG_DIRTY_PAGES: 1 << 0, READONLY: 1 << 1, GUEST_MEMFD: 1 << 2 } as const;

export const KVM_GUESTDBG = {
  ENABLE: 0x1, SINGLESTEP: 0x2, USE_SW_BP: 0x10000, USE_HW_BP: 0x20000, INJECT_DB: 0x40000, INJECT_BP: 0x80000,
  BLOCKIRQ: 0x100000,
} as const;

/** kvm_vcpu_events.flags. */
export const KVM_VCPUEVENT = {
  VALID_NMI_PENDING: 0x1, VALID_SIPI_VECTOR: 0x2, VALID_SHADOW: 0x4, VALID_SMM: 0x8, VALID_PAYLOAD: 0x10,
  VALID_TRIPLE_FAULT: 0x20,
} as const;

/** kvm_run.kvm_valid_regs / kvm_dirty_regs (KVM_CAP_SYNC_REGS). */
export const KVM_SYNC_X86 = { REGS: 1 << 0, SREGS: 1 << 1, EVENTS: 1 << 2 } as const;

/** kvm_nested_state. */
export const KVM_STATE_NESTED = {
  FORMAT_VMX: 0, FORMAT_SVM: 1, GUEST_MODE: 0x1, RUN_PENDING: 0x2, EVMCS: 0x4, MTF_PENDING: 0x8,
  GIF_SET: 0x100, VMX_SMM_GUEST_MODE: 0x1, VMX_SMM_VMXON: 0x2, VMX_VMCS_SIZE: 0x1000, SVM_VMCB_SIZE: 0x1000,
  HEADER_SIZE: 128,
} as const;

/** KVM_CPUID_FLAG_* of kvm_cpuid_entry2.flags. */
export const KVM_CPUID_FLAG = { SIGNIFCANT_INDEX: 1 << 0 } as const;

/** KVM_MSR_EXIT_REASON_* for KVM_CAP_X86_USER_SPACE_MSR. */
export const KVM_MSR_EXIT_REASON = { INVAL: 1 << 0, UNKNOWN: 1 << 1, FILTER: 1 << 2 } as const;

/** Limits of arch/x86/kvm and include/linux/kvm_host.h. */
export const KVM_LIMITS = {
  MAX_VCPUS: 1024,
  MAX_VCPU_IDS: 4096,
  USER_MEM_SLOTS: 32764,
  /** x86 has two address spaces when SMM is built in; slot ids carry the space in bits 31:16. */
  ADDRESS_SPACE_NUM: 2,
  MAX_CPUID_ENTRIES: 256,
  MAX_IO_MSRS: 256,
  /** Pages in a vCPU mmap: kvm_run, the PIO data page (KVM_PIO_PAGE_OFFSET 1) and the coalesced MMIO ring (2). */
  VCPU_MMAP_PAGES: 3,
  PIO_PAGE_OFFSET: 1,
  COALESCED_MMIO_PAGE_OFFSET: 2,
} as const;
