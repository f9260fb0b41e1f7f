import { describe, expect, it } from 'vitest';
import { AR, CR0, CR4, EFER, RFLAGS, SEG } from '../cpu/state.js';
import { VEC } from '../cpu/events.js';
import { iret } from '../exceptions/deliver.js';
import { Fault, faultOf } from '../../test/system-harness.js';
import { SEL, TSS, TaskMachine, descriptor } from '../../test/tasks32-machine.js';
import { farCall, farJump } from './segments.js';

/** The task machine (task A current, CPL 0) with faults thrown as readable values. */
function machine(): TaskMachine {
  const t = new TaskMachine();
  t.m.cpu.fault = (vector: number, code = -1): never => { throw new Fault(vector, code); };
  t.tss32(TSS.B, { eip: 0x2000, esp: 0x9000 });
  return t;
}

const err = (f: Fault) => [f.vector, f.code];

describe('task switch checks before the switch (SDM Vol. 2 JMP/CALL/IRET)', () => {
  it('a TSS selector with RPL above the TSS DPL: #GP(selector)', () => {
    const t = machine();
    expect(err(faultOf(() => farJump(t.m.cpu, SEL.TSS_B | 3, 0, 32)))).toEqual([VEC.GP, SEL.TSS_B]);
  });

  it('a TSS that is not present: #NP(selector); one named through the LDT: #GP(selector)', () => {
    const t = machine();
    t.setDesc(SEL.TSS_B, ...descriptor(TSS.B, 0x67, 0x09, 0));
    expect(err(faultOf(() => farJump(t.m.cpu, SEL.TSS_B, 0, 32)))).toEqual([VEC.NP, SEL.TSS_B]);
    const l = machine();
    l.setDesc(0x68, ...descriptor(0x600, 0x0f, 0x82, 0)); // an LDT whose first entry is TSS B's descriptor
    l.m.mem.write32(0x600, l.read32(0x500 + SEL.TSS_B));
    l.m.mem.write32(0x604, l.read32(0x500 + SEL.TSS_B + 4));
    l.m.cpu.gdtr = { base: 0x500, limit: 0x6f };
    l.m.cpu.seg[SEG.LDTR] = { selector: 0x68, base: 0x600, limit: 0x0f, ar: 0x82 };
    expect(err(faultOf(() => farCall(l.m.cpu, 0x04, 0, 32, 0)))).toEqual([VEC.GP, 0x04]);
  });

  it('a task gate to a busy TSS: #GP(TSS selector); a JMP to the current (busy) TSS: #GP(selector)', () => {
    const t = machine();
    t.setDesc(SEL.GATE_B, (SEL.TSS_A << 16) >>> 0, 0x85 << 8);
    expect(err(faultOf(() => farCall(t.m.cpu, SEL.GATE_B, 0, 32, 0)))).toEqual([VEC.GP, SEL.TSS_A]);
    expect(err(faultOf(() => farJump(t.m.cpu, SEL.TSS_A, 0, 32)))).toEqual([VEC.GP, SEL.TSS_A]);
  });

  it('IRET with NT and a link to a TSS that is not busy: #TS(link)', () => {
    const t = machine();
    t.m.mem.write16(TSS.A, SEL.TSS_B);
    t.m.cpu.setRflags(RFLAGS.FIXED1 | RFLAGS.NT);
    expect(err(faultOf(() => iret(t.m.cpu, 32)))).toEqual([VEC.TS, SEL.TSS_B]);
    expect(t.m.cpu.seg[SEG.TR]!.selector).toBe(SEL.TSS_A);
  });

  it('IA-32e mode has no task switches: a TSS as far target is #GP(selector), IRET with NT #GP(0)', () => {
    const t = machine();
    const { cpu } = t.m;
    cpu.efer = EFER.LME | EFER.LMA;
    cpu.seg[SEG.CS] = { selector: SEL.CODE, base: 0, limit: 0xffffffff, ar: 0x9b | AR.L | AR.G };
    cpu.stateChanged();
    expect(err(faultOf(() => farJump(cpu, SEL.TSS_B, 0, 64)))).toEqual([VEC.GP, SEL.TSS_B]);
    cpu.setRflags(RFLAGS.FIXED1 | RFLAGS.NT);
    expect(err(faultOf(() => iret(cpu, 64)))).toEqual([VEC.GP, 0]);
  });
});

describe('task switch loads after the commit point (SDM Table 7-1)', () => {
  it('an SS that is not present: #SS(SS selector) in the new task, at CPL 3 until SS loads', () => {
    const t = machine();
    t.setDesc(0x68, ...descriptor(0, 0xfffff, 0x13, 0xc)); // writable data, P = 0
    t.m.cpu.gdtr = { base: 0x500, limit: 0x6f };
    t.tss32(TSS.B, { eip: 0x2000, esp: 0x9000, ss: 0x68 });
    expect(err(faultOf(() => farJump(t.m.cpu, SEL.TSS_B, 0, 32)))).toEqual([VEC.SS, 0x68]);
    const { cpu } = t.m;
    expect(cpu.seg[SEG.TR]!.selector).toBe(SEL.TSS_B);
    expect(cpu.rip).toBe(0x2000);
    expect(cpu.cpl).toBe(3);
    expect(t.descType(SEL.TSS_B)).toBe(0xb);
    expect(t.descType(SEL.TSS_A)).toBe(0x9);
  });

  it('a null CS: #TS(0); a CS whose DPL differs from its RPL: #TS(CS selector)', () => {
    const t = machine();
    t.tss32(TSS.B, { eip: 0x2000, esp: 0x9000, cs: 0 });
    expect(err(faultOf(() => farJump(t.m.cpu, SEL.TSS_B, 0, 32)))).toEqual([VEC.TS, 0]);
    const u = machine();
    u.tss32(TSS.B, { eip: 0x2000, esp: 0x9000, cs: SEL.CODE | 3, ss: SEL.DATA | 3 });
    // SS 0x13 names a DPL-0 segment with RPL 3: SS is checked first.
    expect(err(faultOf(() => farJump(u.m.cpu, SEL.TSS_B, 0, 32)))).toEqual([VEC.TS, SEL.DATA]);
  });

  it('an EIP beyond the new CS limit: #GP(0) after the switch', () => {
    const t = machine();
    t.setDesc(0x68, ...descriptor(0, 0xfff, 0x9b, 0x4)); // 4 KiB code segment
    t.m.cpu.gdtr = { base: 0x500, limit: 0x6f };
    t.tss32(TSS.B, { eip: 0x2000, esp: 0x9000, cs: 0x68 });
    expect(err(faultOf(() => farJump(t.m.cpu, SEL.TSS_B, 0, 32)))).toEqual([VEC.GP, 0]);
    expect(t.m.cpu.seg[SEG.CS]!.selector).toBe(0x68);
  });

  it('CR3 comes from a 32-bit TSS under paging; under PAE a bad PDPTE is #GP(0) in the new task', () => {
    const t = machine();
    const { cpu, mem } = t.m;
    const PD = 0x11000;
    mem.write32(PD, 0x83); // 2 MiB page at 0, writable
    for (const pdpt of [0x10000, 0x12000, 0x13000]) mem.write32(pdpt, PD | 1);
    mem.write32(0x13000 + 8, 0x14000 | 1 | 2); // present with reserved bit 1
    cpu.cr4 = CR4.PAE;
    cpu.cr3 = 0x10000;
    cpu.cr0 |= CR0.PG;
    cpu.stateChanged();
    t.tss32(TSS.B, { eip: 0x2000, esp: 0x9000, cr3: 0x12000 });
    farJump(cpu, SEL.TSS_B, 0, 32);
    expect(cpu.cr3).toBe(0x12000);
    expect(cpu.seg[SEG.TR]!.selector).toBe(SEL.TSS_B);
    t.tss32(TSS.A, { eip: 0x2000, esp: 0x9000, cr3: 0x13000 });
    expect(err(faultOf(() => farJump(cpu, SEL.TSS_A, 0, 32)))).toEqual([VEC.GP, 0]);
    expect(cpu.cr3).toBe(0x12000);
    expect(cpu.seg[SEG.TR]!.selector).toBe(SEL.TSS_A);
    expect(cpu.rip).toBe(0x2000);
  });

  it('the LDT of the new task is loaded before its segments, which may come from it; a bad LDT is #TS(LDT selector)', () => {
    const t = machine();
    const { cpu, mem } = t.m;
    t.setDesc(0x68, ...descriptor(0x600, 0x0f, 0x82, 0));
    cpu.gdtr = { base: 0x500, limit: 0x6f };
    const [lo, hi] = descriptor(0x40000, 0xffff, 0x93, 0);
    mem.write32(0x600, lo);
    mem.write32(0x604, hi);
    t.tss32(TSS.B, { eip: 0x2000, esp: 0x9000, ldt: 0x68, ds: 0x04 });
    farJump(cpu, SEL.TSS_B, 0, 32);
    expect(cpu.seg[SEG.LDTR]).toMatchObject({ selector: 0x68, base: 0x600, limit: 0x0f });
    expect(cpu.seg[SEG.DS]).toMatchObject({ selector: 0x04, base: 0x40000, limit: 0xffff });
    const u = machine();
    u.tss32(TSS.B, { eip: 0x2000, esp: 0x9000, ldt: SEL.DATA });
    expect(err(faultOf(() => farJump(u.m.cpu, SEL.TSS_B, 0, 32)))).toEqual([VEC.TS, SEL.DATA]);
  });
});
