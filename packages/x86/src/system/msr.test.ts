import { describe, expect, it } from 'vitest';
import { CR0, CR4, EFER, GPR, SEG } from '../cpu/state.js';
import { VEC } from '../cpu/events.js';
import { INTERCEPT } from '../cpu/virt.js';
import { fakeGuestExt, faultOf, sysMachine } from '../../test/system-harness.js';
import { MSR, MSR_CHECK, MSR_TABLE } from './msr-table.js';
import { rdmsrValue, wrmsrValue } from './msr.js';
import { rdmsrInsn, rdtscInsn, wrmsrInsn } from './system.js';

/** A value each check kind accepts, different from the reset value. */
const GOOD: Record<number, bigint> = {
  [MSR_CHECK.ANY]: 0x1234_5678_9abc_def0n,
  [MSR_CHECK.CANONICAL]: 0xffff_8000_0000_1000n,
  [MSR_CHECK.LOW32]: 0x8765_4321n,
  [MSR_CHECK.PAT]: 0x0606_0606_0606_0606n,
  [MSR_CHECK.MTRR_DEF_TYPE]: 0xc06n,
  [MSR_CHECK.MTRR_PHYSBASE]: 0x8000_0006n,
  [MSR_CHECK.MTRR_PHYSMASK]: 0xff_f000_0800n,
  [MSR_CHECK.MTRR_FIXED]: 0x0605_0401_0006_0504n,
  [MSR_CHECK.APIC_BASE]: 0xfec0_0800n,
};

describe('MSR table', () => {
  it('every MSR reads its reset value and reads back what was written', () => {
    const { cpu } = sysMachine();
    for (const m of MSR_TABLE) {
      if (m.check === MSR_CHECK.FIELD || m.check === MSR_CHECK.TSC || m.check === MSR_CHECK.EFER) continue;
      expect(rdmsrValue(cpu, m.index), m.name).toBe(m.reset);
      if (m.check === MSR_CHECK.READ_ONLY) {
        expect(faultOf(() => wrmsrValue(cpu, m.index, m.reset)).vector, m.name).toBe(VEC.GP);
        continue;
      }
      const v = GOOD[m.check]!;
      wrmsrValue(cpu, m.index, v);
      expect(rdmsrValue(cpu, m.index), m.name).toBe(v);
    }
  });

  it('field-backed MSRs land in their CpuState fields, with canonical checks on addresses', () => {
    const { cpu } = sysMachine();
    wrmsrValue(cpu, MSR.LSTAR, 0xffff_ffff_8100_0000n);
    expect(cpu.lstar).toBe(-0x7f000000);
    expect(rdmsrValue(cpu, MSR.LSTAR)).toBe(0xffff_ffff_8100_0000n);
    for (const idx of [MSR.LSTAR, MSR.CSTAR, MSR.FS_BASE, MSR.GS_BASE, MSR.KERNEL_GS_BASE, MSR.SYSENTER_EIP, MSR.SYSENTER_ESP]) {
      expect(faultOf(() => wrmsrValue(cpu, idx, 0x0000_8000_0000_0000n)).code).toBe(0);
    }
    wrmsrValue(cpu, MSR.STAR, 0x0023_0010_0000_0000n);
    expect([cpu.starLo, cpu.starHi]).toEqual([0, 0x00230010]);
    wrmsrValue(cpu, MSR.FS_BASE, 0x7fff_0000_1000n);
    expect(cpu.seg[SEG.FS]!.base).toBe(0x7fff00001000);
    wrmsrValue(cpu, MSR.TSC_AUX, 7n);
    expect(cpu.tscAux).toBe(7);
    expect(faultOf(() => wrmsrValue(cpu, MSR.TSC_AUX, 1n << 32n)).vector).toBe(VEC.GP);
  });

  it('rejects unknown MSRs and invalid memory types', () => {
    const { cpu } = sysMachine();
    expect(faultOf(() => rdmsrValue(cpu, 0x1234)).vector).toBe(VEC.GP);
    expect(faultOf(() => wrmsrValue(cpu, 0x1234, 0n)).vector).toBe(VEC.GP);
    expect(faultOf(() => wrmsrValue(cpu, MSR.PAT, 0x02n)).vector).toBe(VEC.GP); // type 2 is reserved
    expect(faultOf(() => wrmsrValue(cpu, MSR.MTRR_FIX64K_00000, 0x07n)).vector).toBe(VEC.GP); // UC- is PAT-only
    expect(faultOf(() => wrmsrValue(cpu, MSR.MTRR_DEF_TYPE, 0x1006n)).vector).toBe(VEC.GP);
    expect(faultOf(() => wrmsrValue(cpu, MSR.MTRR_PHYSMASK0, 1n << 45n)).vector).toBe(VEC.GP); // above MAXPHYADDR 40
  });

  it('EFER: reserved bits, LME changes while paging, LMA read-only', () => {
    const { cpu } = sysMachine();
    wrmsrValue(cpu, MSR.EFER, BigInt(EFER.SCE | EFER.LME | EFER.NXE | EFER.LMA));
    expect(cpu.efer).toBe(EFER.SCE | EFER.LME | EFER.NXE); // LMA ignored
    expect(faultOf(() => wrmsrValue(cpu, MSR.EFER, 1n << 2n)).vector).toBe(VEC.GP);
    expect(faultOf(() => wrmsrValue(cpu, MSR.EFER, BigInt(EFER.SVME))).vector).toBe(VEC.GP); // no SVM in CPUID
    cpu.cr0 = CR0.PE | CR0.PG;
    expect(faultOf(() => wrmsrValue(cpu, MSR.EFER, BigInt(EFER.SCE))).vector).toBe(VEC.GP);
  });

  it('TSC counts retired instructions, a write moves it through TSC_ADJUST', () => {
    const { cpu } = sysMachine();
    cpu.icount = 500;
    expect(rdmsrValue(cpu, MSR.TSC)).toBe(500n);
    wrmsrValue(cpu, MSR.TSC, 10_000n);
    expect(rdmsrValue(cpu, MSR.TSC_ADJUST)).toBe(9500n);
    cpu.icount = 600;
    rdtscInsn(cpu, false);
    expect([cpu.gpr[GPR.RAX], cpu.gpr[GPR.RDX]]).toEqual([10_100, 0]);
    expect(faultOf(() => rdtscInsn(cpu, true)).vector).toBe(VEC.UD); // the generic model has no RDTSCP
    const g = fakeGuestExt();
    cpu.ext = g.ext;
    rdtscInsn(cpu, false);
    expect(cpu.gpr[GPR.RAX]).toBe(11_100); // + ext.tscOffset()
    expect(g.log).toEqual([{ kind: INTERCEPT.RDTSC, a: 0, b: 0 }]);
    cpu.ext = null;
    cpu.cr4 = CR4.TSD;
    cpu.cr0 = CR0.PE;
    cpu.seg[SEG.SS]!.ar = 0xf3;
    cpu.stateChanged();
    expect(faultOf(() => rdtscInsn(cpu, false)).vector).toBe(VEC.GP);
  });

  it('RDMSR/WRMSR: CPL 0 only, EDX:EAX, guest intercept first', () => {
    const { cpu } = sysMachine();
    cpu.gpr[GPR.RCX] = MSR.PAT;
    rdmsrInsn(cpu);
    expect([cpu.gpr[GPR.RAX], cpu.gpr[GPR.RDX]]).toEqual([0x00070406, 0x00070406]);
    cpu.gpr[GPR.RAX] = 0x06;
    cpu.gpr[GPR.RDX] = 0x04;
    const g = fakeGuestExt();
    cpu.ext = g.ext;
    wrmsrInsn(cpu);
    expect(rdmsrValue(cpu, MSR.PAT)).toBe(0x4_0000_0006n);
    expect(g.log).toEqual([{ kind: INTERCEPT.MSR_WRITE, a: MSR.PAT, b: 0 }]);
    cpu.cr0 = CR0.PE;
    cpu.seg[SEG.SS]!.ar = 0xf3;
    cpu.stateChanged();
    expect(faultOf(() => rdmsrInsn(cpu)).code).toBe(0);
  });
});
