/** Plain dashboard snapshots for component tests. */
import type { DashboardSnapshot, VcpuSnapshot, VmSnapshot } from '../src/ui/snapshot.js';

export const VCPU: VcpuSnapshot = {
  mode: 'long (64-bit)', cpl: 0, rip: 0x7c10n, disasm: ['000000007c10  f4               hlt'],
  regs: [['rax', 0xan], ['rbx', 2n], ['rcx', 0n], ['rdx', 0x3f8n]],
  cr0: 0x80000033, cr3: 0x1fd000, cr4: 0x20, efer: 0x500, rflags: 0x246,
};

export const VM: VmSnapshot = {
  id: 0,
  name: 'demo',
  vendor: 'intel',
  state: 'running',
  ended: null,
  exits: [
    { name: 'exits', total: 1500, rate: 300, child: false },
    { name: 'io_exits', total: 1200, rate: 250, child: false },
    { name: 'halt_exits', total: 300, rate: 50, child: false },
    { name: 'exit.IO_INSTRUCTION', total: 1200, rate: 250, child: true },
    { name: 'exit.HLT', total: 300, rate: 50, child: true },
  ],
  vcpu: VCPU,
  inspection: null,
  memslots: [{ slot: 0, gpa: 0, size: 0x200000, flags: 0, hva: 0x7f0000000000 }],
  mmu: { tdpPages: 12, dirtyPages: 0 },
  serial: 'kvmts demo\nprimes: 2 3 5 7\n',
  lastExit: null,
};

export function snapshotWith(over: Partial<DashboardSnapshot> = {}): DashboardSnapshot {
  return {
    host: { vendor: 'intel', cpuModel: 'kvmts Intel Core (VMX)', module: 'kvm_intel', apiVersion: 12, pcpus: 2 },
    vms: [VM],
    selected: 0,
    paused: false,
    message: null,
    guestShare: 0.5,
    refreshRate: 10,
    renderMs: 4.25,
    ...over,
  };
}
