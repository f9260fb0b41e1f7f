/**
 * @kvmts/core's KVM_RUN paths on the real vendors, through the typed façade: MMIO to
 * userspace via EPT/NPT faults and the emulator, dirty logging, the host tick with a pending
 * signal, single-step debug exits, and KVM_INTERRUPT injection.
 */
import { describe, expect, it } from 'vitest';
import { Host, KVM_GUESTDBG, KVM_MEM, type KvmX86InitOps } from '@kvmts/core';
import { Kvm, type VcpuFd, type VmFd } from '@kvmts/core/api';
import type { CpuModel } from '@kvmts/x86';
import { intelCpuModel, vmxInitOps } from '@kvmts/vmx';
import { amdCpuModel, svmInitOps } from '@kvmts/svm';

const VENDORS: readonly [string, () => CpuModel, KvmX86InitOps][] = [
  ['intel', intelCpuModel, vmxInitOps],
  ['amd', amdCpuModel, svmInitOps],
];

function realMode(model: () => CpuModel, initOps: KvmX86InitOps, code: number[]): { vm: VmFd; vcpu: VcpuFd; host: Host } {
  const host = new Host({ model: model(), pcpus: 1, memBytes: 256 << 20 });
  expect(host.modprobe(initOps)).toBe(0);
  const vm = Kvm.open(host.spawn()).createVm();
  vm.allocGuestMemory(0, 0, 0x10000);
  vm.memory.write(0x1000, Uint8Array.from(code));
  const vcpu = vm.createVcpu(0);
  const sregs = vcpu.getSregs();
  vcpu.setSregs({ ...sregs, cs: { ...sregs.cs, base: 0, selector: 0 } });
  vcpu.setRegs({ ...vcpu.getRegs(), rip: 0x1000n, rflags: 2n });
  return { vm, vcpu, host };
}

describe.each(VENDORS)('core KVM_RUN paths on %s', (_name, model, initOps) => {
  it('sends an access outside every memslot to userspace as MMIO and completes the read', () => {
    // mov $0x4000,%ax; mov %ax,%ds; mov %al,0x0 (-> 0x40000); mov 0x4,%al; hlt
    const { vcpu } = realMode(model, initOps, [0xb8, 0x00, 0x40, 0x8e, 0xd8, 0xa2, 0x00, 0x00, 0xa0, 0x04, 0x00, 0xf4]);
    const w = vcpu.run();
    expect(w).toMatchObject({ kind: 'MmioWrite', addr: 0x40000n });
    if (w.kind === 'MmioWrite') expect([...w.data]).toEqual([0x00]);
    const r = vcpu.run();
    expect(r).toMatchObject({ kind: 'MmioRead', addr: 0x40004n });
    if (r.kind === 'MmioRead') r.data[0] = 0xa5;
    expect(vcpu.run()).toEqual({ kind: 'Hlt' });
    expect(vcpu.getRegs().rax & 0xffn).toBe(0xa5n);
    expect(vcpu.stats()['mmio_exits']).toBe(2);
  });

  it('reads and writes MSRs through the vendor and kvm_get_msr_common', () => {
    const { vcpu } = realMode(model, initOps, [0xf4]);
    const got = vcpu.getMsrs([0x277, 0x1b, 0xc0000080]);
    expect(got.get(0x277)).toBe(0x0007040600070406n);
    expect(got.get(0x1b)).toBe(0xfee00900n);
    expect(vcpu.setMsrs([{ index: 0x277, data: 0x0606060606060606n }, { index: 0x12345678, data: 1n }])).toBe(1);
    expect(vcpu.getMsrs([0x277]).get(0x277)).toBe(0x0606060606060606n);
  });

  it('logs the pages a guest writes', () => {
    // mov %al,0x3000; mov %al,0x5000; hlt
    const { vm, vcpu } = realMode(model, initOps, [0xa2, 0x00, 0x30, 0xa2, 0x00, 0x50, 0xf4]);
    const region = vm.memory.regions[0]!;
    vm.setUserMemoryRegion({ slot: 0, flags: KVM_MEM.LOG_DIRTY_PAGES, guestPhysAddr: 0, memorySize: 0x10000, userspaceAddr: region.hva });
    expect(vcpu.run()).toEqual({ kind: 'Hlt' });
    const log = vm.getDirtyLog(0, 0x10000);
    expect(log[0]! & ((1 << 3) | (1 << 5))).toBe((1 << 3) | (1 << 5));
    expect(vm.getDirtyLog(0, 0x10000)[0]).toBe(0);
  });

  it('returns -EINTR at the host tick when an alarm fired in a guest that never exits', () => {
    const { vcpu, vm } = realMode(model, initOps, [0xeb, 0xfe]); // jmp .
    vm.proc.setAlarm(2_000_000);
    expect(vcpu.run()).toEqual({ kind: 'Intr' });
    expect(vcpu.stats()['signal_exits']).toBe(1);
    expect(vcpu.getRegs().rip).toBe(0x1000n);
  });

  it('single-steps with KVM_GUESTDBG_SINGLESTEP, one KVM_EXIT_DEBUG per instruction', () => {
    const { vcpu } = realMode(model, initOps, [0x90, 0x90, 0xf4]); // nop; nop; hlt
    vcpu.setGuestDebug(KVM_GUESTDBG.ENABLE | KVM_GUESTDBG.SINGLESTEP);
    const e = vcpu.run();
    expect(e).toMatchObject({ kind: 'Debug', exception: 1, pc: 0x1001n });
    expect(vcpu.run()).toMatchObject({ kind: 'Debug', pc: 0x1002n });
    vcpu.setGuestDebug(0);
    expect(vcpu.run()).toEqual({ kind: 'Hlt' });
    // KVM's TF never shows in the guest's RFLAGS.
    expect(vcpu.getRegs().rflags & 0x100n).toBe(0n);
  });

  it('single-steps over instructions KVM completes itself: CPUID, OUT through userspace, emulated MMIO', () => {
    // nop; cpuid; out 0x80,al; mov %al,0x40000 (MMIO, ds=0x4000); nop; hlt
    const { vcpu } = realMode(model, initOps, [0x90, 0x0f, 0xa2, 0xe6, 0x80, 0xa2, 0x00, 0x00, 0x90, 0xf4]);
    const sregs = vcpu.getSregs();
    vcpu.setSregs({ ...sregs, ds: { ...sregs.ds, base: 0x40000, selector: 0x4000 } });
    vcpu.setGuestDebug(KVM_GUESTDBG.ENABLE | KVM_GUESTDBG.SINGLESTEP);
    expect(vcpu.run()).toMatchObject({ kind: 'Debug', exception: 1, pc: 0x1001n, dr6: 0xffff4ff0n });
    // CPUID exits to KVM, which completes it and owes the trap (kvm_vcpu_do_singlestep).
    expect(vcpu.run()).toMatchObject({ kind: 'Debug', exception: 1, pc: 0x1003n, dr6: 0xffff4ff0n });
    expect(vcpu.run()).toMatchObject({ kind: 'IoOut', port: 0x80 });
    // The OUT completes on the next KVM_RUN, and the trap is reported before the guest runs on.
    expect(vcpu.run()).toMatchObject({ kind: 'Debug', pc: 0x1005n });
    expect(vcpu.run()).toMatchObject({ kind: 'MmioWrite', addr: 0x40000n });
    expect(vcpu.run()).toMatchObject({ kind: 'Debug', pc: 0x1008n });
    vcpu.setGuestDebug(0);
    expect(vcpu.run()).toEqual({ kind: 'Hlt' });
    expect(vcpu.getRegs().rip).toBe(0x100an);
    expect(vcpu.getRegs().rflags & 0x100n).toBe(0n);
  });

  it('stops at a hardware breakpoint of KVM_GUESTDBG_USE_HW_BP before the instruction, then runs it', () => {
    const { vcpu } = realMode(model, initOps, [0x90, 0x40, 0x40, 0xf4]); // nop; inc ax; inc ax; hlt
    // DR1 = 0x1002, DR7.G1 with R/W1 = 00 (execute).
    vcpu.setGuestDebug(KVM_GUESTDBG.ENABLE | KVM_GUESTDBG.USE_HW_BP, [0n, 0x1002n, 0n, 0n, 0n, 0n, 0n, 0x408n]);
    expect(vcpu.run()).toEqual({ kind: 'Debug', exception: 1, pc: 0x1002n, dr6: 0xffff0ff2n, dr7: 0x408n });
    expect(vcpu.getRegs().rax & 0xffffn).toBe(1n);
    // The exit left RF set (the image a fault-class #DB pushes): the instruction runs on re-entry.
    expect(vcpu.run()).toEqual({ kind: 'Hlt' });
    expect(vcpu.getRegs().rax & 0xffffn).toBe(2n);
  });

  it('reports only the conditions of the #DB that exited in KVM_EXIT_DEBUG dr6, not those of earlier ones', () => {
    const { vcpu } = realMode(model, initOps, [0x90, 0x40, 0x40, 0xf4]); // nop; inc ax; inc ax; hlt
    vcpu.setGuestDebug(KVM_GUESTDBG.ENABLE | KVM_GUESTDBG.SINGLESTEP);
    expect(vcpu.run()).toMatchObject({ kind: 'Debug', pc: 0x1001n, dr6: 0xffff4ff0n });
    vcpu.setGuestDebug(KVM_GUESTDBG.ENABLE | KVM_GUESTDBG.USE_HW_BP, [0n, 0n, 0n, 0x1002n, 0n, 0n, 0n, 0x480n]);
    expect(vcpu.run()).toMatchObject({ kind: 'Debug', pc: 0x1002n, dr6: 0xffff0ff8n });
  });

  it("loads the guest's own breakpoint (MOV to DR0/DR7, intercepted) into DR0-DR3 for the run", () => {
    // mov eax,0x1013; mov dr0,eax; mov eax,0x401; mov dr7,eax; nop; 0x1013: inc ax; hlt
    const { vm, vcpu } = realMode(model, initOps, [
      0x66, 0xb8, 0x13, 0x10, 0x00, 0x00, 0x0f, 0x23, 0xc0, 0x66, 0xb8, 0x01, 0x04, 0x00, 0x00, 0x0f, 0x23, 0xf8,
      0x90, 0x40, 0xf4,
    ]);
    // IVT[1] -> 0x2000: xor ebx,ebx; mov dr7,ebx; inc si; iret (real mode pushes no RF: the handler disarms it)
    vm.memory.write32(1 * 4, 0x2000);
    vm.memory.write(0x2000, Uint8Array.of(0x66, 0x31, 0xdb, 0x0f, 0x23, 0xfb, 0x46, 0xcf));
    vcpu.setRegs({ ...vcpu.getRegs(), rsp: 0x8000n });
    expect(vcpu.run()).toEqual({ kind: 'Hlt' });
    const regs = vcpu.getRegs();
    expect(regs.rsi & 0xffffn).toBe(1n);
    expect(regs.rax & 0xffffn).toBe(0x402n);
    expect(regs.rip).toBe(0x1015n);
  });

  it("leaves the guest's own single-step to the guest, and owes it the trap after an instruction KVM completed", () => {
    // pushf; pop ax; or ax,0x100; push ax; popf (TF=1); nop; cpuid; nop; hlt
    const { vm, vcpu } = realMode(model, initOps, [0x9c, 0x58, 0x0d, 0x00, 0x01, 0x50, 0x9d, 0x90, 0x0f, 0xa2, 0x90, 0xf4]);
    // IVT[1] -> 0x2000: mov bp,sp; mov ax,[bp]; mov [si+0x3000],ax; inc si; inc si; iret (logs each trap's IP)
    vm.memory.write32(1 * 4, 0x2000);
    vm.memory.write(0x2000, Uint8Array.of(0x89, 0xe5, 0x8b, 0x46, 0x00, 0x89, 0x84, 0x00, 0x30, 0x46, 0x46, 0xcf));
    vcpu.setRegs({ ...vcpu.getRegs(), rsp: 0x8000n });
    expect(vcpu.run()).toEqual({ kind: 'Hlt' });
    const ips = [...new Uint16Array(vm.memory.read(0x3000, 8).slice().buffer)];
    // After the NOP, after CPUID (KVM completed it and queued the #DB), after the NOP; HLT exits first.
    expect(ips).toEqual([0x1008, 0x100a, 0x100b, 0]);
    expect(vcpu.getRegs().rsi & 0xffffn).toBe(6n);
  });

  it('opens an interrupt window for userspace, then injects KVM_INTERRUPT through the real-mode IVT', () => {
    // IVT[0x20] = 0000:2000; handler at 0x2000: mov $0x77,%bl; hlt. main: nop; sti; nop; jmp .
    const { vm, vcpu } = realMode(model, initOps, [0x90, 0xfb, 0x90, 0xeb, 0xfe]);
    vm.memory.write32(0x20 * 4, 0x2000);
    vm.memory.write(0x2000, Uint8Array.of(0xb3, 0x77, 0xf4));
    vcpu.setRegs({ ...vcpu.getRegs(), rsp: 0x8000n });
    // As QEMU without an irqchip: ask for a window, inject only when KVM says it is ready.
    vcpu.requestInterruptWindow = true;
    expect(vcpu.run()).toEqual({ kind: 'IrqWindowOpen' });
    expect(vcpu.readyForInterruptInjection).toBe(true);
    expect(vcpu.ifFlag).toBe(true);
    vcpu.requestInterruptWindow = false;
    vcpu.interrupt(0x20);
    expect(vcpu.run()).toEqual({ kind: 'Hlt' });
    expect(vcpu.getRegs().rbx & 0xffn).toBe(0x77n);
    expect(vcpu.stats()['request_irq_exits']).toBe(1);
    // The vendor counts re-injections after EPT/NPT faults during delivery too.
    expect(vcpu.stats()['irq_injections']).toBeGreaterThanOrEqual(1);
  });
});
