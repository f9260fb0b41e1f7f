/**
 * Bench entry points (DESIGN.md `exit.cpuid.amd`, `exit.pio.amd`, `vm.loop64.amd`): a
 * real-mode guest that loops on CPUID or OUT, on a one-pCPU host with kvm_amd loaded, driven
 * through /dev/kvm as a VMM drives it. The JSON harness lives in apps/dashboard.
 */
import {
  Host, KVM, KVM_EXIT, KvmRun, MAP, PROT, decodeStruct, encodeStruct, KVM_REGS_STRUCT, KVM_SREGS_STRUCT,
  KVM_USERSPACE_MEMORY_REGION_STRUCT, VcpuFd, setupLong64, type StructValue,
} from '@kvmts/core';
import { amdCpuModel } from '../hw/model.js';
import { svmInitOps } from '../kvm/ops.js';

const MEM = 0x200000;
const LOAD = 0x1000;

/** mov esi,N ; l: xor eax,eax ; cpuid ; dec esi ; jnz l ; hlt */
function cpuidLoop(n: number): number[] {
  return [0x66, 0xbe, n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24, 0x66, 0x31, 0xc0, 0x0f, 0xa2, 0x66, 0x4e, 0x75, 0xf7, 0xf4];
}

/** mov esi,N ; mov dx,0x80 ; l: out dx,al ; dec esi ; jnz l ; hlt */
function outLoop(n: number): number[] {
  return [0x66, 0xbe, n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24, 0xba, 0x80, 0x00, 0xee, 0x66, 0x4e, 0x75, 0xfb, 0xf4];
}

interface BenchVm {
  run(): number;
  kvmRun: KvmRun;
  /** Instructions the pCPU retired (guest and host). */
  icount(): number;
}

function realModeVm(code: number[] | Uint8Array, long64 = false): BenchVm {
  const host = new Host({ model: amdCpuModel(), pcpus: 1, memBytes: 64 << 20 });
  if (host.modprobe(svmInitOps) !== 0) throw new Error('modprobe kvm_amd failed');
  const proc = host.spawn();
  const kvm = proc.open('/dev/kvm');
  const vm = proc.ioctl(kvm, KVM.KVM_CREATE_VM, 0);
  const hva = proc.mmap(MEM, PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.ANONYMOUS);
  proc.ioctl(vm, KVM.KVM_SET_USER_MEMORY_REGION, encodeStruct(KVM_USERSPACE_MEMORY_REGION_STRUCT, {
    slot: 0, flags: 0, guest_phys_addr: 0n, memory_size: BigInt(MEM), userspace_addr: BigInt(hva),
  }));
  proc.writeUser(hva + LOAD, Uint8Array.from(code));
  const vcpu = proc.ioctl(vm, KVM.KVM_CREATE_VCPU, 0);
  const size = proc.ioctl(kvm, KVM.KVM_GET_VCPU_MMAP_SIZE);
  const pages = proc.mappedBytes(proc.mmap(size, PROT.READ | PROT.WRITE, MAP.SHARED, vcpu, 0), size)!;
  const run = new KvmRun(pages);
  if (long64) {
    // DESIGN.md's long64 set-up: identity map of 1 GiB in 2 MiB pages, flat 64-bit code and data.
    const fd = new VcpuFd(proc, vcpu, pages);
    fd.setSregs(setupLong64(MEM, (gpa, bytes) => { proc.writeUser(hva + gpa, bytes); }, fd.getSregs()));
  } else {
    const sb = new Uint8Array(KVM_SREGS_STRUCT.size);
    proc.ioctl(vcpu, KVM.KVM_GET_SREGS, sb);
    const sregs = decodeStruct(KVM_SREGS_STRUCT, sb);
    const cs = sregs['cs'] as StructValue;
    cs['base'] = 0n;
    cs['selector'] = 0;
    proc.ioctl(vcpu, KVM.KVM_SET_SREGS, encodeStruct(KVM_SREGS_STRUCT, sregs));
  }
  proc.ioctl(vcpu, KVM.KVM_SET_REGS, encodeStruct(KVM_REGS_STRUCT, { rip: BigInt(LOAD), rflags: 2n }));
  const cpu = host.pcpus[0]!.cpu;
  return { run: () => proc.ioctl(vcpu, KVM.KVM_RUN), kvmRun: run, icount: () => cpu.icount };
}

/** ns per CPUID exit handled in the kernel (one KVM_RUN runs the whole loop). */
export function benchCpuidExit(iterations: number): number {
  const vm = realModeVm(cpuidLoop(iterations));
  const t0 = performance.now();
  vm.run();
  const t1 = performance.now();
  if (vm.kvmRun.exitReason !== KVM_EXIT.HLT) throw new Error(`CPUID loop ended with exit ${vm.kvmRun.exitReason}`);
  return ((t1 - t0) * 1e6) / iterations;
}

/** ns per OUT round trip: KVM_RUN to the userspace exit and back. */
export function benchPioExit(iterations: number): number {
  const vm = realModeVm(outLoop(iterations));
  let outs = 0;
  const t0 = performance.now();
  for (;;) {
    vm.run();
    if (vm.kvmRun.exitReason !== KVM_EXIT.IO) break;
    outs++;
  }
  const t1 = performance.now();
  if (vm.kvmRun.exitReason !== KVM_EXIT.HLT || outs !== iterations) throw new Error(`OUT loop: ${outs} OUTs, exit ${vm.kvmRun.exitReason}`);
  return ((t1 - t0) * 1e6) / iterations;
}

/**
 * Guest instructions per second of a 64-bit image (the anchors' guest64.S loop) run in a VM in
 * long64 mode until its first exit to userspace that is not a serial-port OUT.
 */
export function benchVmLoop64(image: Uint8Array): { instructions: number; seconds: number } {
  const vm = realModeVm(image, true);
  const i0 = vm.icount();
  const t0 = performance.now();
  for (;;) {
    vm.run();
    if (vm.kvmRun.exitReason !== KVM_EXIT.IO || vm.kvmRun.io.get().port !== 0x3f8) break;
  }
  return { instructions: vm.icount() - i0, seconds: (performance.now() - t0) / 1000 };
}
