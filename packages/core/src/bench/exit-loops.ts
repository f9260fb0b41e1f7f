/**
 * The in-kernel exit benchmarks, for either vendor: a guest that loops on CPUID or OUT, on a
 * one-pCPU host with the vendor's module loaded, driven through /dev/kvm as a VMM drives it but
 * without a VMM's work in between. They measure the KVM_RUN path alone; the figures of
 * DESIGN.md (`exit.cpuid.*`, `exit.pio.*`, `vm.loop64.*`) run the anchors' images through the
 * VMM in apps/dashboard.
 */
import type { CpuModel } from '@kvmts/x86';
import { Host } from '../host/host.js';
import type { KvmX86InitOps } from '../x86/kvm-x86-ops.js';
import { KVM_EXIT } from '../uapi/constants.js';
import { Kvm } from '../api/kvm.js';
import type { VcpuFd } from '../api/kvm.js';
import { setupLong64 } from '../api/long64.js';

const MEM = 0x200000;
const LOAD = 0x1000;

/** mov esi,N ; l: xor eax,eax ; cpuid ; dec esi ; jnz l ; hlt (real mode) */
function cpuidLoop(n: number): number[] {
  return [0x66, 0xbe, n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24, 0x66, 0x31, 0xc0, 0x0f, 0xa2, 0x66, 0x4e, 0x75, 0xf7, 0xf4];
}

/** mov esi,N ; mov dx,0x80 ; l: out dx,al ; dec esi ; jnz l ; hlt (real mode) */
function outLoop(n: number): number[] {
  return [0x66, 0xbe, n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24, 0xba, 0x80, 0x00, 0xee, 0x66, 0x4e, 0x75, 0xfb, 0xf4];
}

/** A vendor for the benchmarks: its CPU model and its module's init ops. */
export interface BenchVendor {
  readonly model: () => CpuModel;
  readonly initOps: KvmX86InitOps;
}

interface BenchVm {
  readonly vcpu: VcpuFd;
  /** Instructions the pCPU retired (guest and host). */
  icount(): number;
}

function benchVm(vendor: BenchVendor, code: number[] | Uint8Array, long64: boolean): BenchVm {
  const host = new Host({ model: vendor.model(), pcpus: 1, memBytes: 64 << 20 });
  if (host.modprobe(vendor.initOps) !== 0) throw new Error(`modprobe ${vendor.initOps.runtimeOps.name} failed`);
  const vm = Kvm.open(host.spawn()).createVm();
  vm.allocGuestMemory(0, 0, MEM);
  vm.memory.write(LOAD, Uint8Array.from(code));
  const vcpu = vm.createVcpu(0);
  const sregs = vcpu.getSregs();
  if (long64) vcpu.setSregs(setupLong64(MEM, (gpa, bytes) => vm.memory.write(gpa, bytes), sregs));
  else vcpu.setSregs({ ...sregs, cs: { ...sregs.cs, base: 0, selector: 0 } });
  vcpu.setRegs({ ...vcpu.getRegs(), rip: BigInt(LOAD), rflags: 2n });
  const cpu = host.pcpus[0]!.cpu;
  return { vcpu, icount: () => cpu.icount };
}

/** ns per CPUID exit handled in the kernel (one KVM_RUN runs the whole loop). */
export function benchCpuidExit(vendor: BenchVendor, iterations: number): number {
  const { vcpu } = benchVm(vendor, cpuidLoop(iterations), false);
  const t0 = performance.now();
  vcpu.run();
  const t1 = performance.now();
  if (vcpu.runData.exitReason !== KVM_EXIT.HLT) throw new Error(`CPUID loop ended with exit ${vcpu.runData.exitReason}`);
  return ((t1 - t0) * 1e6) / iterations;
}

/** ns per OUT round trip: KVM_RUN to the userspace exit and back. */
export function benchPioExit(vendor: BenchVendor, iterations: number): number {
  const { vcpu } = benchVm(vendor, outLoop(iterations), false);
  let outs = 0;
  const t0 = performance.now();
  for (;;) {
    vcpu.run();
    if (vcpu.runData.exitReason !== KVM_EXIT.IO) break;
    outs++;
  }
  const t1 = performance.now();
  if (vcpu.runData.exitReason !== KVM_EXIT.HLT || outs !== iterations) throw new Error(`OUT loop: ${outs} OUTs, exit ${vcpu.runData.exitReason}`);
  return ((t1 - t0) * 1e6) / iterations;
}

/**
 * Guest instructions per second of a 64-bit image (the anchors' guest64.S loop) run in a VM in
 * long64 mode until its first exit to userspace that is not a serial-port OUT.
 */
export function benchVmLoop64(vendor: BenchVendor, image: Uint8Array): { instructions: number; seconds: number } {
  const vm = benchVm(vendor, image, true);
  const i0 = vm.icount();
  const t0 = performance.now();
  for (;;) {
    vm.vcpu.run();
    const r = vm.vcpu.runData;
    if (r.exitReason !== KVM_EXIT.IO || r.io.get().port !== 0x3f8) break;
  }
  return { instructions: vm.icount() - i0, seconds: (performance.now() - t0) / 1000 };
}
