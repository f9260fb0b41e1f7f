/**
 * Bench entry point `nested.cpuid.intel`: ns per L2 CPUID handled by L1. Runs the catalog guest
 * nested-vmx-cpuid (an L1 hypervisor whose L2 executes 2000 CPUIDs) in long64 mode on a
 * one-pCPU host with kvm_intel, and times the stretch between L1's first report line (VMXON
 * done) and its next one (the loop over): 2000 L2 exits reflected to L1, each followed by
 * L1's VMREADs, VMWRITE and VMRESUME, all emulated by L0. The harness lives in apps/dashboard
 * and passes the image (`loadImage('nested-vmx-cpuid')` from @kvmts/guests).
 */
import {
  Host, KVM, KVM_EXIT, KvmRun, MAP, PROT, decodeStruct, encodeStruct, KVM_REGS_STRUCT, KVM_SREGS_STRUCT,
  KVM_USERSPACE_MEMORY_REGION_STRUCT, type StructValue,
} from '@kvmts/core';
import { intelCpuModel } from '../hw/model.js';
import { vmxInitOps } from '../kvm/ops.js';

const MEM = 0x200000;
const LOAD = 0x1000;
const COM1 = 0x3f8;
/** The L2 CPUIDs of nested-vmx-cpuid. */
export const NESTED_CPUID_ITERATIONS = 2000;

/** Warm-up runs before the measured one (each on a fresh host): the JIT's steady state is what the figure reports, as the other exit figures do. */
const WARM_UP_RUNS = 4;

export function benchNestedCpuid(image: Uint8Array): number {
  for (let i = 0; i < WARM_UP_RUNS; i++) runNestedCpuid(image);
  return runNestedCpuid(image);
}

function runNestedCpuid(image: Uint8Array): number {
  const host = new Host({ model: intelCpuModel(), pcpus: 1, memBytes: 64 << 20 });
  if (host.modprobe(vmxInitOps) !== 0) throw new Error('modprobe kvm_intel failed');
  const proc = host.spawn();
  const kvm = proc.open('/dev/kvm');
  const vm = proc.ioctl(kvm, KVM.KVM_CREATE_VM, 0);
  const hva = proc.mmap(MEM, PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.ANONYMOUS);
  proc.ioctl(vm, KVM.KVM_SET_USER_MEMORY_REGION, encodeStruct(KVM_USERSPACE_MEMORY_REGION_STRUCT, {
    slot: 0, flags: 0, guest_phys_addr: 0n, memory_size: BigInt(MEM), userspace_addr: BigInt(hva),
  }));
  proc.writeUser(hva + LOAD, image);
  const w64 = (gpa: number, v: bigint): void => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, v, true);
    proc.writeUser(hva + gpa, b);
  };
  // DESIGN.md's long64 set-up.
  const [pml4, pdpt, pd, gdt] = [MEM - 0x3000, MEM - 0x2000, MEM - 0x1000, MEM - 0x4000];
  w64(pml4, BigInt(pdpt | 3));
  w64(pdpt, BigInt(pd | 3));
  for (let i = 0; i < 512; i++) w64(pd + i * 8, (BigInt(i) << 21n) | 0x83n);
  w64(gdt + 8, 0x00af9b000000ffffn);
  w64(gdt + 16, 0x00cf93000000ffffn);
  const vcpu = proc.ioctl(vm, KVM.KVM_CREATE_VCPU, 0);
  const size = proc.ioctl(kvm, KVM.KVM_GET_VCPU_MMAP_SIZE);
  const pages = proc.mappedBytes(proc.mmap(size, PROT.READ | PROT.WRITE, MAP.SHARED, vcpu, 0), size)!;
  const run = new KvmRun(pages);
  const sb = new Uint8Array(KVM_SREGS_STRUCT.size);
  proc.ioctl(vcpu, KVM.KVM_GET_SREGS, sb);
  const s = decodeStruct(KVM_SREGS_STRUCT, sb);
  const seg = (selector: number, code: boolean): StructValue => ({
    base: 0n, limit: 0xffffffff, selector, type: code ? 11 : 3, present: 1, dpl: 0, db: code ? 0 : 1, s: 1, l: code ? 1 : 0, g: 1,
    avl: 0, unusable: 0, padding: 0,
  });
  s['cs'] = seg(8, true);
  for (const k of ['ds', 'es', 'fs', 'gs', 'ss']) s[k] = seg(0x10, false);
  s['gdt'] = { base: BigInt(gdt), limit: 23, padding: [0, 0, 0] };
  s['cr0'] = 0x80000033n;
  s['cr3'] = BigInt(pml4);
  s['cr4'] = 0x20n;
  s['efer'] = 0x500n;
  proc.ioctl(vcpu, KVM.KVM_SET_SREGS, encodeStruct(KVM_SREGS_STRUCT, s));
  proc.ioctl(vcpu, KVM.KVM_SET_REGS, encodeStruct(KVM_REGS_STRUCT, { rip: BigInt(LOAD), rflags: 2n }));

  let lines = 0;
  let serial = '';
  let t0 = 0;
  let t1 = 0;
  for (;;) {
    proc.ioctl(vcpu, KVM.KVM_RUN);
    if (run.exitReason !== KVM_EXIT.IO) break;
    const io = run.io.get();
    if (io.port !== COM1 || io.direction !== 1) break;
    const ch = String.fromCharCode(pages[io.dataOffset]!);
    serial += ch;
    if (ch !== '\n') continue;
    lines++;
    if (lines === 1) t0 = performance.now();
    if (lines === 2) t1 = performance.now();
  }
  if (!serial.includes(`PASS: L2 CPUIDs handled by L1\n`) || t1 === 0) throw new Error(`nested-vmx-cpuid failed: ${serial}`);
  return ((t1 - t0) * 1e6) / NESTED_CPUID_ITERATIONS;
}
