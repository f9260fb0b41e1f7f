/**
 * KVM_RUN through the typed façade with the test vendor (whose "guest mode" is the core's
 * emulator on the real x86 CPU): PIO, MMIO, HLT, signals, and the TDP MMU's fault path.
 */
import { describe, expect, it } from 'vitest';
import {
  Host, KVM_MEM, PFERR, VmFd, kvmMmuPageFault, type VcpuFd, type Vcpu, type VcpuExit,
} from '../src/index.js';
import { Kvm } from '../src/api/index.js';
import { fakeVendor, testModel } from './fake-vendor.js';

function realModeVm(code: number[], memSize = 0x8000) {
  const host = new Host({ model: testModel, pcpus: 1, memBytes: 64 << 20 });
  const vendor = fakeVendor();
  expect(host.modprobe(vendor.initOps)).toBe(0);
  const proc = host.spawn();
  const kvm = Kvm.open(proc);
  const vm = kvm.createVm();
  vm.allocGuestMemory(0, 0, memSize);
  vm.memory.write(0x1000, Uint8Array.from(code));
  const vcpu = vm.createVcpu(0);
  const regs = vcpu.getRegs();
  vcpu.setRegs({ ...regs, rip: 0x1000n, rflags: 2n });
  return { host, proc, kvm, vm, vcpu, vendor };
}

const text = (e: VcpuExit): string => (e.kind === 'IoOut' ? String.fromCharCode(...e.data) : `<${e.kind}>`);

describe('KVM_RUN with the test vendor', () => {
  it('runs the LWN "Using the KVM API" guest: prints 4 and halts', () => {
    // mov $0x3f8,%dx; add %bl,%al; add $'0',%al; out %al,(%dx); mov $'\n',%al; out %al,(%dx); hlt
    const { vcpu } = realModeVm([0xba, 0xf8, 0x03, 0x00, 0xd8, 0x04, 0x30, 0xee, 0xb0, 0x0a, 0xee, 0xf4]);
    vcpu.setRegs({ ...vcpu.getRegs(), rax: 2n, rbx: 2n });
    let out = '';
    for (;;) {
      const e = vcpu.run();
      if (e.kind === 'IoOut') {
        expect(e.port).toBe(0x3f8);
        expect(e.size).toBe(1);
        out += text(e);
        continue;
      }
      expect(e.kind).toBe('Hlt');
      break;
    }
    expect(out).toBe('4\n');
    const s = vcpu.stats();
    expect(s['io_exits']).toBe(2);
    expect(s['halt_exits']).toBe(1);
    expect(s['exit_HLT']).toBe(1);
    expect(s['exit_IO_INSTRUCTION']).toBe(2);
    // HLT was skipped before the exit, as kvm_emulate_halt does.
    expect(vcpu.getRegs().rip).toBe(0x100cn);
  });

  it('completes IN with the data userspace supplies, into AL only', () => {
    const { vcpu } = realModeVm([0xe4, 0x60, 0xf4]); // in $0x60,%al; hlt
    vcpu.setRegs({ ...vcpu.getRegs(), rax: 0x11223344n });
    const e = vcpu.run();
    expect(e.kind).toBe('IoIn');
    if (e.kind !== 'IoIn') return;
    expect(e.port).toBe(0x60);
    // RIP still points at the IN while userspace handles it.
    expect(vcpu.getRegs().rip).toBe(0x1000n);
    e.data[0] = 0x42;
    expect(vcpu.run().kind).toBe('Hlt');
    expect(vcpu.getRegs().rax).toBe(0x11223342n);
  });

  it('turns accesses outside every memslot into MMIO exits, completing reads on the next run', () => {
    // mov %al,0xf000; mov 0xf004,%al; hlt   (the slot covers only [0, 0x8000))
    const { vcpu, vm } = realModeVm([0xa2, 0x00, 0xf0, 0xa0, 0x04, 0xf0, 0xf4]);
    vcpu.setRegs({ ...vcpu.getRegs(), rax: 0x99n });
    const w = vcpu.run();
    expect(w).toMatchObject({ kind: 'MmioWrite', addr: 0xf000n });
    if (w.kind === 'MmioWrite') expect([...w.data]).toEqual([0x99]);
    const r = vcpu.run();
    expect(r).toMatchObject({ kind: 'MmioRead', addr: 0xf004n });
    if (r.kind === 'MmioRead') r.data[0] = 0x5a;
    expect(vcpu.run().kind).toBe('Hlt');
    expect(vcpu.getRegs().rax & 0xffn).toBe(0x5an);
    expect(vm.stats()['mmio_exits']).toBe(2);
  });

  it('makes a write to a READONLY slot an MMIO exit while reads see the memory', () => {
    const { vcpu, vm } = realModeVm([0xa0, 0x00, 0x90, 0xa2, 0x00, 0x90, 0xf4]); // mov 0x9000,%al; mov %al,0x9000; hlt
    const hva = vm.proc.mmap(0x1000, 3, 0x22);
    vm.proc.writeUser(hva, Uint8Array.of(0x77));
    vm.setUserMemoryRegion({ slot: 1, flags: KVM_MEM.READONLY, guestPhysAddr: 0x9000, memorySize: 0x1000, userspaceAddr: hva });
    const e = vcpu.run();
    expect(e).toMatchObject({ kind: 'MmioWrite', addr: 0x9000n });
    if (e.kind === 'MmioWrite') expect([...e.data]).toEqual([0x77]);
    expect(vcpu.run().kind).toBe('Hlt');
  });

  it('honours immediate_exit and signals with -EINTR', () => {
    const { vcpu, proc } = realModeVm([0xf4]);
    vcpu.immediateExit = true;
    expect(vcpu.run().kind).toBe('Intr');
    vcpu.immediateExit = false;
    proc.kick();
    expect(vcpu.run().kind).toBe('Intr');
    expect(vcpu.stats()['signal_exits']).toBe(1);
    expect(vcpu.run().kind).toBe('Hlt');
  });

  it('asks for an interrupt window and injects KVM_INTERRUPT when the guest can take it', () => {
    const { vcpu, vendor } = realModeVm([0xf4]);
    vcpu.setRegs({ ...vcpu.getRegs(), rflags: 0x202n });
    vcpu.interrupt(0x30);
    expect(vcpu.run().kind).toBe('Hlt');
    expect(vendor.calls).toContain('injectIrq');
    expect(vcpu.stats()['irq_injections']).toBe(1);
    expect(vcpu.readyForInterruptInjection).toBe(true);
  });
});

describe('TDP faults and dirty logging', () => {
  it('maps a memslot page on the first fault and logs writes when asked', () => {
    const { vm, vcpu, proc } = realModeVm([0xf4], 0x10000);
    const v = (proc.file(vcpu.fd) as unknown as { vcpu: Vcpu }).vcpu;
    const mmu = v.kvm.mmu;
    expect(kvmMmuPageFault(v, 0x3000, PFERR.WRITE)).toBe('resume');
    const leaf = mmu.lookup(3);
    const slotHva = vm.memory.hvaOf(0x3000)!;
    expect(leaf).toEqual({ hpa: proc.hvaToHpa(slotHva), writable: true, mmio: false });
    expect(mmu.pagesMapped).toBe(1);

    vm.setUserMemoryRegion({ slot: 0, flags: KVM_MEM.LOG_DIRTY_PAGES, guestPhysAddr: 0, memorySize: 0x10000, userspaceAddr: vm.memory.regions[0]!.hva });
    expect(mmu.lookup(3)?.writable).toBe(false);
    expect(kvmMmuPageFault(v, 0x5000, 0)).toBe('resume');
    expect(mmu.lookup(5)?.writable).toBe(false);
    expect(kvmMmuPageFault(v, 0x3000, PFERR.WRITE | PFERR.PRESENT)).toBe('resume');
    expect(mmu.lookup(3)?.writable).toBe(true);
    const log = vm.getDirtyLog(0, 0x10000);
    expect(log[0]).toBe(1 << 3);
    expect(vm.getDirtyLog(0, 0x10000)[0]).toBe(0);
    expect(mmu.lookup(3)?.writable).toBe(false);

    // Deleting the slot zaps its pages.
    vm.setUserMemoryRegion({ slot: 0, flags: 0, guestPhysAddr: 0, memorySize: 0, userspaceAddr: 0 });
    expect(mmu.pagesMapped).toBe(0);
    expect(mmu.lookup(3)).toBeNull();
  });

  it('installs the vendor MMIO SPTE for a GFN without a memslot', () => {
    const { vcpu, proc } = realModeVm([0xa2, 0x00, 0xf0, 0xf4], 0x8000);
    const v = (proc.file(vcpu.fd) as unknown as { vcpu: Vcpu }).vcpu;
    expect(kvmMmuPageFault(v, 0x40000, PFERR.WRITE)).toBe('userspace');
    expect(v.kvm.mmu.lookup(0x40)).toEqual({ hpa: -1, writable: false, mmio: true });
  });
});

describe('the host and module lifetime', () => {
  it('checks kvm_x86_ops at modprobe, refuses a second load and rmmod while a VM lives', () => {
    const host = new Host({ model: testModel, pcpus: 2, memBytes: 16 << 20 });
    expect(host.spawn().open('/dev/kvm')).toBe(-2);
    expect(host.modprobe(fakeVendor({ vcpuRun: undefined }).initOps)).toBe(-22);
    expect(host.dmesg.join('\n')).toMatch(/lacks required kvm_x86_ops: vcpuRun/);
    const vendor = fakeVendor();
    expect(host.modprobe(vendor.initOps)).toBe(0);
    expect(vendor.calls).toEqual(['enable0', 'enable1']);
    expect(host.modprobe(vendor.initOps)).toBe(-17);
    const proc = host.spawn();
    const kvm = Kvm.open(proc);
    const vm = kvm.createVm();
    const vcpu: VcpuFd = vm.createVcpu(0);
    expect(host.rmmod()).toBe(-16);
    vm.close();
    // The vCPU fd (and its mmap) keep the VM alive.
    expect(vendor.calls).not.toContain('vmDestroy');
    vcpu.close();
    expect(vendor.calls).not.toContain('vmDestroy');
    proc.exit();
    expect(vendor.calls).toContain('vmDestroy');
    expect(host.rmmod()).toBe(0);
    expect(vendor.calls.slice(-3)).toEqual(['disable0', 'disable1', 'unsetup']);
  });

  it('brings pCPUs up in long mode with the kernel GDT, TR and an identity map', () => {
    const host = new Host({ model: testModel, pcpus: 1, memBytes: 16 << 20 });
    const cpu = host.pcpus[0]!.cpu;
    expect(cpu.cr0 >>> 0).toBe(0x80050033);
    expect(cpu.efer & 0x500).toBe(0x500);
    expect(cpu.seg[1]!.selector).toBe(0x10);
    expect(cpu.seg[7]!.selector).toBe(0x40);
    expect(host.mem.read64(host.tables[0]!.gdt + 0x10)).toBe(0x00af9b000000ffffn);
    // A kernel linear address is its physical address.
    host.mem.write32(0x123450, 0xcafe);
    expect(cpu.readMem(2, 0x123450, 4)).toBe(0xcafe);
    expect(VmFd).toBeDefined();
  });
});

describe('string I/O through the emulator', () => {
  it('reads REP INSB ahead in one exit, as the emulator\'s pio read cache does', () => {
    // rep insb (%dx),%es:(%di); hlt   with DX=0x60, DI=0x2000, CX=4
    const { vcpu, vm } = realModeVm([0xf3, 0x6c, 0xf4]);
    vcpu.setRegs({ ...vcpu.getRegs(), rdx: 0x60n, rdi: 0x2000n, rcx: 4n });
    const e = vcpu.run();
    expect(e).toMatchObject({ kind: 'IoIn', port: 0x60, size: 1, count: 4 });
    if (e.kind !== 'IoIn') return;
    e.data.set([1, 2, 3, 4]);
    expect(vcpu.run().kind).toBe('Hlt');
    expect([...vm.memory.read(0x2000, 4)]).toEqual([1, 2, 3, 4]);
    const r = vcpu.getRegs();
    expect(r.rcx).toBe(0n);
    expect(r.rdi).toBe(0x2004n);
  });

  it('writes OUTSB one element per exit', () => {
    // rep outsb %ds:(%si),(%dx); hlt   with DX=0x3f8, SI=0x2000, CX=3
    const { vcpu, vm } = realModeVm([0xf3, 0x6e, 0xf4]);
    vm.memory.write(0x2000, new TextEncoder().encode('abc'));
    vcpu.setRegs({ ...vcpu.getRegs(), rdx: 0x3f8n, rsi: 0x2000n, rcx: 3n });
    let out = '';
    for (let i = 0; i < 10; i++) {
      const e = vcpu.run();
      if (e.kind !== 'IoOut') { expect(e.kind).toBe('Hlt'); break; }
      expect(e.count).toBe(1);
      out += String.fromCharCode(e.data[0]!);
    }
    expect(out).toBe('abc');
    expect(vcpu.getRegs().rsi).toBe(0x2003n);
  });
});

describe('EMULTYPE_SKIP', () => {
  it('moves RIP past the instruction without keeping its effects', async () => {
    const { vcpu, proc } = realModeVm([0x0f, 0xa2, 0xf4]); // cpuid; hlt
    const { kvmEmulateInstruction, EMULTYPE } = await import('../src/index.js');
    const v = (proc.file(vcpu.fd) as unknown as { vcpu: Vcpu }).vcpu;
    vcpu.setRegs({ ...vcpu.getRegs(), rax: 0x1234n });
    expect(kvmEmulateInstruction(v, EMULTYPE.SKIP)).toBe('resume');
    const r = vcpu.getRegs();
    expect(r.rip).toBe(0x1002n);
    expect(r.rax).toBe(0x1234n);
  });
});

describe('observability', () => {
  it('shows VMs, memslots, TDP pages and stats in the host snapshot', () => {
    const { host, vcpu, vm } = realModeVm([0xa2, 0x00, 0x30, 0xf4]); // mov %al,0x3000; hlt
    expect(vcpu.run().kind).toBe('Hlt');
    const snap = host.snapshot();
    expect(snap.module).toBe('kvm_fake');
    expect(snap.vms).toHaveLength(1);
    const v = snap.vms[0]!;
    expect(v.vcpus).toEqual([0]);
    expect(v.memslots).toEqual([{ slot: 0, guestPhysAddr: 0, memorySize: 0x8000, userspaceAddr: vm.memory.regions[0]!.hva, flags: 0, dirtyPages: 0 }]);
    expect(v.stat['halt_exits']).toBe(1);
    expect(v.stat['exits']).toBe(2);
    expect(vcpu.inspect().vendor).toBe('intel');
  });
});

describe('KVM_GET_STATS_FD', () => {
  it('reads the vCPU and VM counters in the binary stats format', async () => {
    const { KVM, parseStats } = await import('../src/index.js');
    const { vcpu, vm, proc } = realModeVm([0xf4]);
    expect(vcpu.run().kind).toBe('Hlt');
    const fd = proc.ioctl(vcpu.fd, KVM.KVM_GET_STATS_FD, 0);
    expect(fd).toBeGreaterThan(0);
    const bytes = proc.pread(fd, 1 << 16, 0);
    if (typeof bytes === 'number') throw new Error(`pread: ${bytes}`);
    const s = parseStats(bytes);
    expect(s.id).toBe(`kvm-${proc.pid}/vcpu-0`);
    expect(s.stats['halt_exits']).toBe(1n);
    expect(s.stats['exits']).toBe(1n);
    const vfd = proc.ioctl(vm.fd, KVM.KVM_GET_STATS_FD, 0);
    const vs = parseStats(proc.pread(vfd, 1 << 16, 0) as Uint8Array);
    expect(vs.stats['halt_exits']).toBe(1n);
    expect(proc.close(fd)).toBe(0);
  });
});

describe('one emulator per host', () => {
  it('serves interleaved MMIO of two VMs, each completing with its own data', () => {
    const host = new Host({ model: testModel, pcpus: 1, memBytes: 64 << 20 });
    host.modprobe(fakeVendor().initOps);
    const mk = (al: bigint) => {
      const vm = Kvm.open(host.spawn()).createVm();
      vm.allocGuestMemory(0, 0, 0x8000);
      vm.memory.write(0x1000, Uint8Array.of(0xa0, 0x00, 0xf0, 0x04, 0x01, 0xf4)); // mov 0xf000,%al; add $1,%al; hlt
      const vcpu = vm.createVcpu(0);
      vcpu.setRegs({ ...vcpu.getRegs(), rip: 0x1000n, rflags: 2n, rax: al });
      return vcpu;
    };
    const a = mk(0n);
    const b = mk(0n);
    const ea = a.run();
    const eb = b.run();
    expect(ea.kind).toBe('MmioRead');
    expect(eb.kind).toBe('MmioRead');
    if (ea.kind === 'MmioRead') ea.data[0] = 0x10;
    if (eb.kind === 'MmioRead') eb.data[0] = 0x20;
    expect(b.run().kind).toBe('Hlt');
    expect(a.run().kind).toBe('Hlt');
    expect(a.getRegs().rax).toBe(0x11n);
    expect(b.getRegs().rax).toBe(0x21n);
  });
});
