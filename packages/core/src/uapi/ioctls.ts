/**
 * The KVM ioctls, one line each as kvm.h defines them, and the request numbers derived with
 * the _IO/_IOR/_IOW/_IOWR encoding of include/uapi/asm-generic/ioctl.h:
 * dir << 30 | size << 16 | type << 8 | nr, with dir NONE 0, WRITE 1, READ 2.
 */
import {
  KVM_CPUID2_STRUCT, KVM_DIRTY_LOG_STRUCT, KVM_ENABLE_CAP_STRUCT, KVM_FPU_STRUCT, KVM_GUEST_DEBUG_STRUCT,
  KVM_INTERRUPT_STRUCT, KVM_MP_STATE_STRUCT, KVM_MSRS_STRUCT, KVM_MSR_LIST_STRUCT, KVM_NESTED_STATE_STRUCT,
  KVM_REGS_STRUCT, KVM_SREGS_STRUCT, KVM_TRANSLATION_STRUCT, KVM_USERSPACE_MEMORY_REGION_STRUCT,
  KVM_VCPU_EVENTS_STRUCT, KVM_U64_STRUCT, KVM_XCRS_STRUCT, KVM_XSAVE_STRUCT, type StructDef,
} from './structs.js';

export const KVMIO = 0xae;
export const IOC_DIR = { NONE: 0, WRITE: 1, READ: 2 } as const;
type Dir = 'IO' | 'IOR' | 'IOW' | 'IOWR';

/** [name, encoding, nr, struct, fd kind] */
export const KVM_IOCTLS = [
  // system ioctls (/dev/kvm)
  ['KVM_GET_API_VERSION', 'IO', 0x00, null, 'system'],
  ['KVM_CREATE_VM', 'IO', 0x01, null, 'system'],
  ['KVM_GET_MSR_INDEX_LIST', 'IOWR', 0x02, KVM_MSR_LIST_STRUCT, 'system'],
  ['KVM_CHECK_EXTENSION', 'IO', 0x03, null, 'system'],
  ['KVM_GET_VCPU_MMAP_SIZE', 'IO', 0x04, null, 'system'],
  ['KVM_GET_SUPPORTED_CPUID', 'IOWR', 0x05, KVM_CPUID2_STRUCT, 'system'],
  ['KVM_GET_EMULATED_CPUID', 'IOWR', 0x09, KVM_CPUID2_STRUCT, 'system'],
  ['KVM_GET_MSR_FEATURE_INDEX_LIST', 'IOWR', 0x0a, KVM_MSR_LIST_STRUCT, 'system'],
  // VM ioctls
  ['KVM_CREATE_VCPU', 'IO', 0x41, null, 'vm'],
  ['KVM_GET_DIRTY_LOG', 'IOW', 0x42, KVM_DIRTY_LOG_STRUCT, 'vm'],
  ['KVM_SET_NR_MMU_PAGES', 'IO', 0x44, null, 'vm'],
  ['KVM_GET_NR_MMU_PAGES', 'IO', 0x45, null, 'vm'],
  ['KVM_SET_USER_MEMORY_REGION', 'IOW', 0x46, KVM_USERSPACE_MEMORY_REGION_STRUCT, 'vm'],
  ['KVM_SET_TSS_ADDR', 'IO', 0x47, null, 'vm'],
  ['KVM_SET_IDENTITY_MAP_ADDR', 'IOW', 0x48, KVM_U64_STRUCT, 'vm'],
  ['KVM_CREATE_IRQCHIP', 'IO', 0x60, null, 'vm'],
  ['KVM_ENABLE_CAP', 'IOW', 0xa3, KVM_ENABLE_CAP_STRUCT, 'vm+vcpu'],
  ['KVM_GET_STATS_FD', 'IO', 0xce, null, 'vm+vcpu'],
  // vCPU ioctls
  ['KVM_RUN', 'IO', 0x80, null, 'vcpu'],
  ['KVM_GET_REGS', 'IOR', 0x81, KVM_REGS_STRUCT, 'vcpu'],
  ['KVM_SET_REGS', 'IOW', 0x82, KVM_REGS_STRUCT, 'vcpu'],
  ['KVM_GET_SREGS', 'IOR', 0x83, KVM_SREGS_STRUCT, 'vcpu'],
  ['KVM_SET_SREGS', 'IOW', 0x84, KVM_SREGS_STRUCT, 'vcpu'],
  ['KVM_TRANSLATE', 'IOWR', 0x85, KVM_TRANSLATION_STRUCT, 'vcpu'],
  ['KVM_INTERRUPT', 'IOW', 0x86, KVM_INTERRUPT_STRUCT, 'vcpu'],
  ['KVM_GET_MSRS', 'IOWR', 0x88, KVM_MSRS_STRUCT, 'vcpu'],
  ['KVM_SET_MSRS', 'IOW', 0x89, KVM_MSRS_STRUCT, 'vcpu'],
  ['KVM_GET_FPU', 'IOR', 0x8c, KVM_FPU_STRUCT, 'vcpu'],
  ['KVM_SET_FPU', 'IOW', 0x8d, KVM_FPU_STRUCT, 'vcpu'],
  ['KVM_SET_CPUID2', 'IOW', 0x90, KVM_CPUID2_STRUCT, 'vcpu'],
  ['KVM_GET_CPUID2', 'IOWR', 0x91, KVM_CPUID2_STRUCT, 'vcpu'],
  ['KVM_GET_MP_STATE', 'IOR', 0x98, KVM_MP_STATE_STRUCT, 'vcpu'],
  ['KVM_SET_MP_STATE', 'IOW', 0x99, KVM_MP_STATE_STRUCT, 'vcpu'],
  ['KVM_NMI', 'IO', 0x9a, null, 'vcpu'],
  ['KVM_SET_GUEST_DEBUG', 'IOW', 0x9b, KVM_GUEST_DEBUG_STRUCT, 'vcpu'],
  ['KVM_GET_VCPU_EVENTS', 'IOR', 0x9f, KVM_VCPU_EVENTS_STRUCT, 'vcpu'],
  ['KVM_SET_VCPU_EVENTS', 'IOW', 0xa0, KVM_VCPU_EVENTS_STRUCT, 'vcpu'],
  ['KVM_GET_XSAVE', 'IOR', 0xa4, KVM_XSAVE_STRUCT, 'vcpu'],
  ['KVM_SET_XSAVE', 'IOW', 0xa5, KVM_XSAVE_STRUCT, 'vcpu'],
  ['KVM_GET_XCRS', 'IOR', 0xa6, KVM_XCRS_STRUCT, 'vcpu'],
  ['KVM_SET_XCRS', 'IOW', 0xa7, KVM_XCRS_STRUCT, 'vcpu'],
  ['KVM_GET_NESTED_STATE', 'IOWR', 0xbe, KVM_NESTED_STATE_STRUCT, 'vcpu'],
  ['KVM_SET_NESTED_STATE', 'IOW', 0xbf, KVM_NESTED_STATE_STRUCT, 'vcpu'],
  ['KVM_GET_XSAVE2', 'IOR', 0xcf, KVM_XSAVE_STRUCT, 'vcpu'],
] as const satisfies readonly (readonly [string, Dir, number, StructDef | null, 'system' | 'vm' | 'vcpu' | 'vm+vcpu'])[];

export type KvmIoctlName = (typeof KVM_IOCTLS)[number][0];

const DIR_BITS: Record<Dir, number> = { IO: IOC_DIR.NONE, IOR: IOC_DIR.READ, IOW: IOC_DIR.WRITE, IOWR: IOC_DIR.READ | IOC_DIR.WRITE };

/** _IOC(dir, type, nr, size), as an unsigned 32-bit number. */
export function ioc(dir: number, type: number, nr: number, size: number): number {
  return ((dir << 30) | (size << 16) | (type << 8) | nr) >>> 0;
}

/** Request numbers by name: KVM.KVM_RUN === 0xae80. */
export const KVM = Object.fromEntries(
  KVM_IOCTLS.map(([name, dir, nr, s]) => [name, ioc(DIR_BITS[dir], KVMIO, nr, s ? s.size : 0)]),
) as Record<KvmIoctlName, number>;

export interface IoctlInfo {
  readonly name: KvmIoctlName;
  readonly request: number;
  readonly dir: Dir;
  readonly struct: StructDef | null;
  readonly fd: 'system' | 'vm' | 'vcpu' | 'vm+vcpu';
}

const BY_REQUEST = new Map<number, IoctlInfo>(
  KVM_IOCTLS.map(([name, dir, , struct, fd]) => [KVM[name], { name, request: KVM[name], dir, struct, fd }]),
);

/** The ioctl a request number names, or undefined. */
export function ioctlInfo(request: number): IoctlInfo | undefined {
  return BY_REQUEST.get(request >>> 0);
}
