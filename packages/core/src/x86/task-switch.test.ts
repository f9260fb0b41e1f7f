/**
 * kvmTaskSwitch on a 32-bit protected-mode vCPU of the test vendor: a clean JMP, the error
 * code an exception through a task gate pushes, and what X86EMUL_PROPAGATE_FAULT becomes: a
 * fault before the commit point is queued with the old task intact, one after it is queued in
 * the new task; an access userspace would have to answer is an emulation failure.
 */
import { describe, expect, it } from 'vitest';
import { VEC } from '@kvmts/x86';
import { EMULTYPE, Host, KVM_EXIT, KVM_INTERNAL_ERROR, kvmEmulateInstruction, kvmSetDr, type Vcpu, type KvmSegment } from '../index.js';
import { Kvm } from '../api/index.js';
import { fakeVendor, testModel } from '../../test/fake-vendor.js';
import { TASK_SWITCH, kvmTaskSwitch } from './task-switch.js';

const MEM = 0x10000;
const GDT = 0x500;
const IDT = 0x700;
const TSS = { A: 0x3000, B: 0x3100, C: 0x3200, MMIO: 0x20000 } as const;
const SEL = { CODE: 0x08, DATA: 0x10, A: 0x18, B: 0x20, ABSENT: 0x28, C: 0x30, MMIO: 0x38 } as const;
const RIP = 0x1234;
const B_EIP = 0x2000;
const VCPU_SREG = { CS: 1, SS: 2, TR: 6 } as const;

/** A GDT descriptor: base, limit, access byte, flags nibble (G, D/B). */
function desc(base: number, limit: number, access: number, flags: number): [number, number] {
  const lo = ((limit & 0xffff) | ((base & 0xffff) << 16)) >>> 0;
  const hi = (((base >>> 16) & 0xff) | (access << 8) | (limit & 0xf0000) | (flags << 20) | (base & 0xff000000)) >>> 0;
  return [lo, hi];
}

const seg = (selector: number, type: number, s = 1): KvmSegment => ({
  base: 0, limit: 0xffffffff, selector, type, present: 1, dpl: 0, db: s, s, l: 0, g: s, avl: 0, unusable: 0,
});

function machine() {
  const host = new Host({ model: testModel, pcpus: 1, memBytes: 64 << 20 });
  expect(host.modprobe(fakeVendor().initOps)).toBe(0);
  const proc = host.spawn();
  const vm = Kvm.open(proc).createVm();
  vm.allocGuestMemory(0, 0, MEM);
  const w32 = (gpa: number, value: number) => {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, value >>> 0, true);
    vm.memory.write(gpa, b);
  };
  const r32 = (gpa: number) => new DataView(vm.memory.read(gpa, 4).buffer.slice(0)).getUint32(0, true);
  const setDesc = (sel: number, [lo, hi]: [number, number]) => { w32(GDT + sel, lo); w32(GDT + sel + 4, hi); };
  setDesc(SEL.CODE, desc(0, 0xfffff, 0x9b, 0xc));
  setDesc(SEL.DATA, desc(0, 0xfffff, 0x93, 0xc));
  setDesc(SEL.A, desc(TSS.A, 0x67, 0x8b, 0));
  setDesc(SEL.B, desc(TSS.B, 0x67, 0x89, 0));
  setDesc(SEL.ABSENT, desc(TSS.B, 0x67, 0x09, 0));
  setDesc(SEL.C, desc(TSS.C, 0x67, 0x89, 0));
  setDesc(SEL.MMIO, desc(TSS.MMIO, 0x67, 0x89, 0));
  /** A 32-bit TSS: EIP, EFLAGS, EAX, ESP, then ES, CS, SS, DS, FS, GS. */
  const tss = (base: number, eip: number, eax: number, cs: number) => {
    w32(base + 0x20, eip);
    w32(base + 0x24, 2);
    w32(base + 0x28, eax);
    w32(base + 0x38, 0x9000);
    [SEL.DATA, cs, SEL.DATA, SEL.DATA, SEL.DATA, SEL.DATA].forEach((s, i) => w32(base + 0x48 + 4 * i, s));
  };
  tss(TSS.B, B_EIP, 0xb0b0b0b0, SEL.CODE);
  tss(TSS.C, 0x2100, 0xc0c0c0c0, SEL.DATA); // CS names a data segment: #TS in the new task
  // IDT vector 0x40: a task gate to TSS B with DPL 0.
  w32(IDT + 0x40 * 8, SEL.B << 16);
  w32(IDT + 0x40 * 8 + 4, 0x8500);

  const vcpu = vm.createVcpu(0);
  const sregs = vcpu.getSregs();
  vcpu.setSregs({
    ...sregs,
    cs: seg(SEL.CODE, 11), ss: seg(SEL.DATA, 3), ds: seg(SEL.DATA, 3), es: seg(SEL.DATA, 3), fs: seg(SEL.DATA, 3), gs: seg(SEL.DATA, 3),
    tr: { ...seg(SEL.A, 11, 0), base: TSS.A, limit: 0x67 },
    ldt: { ...seg(0, 2, 0), unusable: 1, present: 0 },
    gdt: { base: GDT, limit: 0x47 }, idt: { base: IDT, limit: 0x41 * 8 - 1 },
    cr0: 0x11n,
  });
  vcpu.setRegs({ ...vcpu.getRegs(), rip: BigInt(RIP), rflags: 2n, rax: 0xaaaan, rsp: 0x7000n });
  const v = (proc.file(vcpu.fd) as unknown as { vcpu: Vcpu }).vcpu;
  const accessByte = (sel: number) => (r32(GDT + sel + 4) >>> 8) & 0xff;
  return { vm, vcpu, v, r32, accessByte };
}

describe('kvmTaskSwitch', () => {
  it('JMP to a TSS: the new task runs, the old TSS keeps RIP, busy bits move, CR0.TS set, DR7 local enables cleared', () => {
    const { vcpu, v, r32, accessByte } = machine();
    kvmSetDr(v, 7, 0x403);
    expect(kvmTaskSwitch(v, SEL.B, -1, TASK_SWITCH.JMP, false, 0)).toBe('resume');
    const regs = vcpu.getRegs();
    expect(regs.rip).toBe(BigInt(B_EIP));
    expect(regs.rax).toBe(0xb0b0b0b0n);
    expect(regs.rsp).toBe(0x9000n);
    expect(v.ops.getSegment(v, VCPU_SREG.TR)).toMatchObject({ selector: SEL.B, base: TSS.B, limit: 0x67, type: 11 });
    expect(r32(TSS.A + 0x20)).toBe(RIP);
    expect(r32(TSS.A + 0x28)).toBe(0xaaaa);
    expect(accessByte(SEL.A)).toBe(0x89);
    expect(accessByte(SEL.B)).toBe(0x8b);
    expect(v.arch.cr0 & 8).toBe(8);
    expect(v.arch.dr7).toBe(0x402);
    expect(v.arch.exception.pending).toBe(false);
  });

  it('an exception through a task gate: its error code is pushed on the new task\'s stack, NT set, the link written', () => {
    const { vcpu, v, r32 } = machine();
    expect(kvmTaskSwitch(v, SEL.B, -1, TASK_SWITCH.GATE, true, 0x18a)).toBe('resume');
    expect(vcpu.getRegs().rsp).toBe(0x9000n - 4n);
    expect(r32(0x9000 - 4)).toBe(0x18a);
    expect(Number(vcpu.getRegs().rflags) & 0x4000).toBe(0x4000);
    expect(r32(TSS.B) & 0xffff).toBe(SEL.A);
  });

  it('a fault before the commit point (a TSS not present) is queued as #TS with the old task intact', () => {
    const { vcpu, v, accessByte } = machine();
    expect(kvmTaskSwitch(v, SEL.ABSENT, -1, TASK_SWITCH.JMP, false, 0)).toBe('resume');
    expect(v.arch.exception).toMatchObject({ pending: true, nr: VEC.TS, hasErrorCode: true, errorCode: SEL.ABSENT });
    expect(vcpu.getRegs().rip).toBe(BigInt(RIP));
    expect(v.ops.getSegment(v, VCPU_SREG.TR).selector).toBe(SEL.A);
    expect(accessByte(SEL.A)).toBe(0x8b);
  });

  it('INT n through a task gate of lower DPL than the selector\'s RPL is #GP with the IDT index', () => {
    const { v } = machine();
    expect(kvmTaskSwitch(v, SEL.B | 3, 0x40, TASK_SWITCH.GATE, false, 0)).toBe('resume');
    expect(v.arch.exception).toMatchObject({ pending: true, nr: VEC.GP, hasErrorCode: true, errorCode: (0x40 << 3) | 2 });
  });

  it('a fault after the commit point (CS names a data segment) is queued as #TS in the new task, CS kept usable', () => {
    const { vcpu, v, r32, accessByte } = machine();
    expect(kvmTaskSwitch(v, SEL.C, -1, TASK_SWITCH.JMP, false, 0)).toBe('resume');
    expect(v.arch.exception).toMatchObject({ pending: true, nr: VEC.TS, hasErrorCode: true, errorCode: SEL.DATA });
    const regs = vcpu.getRegs();
    expect(regs.rip).toBe(0x2100n);
    expect(regs.rax).toBe(0xc0c0c0c0n);
    expect(v.ops.getSegment(v, VCPU_SREG.TR).selector).toBe(SEL.C);
    // The new selector over the cached code segment of the old task, as set_segment_selector leaves it.
    expect(v.ops.getSegment(v, VCPU_SREG.CS)).toMatchObject({ selector: SEL.DATA, type: 11, s: 1, present: 1, unusable: 0 });
    expect(v.ops.getSegment(v, VCPU_SREG.SS)).toMatchObject({ selector: SEL.DATA, type: 3, unusable: 0 });
    expect(r32(TSS.A + 0x20)).toBe(RIP);
    expect(accessByte(SEL.A)).toBe(0x89);
    expect(accessByte(SEL.C)).toBe(0x8b);
  });

  it('a new task with the T flag: #DB before its first instruction, through its IDT, with DR6.BT', () => {
    const { vm, vcpu, v, r32 } = machine();
    vm.memory.write(TSS.B + 0x64, Uint8Array.of(1));
    // IDT vector 1: a 32-bit interrupt gate to CODE:0x2800.
    vm.memory.write(IDT + 8, Uint8Array.of(0x00, 0x28, SEL.CODE, 0, 0, 0x8e, 0, 0));
    expect(kvmTaskSwitch(v, SEL.B, -1, TASK_SWITCH.JMP, false, 0)).toBe('resume');
    const regs = vcpu.getRegs();
    expect(regs.rip).toBe(0x2800n);
    expect(regs.rsp).toBe(0x9000n - 12n);
    expect(r32(0x9000 - 12)).toBe(B_EIP);
    expect(v.arch.dr6 & 0x8000).toBe(0x8000);
    expect(v.ops.getSegment(v, VCPU_SREG.TR).selector).toBe(SEL.B);
  });

  it('a TSS outside guest RAM (an MMIO access) is KVM_EXIT_INTERNAL_ERROR / EMULATION', () => {
    const { vcpu, v } = machine();
    expect(kvmTaskSwitch(v, SEL.MMIO, -1, TASK_SWITCH.JMP, false, 0)).toBe('userspace');
    expect(v.runView.exitReason).toBe(KVM_EXIT.INTERNAL_ERROR);
    expect(v.runView.internal.get().suberror).toBe(KVM_INTERNAL_ERROR.EMULATION);
    expect(vcpu.getRegs().rip).toBe(BigInt(RIP));
    expect(v.arch.exception.pending).toBe(false);
  });

  it('EMULTYPE_SKIP over the JMP whose switch exited only decodes it: RIP past its 7 bytes, still in the old task', () => {
    const { vm, vcpu, v, accessByte } = machine();
    vm.memory.write(RIP, Uint8Array.of(0xea, 0, 0, 0, 0, SEL.B, 0)); // jmp far 0x20:0
    expect(kvmEmulateInstruction(v, EMULTYPE.SKIP)).toBe('resume');
    expect(vcpu.getRegs().rip).toBe(BigInt(RIP + 7));
    expect(v.ops.getSegment(v, VCPU_SREG.TR).selector).toBe(SEL.A);
    expect(accessByte(SEL.B)).toBe(0x89);
  });

  it('with paging on, CR3 comes from the new TSS (kvm_set_cr3)', () => {
    const { vm, vcpu, v } = machine();
    // Two page directories mapping the first 4 MiB with one PSE page each.
    for (const pd of [0x4000, 0x5000]) vm.memory.write(pd, Uint8Array.of(0x83, 0, 0, 0));
    vm.memory.write(TSS.B + 0x1c, Uint8Array.of(0x00, 0x50, 0, 0));
    vcpu.setSregs({ ...vcpu.getSregs(), cr0: 0x80000011n, cr3: 0x4000n, cr4: 0x10n });
    expect(kvmTaskSwitch(v, SEL.B, -1, TASK_SWITCH.JMP, false, 0)).toBe('resume');
    expect(v.arch.cr3).toBe(0x5000);
    expect(vcpu.getSregs().cr3).toBe(0x5000n);
    expect(vcpu.getRegs().rip).toBe(BigInt(B_EIP));
  });
});
