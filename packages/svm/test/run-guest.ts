/**
 * Runs a catalog guest on kvm_amd the way `kvmts run` does (DESIGN.md's contract): one memslot,
 * real or long64 start state, COM1 output collected, port 0xf4 ends the run, every other exit
 * recorded as a trace row. Test tooling only: the real VMM is @kvmts/vmm.
 */
import type { CatalogEntry } from '@kvmts/guests';
import { KVM, KVM_EXIT, KVM_INTERRUPT_STRUCT, VcpuFd, encodeStruct, setupLong64, type StructValue } from '@kvmts/core';
import { createVm, getRegs, getSregs, kvmRun, load, realMode, setRegs, type TestVm, type Vendor } from './vm.js';

export interface GuestRun {
  serial: string;
  rows: string[];
  final: { exit: string; code?: number; regs: StructValue; sregs: { cr0: bigint; cr3: bigint; cr4: bigint; efer: bigint } };
  vm: TestVm;
}

const hex = (b: Uint8Array): string => [...b].map((x) => x.toString(16).padStart(2, '0')).join('');

/** DESIGN.md's long64 set-up (the core's one copy), through the vCPU fd as a VMM does it. */
function long64(vm: TestVm, mem: number, entry: number): void {
  const vcpu = new VcpuFd(vm.proc, vm.vcpuFd, vm.runBytes);
  vcpu.setSregs(setupLong64(mem, (gpa, bytes) => load(vm, gpa, bytes), vcpu.getSregs()));
  setRegs(vm, { rip: BigInt(entry), rflags: 2n });
}

export function runCatalogGuest(g: CatalogEntry, image: Uint8Array, vendor: Vendor = 'amd', maxExits = 200_000): GuestRun {
  const vm = createVm(g.mem, vendor);
  load(vm, g.load, image);
  if (g.mode === 'real') realMode(vm, g.entry); else long64(vm, g.mem, g.entry);
  if (g.regs) setRegs(vm, Object.fromEntries(Object.entries(g.regs).map(([k, v]) => [k, BigInt(v)])));
  let serial = '';
  const rows: string[] = [];
  let irqsLeft = g.irqs ? g.irqs.count ?? Infinity : 0;
  const end = (exit: string, code?: number): GuestRun => {
    const s = getSregs(vm);
    const final = { exit, regs: getRegs(vm), sregs: { cr0: s['cr0'] as bigint, cr3: s['cr3'] as bigint, cr4: s['cr4'] as bigint, efer: s['efer'] as bigint } };
    return { serial, rows, final: code === undefined ? final : { ...final, code }, vm };
  };
  for (let n = 0; n < maxExits; n++) {
    const reason = kvmRun(vm);
    switch (reason) {
      case KVM_EXIT.IO: {
        const io = vm.run.io.get();
        const data = vm.runBytes.subarray(io.dataOffset, io.dataOffset + io.size * io.count);
        const out = io.direction === 1;
        if (io.port === 0xf4 && out) return end('debug_exit', data[0]!);
        if (io.port >= 0x3f8 && io.port < 0x400) {
          if (out && io.port === 0x3f8) serial += String.fromCharCode(...data);
          if (!out) data.fill(io.port === 0x3fd ? 0x60 : 0);
          break;
        }
        rows.push(`io ${out ? 'out' : 'in'} ${io.port} ${io.size} ${io.count} ${out ? hex(data) : ''}`);
        if (!out) data.fill(0xff);
        break;
      }
      case KVM_EXIT.MMIO: {
        const m = vm.run.mmio.get();
        rows.push(`mmio ${m.isWrite ? 'write' : 'read'} ${m.physAddr.toString(16)} ${m.len} ${m.isWrite ? hex(m.data.subarray(0, m.len)) : ''}`);
        if (!m.isWrite) vm.run.mmio.data().fill(0xff, 0, m.len);
        break;
      }
      case KVM_EXIT.HLT:
        // The VMM's timer: KVM_INTERRUPT at each HLT, as the catalog's IrqPlan says.
        if (g.irqs && irqsLeft > 0) {
          irqsLeft--;
          vm.proc.ioctl(vm.vcpuFd, KVM.KVM_INTERRUPT, encodeStruct(KVM_INTERRUPT_STRUCT, { irq: g.irqs.vector }));
          break;
        }
        return end('hlt');
      case KVM_EXIT.SHUTDOWN: return end('shutdown');
      case KVM_EXIT.FAIL_ENTRY: return end('fail_entry');
      case KVM_EXIT.INTERNAL_ERROR: return end('internal_error');
      default: return end(`exit_${reason}`);
    }
  }
  return end('too_many_exits');
}
