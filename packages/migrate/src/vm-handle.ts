/**
 * What a VMM holds of one VM: its process on a host, the /dev/kvm, VM and vCPU fds, and the
 * memslots it registered. Migration needs nothing else; everything it does goes through these
 * fds, as QEMU's or Firecracker's migration goes through the uapi.
 */
import { KvmApi, KVM_MEM, type Host, type Process, type VcpuFd, type VmFd } from '@kvmts/core';

export interface SlotInfo {
  readonly slot: number;
  readonly guestPhysAddr: number;
  readonly memorySize: number;
  /** KVM_MEM_* flags the VMM asked for (LOG_DIRTY_PAGES is migration's own, and not kept here). */
  readonly flags: number;
  /** Where the slot's memory is mapped in the VMM's address space. */
  readonly userspaceAddr: number;
}

export interface VmHandle {
  readonly host: Host;
  readonly proc: Process;
  readonly kvm: KvmApi;
  readonly vm: VmFd;
  readonly vcpus: readonly VcpuFd[];
  readonly slots: readonly SlotInfo[];
}

export interface SlotRequest {
  readonly slot: number;
  readonly guestPhysAddr: number;
  readonly memorySize: number;
  readonly flags?: number;
}

/** A new VMM process on `host` with one VM, its memslots backed by anonymous memory, and vCPUs 0..n-1. */
export function createVmHandle(host: Host, slots: readonly SlotRequest[], vcpuCount: number): VmHandle {
  const proc = host.spawn();
  const kvm = KvmApi.open(proc);
  const vm = kvm.createVm();
  const info = slots.map((s): SlotInfo => {
    const flags = (s.flags ?? 0) & ~KVM_MEM.LOG_DIRTY_PAGES;
    const userspaceAddr = vm.allocGuestMemory(s.slot, s.guestPhysAddr, s.memorySize, flags);
    return { slot: s.slot, guestPhysAddr: s.guestPhysAddr, memorySize: s.memorySize, flags, userspaceAddr };
  });
  const vcpus = Array.from({ length: vcpuCount }, (_, id) => vm.createVcpu(id));
  return { host, proc, kvm, vm, vcpus, slots: info };
}

/** Closes every fd and ends the process: the VM goes away with its last reference (kvm_put_kvm). */
export function destroyVmHandle(h: VmHandle): void {
  for (const v of h.vcpus) v.close();
  h.vm.close();
  h.kvm.close();
  h.proc.exit();
}
