/**
 * A minimal VMM over the core's /dev/kvm, for guest-level tests of kvm_amd: a host with the AMD
 * model and kvm_amd loaded, one memslot at GPA 0, one vCPU, raw ioctls in Linux's layout.
 */
import { Cpu } from '@kvmts/x86';
import {
  Host, KVM, KVM_EXIT, KVM_REGS_STRUCT, KVM_SREGS_STRUCT, KVM_USERSPACE_MEMORY_REGION_STRUCT, KvmRun,
  MAP, PROT, decodeStruct, encodeStruct, type Process, type StructValue,
} from '@kvmts/core';
import { intelCpuModel, vmxInitOps } from '@kvmts/vmx';
import { amdCpuModel } from '../src/hw/model.js';
import { svmInitOps } from '../src/kvm/ops.js';

export type Vendor = 'amd' | 'intel';

export interface TestVm {
  /** The vCPU's kvm_vcpu_stat counters (exits by reason: exit_<name>). */
  kvmStat(): Record<string, number>;
  host: Host;
  proc: Process;
  vcpuFd: number;
  memHva: number;
  run: KvmRun;
  runBytes: Uint8Array;
}

/** A host with kvm_amd loaded (or kvm_intel, to compare the two vendors), a VM with one memslot and one vCPU. */
export function createVm(memBytes = 0x200000, vendor: Vendor = 'amd'): TestVm {
  const model = vendor === 'amd' ? amdCpuModel() : intelCpuModel();
  const host = new Host({ model, pcpus: 1, memBytes: 64 << 20, createCpu: (bus, m) => new Cpu({ bus, model: m }) });
  const r = host.modprobe(vendor === 'amd' ? svmInitOps : vmxInitOps);
  if (r !== 0) throw new Error(`modprobe kvm_${vendor}: ${r}: ${host.dmesg.join('; ')}`);
  const proc = host.spawn();
  const kvm = proc.open('/dev/kvm');
  const vmFd = proc.ioctl(kvm, KVM.KVM_CREATE_VM, 0);
  if (vmFd < 0) throw new Error(`KVM_CREATE_VM ${vmFd}`);
  const memHva = proc.mmap(memBytes, PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.ANONYMOUS);
  const region = encodeStruct(KVM_USERSPACE_MEMORY_REGION_STRUCT, { slot: 0, flags: 0, guest_phys_addr: 0n, memory_size: BigInt(memBytes), userspace_addr: BigInt(memHva) });
  const m = proc.ioctl(vmFd, KVM.KVM_SET_USER_MEMORY_REGION, region);
  if (m < 0) throw new Error(`KVM_SET_USER_MEMORY_REGION ${m}`);
  const vcpuFd = proc.ioctl(vmFd, KVM.KVM_CREATE_VCPU, 0);
  if (vcpuFd < 0) throw new Error(`KVM_CREATE_VCPU ${vcpuFd}: ${host.dmesg.join('; ')}`);
  const size = proc.ioctl(kvm, KVM.KVM_GET_VCPU_MMAP_SIZE, 0);
  const runHva = proc.mmap(size, PROT.READ | PROT.WRITE, MAP.SHARED, vcpuFd, 0);
  const runBytes = proc.mappedBytes(runHva, size)!;
  const kvmStat = (): Record<string, number> => {
    const vm = host.module!.vms.values().next().value!;
    return vm.vcpus[0]!.stats();
  };
  return { kvmStat, host, proc, vcpuFd, memHva, run: new KvmRun(runBytes), runBytes };
}

export function load(vm: TestVm, gpa: number, bytes: number[] | Uint8Array): void {
  vm.proc.writeUser(vm.memHva + gpa, Uint8Array.from(bytes));
}

export function getRegs(vm: TestVm): StructValue {
  const b = new Uint8Array(KVM_REGS_STRUCT.size);
  vm.proc.ioctl(vm.vcpuFd, KVM.KVM_GET_REGS, b);
  return decodeStruct(KVM_REGS_STRUCT, b);
}

export function setRegs(vm: TestVm, regs: Partial<StructValue>): void {
  const b = new Uint8Array(KVM_REGS_STRUCT.size);
  vm.proc.ioctl(vm.vcpuFd, KVM.KVM_GET_REGS, b);
  encodeStruct(KVM_REGS_STRUCT, regs, b);
  const r = vm.proc.ioctl(vm.vcpuFd, KVM.KVM_SET_REGS, b);
  if (r < 0) throw new Error(`KVM_SET_REGS ${r}`);
}

export function getSregs(vm: TestVm): StructValue {
  const b = new Uint8Array(KVM_SREGS_STRUCT.size);
  vm.proc.ioctl(vm.vcpuFd, KVM.KVM_GET_SREGS, b);
  return decodeStruct(KVM_SREGS_STRUCT, b);
}

export function setSregs(vm: TestVm, edit: (s: StructValue) => void): void {
  const b = new Uint8Array(KVM_SREGS_STRUCT.size);
  vm.proc.ioctl(vm.vcpuFd, KVM.KVM_GET_SREGS, b);
  const s = decodeStruct(KVM_SREGS_STRUCT, b);
  edit(s);
  const r = vm.proc.ioctl(vm.vcpuFd, KVM.KVM_SET_SREGS, encodeStruct(KVM_SREGS_STRUCT, s));
  if (r < 0) throw new Error(`KVM_SET_SREGS ${r}`);
}

/** Real mode at 0:entry, as `kvmts run --mode real` sets it up. */
export function realMode(vm: TestVm, entry = 0x1000): void {
  setSregs(vm, (s) => {
    const cs = s['cs'] as StructValue;
    cs['base'] = 0n; cs['selector'] = 0;
  });
  setRegs(vm, { rip: BigInt(entry), rflags: 2n });
}

export function kvmRun(vm: TestVm): number {
  const r = vm.proc.ioctl(vm.vcpuFd, KVM.KVM_RUN, 0);
  if (r < 0) throw new Error(`KVM_RUN ${r}: exit ${vm.run.exitReason}`);
  return vm.run.exitReason;
}

export { KVM_EXIT };
