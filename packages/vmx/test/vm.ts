/**
 * A VM through the core's /dev/kvm, the way a VMM builds one (open, KVM_CREATE_VM,
 * KVM_SET_USER_MEMORY_REGION, KVM_CREATE_VCPU, mmap of kvm_run, SET_REGS/SREGS, KVM_RUN).
 */
import {
  Host, KVM, KVM_EXIT, KvmRun, MAP, PROT, decodeStruct, encodeStruct, KVM_REGS_STRUCT, KVM_SREGS_STRUCT,
  KVM_USERSPACE_MEMORY_REGION_STRUCT, type Process, type StructValue,
} from '@kvmts/core';
import { intelCpuModel, vmxInitOps, type VmxSiliconOptions } from '../src/index.js';

export interface TestVm {
  host: Host;
  proc: Process;
  vmFd: number;
  vcpuFd: number;
  run: KvmRun;
  pages: Uint8Array;
  memHva: number;
  write(gpa: number, bytes: Uint8Array | number[]): void;
  read(gpa: number, len: number): Uint8Array;
  getRegs(): StructValue;
  setRegs(patch: Record<string, bigint>): void;
  getSregs(): StructValue;
  setSregs(mutate: (s: StructValue) => void): void;
  /** KVM_RUN; returns the errno-or-0 and leaves kvm_run in `run`. */
  kvmRun(): number;
}

export function makeVm(memBytes = 0x200000, opts: VmxSiliconOptions = {}): TestVm {
  const host = new Host({ model: intelCpuModel(opts), pcpus: 1, memBytes: 256 << 20 });
  const r = host.modprobe(vmxInitOps);
  if (r !== 0) throw new Error(`modprobe kvm_intel: ${r}`);
  const proc = host.spawn();
  const kvmFd = proc.open('/dev/kvm');
  const vmFd = proc.ioctl(kvmFd, KVM.KVM_CREATE_VM, 0);
  if (vmFd < 0) throw new Error(`KVM_CREATE_VM: ${vmFd}`);
  const memHva = proc.mmap(memBytes, PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.ANONYMOUS);
  const region = encodeStruct(KVM_USERSPACE_MEMORY_REGION_STRUCT, {
    slot: 0, flags: 0, guest_phys_addr: 0n, memory_size: BigInt(memBytes), userspace_addr: BigInt(memHva),
  });
  const mr = proc.ioctl(vmFd, KVM.KVM_SET_USER_MEMORY_REGION, region);
  if (mr < 0) throw new Error(`KVM_SET_USER_MEMORY_REGION: ${mr}`);
  const vcpuFd = proc.ioctl(vmFd, KVM.KVM_CREATE_VCPU, 0);
  if (vcpuFd < 0) throw new Error(`KVM_CREATE_VCPU: ${vcpuFd}`);
  const size = proc.ioctl(kvmFd, KVM.KVM_GET_VCPU_MMAP_SIZE);
  const runHva = proc.mmap(size, PROT.READ | PROT.WRITE, MAP.SHARED, vcpuFd, 0);
  const pages = proc.mappedBytes(runHva, size)!;
  const run = new KvmRun(pages);
  const check = (name: string, v: number) => { if (v < 0) throw new Error(`${name}: ${v}`); return v; };
  return {
    host, proc, vmFd, vcpuFd, run, pages, memHva,
    write: (gpa, bytes) => { proc.writeUser(memHva + gpa, Uint8Array.from(bytes)); },
    read: (gpa, len) => proc.readUser(memHva + gpa, len)!,
    getRegs() {
      const b = new Uint8Array(KVM_REGS_STRUCT.size);
      check('KVM_GET_REGS', proc.ioctl(vcpuFd, KVM.KVM_GET_REGS, b));
      return decodeStruct(KVM_REGS_STRUCT, b);
    },
    setRegs(patch) {
      const cur = this.getRegs();
      check('KVM_SET_REGS', proc.ioctl(vcpuFd, KVM.KVM_SET_REGS, encodeStruct(KVM_REGS_STRUCT, { ...cur, ...patch })));
    },
    getSregs() {
      const b = new Uint8Array(KVM_SREGS_STRUCT.size);
      check('KVM_GET_SREGS', proc.ioctl(vcpuFd, KVM.KVM_GET_SREGS, b));
      return decodeStruct(KVM_SREGS_STRUCT, b);
    },
    setSregs(mutate) {
      const s = this.getSregs();
      mutate(s);
      check('KVM_SET_SREGS', proc.ioctl(vcpuFd, KVM.KVM_SET_SREGS, encodeStruct(KVM_SREGS_STRUCT, s)));
    },
    kvmRun: () => proc.ioctl(vcpuFd, KVM.KVM_RUN),
  };
}

export type ExitRow =
  | { exit: 'io'; dir: 'in' | 'out'; port: number; size: number; count: number; data: number[] }
  | { exit: 'hlt' | 'shutdown' | 'fail_entry' | 'internal_error' | 'mmio' | 'other'; reason: number; detail?: bigint };

/** Runs until HLT/shutdown/failure or `max` exits; IN reads return 0xff bytes. */
export function runToEnd(vm: TestVm, max = 100): ExitRow[] {
  const rows: ExitRow[] = [];
  for (let i = 0; i < max; i++) {
    const r = vm.kvmRun();
    if (r < 0) throw new Error(`KVM_RUN: ${r}`);
    const reason = vm.run.exitReason;
    if (reason === KVM_EXIT.IO) {
      const io = vm.run.io.get();
      const data = Array.from(vm.pages.subarray(io.dataOffset, io.dataOffset + io.size * io.count));
      if (io.direction === 0) vm.pages.fill(0xff, io.dataOffset, io.dataOffset + io.size * io.count);
      rows.push({ exit: 'io', dir: io.direction === 0 ? 'in' : 'out', port: io.port, size: io.size, count: io.count, data });
      continue;
    }
    if (reason === KVM_EXIT.MMIO) { rows.push({ exit: 'mmio', reason }); continue; }
    if (reason === KVM_EXIT.HLT) { rows.push({ exit: 'hlt', reason }); break; }
    if (reason === KVM_EXIT.SHUTDOWN) { rows.push({ exit: 'shutdown', reason }); break; }
    if (reason === KVM_EXIT.FAIL_ENTRY) { rows.push({ exit: 'fail_entry', reason, detail: vm.run.failEntry.get().hardwareEntryFailureReason }); break; }
    if (reason === KVM_EXIT.INTERNAL_ERROR) { rows.push({ exit: 'internal_error', reason, detail: BigInt(vm.run.internal.get().suberror) }); break; }
    rows.push({ exit: 'other', reason });
    break;
  }
  return rows;
}
