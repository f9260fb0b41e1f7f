/** /dev/kvm: kvm_dev_ioctl (virt/kvm/kvm_main.c) and kvm_arch_dev_ioctl (x86.c). */
import type { KFile, IoctlArg } from '../host/file.js';
import type { Process } from '../host/process.js';
import { UserArg } from '../host/uaccess.js';
import { ERRNO } from '../uapi/errno.js';
import { KVM } from '../uapi/ioctls.js';
import { KVM_API_VERSION, KVM_LIMITS, KVM_STATE_NESTED } from '../uapi/constants.js';
import { KVM_CAP } from '../uapi/caps.js';
import { KVM_XSAVE_STRUCT } from '../uapi/structs.js';
import { encodeCpuidEntries } from './cpuid-uapi.js';
import type { KvmModule } from './kvm-module.js';
import { Vm } from './vm.js';
import { VmFile } from './vm-ioctl.js';

const PAGE = 4096;

/** KVM_CHECK_EXTENSION answers (kvm_vm_ioctl_check_extension_generic + the x86 one). */
export function checkExtension(module: KvmModule, cap: number): number {
  switch (cap) {
    case KVM_CAP.USER_MEMORY: case KVM_CAP.DESTROY_MEMORY_REGION_WORKS: case KVM_CAP.JOIN_MEMORY_REGIONS_WORKS:
    case KVM_CAP.SET_TSS_ADDR: case KVM_CAP.EXT_CPUID: case KVM_CAP.MP_STATE: case KVM_CAP.SYNC_MMU:
    case KVM_CAP.USER_NMI: case KVM_CAP.SET_GUEST_DEBUG: case KVM_CAP.SET_IDENTITY_MAP_ADDR:
    case KVM_CAP.INTERNAL_ERROR_DATA: case KVM_CAP.VCPU_EVENTS: case KVM_CAP.ENABLE_CAP:
    case KVM_CAP.READONLY_MEM: case KVM_CAP.IMMEDIATE_EXIT: case KVM_CAP.CHECK_EXTENSION_VM:
    case KVM_CAP.X86_ROBUST_SINGLESTEP: case KVM_CAP.GET_MSR_FEATURES: case KVM_CAP.INTR_SHADOW:
    case KVM_CAP.ENABLE_CAP_VM: case KVM_CAP.SET_GUEST_DEBUG2: case KVM_CAP.EXT_EMUL_CPUID:
    case KVM_CAP.BINARY_STATS_FD: case KVM_CAP.XSAVE: case KVM_CAP.XCRS:
      return 1;
    // xstate_required_size of the offered components, at least sizeof(struct kvm_xsave).
    case KVM_CAP.XSAVE2: return KVM_XSAVE_STRUCT.size;
    case KVM_CAP.NR_VCPUS: return Math.min(module.host.pcpus.length, KVM_LIMITS.MAX_VCPUS);
    case KVM_CAP.MAX_VCPUS: return KVM_LIMITS.MAX_VCPUS;
    // The limit, even after KVM_ENABLE_CAP lowered this VM's (as x86 reports it).
    case KVM_CAP.MAX_VCPU_ID: return KVM_LIMITS.MAX_VCPU_IDS;
    case KVM_CAP.NR_MEMSLOTS: return KVM_LIMITS.USER_MEM_SLOTS;
    case KVM_CAP.MULTI_ADDRESS_SPACE: return KVM_LIMITS.ADDRESS_SPACE_NUM;
    // The largest kvm_nested_state: the header plus vmcs12 and a shadow vmcs12, or plus vmcb12.
    case KVM_CAP.NESTED_STATE:
      if (!module.ops.nestedGetState) return 0;
      return KVM_STATE_NESTED.HEADER_SIZE + (module.host.model.vendor === 'amd' ? KVM_STATE_NESTED.SVM_VMCB_SIZE : 2 * KVM_STATE_NESTED.VMX_VMCS_SIZE);
    case KVM_CAP.X86_USER_SPACE_MSR: return 1;
    case KVM_CAP.COALESCED_MMIO: return KVM_LIMITS.COALESCED_MMIO_PAGE_OFFSET;
    case KVM_CAP.VM_TYPES: return 1; // KVM_X86_DEFAULT_VM only
    default: return 0;
  }
}

export class DevFile implements KFile {
  readonly kind = 'kvm' as const;
  refs = 1;

  private readonly module: KvmModule;

  constructor(module: KvmModule) {
    this.module = module;
  }

  ioctl(proc: Process, request: number, arg: IoctlArg): number {
    const n = typeof arg === 'number' ? arg : 0;
    switch (request) {
      case KVM.KVM_GET_API_VERSION:
        return arg ? -ERRNO.EINVAL : KVM_API_VERSION;
      case KVM.KVM_CREATE_VM:
        return this.createVm(proc, n);
      case KVM.KVM_CHECK_EXTENSION:
        return checkExtension(this.module, n);
      case KVM.KVM_GET_VCPU_MMAP_SIZE:
        return arg ? -ERRNO.EINVAL : KVM_LIMITS.VCPU_MMAP_PAGES * PAGE;
      case KVM.KVM_GET_SUPPORTED_CPUID:
      case KVM.KVM_GET_EMULATED_CPUID:
        return encodeCpuidEntries(new UserArg(proc, arg), request === KVM.KVM_GET_SUPPORTED_CPUID ? this.module.supportedCpuid : [], true);
      case KVM.KVM_GET_MSR_INDEX_LIST:
        return this.msrList(new UserArg(proc, arg), this.module.msrIndexList);
      case KVM.KVM_GET_MSR_FEATURE_INDEX_LIST:
        return this.msrList(new UserArg(proc, arg), []);
      default:
        // kvm_arch_dev_ioctl's default.
        return -ERRNO.EINVAL;
    }
  }

  /** kvm_dev_ioctl_create_vm: type 0 (KVM_X86_DEFAULT_VM) only. */
  private createVm(proc: Process, type: number): number {
    if (type !== 0) return -ERRNO.EINVAL;
    const vm = new Vm(this.module, proc, this.module.allocVmId());
    const r = this.module.ops.vmInit(vm);
    if (r) {
      vm.mmu.destroy();
      return r < 0 ? r : -ERRNO.EINVAL;
    }
    this.module.vms.add(vm);
    return proc.installFd(new VmFile(vm));
  }

  private msrList(u: UserArg, list: readonly number[]): number {
    const hdr = u.read(0, 4);
    if (!hdr) return -ERRNO.EFAULT;
    const n = new DataView(hdr.buffer).getUint32(0, true);
    const out = new Uint8Array(4);
    new DataView(out.buffer).setUint32(0, list.length, true);
    if (!u.write(0, out)) return -ERRNO.EFAULT;
    if (n < list.length) return -ERRNO.E2BIG;
    const body = new Uint8Array(4 * list.length);
    const dv = new DataView(body.buffer);
    list.forEach((m, i) => dv.setUint32(4 * i, m >>> 0, true));
    return u.write(4, body) ? 0 : -ERRNO.EFAULT;
  }

  release(): void {}
}
