/** Address spaces as distinct types (vm-memory's GuestAddress), and the façade's register structs. */
import type { KvmSegment, KvmDtable } from '../x86/kvm-types.js';

export type Gpa = number & { readonly __brand: 'Gpa' };
export type Gva = bigint & { readonly __brand: 'Gva' };
export type Hva = number & { readonly __brand: 'Hva' };
export type Gfn = number & { readonly __brand: 'Gfn' };

export const gpa = (n: number): Gpa => n as Gpa;
export const hva = (n: number): Hva => n as Hva;

export const KVM_REGS_NAMES = [
  'rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rsp', 'rbp',
  'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip', 'rflags',
] as const;
/** struct kvm_regs, unsigned BigInt. */
export type KvmRegs = Record<(typeof KVM_REGS_NAMES)[number], bigint>;

/** struct kvm_sregs: segment bases as signed canonical numbers (KvmSegment), registers as BigInt. */
export interface KvmSregs {
  cs: KvmSegment; ds: KvmSegment; es: KvmSegment; fs: KvmSegment; gs: KvmSegment; ss: KvmSegment;
  tr: KvmSegment; ldt: KvmSegment;
  gdt: KvmDtable; idt: KvmDtable;
  cr0: bigint; cr2: bigint; cr3: bigint; cr4: bigint; cr8: bigint; efer: bigint; apicBase: bigint;
  interruptBitmap: [bigint, bigint, bigint, bigint];
}

export interface KvmVcpuEvents {
  exception: { injected: number; nr: number; hasErrorCode: number; pending: number; errorCode: number };
  interrupt: { injected: number; nr: number; soft: number; shadow: number };
  nmi: { injected: number; pending: number; masked: number };
  sipiVector: number;
  flags: number;
}

/** struct kvm_fpu: fpr is 8 registers of 16 bytes, xmm 16 of 16, in memory order. */
export interface KvmFpu {
  fpr: Uint8Array;
  fcw: number; fsw: number; ftwx: number; lastOpcode: number;
  lastIp: bigint; lastDp: bigint;
  xmm: Uint8Array;
  mxcsr: number;
}

/** One struct kvm_xcr: the XCR's number (0 = XCR0) and its value. */
export interface KvmXcr {
  xcr: number;
  value: bigint;
}

/** struct kvm_userspace_memory_region, as the memslot code takes it. */
export type { UserspaceMemoryRegion } from '../kvm/memslots.js';

/** What KVM_RUN ended with, as rust-vmm's VcpuExit. For IoIn and MmioRead, fill `data` before the next run(). */
export type VcpuExit =
  | { readonly kind: 'IoOut'; readonly port: number; readonly size: number; readonly count: number; readonly data: Uint8Array }
  | { readonly kind: 'IoIn'; readonly port: number; readonly size: number; readonly count: number; readonly data: Uint8Array }
  | { readonly kind: 'MmioRead'; readonly addr: bigint; readonly data: Uint8Array }
  | { readonly kind: 'MmioWrite'; readonly addr: bigint; readonly data: Uint8Array }
  | { readonly kind: 'Hlt' }
  | { readonly kind: 'Shutdown' }
  | { readonly kind: 'FailEntry'; readonly reason: bigint; readonly cpu: number }
  | { readonly kind: 'InternalError'; readonly suberror: number; readonly data: readonly bigint[] }
  | { readonly kind: 'Debug'; readonly exception: number; readonly pc: bigint; readonly dr6: bigint; readonly dr7: bigint }
  | { readonly kind: 'IrqWindowOpen' }
  | { readonly kind: 'Intr' }
  | { readonly kind: 'SystemEvent'; readonly type: number; readonly data: readonly bigint[] }
  | { readonly kind: 'X86Rdmsr' | 'X86Wrmsr'; readonly index: number; readonly data: bigint }
  | { readonly kind: 'Unsupported'; readonly reason: number };
