import { describe, expect, it } from 'vitest';
import { cpuCpl, cpuMode, codeBitness, rflagsLetters, ripLinear } from './vcpu-view-data.js';
import { KVM_REGS_FIELDS, long64Sregs, realSregs, type KvmRegs } from '@kvmts/vmm';
import { resetSregs } from '../../test/fake-stack.js';

describe('vCPU view data', () => {
  it('names the mode and bitness from CR0, EFER and CS', () => {
    const real = realSregs(resetSregs());
    const long = long64Sregs(resetSregs(), 0x200000);
    expect([cpuMode(real), codeBitness(real)]).toEqual(['real', 16]);
    expect([cpuMode(long), codeBitness(long)]).toEqual(['long (64-bit)', 64]);
    expect(cpuMode({ ...long, cs: { ...long.cs, l: 0, db: 1 } })).toBe('long (compat)');
    expect(cpuMode({ ...real, cr0: 1, cs: { ...real.cs, db: 1 } })).toBe('protected (32-bit)');
  });

  it('takes CPL from SS.DPL in protected mode', () => {
    const long = long64Sregs(resetSregs(), 0x200000);
    expect(cpuCpl({ ...long, ss: { ...long.ss, dpl: 3 } })).toBe(3);
    expect(cpuCpl(realSregs(resetSregs()))).toBe(0);
  });

  it('prints RFLAGS as letters, set ones upper-case', () => {
    expect(rflagsLetters(0x246)).toBe('odItsZaPc iopl=0');
    expect(rflagsLetters(0x3002 | 0x801)).toBe('OditszapC iopl=3');
  });

  it('adds CS.base to RIP outside 64-bit mode', () => {
    const regs = Object.fromEntries(KVM_REGS_FIELDS.map((n) => [n, 0n])) as KvmRegs;
    regs.rip = 0xfff0n;
    expect(ripLinear(regs, resetSregs())).toBe(0xfffffff0n);
  });
});
