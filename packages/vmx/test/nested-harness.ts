/**
 * Runs a catalog guest (an L1 hypervisor) under kvm_intel with `kvmts run`'s long64 set-up and
 * keeps the VM, so nested tests can look at the kernel's vCPU afterwards.
 */
import { loadImage, findGuest } from '@kvmts/guests';
import { KVM, KVM_EXIT, KVM_INTERRUPT_STRUCT, VcpuFd, encodeStruct, setupLong64 as setupLongMode, type KvmVcpu } from '@kvmts/core';
import { makeVm, type TestVm } from './vm.js';

const COM1 = 0x3f8;
const DEBUG_EXIT = 0xf4;

export function kernelVcpu(vm: TestVm): KvmVcpu {
  return (vm.proc.file(vm.vcpuFd) as unknown as { vcpu: KvmVcpu }).vcpu;
}

/** DESIGN.md's long64 set-up (the core's one copy), through the vCPU fd as a VMM does it. */
export function setupLong64(vm: TestVm, mem: number): void {
  const vcpu = new VcpuFd(vm.proc, vm.vcpuFd, vm.pages);
  vcpu.setSregs(setupLongMode(mem, vm.write, vcpu.getSregs()));
}

export interface GuestRun { vm: TestVm; exit: string; code: number; serial: string; userspaceExits: number }

/** Loads catalog guest `name` into a fresh VM, ready to run. */
export function loadGuest(name: string): TestVm {
  const g = findGuest(name);
  if (!g) throw new Error(`no catalog guest ${name}`);
  const vm = makeVm(g.mem);
  vm.write(g.load, loadImage(name));
  setupLong64(vm, g.mem);
  vm.setRegs({ rip: BigInt(g.entry), rflags: 2n });
  return vm;
}

/** KVM_RUN until the port-0xf4 exit (or another final exit); `onExit` may stop the run before each KVM_RUN. */
export function runGuest(vm: TestVm, max = 100000, onExit?: (n: number, serial: string) => boolean, irqVector?: number): GuestRun {
  let irq = irqVector;
  let serial = '';
  for (let n = 0; n < max; n++) {
    if (onExit && onExit(n, serial)) return { vm, exit: 'stopped', code: -1, serial, userspaceExits: n };
    const r = vm.kvmRun();
    if (r < 0) return { vm, exit: `errno ${r}`, code: -1, serial, userspaceExits: n };
    const reason = vm.run.exitReason;
    if (reason === KVM_EXIT.HLT && irq !== undefined) {
      // The catalog's irqs plan: KVM_INTERRUPT at a HLT exit.
      vm.proc.ioctl(vm.vcpuFd, KVM.KVM_INTERRUPT, encodeStruct(KVM_INTERRUPT_STRUCT, { irq }));
      irq = undefined;
      continue;
    }
    if (reason !== KVM_EXIT.IO) return { vm, exit: `exit ${reason}`, code: -1, serial, userspaceExits: n };
    const io = vm.run.io.get();
    const data = vm.pages.subarray(io.dataOffset, io.dataOffset + io.size * io.count);
    if (io.direction === 1 && io.port === DEBUG_EXIT) return { vm, exit: 'debug_exit', code: data[0]!, serial, userspaceExits: n };
    if (io.direction === 1 && io.port === COM1) serial += String.fromCharCode(...data);
    if (io.direction === 0) data.fill(0xff);
  }
  return { vm, exit: 'too many exits', code: -1, serial, userspaceExits: max };
}
