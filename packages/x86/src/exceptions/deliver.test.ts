import { describe, expect, it } from 'vitest';
import { ACTIVITY, CR0, CR4, EFER, GPR, INTERRUPTIBILITY, RFLAGS, SEG, makeSegment } from '../cpu/state.js';
import { EVENT_TYPE, VEC, makeIntrInfo } from '../cpu/events.js';
import { INTERCEPT, STOP } from '../cpu/virt.js';
import { Stopped, fakeGuestExt, faultOf, sysMachine } from '../../test/system-harness.js';
import { flatGdt, writeGate32, writeGate64 } from '../../test/system-tables.js';
import { deliverEvent, iret } from './deliver.js';

const GDT = 0x1000;
const IDT = 0x2000;
const TSS = 0x3000;
const hw = (v: number, code = true) => makeIntrInfo(v, EVENT_TYPE.HW_EXCEPTION, code);

describe('real mode', () => {
  it('vectors through the IVT and pushes FLAGS, CS, IP after the INT', () => {
    const { cpu, mem } = sysMachine();
    cpu.seg[SEG.CS] = makeSegment(0x100, 0x1000, 0xffff, 0x9b);
    cpu.seg[SEG.SS] = makeSegment(0, 0, 0xffff, 0x93);
    cpu.idtr = { base: 0, limit: 0x3ff };
    cpu.rip = 0x20;
    cpu.gpr[GPR.RSP] = 0x8000;
    cpu.setRflags(RFLAGS.FIXED1 | RFLAGS.IF | RFLAGS.TF | RFLAGS.CF);
    cpu.stateChanged();
    mem.write16(0x21 * 4, 0x1234);
    mem.write16(0x21 * 4 + 2, 0x2000);
    deliverEvent(cpu, makeIntrInfo(0x21, EVENT_TYPE.SOFT_INTR, false), -1, 2);
    expect(cpu.gpr[GPR.RSP]).toBe(0x7ffa);
    expect(mem.read16(0x7ffa)).toBe(0x22);
    expect(mem.read16(0x7ffc)).toBe(0x100);
    expect(mem.read16(0x7ffe)).toBe(RFLAGS.FIXED1 | RFLAGS.IF | RFLAGS.TF | RFLAGS.CF);
    expect(cpu.seg[SEG.CS]!.selector).toBe(0x2000);
    expect(cpu.seg[SEG.CS]!.base).toBe(0x20000);
    expect(cpu.rip).toBe(0x1234);
    expect(cpu.getRflags() & (RFLAGS.IF | RFLAGS.TF)).toBe(0);
    expect(cpu.vectoringInfo).toBe(0);
  });
});

describe('real mode error codes', () => {
  it('pushes none and reports none to the extension', () => {
    const { cpu, mem } = sysMachine();
    cpu.seg[SEG.CS] = makeSegment(0, 0, 0xffff, 0x9b);
    cpu.idtr = { base: 0, limit: 0x3ff };
    cpu.gpr[GPR.RSP] = 0x8000;
    cpu.stateChanged();
    mem.write16(13 * 4, 0x2222);
    const g = fakeGuestExt();
    cpu.ext = g.ext;
    deliverEvent(cpu, hw(VEC.GP), 0, 0);
    expect(cpu.gpr[GPR.RSP]).toBe(0x8000 - 6);
    expect(g.events).toEqual([[makeIntrInfo(VEC.GP, EVENT_TYPE.HW_EXCEPTION, false), -1]]);
    expect(cpu.rip).toBe(0x2222);
  });
});

/** 32-bit protected mode at CPL 3, paging off, with the flat GDT, a TSS (SS0:ESP0 = 0x10:0x9000) and an IDT. */
function protected32() {
  const m = sysMachine();
  const { cpu, mem } = m;
  flatGdt(mem, GDT, TSS, false);
  mem.write32(TSS + 4, 0x9000);
  mem.write32(TSS + 8, 0x10);
  cpu.gdtr = { base: GDT, limit: 0x37 };
  cpu.idtr = { base: IDT, limit: 0x7ff };
  cpu.cr0 = CR0.PE | CR0.ET;
  cpu.seg[SEG.CS] = { selector: 0x1b, base: 0, limit: 0xffffffff, ar: 0xc0fb };
  cpu.seg[SEG.SS] = { selector: 0x23, base: 0, limit: 0xffffffff, ar: 0xc0f3 };
  cpu.seg[SEG.TR] = { selector: 0x28, base: TSS, limit: 0x67, ar: 0x8b };
  cpu.rip = 0x5000;
  cpu.gpr[GPR.RSP] = 0x7000;
  cpu.setRflags(RFLAGS.FIXED1 | RFLAGS.IF);
  cpu.stateChanged();
  return m;
}

describe('protected mode', () => {
  it('switches to SS0:ESP0 from the TSS and pushes SS, ESP, EFLAGS, CS, EIP, error code', () => {
    const { cpu, mem } = protected32();
    writeGate32(mem, IDT + 13 * 8, 0x08, 0x6000, 0xe);
    expect(cpu.cpl).toBe(3);
    deliverEvent(cpu, hw(VEC.GP), 0x1234, 0);
    expect(cpu.seg[SEG.SS]!.selector).toBe(0x10);
    expect(cpu.gpr[GPR.RSP]).toBe(0x9000 - 24);
    expect([0, 4, 8, 12, 16, 20].map((o) => mem.read32(0x9000 - 24 + o))).toEqual([0x1234, 0x5000, 0x1b, 0x10202, 0x7000, 0x23]); // #GP is a fault: RF = 1 in the image
    expect(cpu.seg[SEG.CS]!.selector).toBe(0x08);
    expect(cpu.cpl).toBe(0);
    expect(cpu.rip).toBe(0x6000);
    expect(cpu.getRflags() & (RFLAGS.IF | RFLAGS.RF)).toBe(0);
  });

  it('stays on the same stack at the same privilege level and keeps IF for a trap gate', () => {
    const { cpu, mem } = protected32();
    cpu.seg[SEG.CS] = { selector: 0x08, base: 0, limit: 0xffffffff, ar: 0xc09b };
    cpu.seg[SEG.SS] = { selector: 0x10, base: 0, limit: 0xffffffff, ar: 0xc093 };
    cpu.stateChanged();
    writeGate32(mem, IDT + 0x30 * 8, 0x08, 0x6100, 0xf, 3);
    deliverEvent(cpu, makeIntrInfo(0x30, EVENT_TYPE.SOFT_INTR, false), -1, 2);
    expect(cpu.gpr[GPR.RSP]).toBe(0x7000 - 12);
    expect([0, 4, 8].map((o) => mem.read32(0x7000 - 12 + o))).toEqual([0x5002, 0x08, 0x202]);
    expect(cpu.getRflags() & RFLAGS.IF).toBe(RFLAGS.IF);
  });

  it('raises #GP(vector*8+2) for INT n through a gate with DPL < CPL, #NP with EXT for a hardware event', () => {
    const { cpu, mem } = protected32();
    writeGate32(mem, IDT + 0x40 * 8, 0x08, 0x6000, 0xe, 0);
    const f = faultOf(() => deliverEvent(cpu, makeIntrInfo(0x40, EVENT_TYPE.SOFT_INTR, false), -1, 2));
    expect([f.vector, f.code]).toEqual([VEC.GP, 0x40 * 8 + 2]);
    mem.write32(IDT + 0x41 * 8 + 4, 0x0e00); // interrupt gate, not present
    const g = faultOf(() => deliverEvent(cpu, makeIntrInfo(0x41, EVENT_TYPE.EXT_INTR, false), -1, 0));
    expect([g.vector, g.code]).toEqual([VEC.NP, 0x41 * 8 + 3]);
  });

  it('IRET returns to the outer level, popping ESP and SS', () => {
    const { cpu, mem } = protected32();
    writeGate32(mem, IDT + 13 * 8, 0x08, 0x6000, 0xe);
    deliverEvent(cpu, hw(VEC.GP), 0, 0);
    cpu.gpr[GPR.RSP] = cpu.gpr[GPR.RSP]! + 4; // the handler pops the error code
    iret(cpu, 32);
    expect(cpu.seg[SEG.CS]!.selector).toBe(0x1b);
    expect(cpu.seg[SEG.SS]!.selector).toBe(0x23);
    expect(cpu.gpr[GPR.RSP]).toBe(0x7000);
    expect(cpu.rip).toBe(0x5000);
    expect(cpu.cpl).toBe(3);
    expect(cpu.getRflags()).toBe(0x10202); // IRET loads RF from the image
  });
});

describe('virtual-8086 mode', () => {
  it('an interrupt from v86 pushes GS, FS, DS, ES, SS, ESP, EFLAGS, CS, EIP on the ring-0 stack; IRETD returns to v86', () => {
    const { cpu, mem } = protected32();
    writeGate32(mem, IDT + 13 * 8, 0x08, 0x6000, 0xe);
    const v86seg = (sel: number, ar: number) => ({ selector: sel, base: sel << 4, limit: 0xffff, ar });
    cpu.seg[SEG.CS] = v86seg(0x1000, 0xfb);
    cpu.seg[SEG.SS] = v86seg(0x2000, 0xf3);
    cpu.seg[SEG.DS] = v86seg(0x3000, 0xf3);
    cpu.seg[SEG.ES] = v86seg(0x4000, 0xf3);
    cpu.seg[SEG.FS] = v86seg(0x5000, 0xf3);
    cpu.seg[SEG.GS] = v86seg(0x6000, 0xf3);
    cpu.rip = 0x100;
    cpu.gpr[GPR.RSP] = 0xfffe;
    cpu.setRflags(RFLAGS.FIXED1 | RFLAGS.VM | RFLAGS.IF);
    cpu.stateChanged();
    expect(cpu.cpl).toBe(3);
    deliverEvent(cpu, hw(VEC.GP), 0, 0);
    const sp = 0x9000 - 40;
    expect(cpu.gpr[GPR.RSP]).toBe(sp);
    expect([36, 32, 28, 24, 20, 16, 12, 8, 4, 0].map((o) => mem.read32(sp + o)))
      .toEqual([0x6000, 0x5000, 0x3000, 0x4000, 0x2000, 0xfffe, 0x30202, 0x1000, 0x100, 0]);
    expect(cpu.getRflags() & RFLAGS.VM).toBe(0);
    expect(cpu.seg[SEG.DS]!.ar & (1 << 16)).not.toBe(0); // data segments are nulled
    expect(cpu.cpl).toBe(0);
    cpu.gpr[GPR.RSP] = sp + 4;
    iret(cpu, 32);
    expect(cpu.getRflags() & RFLAGS.VM).toBe(RFLAGS.VM);
    expect([cpu.seg[SEG.CS]!.base, cpu.seg[SEG.DS]!.base, cpu.seg[SEG.GS]!.base, cpu.rip, cpu.gpr[GPR.RSP], cpu.cpl])
      .toEqual([0x10000, 0x30000, 0x60000, 0x100, 0xfffe, 3]);
  });

  it('INT n in v86 with IOPL < 3 is #GP(0)', () => {
    const { cpu } = protected32();
    cpu.setRflags(RFLAGS.FIXED1 | RFLAGS.VM);
    cpu.stateChanged();
    expect(faultOf(() => deliverEvent(cpu, makeIntrInfo(0x21, EVENT_TYPE.SOFT_INTR, false), -1, 2))).toMatchObject({ vector: VEC.GP, code: 0 });
  });
});

describe('16-bit gates', () => {
  it('a 16-bit interrupt gate pushes 2-byte FLAGS, CS, IP', () => {
    const { cpu, mem } = protected32();
    cpu.seg[SEG.CS] = { selector: 0x08, base: 0, limit: 0xffffffff, ar: 0xc09b };
    cpu.seg[SEG.SS] = { selector: 0x10, base: 0, limit: 0xffffffff, ar: 0xc093 };
    cpu.stateChanged();
    writeGate32(mem, IDT + 0x31 * 8, 0x08, 0x6100, 0x6, 0);
    deliverEvent(cpu, makeIntrInfo(0x31, EVENT_TYPE.EXT_INTR, false), -1, 0);
    expect(cpu.gpr[GPR.RSP]).toBe(0x7000 - 6);
    expect([mem.read16(0x7000 - 6), mem.read16(0x7000 - 4), mem.read16(0x7000 - 2)]).toEqual([0x5000, 0x08, 0x202]);
    expect(cpu.rip).toBe(0x6100);
  });
});

/** IA-32e mode at CPL 3 with 2 MiB identity pages, RSP0 = 0x9000 and IST1 = 0xa008 in the 64-bit TSS. */
function long64() {
  const m = sysMachine();
  const { cpu, mem } = m;
  const pml4 = 0x10000;
  mem.write64(pml4, 0x11000n | 7n);
  mem.write64(0x11000, 0x12000n | 7n);
  for (let k = 0; k < 2; k++) mem.write64(0x12000 + k * 8, BigInt(k * 0x200000) | 0x87n);
  flatGdt(mem, GDT, TSS, true);
  mem.write32(TSS + 4, 0x9000);
  mem.write32(TSS + 0x24, 0xa008);
  cpu.gdtr = { base: GDT, limit: 0x37 };
  cpu.idtr = { base: IDT, limit: 0xfff };
  cpu.cr3 = pml4;
  cpu.cr4 = CR4.PAE;
  cpu.efer = EFER.LME | EFER.LMA | EFER.SCE;
  cpu.cr0 = CR0.PE | CR0.PG | CR0.ET;
  cpu.seg[SEG.CS] = { selector: 0x1b, base: 0, limit: 0xffffffff, ar: 0xa0fb };
  cpu.seg[SEG.SS] = { selector: 0x23, base: 0, limit: 0xffffffff, ar: 0xc0f3 };
  cpu.seg[SEG.TR] = { selector: 0x28, base: TSS, limit: 0x67, ar: 0x8b };
  cpu.rip = 0x4000;
  cpu.gpr[GPR.RSP] = 0x7ff8;
  cpu.setRflags(RFLAGS.FIXED1 | RFLAGS.IF);
  cpu.stateChanged();
  writeGate64(mem, IDT + VEC.PF * 16, 0x08, 0x6000, 0xe, 0, 1);
  writeGate64(mem, IDT + 0x80 * 16, 0x08, 0x6100, 0xf, 3);
  writeGate64(mem, IDT + VEC.DF * 16, 0x08, 0x6200, 0xe, 0, 1);
  return m;
}

const read64 = (mem: { read64(a: number): bigint }, a: number) => Number(mem.read64(a));

describe('IA-32e mode', () => {
  it('takes the IST stack, aligns it to 16 and pushes an 8-byte frame; SS becomes NULL', () => {
    const { cpu, mem } = long64();
    deliverEvent(cpu, hw(VEC.PF), 6, 0);
    const sp = 0xa000 - 48;
    expect(cpu.gpr[GPR.RSP]).toBe(sp);
    expect([0, 8, 16, 24, 32, 40].map((o) => read64(mem, sp + o))).toEqual([6, 0x4000, 0x1b, 0x10202, 0x7ff8, 0x23]);
    expect(cpu.seg[SEG.CS]!.selector).toBe(0x08);
    expect(cpu.seg[SEG.SS]!.selector).toBe(0);
    expect(cpu.cpl).toBe(0);
    expect(cpu.rip).toBe(0x6000);
    expect(cpu.getRflags() & RFLAGS.IF).toBe(0);
  });

  it('uses RSP0 for INT n from CPL 3 through a DPL-3 trap gate, and IRETQ returns', () => {
    const { cpu, mem } = long64();
    cpu.setRflags(cpu.getRflags() | RFLAGS.RF); // INT n pushes RF = 0 all the same
    deliverEvent(cpu, makeIntrInfo(0x80, EVENT_TYPE.SOFT_INTR, false), -1, 2);
    const sp = 0x9000 - 40;
    expect(cpu.gpr[GPR.RSP]).toBe(sp);
    expect([0, 8, 16, 24, 32].map((o) => read64(mem, sp + o))).toEqual([0x4002, 0x1b, 0x202, 0x7ff8, 0x23]);
    expect(cpu.getRflags() & RFLAGS.IF).toBe(RFLAGS.IF);
    cpu.interruptibility = INTERRUPTIBILITY.NMI;
    iret(cpu, 64);
    expect([cpu.seg[SEG.CS]!.selector, cpu.seg[SEG.SS]!.selector, cpu.gpr[GPR.RSP], cpu.rip, cpu.cpl]).toEqual([0x1b, 0x23, 0x7ff8, 0x4002, 3]);
    expect(cpu.interruptibility & INTERRUPTIBILITY.NMI).toBe(0);
  });

  it('turns a contributory fault during delivery of #GP into #DF with error code 0', () => {
    const { cpu, mem } = long64();
    // Gate 13 not present: delivering #GP raises #NP(13*8+2+EXT), which the run loop delivers next.
    writeGate64(mem, IDT + VEC.GP * 16, 0x08, 0x6000, 0xe, 0, 0, false);
    const f = faultOf(() => deliverEvent(cpu, hw(VEC.GP), 0, 0));
    expect([f.vector, f.code]).toEqual([VEC.NP, 13 * 8 + 3]);
    expect(cpu.vectoringInfo & 0xff).toBe(VEC.GP);
    deliverEvent(cpu, hw(f.vector), f.code, 0);
    expect(cpu.rip).toBe(0x6200);
    expect(read64(mem, cpu.gpr[GPR.RSP]!)).toBe(0);
    expect(cpu.vectoringInfo).toBe(0);
  });

  it('delivers a benign exception raised while delivering an interrupt serially', () => {
    const { cpu } = long64();
    // Empty IDT entries (type 0) are invalid gates: #GP(vector*8+2+EXT).
    const f = faultOf(() => deliverEvent(cpu, makeIntrInfo(0x90, EVENT_TYPE.EXT_INTR, false), -1, 0));
    expect([f.vector, f.code]).toEqual([VEC.GP, 0x90 * 8 + 3]);
    const g = faultOf(() => deliverEvent(cpu, hw(f.vector), f.code, 0));
    expect([g.vector, g.code]).toEqual([VEC.GP, VEC.GP * 8 + 3]); // after an interrupt: not a double fault
  });

  it('reports a fault while delivering #DF as a triple fault (shutdown), or as the SHUTDOWN intercept in guest mode', () => {
    for (const guest of [false, true]) {
      const { cpu, mem } = long64();
      const g = fakeGuestExt();
      if (guest) cpu.ext = g.ext;
      writeGate64(mem, IDT + VEC.GP * 16, 0x08, 0x6000, 0xe, 0, 0, false);
      writeGate64(mem, IDT + VEC.DF * 16, 0x08, 0x6200, 0xe, 0, 1, false);
      const f1 = faultOf(() => deliverEvent(cpu, hw(VEC.GP), 0, 0));
      const f2 = faultOf(() => deliverEvent(cpu, hw(f1.vector), f1.code, 0));
      expect(cpu.vectoringInfo & 0xff).toBe(VEC.DF);
      let stopped: unknown = null;
      try { deliverEvent(cpu, hw(f2.vector), f2.code, 0); } catch (e) { stopped = e; }
      expect(stopped).toBeInstanceOf(Stopped);
      expect((stopped as Stopped).reason).toBe(STOP.SHUTDOWN);
      expect(cpu.activity).toBe(ACTIVITY.SHUTDOWN);
      if (guest) {
        expect(g.log.map((r) => r.kind)).toEqual([INTERCEPT.SHUTDOWN]);
        // The hypervisor saw #GP, the #NP, and the #DF it became; the fault inside #DF is the shutdown.
        expect(g.events.map(([info]) => info & 0xff)).toEqual([VEC.GP, VEC.NP, VEC.DF]);
      }
    }
  });
});
