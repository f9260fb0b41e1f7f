import { describe, expect, it } from 'vitest';
import { INTERCEPT, STOP, VIRT_OP } from '@kvmts/x86';
import { MSR_VM_CR, MSR_VM_HSAVE_PA, SVM_VM_CR_LOCK, SVM_VM_CR_SVM_DISABLE, MSR_EFER } from './caps.js';
import { INTERCEPT_BIT, SVM_EXIT, VMCB, VMCB_FIELDS } from './fields.js';
import { VmcbRegion } from './region.js';
import { rig, setIntercept } from '../../test/harness.js';
import { FaultSignal } from '../../test/fake-cpu.js';

const PAGE = 0x180000;

/** The fields VMLOAD/VMSAVE move (APM 15.5.2). */
const VMLOAD_SUBSET = new Set([
  'fs_selector', 'fs_attrib', 'fs_limit', 'fs_base', 'gs_selector', 'gs_attrib', 'gs_limit', 'gs_base',
  'tr_selector', 'tr_attrib', 'tr_limit', 'tr_base', 'ldtr_selector', 'ldtr_attrib', 'ldtr_limit', 'ldtr_base',
  'kernel_gs_base', 'star', 'lstar', 'cstar', 'sfmask', 'sysenter_cs', 'sysenter_esp', 'sysenter_eip',
]);

describe('VMSAVE and VMLOAD', () => {
  it('VMSAVE writes exactly the APM subset', () => {
    const r = rig();
    const c = r.cpu;
    c.seg[4] = { selector: 0x2b, base: 0x7000, limit: 0xfff, ar: 0x93 };
    c.seg[5] = { selector: 0x33, base: -0x100000, limit: 0xffff, ar: 0xc093 };
    c.seg[7] = { selector: 0x40, base: 0x9000, limit: 0x67, ar: 0x8b };
    c.seg[6] = { selector: 0x50, base: 0xa000, limit: 0x1f, ar: 0x82 };
    c.kernelGsBase = 0x1111; c.starLo = 0x2222; c.starHi = 0x00230010; c.lstar = 0x3333; c.cstar = 0x4444;
    c.sfmask = 0x4700; c.sysenterCs = 0x10; c.sysenterEsp = 0x5555; c.sysenterEip = 0x6666;
    expect(r.svm.vmsave(PAGE)).toBe(true);
    const v = new VmcbRegion(c.bus.ram, PAGE);
    for (const [name] of VMCB_FIELDS) {
      if (!VMLOAD_SUBSET.has(name)) expect(v.get(name), `${name} untouched`).toBe(0n);
    }
    expect(v.get('gs_base')).toBe(0xfffffffffff00000n);
    expect(v.get('star')).toBe(0x0023001000002222n);
    expect(v.get('tr_attrib')).toBe(0x8bn);
    expect(v.get('sysenter_eip')).toBe(0x6666n);
  });

  it('VMLOAD loads them back, hidden state included', () => {
    const r = rig();
    const v = new VmcbRegion(r.cpu.bus.ram, PAGE);
    v.writeSeg(0x440, { selector: 0x2b, base: 0x7000, limit: 0xfff, ar: 0x93 });
    v.w64(VMCB.lstar, -0x7fff0000);
    v.w64(VMCB.sfmask, 0x700);
    r.cpu.rip = 0; // not used by the TS path
    expect(r.svm.vmload(PAGE)).toBe(true);
    expect(r.cpu.seg[4]).toEqual({ selector: 0x2b, base: 0x7000, limit: 0xfff, ar: 0x93 });
    expect(r.cpu.lstar).toBe(-0x7fff0000);
    expect(r.cpu.sfmask).toBe(0x700);
  });

  it('VMLOAD installs new frozen registers, the same ones again for an unchanged page; VMSAVE stores the canonical encoding', () => {
    const r = rig();
    const v = new VmcbRegion(r.cpu.bus.ram, PAGE);
    v.writeSeg(0x440, { selector: 0x2b, base: 0x7000, limit: 0xfff, ar: 0x93 });
    const before = r.cpu.seg[4];
    expect(r.svm.vmload(PAGE)).toBe(true);
    const fs = r.cpu.seg[4]!;
    expect(fs).not.toBe(before);
    expect(Object.isFrozen(fs)).toBe(true);
    expect(fs).toEqual({ selector: 0x2b, base: 0x7000, limit: 0xfff, ar: 0x93 });
    expect(r.svm.vmload(PAGE)).toBe(true);
    expect(r.cpu.seg[4]).toBe(fs);
    // Bits 15:12 of the attribute word are reserved: VMLOAD ignores them, VMSAVE writes zeros.
    v.w16(0x442, 0xf093);
    expect(r.svm.vmload(PAGE)).toBe(true);
    expect(r.cpu.seg[4]).toEqual(fs);
    expect(r.svm.vmsave(PAGE)).toBe(true);
    expect(v.get('fs_attrib')).toBe(0x93n);
    // A changed page gives a new object.
    v.w16(0x440, 0x33);
    expect(r.svm.vmload(PAGE)).toBe(true);
    expect(r.cpu.seg[4]!.selector).toBe(0x33);
    // A register replaced after VMLOAD is encoded afresh by VMSAVE.
    r.cpu.seg[5] = { selector: 0x3b, base: 0x12345000, limit: 0xffff, ar: 0xc093 };
    expect(r.svm.vmsave(PAGE)).toBe(true);
    expect([v.get('gs_selector'), v.get('gs_base'), v.get('gs_attrib')]).toEqual([0x3bn, 0x12345000n, 0xc93n]);
  });

  it('the VMLOAD instruction: #GP at CPL 3 and for an unaligned rAX, #UD without EFER.SVME', () => {
    const r = rig();
    r.cpu.gpr[0] = PAGE + 8; r.cpu.gprHi[0] = 0;
    r.cpu.script = [{ len: 3, exec: (c) => c.ext!.execute(VIRT_OP.VMLOAD, c.operand) }];
    r.cpu.run(1);
    expect(r.cpu.faults.map((f) => [f.vector, f.errorCode])).toEqual([[13, 0]]);
    r.cpu.efer &= ~0x1000;
    r.cpu.script = [{ len: 3, exec: (c) => c.ext!.execute(VIRT_OP.VMLOAD, c.operand) }];
    r.cpu.run(1);
    expect(r.cpu.faults.at(-1)!.vector).toBe(6);
  });
});

describe('the VMRUN instruction on the bare CPU', () => {
  it('#GP(0) for a VMCB beyond installed memory, instead of a crash', () => {
    const r = rig();
    r.cpu.gpr[0] = 0; r.cpu.gprHi[0] = 0x100; // 1 TiB: below MAXPHYADDR, beyond the 16 MiB machine
    r.cpu.script = [{ len: 3, exec: (c) => c.ext!.execute(VIRT_OP.VMRUN, c.operand) }];
    r.cpu.run(1);
    expect(r.cpu.faults.map((f) => [f.vector, f.errorCode])).toEqual([[13, 0]]);
    expect(r.svm.guest).toBe(false);
  });

  it('enters the guest from host code, and #VMEXIT resumes the host after VMRUN', () => {
    const r = rig();
    r.cpu.gpr[0] = 0x101000; r.cpu.gprHi[0] = 0; // the harness's VMCB
    const hostRip = r.cpu.rip;
    setIntercept(r.v, INTERCEPT_BIT.HLT);
    r.cpu.script = [
      { len: 3, exec: (c) => c.ext!.execute(VIRT_OP.VMRUN, c.operand) },
      { len: 1, exec: (c) => c.ext!.intercept(INTERCEPT.HLT, 0, 0) },
    ];
    expect(r.cpu.run(10)).toBe(STOP.VMEXIT);
    expect(r.cpu.rip).toBe(hostRip + 3);
    expect(r.v.r32(VMCB.exit_code)).toBe(SVM_EXIT.HLT);
    expect(r.cpu.gpr[0]).toBe(0x101000);
  });
});

describe('SVM MSRs (APM 15.30)', () => {
  const gp = (fn: () => unknown): number => {
    try { fn(); return -1; } catch (e) { return e instanceof FaultSignal ? e.vector : -2; }
  };

  it('VM_HSAVE_PA must be 4 KiB aligned and below MAXPHYADDR', () => {
    const r = rig();
    expect(gp(() => r.svm.wrmsr(MSR_VM_HSAVE_PA, 0x100010n))).toBe(13);
    expect(gp(() => r.svm.wrmsr(MSR_VM_HSAVE_PA, 1n << 48n))).toBe(13);
    expect(r.svm.wrmsr(MSR_VM_HSAVE_PA, 0x200000n)).toBe(true);
    expect(r.svm.rdmsr(MSR_VM_HSAVE_PA)).toBe(0x200000n);
  });

  it('VM_CR.LOCK freezes SVMDIS, and SVMDIS forbids EFER.SVME', () => {
    const r = rig();
    r.svm.wrmsr(MSR_VM_CR, BigInt(SVM_VM_CR_SVM_DISABLE | SVM_VM_CR_LOCK));
    r.svm.wrmsr(MSR_VM_CR, 0n);
    expect(r.svm.rdmsr(MSR_VM_CR)).toBe(BigInt(SVM_VM_CR_SVM_DISABLE | SVM_VM_CR_LOCK));
    expect(gp(() => r.svm.wrmsr(MSR_EFER, 0x1d01n))).toBe(13);
    expect(r.svm.wrmsr(MSR_EFER, 0xd01n)).toBe(false); // SVME clear: the CPU's own EFER write
    expect(gp(() => r.svm.wrmsr(MSR_VM_CR, 1n << 8n))).toBe(13);
  });
});
