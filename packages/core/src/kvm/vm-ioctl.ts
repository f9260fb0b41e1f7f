/** A VM fd: kvm_vm_ioctl (virt/kvm/kvm_main.c) and kvm_arch_vm_ioctl (x86.c). */
import type { KFile, IoctlArg } from '../host/file.js';
import type { Process } from '../host/process.js';
import { UserArg } from '../host/uaccess.js';
import { ERRNO } from '../uapi/errno.js';
import { KVM } from '../uapi/ioctls.js';
import { KVM_LIMITS, KVM_MSR_EXIT_REASON } from '../uapi/constants.js';
import { KVM_CAP } from '../uapi/caps.js';
import {
  KVM_DIRTY_LOG_STRUCT, KVM_ENABLE_CAP_STRUCT, KVM_USERSPACE_MEMORY_REGION_STRUCT, decodeStruct,
} from '../uapi/structs.js';
import { checkExtension } from './dev-ioctl.js';
import { dirtyBitmapBytes } from './memslots.js';
import type { Vm } from './vm.js';
import { Vcpu } from './vcpu.js';
import { VcpuFile } from './vcpu-ioctl.js';
import { StatsFile } from './stats-fd.js';

const PAGE = 4096;
const MSR_EXIT_REASON_VALID = KVM_MSR_EXIT_REASON.INVAL | KVM_MSR_EXIT_REASON.UNKNOWN | KVM_MSR_EXIT_REASON.FILTER;

export class VmFile implements KFile {
  readonly kind = 'kvm-vm' as const;
  refs = 1;

  readonly vm: Vm;

  constructor(vm: Vm) {
    this.vm = vm;
  }

  ioctl(proc: Process, request: number, arg: IoctlArg): number {
    const vm = this.vm;
    // kvm->mm != current->mm
    if (proc !== vm.proc) return -ERRNO.EIO;
    const n = typeof arg === 'number' ? arg : 0;
    const u = new UserArg(proc, arg);
    switch (request) {
      case KVM.KVM_CREATE_VCPU:
        return this.createVcpu(proc, n);
      case KVM.KVM_SET_USER_MEMORY_REGION: {
        const b = u.read(0, KVM_USERSPACE_MEMORY_REGION_STRUCT.size);
        if (!b) return -ERRNO.EFAULT;
        const r = decodeStruct(KVM_USERSPACE_MEMORY_REGION_STRUCT, b);
        const big = (k: string): number => Number(r[k] as bigint);
        if ((r['guest_phys_addr'] as bigint) >= 1n << 64n || (r['memory_size'] as bigint) >= 1n << 53n) return -ERRNO.EINVAL;
        return vm.setMemoryRegion({
          slot: r['slot'] as number, flags: r['flags'] as number, guestPhysAddr: big('guest_phys_addr'),
          memorySize: big('memory_size'), userspaceAddr: big('userspace_addr'),
        });
      }
      case KVM.KVM_GET_DIRTY_LOG:
        return this.getDirtyLog(proc, u);
      case KVM.KVM_SET_TSS_ADDR:
        // The TSS takes three pages below 4 GiB.
        return n > 2 ** 32 - 3 * PAGE ? -ERRNO.EINVAL : ((vm.tssAddr = n), 0);
      case KVM.KVM_SET_IDENTITY_MAP_ADDR: {
        const b = u.read(0, 8);
        if (!b) return -ERRNO.EFAULT;
        if (vm.createdVcpus) return -ERRNO.EINVAL;
        vm.identityMapAddr = Number(new DataView(b.buffer).getBigUint64(0, true));
        return 0;
      }
      case KVM.KVM_SET_NR_MMU_PAGES:
        return n < 64 ? -ERRNO.EINVAL : 0;
      case KVM.KVM_GET_NR_MMU_PAGES:
        return vm.mmu.tablePages;
      case KVM.KVM_CHECK_EXTENSION:
        return checkExtension(vm.module, n);
      case KVM.KVM_ENABLE_CAP:
        return this.enableCap(u);
      case KVM.KVM_GET_STATS_FD:
        vm.kvmGetKvm();
        return proc.installFd(new StatsFile(`kvm-${proc.pid}`, () => vm.stats(), () => vm.kvmPutKvm()));
      default:
        return -ERRNO.ENOTTY;
    }
  }

  /** kvm_vm_ioctl_create_vcpu. */
  private createVcpu(proc: Process, id: number): number {
    const vm = this.vm;
    if (!Number.isInteger(id) || id < 0 || id >= KVM_LIMITS.MAX_VCPU_IDS) return -ERRNO.EINVAL;
    if (vm.createdVcpus >= vm.maxVcpus) return -ERRNO.EINVAL;
    // kvm_arch_vcpu_precreate
    if (vm.maxVcpuIds && id >= vm.maxVcpuIds) return -ERRNO.EINVAL;
    const ops = vm.module.ops;
    const pre = ops.vcpuPrecreate?.(vm) ?? 0;
    if (pre) return pre;
    vm.createdVcpus++;
    const vcpu = new Vcpu(vm, id);
    vcpu.userSpaceMsrMask = vm.userSpaceMsrMask;
    const r = ops.vcpuCreate(vcpu);
    if (r) {
      vm.createdVcpus--;
      return r < 0 ? r : -ERRNO.ENOMEM;
    }
    ops.vcpuReset(vcpu, false);
    if (vm.getVcpuById(id)) {
      ops.vcpuFree(vcpu);
      vm.createdVcpus--;
      return -ERRNO.EEXIST;
    }
    vm.vcpus.push(vcpu);
    vm.kvmGetKvm();
    return proc.installFd(new VcpuFile(vcpu));
  }

  /** kvm_vm_ioctl_get_dirty_log with kvm_get_dirty_log_protect: copy, clear, write-protect again. */
  private getDirtyLog(proc: Process, u: UserArg): number {
    const b = u.read(0, KVM_DIRTY_LOG_STRUCT.size);
    if (!b) return -ERRNO.EFAULT;
    const log = decodeStruct(KVM_DIRTY_LOG_STRUCT, b);
    const slotNo = log['slot'] as number;
    const asId = slotNo >>> 16;
    const id = slotNo & 0xffff;
    if (asId >= KVM_LIMITS.ADDRESS_SPACE_NUM || id >= KVM_LIMITS.USER_MEM_SLOTS) return -ERRNO.EINVAL;
    const slot = this.vm.memslots.get(slotNo);
    if (!slot || !slot.dirtyBitmap) return -ERRNO.ENOENT;
    const bitmap = slot.dirtyBitmap;
    if (!proc.writeUser(Number(log['dirty_bitmap'] as bigint), bitmap.subarray(0, dirtyBitmapBytes(slot.npages)))) return -ERRNO.EFAULT;
    let flush = false;
    for (let i = 0; i < bitmap.length; i++) {
      const byte = bitmap[i]!;
      if (!byte) continue;
      bitmap[i] = 0;
      for (let bit = 0; bit < 8; bit++) {
        if (byte & (1 << bit) && this.vm.mmu.writeProtect(slot.baseGfn + i * 8 + bit, 1)) flush = true;
      }
    }
    if (flush) this.vm.flushRemoteTlbs();
    return 0;
  }

  /** kvm_vm_ioctl_enable_cap. */
  private enableCap(u: UserArg): number {
    const b = u.read(0, KVM_ENABLE_CAP_STRUCT.size);
    if (!b) return -ERRNO.EFAULT;
    const c = decodeStruct(KVM_ENABLE_CAP_STRUCT, b);
    if (c['flags']) return -ERRNO.EINVAL;
    const arg0 = (c['args'] as bigint[])[0]!;
    const vm = this.vm;
    switch (c['cap']) {
      case KVM_CAP.X86_USER_SPACE_MSR:
        if (arg0 & ~BigInt(MSR_EXIT_REASON_VALID)) return -ERRNO.EINVAL;
        vm.userSpaceMsrMask = Number(arg0);
        for (const v of vm.vcpus) v.userSpaceMsrMask = vm.userSpaceMsrMask;
        return 0;
      case KVM_CAP.MAX_VCPU_ID: {
        if (arg0 > BigInt(KVM_LIMITS.MAX_VCPU_IDS)) return -ERRNO.EINVAL;
        const want = Number(arg0);
        if (vm.maxVcpuIds === want) return 0;
        if (vm.maxVcpuIds || vm.createdVcpus) return -ERRNO.EINVAL;
        vm.maxVcpuIds = want;
        return 0;
      }
      default:
        return -ERRNO.EINVAL;
    }
  }

  release(): void {
    this.vm.kvmPutKvm();
  }
}
