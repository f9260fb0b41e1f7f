/**
 * The uapi conformance table: sequences of ioctls with their arguments and Linux's answers.
 * Plain data, so the same rows replay against the real /dev/kvm (packages/kvm-ref) and
 * against this model (packages/core/test/uapi-conformance.test.ts).
 *
 * Values in struct arguments may name a mapping: "$m" is the address mmap returned for the
 * step `{ op: 'mmap', as: 'm' }`, "$m+0x1000" an offset into it. An fd is named by `as`.
 */
import type { KvmIoctlName } from './ioctls.js';
import type { ErrnoName } from './errno.js';

export type RowValue = number | string;
export type IoctlRowArg =
  | number
  | { struct: string; value: Record<string, RowValue | RowValue[]>; extra?: number }
  /** A user pointer that nothing is mapped at. */
  | { badPointer: true };

/** 'fd': a new fd (>= 0); a number: exactly that; an errno name: that -errno; { atLeast }: a count. */
export type RowExpect = 'fd' | number | ErrnoName | { atLeast: number };

export type RowStep =
  | { op: 'ioctl'; fd: string; ioctl: KvmIoctlName; arg?: IoctlRowArg; expect: RowExpect; as?: string }
  | { op: 'mmap'; len: number; as: string }
  | { op: 'close'; fd: string; expect: RowExpect };

export interface UapiRow {
  readonly name: string;
  /** Steps after `open('/dev/kvm')`, which is bound as "kvm". */
  readonly steps: readonly RowStep[];
}

const vm = { op: 'ioctl', fd: 'kvm', ioctl: 'KVM_CREATE_VM', arg: 0, expect: 'fd', as: 'vm' } as const;
const vcpu0 = { op: 'ioctl', fd: 'vm', ioctl: 'KVM_CREATE_VCPU', arg: 0, expect: 'fd', as: 'vcpu' } as const;
const mem64k = { op: 'mmap', len: 0x10000, as: 'm' } as const;
const region = (slot: number, gpa: number, size: number, uaddr: RowValue, flags = 0, expect: RowExpect = 0): RowStep => ({
  op: 'ioctl', fd: 'vm', ioctl: 'KVM_SET_USER_MEMORY_REGION', expect,
  arg: { struct: 'kvm_userspace_memory_region', value: { slot, flags, guest_phys_addr: gpa, memory_size: size, userspace_addr: uaddr } },
});

/** A kvm_xsave region (u32 words) with the given words set. */
function xsaveRegion(words: Readonly<Record<number, number>>): number[] {
  const r = new Array<number>(1024).fill(0);
  for (const [i, w] of Object.entries(words)) r[Number(i)] = w;
  return r;
}

export const UAPI_CONFORMANCE_ROWS: readonly UapiRow[] = [
  { name: 'GET_API_VERSION is 12 and takes no argument', steps: [
    { op: 'ioctl', fd: 'kvm', ioctl: 'KVM_GET_API_VERSION', arg: 0, expect: 12 },
    { op: 'ioctl', fd: 'kvm', ioctl: 'KVM_GET_API_VERSION', arg: 1, expect: 'EINVAL' },
  ] },
  { name: 'GET_VCPU_MMAP_SIZE is three pages on x86', steps: [
    { op: 'ioctl', fd: 'kvm', ioctl: 'KVM_GET_VCPU_MMAP_SIZE', arg: 0, expect: 12288 },
  ] },
  { name: 'CHECK_EXTENSION answers the caps a VMM relies on', steps: [
    { op: 'ioctl', fd: 'kvm', ioctl: 'KVM_CHECK_EXTENSION', arg: 3 /* USER_MEMORY */, expect: 1 },
    { op: 'ioctl', fd: 'kvm', ioctl: 'KVM_CHECK_EXTENSION', arg: 4 /* SET_TSS_ADDR */, expect: 1 },
    { op: 'ioctl', fd: 'kvm', ioctl: 'KVM_CHECK_EXTENSION', arg: 81 /* READONLY_MEM */, expect: 1 },
    { op: 'ioctl', fd: 'kvm', ioctl: 'KVM_CHECK_EXTENSION', arg: 136 /* IMMEDIATE_EXIT */, expect: 1 },
    { op: 'ioctl', fd: 'kvm', ioctl: 'KVM_CHECK_EXTENSION', arg: 10 /* NR_MEMSLOTS */, expect: { atLeast: 32 } },
    { op: 'ioctl', fd: 'kvm', ioctl: 'KVM_CHECK_EXTENSION', arg: 0x7fffffff, expect: 0 },
  ] },
  { name: 'unknown requests: EINVAL on /dev/kvm, ENOTTY on a VM, EINVAL on a vCPU', steps: [
    { op: 'ioctl', fd: 'kvm', ioctl: 'KVM_RUN', arg: 0, expect: 'EINVAL' },
    vm,
    { op: 'ioctl', fd: 'vm', ioctl: 'KVM_RUN', arg: 0, expect: 'ENOTTY' },
    { op: 'ioctl', fd: 'vm', ioctl: 'KVM_GET_API_VERSION', arg: 0, expect: 'ENOTTY' },
    vcpu0,
    { op: 'ioctl', fd: 'vcpu', ioctl: 'KVM_CREATE_VM', arg: 0, expect: 'EINVAL' },
  ] },
  { name: 'CREATE_VM rejects an unknown machine type', steps: [
    { op: 'ioctl', fd: 'kvm', ioctl: 'KVM_CREATE_VM', arg: 0xff, expect: 'EINVAL' },
  ] },
  { name: 'CREATE_VCPU: duplicate ids are EEXIST, ids past the limit EINVAL', steps: [
    vm, vcpu0,
    { op: 'ioctl', fd: 'vm', ioctl: 'KVM_CREATE_VCPU', arg: 0, expect: 'EEXIST' },
    { op: 'ioctl', fd: 'vm', ioctl: 'KVM_CREATE_VCPU', arg: 1, expect: 'fd' },
    { op: 'ioctl', fd: 'vm', ioctl: 'KVM_CREATE_VCPU', arg: 0x7fffffff, expect: 'EINVAL' },
  ] },
  { name: 'memslots: create, repeat, overlap, misalignment, bad flags', steps: [
    vm, mem64k,
    region(0, 0, 0x10000, '$m'),
    region(0, 0, 0x10000, '$m'),
    region(1, 0x8000, 0x10000, '$m', 0, 'EEXIST'),
    region(1, 0x1001, 0x1000, '$m', 0, 'EINVAL'),
    region(1, 0x100000, 0x1001, '$m', 0, 'EINVAL'),
    region(1, 0x100000, 0x1000, '$m+0x1', 0, 'EINVAL'),
    region(1, 0x100000, 0x1000, '$m', 0x80, 'EINVAL'),
    region(0x20000, 0x100000, 0x1000, '$m', 0, 'EINVAL'),
    region(32764, 0x100000, 0x1000, '$m', 0, 'EINVAL'),
  ] },
  { name: 'memslots: resize and READONLY toggles are EINVAL, move and delete work', steps: [
    vm, mem64k,
    region(0, 0, 0x10000, '$m'),
    region(0, 0, 0x8000, '$m', 0, 'EINVAL'),
    region(0, 0, 0x10000, '$m', 2, 'EINVAL'),
    region(0, 0x100000, 0x10000, '$m'),
    region(0, 0x100000, 0x10000, '$m', 1),
    region(0, 0, 0, '$m'),
    region(0, 0, 0, '$m', 0, 'EINVAL'),
    region(5, 0, 0, '$m', 0, 'EINVAL'),
  ] },
  { name: 'GET_DIRTY_LOG needs a slot with dirty logging', steps: [
    vm, mem64k, { op: 'mmap', len: 0x1000, as: 'bitmap' },
    region(0, 0, 0x10000, '$m'),
    { op: 'ioctl', fd: 'vm', ioctl: 'KVM_GET_DIRTY_LOG', arg: { struct: 'kvm_dirty_log', value: { slot: 0, dirty_bitmap: '$bitmap' } }, expect: 'ENOENT' },
    { op: 'ioctl', fd: 'vm', ioctl: 'KVM_GET_DIRTY_LOG', arg: { struct: 'kvm_dirty_log', value: { slot: 9, dirty_bitmap: '$bitmap' } }, expect: 'ENOENT' },
    region(0, 0, 0x10000, '$m', 1),
    { op: 'ioctl', fd: 'vm', ioctl: 'KVM_GET_DIRTY_LOG', arg: { struct: 'kvm_dirty_log', value: { slot: 0, dirty_bitmap: '$bitmap' } }, expect: 0 },
  ] },
  { name: 'bad pointers are EFAULT', steps: [
    vm, vcpu0,
    { op: 'ioctl', fd: 'vcpu', ioctl: 'KVM_GET_REGS', arg: { badPointer: true }, expect: 'EFAULT' },
    { op: 'ioctl', fd: 'vcpu', ioctl: 'KVM_SET_SREGS', arg: { badPointer: true }, expect: 'EFAULT' },
    { op: 'ioctl', fd: 'vm', ioctl: 'KVM_SET_USER_MEMORY_REGION', arg: { badPointer: true }, expect: 'EFAULT' },
  ] },
  { name: 'oversized counts are E2BIG', steps: [
    vm, vcpu0,
    { op: 'ioctl', fd: 'vcpu', ioctl: 'KVM_SET_MSRS', arg: { struct: 'kvm_msrs', value: { nmsrs: 256 } }, expect: 'E2BIG' },
    { op: 'ioctl', fd: 'vcpu', ioctl: 'KVM_GET_MSRS', arg: { struct: 'kvm_msrs', value: { nmsrs: 4096 } }, expect: 'E2BIG' },
    { op: 'ioctl', fd: 'vcpu', ioctl: 'KVM_SET_CPUID2', arg: { struct: 'kvm_cpuid2', value: { nent: 257 } }, expect: 'E2BIG' },
    { op: 'ioctl', fd: 'kvm', ioctl: 'KVM_GET_SUPPORTED_CPUID', arg: { struct: 'kvm_cpuid2', value: { nent: 0 } }, expect: 'E2BIG' },
    { op: 'ioctl', fd: 'kvm', ioctl: 'KVM_GET_SUPPORTED_CPUID', arg: { struct: 'kvm_cpuid2', value: { nent: 1 }, extra: 40 }, expect: 'E2BIG' },
    { op: 'ioctl', fd: 'kvm', ioctl: 'KVM_GET_MSR_INDEX_LIST', arg: { struct: 'kvm_msr_list', value: { nmsrs: 0 } }, expect: 'E2BIG' },
  ] },
  { name: 'closed fds are EBADF', steps: [
    vm, vcpu0,
    { op: 'close', fd: 'vcpu', expect: 0 },
    { op: 'ioctl', fd: 'vcpu', ioctl: 'KVM_RUN', arg: 0, expect: 'EBADF' },
    { op: 'close', fd: 'vcpu', expect: 'EBADF' },
    { op: 'close', fd: 'vm', expect: 0 },
    { op: 'ioctl', fd: 'vm', ioctl: 'KVM_CREATE_VCPU', arg: 1, expect: 'EBADF' },
  ] },
  { name: 'KVM_INTERRUPT without an in-kernel irqchip: vectors below 256, queued over each other', steps: [
    vm, vcpu0,
    { op: 'ioctl', fd: 'vcpu', ioctl: 'KVM_INTERRUPT', arg: { struct: 'kvm_interrupt', value: { irq: 256 } }, expect: 'EINVAL' },
    { op: 'ioctl', fd: 'vcpu', ioctl: 'KVM_INTERRUPT', arg: { struct: 'kvm_interrupt', value: { irq: 0x20 } }, expect: 0 },
    { op: 'ioctl', fd: 'vcpu', ioctl: 'KVM_INTERRUPT', arg: { struct: 'kvm_interrupt', value: { irq: 0x21 } }, expect: 0 },
  ] },
  { name: 'MP_STATE without an in-kernel LAPIC: only RUNNABLE', steps: [
    vm, vcpu0,
    { op: 'ioctl', fd: 'vcpu', ioctl: 'KVM_SET_MP_STATE', arg: { struct: 'kvm_mp_state', value: { mp_state: 3 } }, expect: 'EINVAL' },
    { op: 'ioctl', fd: 'vcpu', ioctl: 'KVM_SET_MP_STATE', arg: { struct: 'kvm_mp_state', value: { mp_state: 0 } }, expect: 0 },
  ] },
  { name: 'VM setup ioctls: TSS and identity map (before vCPUs only), ENABLE_CAP flags', steps: [
    vm,
    { op: 'ioctl', fd: 'vm', ioctl: 'KVM_SET_TSS_ADDR', arg: 0xfffbd000, expect: 0 },
    { op: 'ioctl', fd: 'vm', ioctl: 'KVM_SET_IDENTITY_MAP_ADDR', arg: { struct: '__u64', value: { value: 0xfffbc000 } }, expect: 0 },
    vcpu0,
    { op: 'ioctl', fd: 'vm', ioctl: 'KVM_SET_IDENTITY_MAP_ADDR', arg: { struct: '__u64', value: { value: 0xfffbc000 } }, expect: 'EINVAL' },
    { op: 'ioctl', fd: 'vm', ioctl: 'KVM_ENABLE_CAP', arg: { struct: 'kvm_enable_cap', value: { cap: 188, flags: 1 } }, expect: 'EINVAL' },
    { op: 'ioctl', fd: 'vm', ioctl: 'KVM_ENABLE_CAP', arg: { struct: 'kvm_enable_cap', value: { cap: 188, args: [2] } }, expect: 0 },
  ] },
  { name: 'table queries succeed with room to spare', steps: [
    { op: 'ioctl', fd: 'kvm', ioctl: 'KVM_GET_SUPPORTED_CPUID', arg: { struct: 'kvm_cpuid2', value: { nent: 256 }, extra: 256 * 40 }, expect: 0 },
    { op: 'ioctl', fd: 'kvm', ioctl: 'KVM_GET_MSR_INDEX_LIST', arg: { struct: 'kvm_msr_list', value: { nmsrs: 1024 }, extra: 4096 }, expect: 0 },
    vm, vcpu0,
    { op: 'ioctl', fd: 'vcpu', ioctl: 'KVM_SET_CPUID2', arg: { struct: 'kvm_cpuid2', value: { nent: 0 } }, expect: 0 },
    { op: 'ioctl', fd: 'vcpu', ioctl: 'KVM_GET_CPUID2', arg: { struct: 'kvm_cpuid2', value: { nent: 4 }, extra: 4 * 40 }, expect: 0 },
  ] },
  { name: 'vCPU state ioctls on a fresh vCPU', steps: [
    vm, vcpu0,
    { op: 'ioctl', fd: 'vcpu', ioctl: 'KVM_GET_MP_STATE', arg: { struct: 'kvm_mp_state', value: {} }, expect: 0 },
    { op: 'ioctl', fd: 'vcpu', ioctl: 'KVM_GET_VCPU_EVENTS', arg: { struct: 'kvm_vcpu_events', value: {} }, expect: 0 },
    { op: 'ioctl', fd: 'vcpu', ioctl: 'KVM_GET_FPU', arg: { struct: 'kvm_fpu', value: {} }, expect: 0 },
    { op: 'ioctl', fd: 'vcpu', ioctl: 'KVM_TRANSLATE', arg: { struct: 'kvm_translation', value: { linear_address: 0x1000 } }, expect: 0 },
    { op: 'ioctl', fd: 'vcpu', ioctl: 'KVM_NMI', arg: 0, expect: 0 },
  ] },
  { name: 'SET_VCPU_EVENTS validates flags and the exception vector', steps: [
    vm, vcpu0,
    { op: 'ioctl', fd: 'vcpu', ioctl: 'KVM_SET_VCPU_EVENTS', arg: { struct: 'kvm_vcpu_events', value: { flags: 0x80000000 } }, expect: 'EINVAL' },
    { op: 'ioctl', fd: 'vcpu', ioctl: 'KVM_SET_VCPU_EVENTS', arg: { struct: 'kvm_vcpu_events', value: { exception_injected: 1, exception_nr: 2 } }, expect: 'EINVAL' },
    { op: 'ioctl', fd: 'vcpu', ioctl: 'KVM_SET_VCPU_EVENTS', arg: { struct: 'kvm_vcpu_events', value: { exception_injected: 1, exception_nr: 32 } }, expect: 'EINVAL' },
    { op: 'ioctl', fd: 'vcpu', ioctl: 'KVM_SET_VCPU_EVENTS', arg: { struct: 'kvm_vcpu_events', value: {} }, expect: 0 },
  ] },
  { name: 'SET_GUEST_DEBUG accepts single-step and undefined control bits alike', steps: [
    vm, vcpu0,
    { op: 'ioctl', fd: 'vcpu', ioctl: 'KVM_SET_GUEST_DEBUG', arg: { struct: 'kvm_guest_debug', value: { control: 0x4 } }, expect: 0 },
    { op: 'ioctl', fd: 'vcpu', ioctl: 'KVM_SET_GUEST_DEBUG', arg: { struct: 'kvm_guest_debug', value: { control: 0x3 } }, expect: 0 },
    { op: 'ioctl', fd: 'vcpu', ioctl: 'KVM_SET_GUEST_DEBUG', arg: { struct: 'kvm_guest_debug', value: { control: 0 } }, expect: 0 },
  ] },
  { name: 'KVM_RUN takes no argument', steps: [
    vm, vcpu0,
    { op: 'ioctl', fd: 'vcpu', ioctl: 'KVM_RUN', arg: 1, expect: 'EINVAL' },
  ] },
  { name: 'KVM_CAP_MAX_VCPU_ID caps the ids before the first vCPU only', steps: [
    vm,
    { op: 'ioctl', fd: 'vm', ioctl: 'KVM_ENABLE_CAP', arg: { struct: 'kvm_enable_cap', value: { cap: 128, args: [2] } }, expect: 0 },
    { op: 'ioctl', fd: 'vm', ioctl: 'KVM_CHECK_EXTENSION', arg: 128, expect: { atLeast: 1024 } },
    { op: 'ioctl', fd: 'vm', ioctl: 'KVM_CREATE_VCPU', arg: 2, expect: 'EINVAL' },
    { op: 'ioctl', fd: 'vm', ioctl: 'KVM_CREATE_VCPU', arg: 1, expect: 'fd' },
    { op: 'ioctl', fd: 'vm', ioctl: 'KVM_ENABLE_CAP', arg: { struct: 'kvm_enable_cap', value: { cap: 128, args: [4] } }, expect: 'EINVAL' },
  ] },
  { name: 'memslots: unmapped HVAs are accepted, GPAs past MAXPHYADDR are not', steps: [
    vm, mem64k,
    region(0, 0, 0x1000, 0x10000),
    region(1, 2 ** 60, 0x1000, '$m', 0, 'EINVAL'),
    region(0, 0, 0, 0x10000),
    region(0, 0, 0x2000, '$m'),
  ] },
  { name: 'GET_DIRTY_LOG copies to the bitmap pointer (EFAULT when bad)', steps: [
    vm, mem64k,
    region(0, 0, 0x10000, '$m', 1),
    { op: 'ioctl', fd: 'vm', ioctl: 'KVM_GET_DIRTY_LOG', arg: { struct: 'kvm_dirty_log', value: { slot: 0, dirty_bitmap: 8 } }, expect: 'EFAULT' },
  ] },
  { name: 'VM limits: TSS below 4 GiB minus 3 pages, at least 64 MMU pages, vCPU ids up to 4095', steps: [
    vm,
    { op: 'ioctl', fd: 'vm', ioctl: 'KVM_SET_TSS_ADDR', arg: 0xfffff000, expect: 'EINVAL' },
    { op: 'ioctl', fd: 'vm', ioctl: 'KVM_SET_TSS_ADDR', arg: 0xffffd000, expect: 0 },
    { op: 'ioctl', fd: 'vm', ioctl: 'KVM_SET_NR_MMU_PAGES', arg: 10, expect: 'EINVAL' },
    { op: 'ioctl', fd: 'vm', ioctl: 'KVM_SET_NR_MMU_PAGES', arg: 1024, expect: 0 },
    { op: 'ioctl', fd: 'vm', ioctl: 'KVM_CREATE_VCPU', arg: 4095, expect: 'fd' },
    { op: 'ioctl', fd: 'vm', ioctl: 'KVM_CREATE_VCPU', arg: 4096, expect: 'EINVAL' },
  ] },
  { name: 'SET_SREGS checks CR0 and EFER consistency (kvm_is_valid_sregs)', steps: [
    vm, vcpu0,
    { op: 'ioctl', fd: 'vcpu', ioctl: 'KVM_SET_SREGS', arg: { struct: 'kvm_sregs', value: {} }, expect: 0 },
    { op: 'ioctl', fd: 'vcpu', ioctl: 'KVM_SET_SREGS', arg: { struct: 'kvm_sregs', value: { cr0: 0x80000000 } }, expect: 'EINVAL' },
    { op: 'ioctl', fd: 'vcpu', ioctl: 'KVM_SET_SREGS', arg: { struct: 'kvm_sregs', value: { efer: 0x400 } }, expect: 'EINVAL' },
    { op: 'ioctl', fd: 'vcpu', ioctl: 'KVM_SET_SREGS', arg: { struct: 'kvm_sregs', value: { cr0: 0x80000001, efer: 0x500 } }, expect: 'EINVAL' },
    { op: 'ioctl', fd: 'vcpu', ioctl: 'KVM_SET_SREGS', arg: { struct: 'kvm_sregs', value: { cr0: 0x20000000 } }, expect: 'EINVAL' },
  ] },
  { name: 'XSAVE and XCRS: XSTATE_BV within the host\'s features, the standard format, XCR0 with x87', steps: [
    { op: 'ioctl', fd: 'kvm', ioctl: 'KVM_CHECK_EXTENSION', arg: 55 /* XSAVE */, expect: 1 },
    { op: 'ioctl', fd: 'kvm', ioctl: 'KVM_CHECK_EXTENSION', arg: 56 /* XCRS */, expect: 1 },
    vm, vcpu0,
    { op: 'ioctl', fd: 'vcpu', ioctl: 'KVM_GET_XSAVE', arg: { struct: 'kvm_xsave', value: {} }, expect: 0 },
    // region[128] is XSTATE_BV's low word, region[130] XCOMP_BV's, region[6] MXCSR.
    { op: 'ioctl', fd: 'vcpu', ioctl: 'KVM_SET_XSAVE', arg: { struct: 'kvm_xsave', value: { region: xsaveRegion({ 128: 3, 6: 0x1f80 }) } }, expect: 0 },
    { op: 'ioctl', fd: 'vcpu', ioctl: 'KVM_SET_XSAVE', arg: { struct: 'kvm_xsave', value: { region: xsaveRegion({ 128: 1 << 3 }) } }, expect: 'EINVAL' },
    { op: 'ioctl', fd: 'vcpu', ioctl: 'KVM_SET_XSAVE', arg: { struct: 'kvm_xsave', value: { region: xsaveRegion({ 128: 3, 130: 1 }) } }, expect: 'EINVAL' },
    { op: 'ioctl', fd: 'vcpu', ioctl: 'KVM_SET_XSAVE', arg: { struct: 'kvm_xsave', value: { region: xsaveRegion({ 128: 2, 6: 0xffff1f80 }) } }, expect: 'EINVAL' },
    { op: 'ioctl', fd: 'vcpu', ioctl: 'KVM_SET_XSAVE', arg: { badPointer: true }, expect: 'EFAULT' },
    { op: 'ioctl', fd: 'vcpu', ioctl: 'KVM_GET_XCRS', arg: { struct: 'kvm_xcrs', value: {} }, expect: 0 },
    { op: 'ioctl', fd: 'vcpu', ioctl: 'KVM_SET_XCRS', arg: { struct: 'kvm_xcrs', value: { nr_xcrs: 0 } }, expect: 0 },
    { op: 'ioctl', fd: 'vcpu', ioctl: 'KVM_SET_XCRS', arg: { struct: 'kvm_xcrs', value: { nr_xcrs: 1 } }, expect: 'EINVAL' }, // XCR0 = 0
    { op: 'ioctl', fd: 'vcpu', ioctl: 'KVM_SET_XCRS', arg: { struct: 'kvm_xcrs', value: { nr_xcrs: 17 } }, expect: 'EINVAL' },
    { op: 'ioctl', fd: 'vcpu', ioctl: 'KVM_SET_XCRS', arg: { struct: 'kvm_xcrs', value: { flags: 1 } }, expect: 'EINVAL' },
  ] },
];
