/**
 * The vm.create benchmark: µs to create a VM with one memslot and one vCPU, run a HLT guest to
 * its KVM_EXIT_HLT, and destroy everything (the VMM process exits), on one loaded host.
 */
import type { CpuModel } from '@kvmts/x86';
import { Host } from '../host/host.js';
import type { KvmX86InitOps } from '../x86/kvm-x86-ops.js';
import { Kvm } from '../api/kvm.js';

export interface VmCreateResult {
  readonly usPerVm: number;
  readonly iterations: number;
}

const GUEST_RAM = 0x200000;
const ENTRY = 0x1000;

/** One create-run-destroy cycle; returns the exit kind the guest ended with. */
export function createRunDestroy(host: Host): string {
  const proc = host.spawn();
  try {
    const vm = Kvm.open(proc).createVm();
    vm.allocGuestMemory(0, 0, GUEST_RAM);
    vm.memory.write(ENTRY, Uint8Array.of(0xf4));
    const vcpu = vm.createVcpu(0);
    const sregs = vcpu.getSregs();
    vcpu.setSregs({ ...sregs, cs: { ...sregs.cs, base: 0, selector: 0 } });
    vcpu.setRegs({ ...vcpu.getRegs(), rip: BigInt(ENTRY), rflags: 2n });
    return vcpu.run().kind;
  } finally {
    proc.exit();
  }
}

export function benchVmCreate(model: CpuModel, initOps: KvmX86InitOps, iterations = 200): VmCreateResult | string {
  const host = new Host({ model, pcpus: 1, memBytes: 1 << 30 });
  const r = host.modprobe(initOps);
  if (r) return `modprobe failed (${r})`;
  const first = createRunDestroy(host);
  if (first !== 'Hlt') return `the HLT guest ended in ${first}`;
  const t0 = performance.now();
  for (let i = 0; i < iterations; i++) createRunDestroy(host);
  return { usPerVm: ((performance.now() - t0) * 1000) / iterations, iterations };
}
