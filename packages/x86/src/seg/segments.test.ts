import { describe, expect, it } from 'vitest';
import { AR, CR0, CR4, EFER, GPR, RFLAGS, SEG, makeSegment } from '../cpu/state.js';
import { VEC } from '../cpu/events.js';
import { faultOf, sysMachine } from '../../test/system-harness.js';
import { ACC, FLG, descriptor, flatGdt, writeDescriptor, writeGate32 } from '../../test/system-tables.js';
import { farCall, farJump, farReturn, loadSegment } from './segments.js';
import { descTableInsn } from '../system/system.js';
import { DESC_OP } from '../cpu/virt.js';

const GDT = 0x1000;
const TSS = 0x3000;

function protectedMode(cpl: 0 | 3 = 0) {
  const m = sysMachine();
  const { cpu, mem } = m;
  flatGdt(mem, GDT, TSS, false);
  writeDescriptor(mem, GDT, 0x30, descriptor(0x10000, 0xff, 0x92 & ~0x80, FLG.NONE)); // not present
  writeDescriptor(mem, GDT, 0x38, descriptor(0, 0xfffff, 0x98, FLG.F32)); // execute-only code
  writeDescriptor(mem, GDT, 0x40, descriptor(0x20000, 0xfff, ACC.DATA0, FLG.NONE)); // small DPL-0 data
  writeDescriptor(mem, GDT, 0x48, descriptor(0, 0xfffff, ACC.CODE0, FLG.F64)); // 64-bit code
  mem.write32(TSS + 4, 0x9000);
  mem.write32(TSS + 8, 0x10);
  cpu.gdtr = { base: GDT, limit: 0x4f };
  cpu.cr0 = CR0.PE | CR0.ET;
  const c = cpl === 0 ? { cs: 0x08, ss: 0x10, car: 0xc09b, sar: 0xc093 } : { cs: 0x1b, ss: 0x23, car: 0xc0fb, sar: 0xc0f3 };
  cpu.seg[SEG.CS] = { selector: c.cs, base: 0, limit: 0xffffffff, ar: c.car };
  cpu.seg[SEG.SS] = { selector: c.ss, base: 0, limit: 0xffffffff, ar: c.sar };
  cpu.seg[SEG.TR] = { selector: 0x28, base: TSS, limit: 0x67, ar: 0x8b };
  cpu.gpr[GPR.RSP] = 0x7000;
  cpu.rip = 0x5000;
  cpu.stateChanged();
  return m;
}

describe('loadSegment', () => {
  it('real mode: base = selector * 16', () => {
    const { cpu } = sysMachine();
    loadSegment(cpu, SEG.DS, 0x1234);
    expect(cpu.seg[SEG.DS]).toMatchObject({ selector: 0x1234, base: 0x12340, limit: 0xffff });
  });

  it('protected mode: loads base/limit/AR from the GDT and sets the accessed bit', () => {
    const { cpu, mem } = protectedMode();
    loadSegment(cpu, SEG.ES, 0x40);
    expect(cpu.seg[SEG.ES]).toEqual({ selector: 0x40, base: 0x20000, limit: 0xfff, ar: 0x93 });
    expect((mem.read32(GDT + 0x44) >>> 8) & 1).toBe(1);
  });

  it('raises the SDM faults with selector error codes', () => {
    const { cpu } = protectedMode();
    expect(faultOf(() => loadSegment(cpu, SEG.DS, 0x30))).toMatchObject({ vector: VEC.NP, code: 0x30 });
    expect(faultOf(() => loadSegment(cpu, SEG.SS, 0x30))).toMatchObject({ vector: VEC.SS, code: 0x30 }); // not-present stack: #SS
    expect(faultOf(() => loadSegment(cpu, SEG.DS, 0x38))).toMatchObject({ vector: VEC.GP, code: 0x38 }); // execute-only
    expect(faultOf(() => loadSegment(cpu, SEG.SS, 0x08))).toMatchObject({ vector: VEC.GP, code: 0x08 }); // code into SS
    expect(faultOf(() => loadSegment(cpu, SEG.SS, 0x23))).toMatchObject({ vector: VEC.GP, code: 0x20 }); // RPL != CPL
    expect(faultOf(() => loadSegment(cpu, SEG.DS, 0x58))).toMatchObject({ vector: VEC.GP, code: 0x58 }); // beyond GDT limit
    expect(faultOf(() => loadSegment(cpu, SEG.SS, 0))).toMatchObject({ vector: VEC.GP, code: 0 });
    expect(faultOf(() => loadSegment(cpu, SEG.DS, 0x04))).toMatchObject({ vector: VEC.GP, code: 0x04 }); // LDT, none loaded
    loadSegment(cpu, SEG.FS, 0);
    expect(cpu.seg[SEG.FS]!.ar & AR.UNUSABLE).toBe(AR.UNUSABLE);
  });

  it('loads from the LDT after LLDT, and checks the LDT limit', () => {
    const { cpu, mem } = protectedMode();
    writeDescriptor(mem, GDT, 0x50, descriptor(0x8000, 0x17, ACC.LDT, FLG.NONE));
    writeDescriptor(mem, 0x8000, 0x08, descriptor(0x30000, 0xffff, ACC.DATA0, FLG.NONE));
    cpu.gdtr.limit = 0x57;
    cpu.gpr[GPR.RAX] = 0x50;
    const reg = { isReg: true, reg1: GPR.RAX, reg2: 0, seg: SEG.DS, base: -1, index: -1, scale: 0, addrSize: 32 as const, opSize: 16 as const, disp: 0, offset: 0 };
    descTableInsn(cpu, DESC_OP.LLDT, reg);
    expect(cpu.seg[SEG.LDTR]).toEqual({ selector: 0x50, base: 0x8000, limit: 0x17, ar: 0x82 });
    loadSegment(cpu, SEG.DS, 0x0c);
    expect(cpu.seg[SEG.DS]).toMatchObject({ selector: 0x0c, base: 0x30000, limit: 0xffff });
    expect(faultOf(() => loadSegment(cpu, SEG.ES, 0x1c))).toMatchObject({ vector: VEC.GP, code: 0x1c });
  });

  it('CPL 3 cannot load a DPL-0 data segment', () => {
    const { cpu } = protectedMode(3);
    expect(faultOf(() => loadSegment(cpu, SEG.DS, 0x43))).toMatchObject({ vector: VEC.GP, code: 0x40 });
    loadSegment(cpu, SEG.DS, 0x23);
    expect(cpu.seg[SEG.DS]!.selector).toBe(0x23);
  });
});

describe('far transfers', () => {
  it('real mode JMP far loads CS base = selector * 16', () => {
    const { cpu } = sysMachine();
    cpu.seg[SEG.CS] = makeSegment(0, 0, 0xffff, 0x9b);
    cpu.stateChanged();
    farJump(cpu, 0x0800, 0x0010, 16);
    expect([cpu.seg[SEG.CS]!.base, cpu.rip]).toEqual([0x8000, 0x10]);
  });

  it('JMP far into 64-bit code switches to 64-bit mode in IA-32e mode', () => {
    const { cpu } = protectedMode();
    cpu.cr4 = CR4.PAE;
    cpu.efer = EFER.LME | EFER.LMA;
    cpu.stateChanged();
    farJump(cpu, 0x48, 0x123456, 32);
    expect(cpu.seg[SEG.CS]!.ar & AR.L).toBe(AR.L);
    expect(cpu.rip).toBe(0x123456);
  });

  it('CALL far then RET far at the same privilege', () => {
    const { cpu, mem } = protectedMode();
    farCall(cpu, 0x08, 0x6000, 32, 0x5007);
    expect([mem.read32(0x7000 - 8), mem.read32(0x7000 - 4)]).toEqual([0x5007, 0x08]);
    expect(cpu.rip).toBe(0x6000);
    farReturn(cpu, 32, 8);
    expect([cpu.rip, cpu.gpr[GPR.RSP]]).toEqual([0x5007, 0x7008]);
  });

  it('a call gate to ring 0 switches to the TSS stack, copies parameters, and RET far returns to ring 3', () => {
    const { cpu, mem } = protectedMode(3);
    writeGate32(mem, GDT + 0x50, 0x08, 0x6000, 0xc, 3, 2); // 32-bit call gate, DPL 3, 2 parameters
    cpu.gdtr.limit = 0x57;
    mem.write32(0x7000, 0xaaaa);
    mem.write32(0x7004, 0xbbbb);
    farCall(cpu, 0x53, 0, 32, 0x5007);
    expect(cpu.cpl).toBe(0);
    expect(cpu.seg[SEG.SS]!.selector).toBe(0x10);
    const sp = 0x9000 - 24;
    expect(cpu.gpr[GPR.RSP]).toBe(sp);
    // From the top: SS, ESP, param 2, param 1, CS, EIP.
    expect([20, 16, 12, 8, 4, 0].map((o) => mem.read32(sp + o))).toEqual([0x23, 0x7000, 0xbbbb, 0xaaaa, 0x1b, 0x5007]);
    expect(cpu.rip).toBe(0x6000);
    farReturn(cpu, 32, 8);
    expect([cpu.cpl, cpu.seg[SEG.CS]!.selector, cpu.seg[SEG.SS]!.selector, cpu.gpr[GPR.RSP], cpu.rip]).toEqual([3, 0x1b, 0x23, 0x7008, 0x5007]);
  });

  it('a 64-bit call gate from ring 3 takes RSP0 and a NULL SS, and RETF returns', () => {
    const { cpu, mem } = protectedMode(3);
    mem.write64(0x10000, 0x11000n | 7n);
    mem.write64(0x11000, 0x12000n | 7n);
    mem.write64(0x12000, 0x87n);
    cpu.cr3 = 0x10000;
    cpu.cr4 = CR4.PAE;
    cpu.efer = EFER.LME | EFER.LMA;
    cpu.cr0 = CR0.PE | CR0.PG | CR0.ET;
    mem.write32(TSS + 4, 0x9000); // RSP0 in the 64-bit TSS
    mem.write32(TSS + 8, 0);
    // 16-byte call gate at 0x50 to 0x48:0x6000 (64-bit ring-0 code).
    writeGate32(mem, GDT + 0x50, 0x48, 0x6000, 0xc, 3);
    mem.write32(GDT + 0x58, 0);
    mem.write32(GDT + 0x5c, 0);
    writeDescriptor(mem, GDT, 0x60, descriptor(0, 0xfffff, ACC.CODE3, FLG.F64));
    cpu.gdtr.limit = 0x67;
    cpu.seg[SEG.CS] = { selector: 0x63, base: 0, limit: 0xffffffff, ar: 0xa0fb };
    cpu.stateChanged();
    farCall(cpu, 0x53, 0, 64, 0x5007);
    expect([cpu.cpl, cpu.seg[SEG.CS]!.selector, cpu.seg[SEG.SS]!.selector, cpu.rip]).toEqual([0, 0x48, 0, 0x6000]);
    const sp = 0x9000 - 32;
    expect(cpu.gpr[GPR.RSP]).toBe(sp);
    expect([24, 16, 8, 0].map((o) => Number(mem.read64(sp + o)))).toEqual([0x23, 0x7000, 0x63, 0x5007]);
    farReturn(cpu, 64, 0);
    expect([cpu.cpl, cpu.seg[SEG.CS]!.selector, cpu.seg[SEG.SS]!.selector, cpu.gpr[GPR.RSP], cpu.rip]).toEqual([3, 0x63, 0x23, 0x7000, 0x5007]);
  });

  it('RET to an outer level nulls data segments the new CPL may not use', () => {
    const { cpu, mem } = protectedMode();
    loadSegment(cpu, SEG.DS, 0x10);
    loadSegment(cpu, SEG.ES, 0x23);
    mem.write32(0x7000, 0x5000);
    mem.write32(0x7004, 0x1b);
    mem.write32(0x7008, 0x6ff0);
    mem.write32(0x700c, 0x23);
    farReturn(cpu, 32, 0);
    expect(cpu.cpl).toBe(3);
    expect(cpu.seg[SEG.DS]!.ar & AR.UNUSABLE).toBe(AR.UNUSABLE);
    expect(cpu.seg[SEG.ES]!.selector).toBe(0x23);
    expect(cpu.gpr[GPR.RSP]).toBe(0x6ff0);
  });

  it('pushes beyond the stack limit raise #SS(0), for expand-up and expand-down stacks', () => {
    const { cpu } = protectedMode();
    cpu.seg[SEG.SS] = { selector: 0x10, base: 0, limit: 0xfff, ar: 0x4093 };
    cpu.gpr[GPR.RSP] = 0x2000;
    expect(faultOf(() => farCall(cpu, 0x08, 0x6000, 32, 0x5007))).toMatchObject({ vector: VEC.SS, code: 0 });
    cpu.gpr[GPR.RSP] = 0x1000;
    farCall(cpu, 0x08, 0x6000, 32, 0x5007);
    expect(cpu.gpr[GPR.RSP]).toBe(0xff8);
    // Expand-down: valid offsets are limit+1 .. 0xffffffff.
    cpu.seg[SEG.SS] = { selector: 0x10, base: 0, limit: 0xfff, ar: 0x4097 };
    cpu.gpr[GPR.RSP] = 0x1004;
    expect(faultOf(() => farCall(cpu, 0x08, 0x6000, 32, 0x5007))).toMatchObject({ vector: VEC.SS, code: 0 });
  });

  it('direct JMP to a more privileged non-conforming segment is #GP(selector)', () => {
    const { cpu } = protectedMode(3);
    expect(faultOf(() => farJump(cpu, 0x08, 0, 32))).toMatchObject({ vector: VEC.GP, code: 0x08 });
    expect(faultOf(() => farJump(cpu, 0, 0, 32))).toMatchObject({ vector: VEC.GP, code: 0 });
    expect(cpu.getRflags() & RFLAGS.VM).toBe(0);
  });
});
