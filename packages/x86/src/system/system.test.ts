import { describe, expect, it } from 'vitest';
import { ACTIVITY, CR0, CR4, EFER, GPR, INTERRUPTIBILITY, RFLAGS, SEG } from '../cpu/state.js';
import { VEC } from '../cpu/events.js';
import { DESC_OP, INTERCEPT, type InsnOperand } from '../cpu/virt.js';
import { fakeGuestExt, faultOf, sysMachine } from '../../test/system-harness.js';
import { flatGdt } from '../../test/system-tables.js';
import { getReg64, setReg64 } from './regs.js';
import {
  checkIoPermission, cliInsn, cltsInsn, cpuidInsn, descTableInsn, hltInsn, invlpgInsn, lmswInsn, movFromCr, movToCr,
  movToDr, movFromDr, smswValue, stiInsn, swapgsInsn, syscallInsn, sysenterInsn, sysexitInsn, sysretInsn,
} from './system.js';

function ring3(cpu: ReturnType<typeof sysMachine>['cpu'], iopl = 0) {
  cpu.cr0 = CR0.PE | CR0.ET;
  cpu.seg[SEG.CS] = { selector: 0x1b, base: 0, limit: 0xffffffff, ar: 0xc0fb };
  cpu.seg[SEG.SS] = { selector: 0x23, base: 0, limit: 0xffffffff, ar: 0xc0f3 };
  cpu.setRflags(RFLAGS.FIXED1 | (iopl << RFLAGS.IOPL_SHIFT));
  cpu.stateChanged();
}

function memOperand(offset: number, opSize: 16 | 32 | 64 = 32): InsnOperand {
  return { isReg: false, reg1: 0, reg2: 0, seg: SEG.DS, base: -1, index: -1, scale: 0, addrSize: 32, opSize, disp: offset, offset };
}

/** Flat 64-bit kernel: paging with 2 MiB identity pages, CS 0x08 (L), SS 0x10. */
function kernel64() {
  const m = sysMachine();
  const { cpu, mem } = m;
  mem.write64(0x10000, 0x11000n | 7n);
  mem.write64(0x11000, 0x12000n | 7n);
  for (let k = 0; k < 2; k++) mem.write64(0x12000 + k * 8, BigInt(k * 0x200000) | 0x87n);
  cpu.cr3 = 0x10000;
  cpu.cr4 = CR4.PAE;
  cpu.efer = EFER.LME | EFER.LMA | EFER.SCE;
  cpu.cr0 = CR0.PE | CR0.PG | CR0.ET;
  cpu.seg[SEG.CS] = { selector: 0x08, base: 0, limit: 0xffffffff, ar: 0xa09b };
  cpu.seg[SEG.SS] = { selector: 0x10, base: 0, limit: 0xffffffff, ar: 0xc093 };
  cpu.stateChanged();
  return m;
}

describe('control registers', () => {
  it('MOV CR0 checks PG without PE, NW without CD, reserved bits; flushes on PG/WP changes', () => {
    const { cpu, flushes } = sysMachine();
    setReg64(cpu, GPR.RAX, CR0.PG | CR0.ET);
    expect(faultOf(() => movToCr(cpu, 0, GPR.RAX)).code).toBe(0);
    setReg64(cpu, GPR.RAX, CR0.NW | CR0.ET);
    expect(faultOf(() => movToCr(cpu, 0, GPR.RAX)).code).toBe(0);
    setReg64(cpu, GPR.RAX, CR0.PE | (1 << 20));
    expect(faultOf(() => movToCr(cpu, 0, GPR.RAX)).code).toBe(0);
    setReg64(cpu, GPR.RAX, CR0.PE | CR0.WP);
    movToCr(cpu, 0, GPR.RAX);
    expect(cpu.cr0).toBe(CR0.PE | CR0.WP | CR0.ET);
    expect(flushes.length).toBe(1);
  });

  it('enabling paging with EFER.LME needs CR4.PAE and sets EFER.LMA; long mode forbids clearing PAE', () => {
    const { cpu } = sysMachine();
    cpu.cr0 = CR0.PE | CR0.ET;
    cpu.efer = EFER.LME;
    setReg64(cpu, GPR.RAX, CR0.PE | CR0.PG);
    expect(faultOf(() => movToCr(cpu, 0, GPR.RAX)).vector).toBe(VEC.GP);
    cpu.cr4 = CR4.PAE;
    cpu.seg[SEG.CS]!.ar = 0xa09b; // CS.L = 1 while activating IA-32e mode
    expect(faultOf(() => movToCr(cpu, 0, GPR.RAX)).vector).toBe(VEC.GP);
    cpu.seg[SEG.CS]!.ar = 0xc09b;
    movToCr(cpu, 0, GPR.RAX);
    expect(cpu.efer).toBe(EFER.LME | EFER.LMA);
    setReg64(cpu, GPR.RBX, 0);
    expect(faultOf(() => movToCr(cpu, 4, GPR.RBX)).vector).toBe(VEC.GP);
    // In 64-bit code, clearing PG is #GP; from compatibility mode it leaves IA-32e mode.
    cpu.seg[SEG.CS]!.ar = 0xa09b;
    setReg64(cpu, GPR.RAX, CR0.PE);
    expect(faultOf(() => movToCr(cpu, 0, GPR.RAX)).vector).toBe(VEC.GP);
    cpu.seg[SEG.CS]!.ar = 0xc09b;
    movToCr(cpu, 0, GPR.RAX);
    expect(cpu.efer).toBe(EFER.LME);
  });

  it('MOV CR4 rejects bits CPUID does not report; MOV CR3 flushes; MOV from CR0 in 64-bit mode is 64-bit', () => {
    const { cpu, flushes } = kernel64();
    setReg64(cpu, GPR.RAX, CR4.PAE | CR4.SMEP); // the generic model has no SMEP
    expect(faultOf(() => movToCr(cpu, 4, GPR.RAX)).vector).toBe(VEC.GP);
    setReg64(cpu, GPR.RAX, 0x10000);
    movToCr(cpu, 3, GPR.RAX);
    expect(flushes).toEqual([[undefined, undefined]]);
    setReg64(cpu, GPR.RAX, 2 ** 45); // above MAXPHYADDR
    expect(faultOf(() => movToCr(cpu, 3, GPR.RAX)).vector).toBe(VEC.GP);
    setReg64(cpu, GPR.RDX, -1);
    movFromCr(cpu, 0, GPR.RDX);
    expect(getReg64(cpu, GPR.RDX)).toBe((CR0.PE | CR0.PG | CR0.ET) >>> 0);
    expect(faultOf(() => movToCr(cpu, 5, GPR.RAX)).vector).toBe(VEC.UD);
  });

  it('PAE paging checks the PDPTEs on MOV CR3', () => {
    const { cpu, mem } = sysMachine();
    mem.write64(0x20000, 0x30000n | 1n | (1n << 5n)); // bit 5 is reserved in a PDPTE
    cpu.cr4 = CR4.PAE;
    cpu.cr0 = CR0.PE | CR0.PG | CR0.ET;
    setReg64(cpu, GPR.RAX, 0x20000);
    expect(faultOf(() => movToCr(cpu, 3, GPR.RAX)).vector).toBe(VEC.GP);
    mem.write64(0x20000, 0x30000n | 1n);
    movToCr(cpu, 3, GPR.RAX);
    expect(cpu.cr3).toBe(0x20000);
  });

  it('guest mode: CR_WRITE intercept, then crWrite decides the value; CR_READ then crRead', () => {
    const { cpu } = sysMachine();
    const g = fakeGuestExt();
    g.ext.crWrite = (_cr, v, cur) => (v & ~CR0.CD) | (cur & CR0.CD);
    g.ext.crRead = (_cr, v) => v | CR0.NE;
    cpu.ext = g.ext;
    setReg64(cpu, GPR.RCX, CR0.PE | CR0.ET);
    movToCr(cpu, 0, GPR.RCX);
    expect(cpu.cr0 & CR0.CD).toBe(CR0.CD); // the host kept CD
    movFromCr(cpu, 0, GPR.RBX);
    expect(cpu.gpr[GPR.RBX]! & CR0.NE).toBe(CR0.NE);
    expect(g.log).toEqual([{ kind: INTERCEPT.CR_WRITE, a: 0, b: GPR.RCX }, { kind: INTERCEPT.CR_READ, a: 0, b: GPR.RBX }]);
  });

  it('CR access at CPL 3 is #GP(0); LMSW cannot clear PE; INVLPG flushes one page', () => {
    const { cpu, flushes } = sysMachine();
    cpu.cr0 = CR0.PE | CR0.ET;
    lmswInsn(cpu, 0xe, false);
    expect(cpu.cr0 & 0xf).toBe(0xf);
    invlpgInsn(cpu, 0x1234000);
    expect(flushes[flushes.length - 1]).toEqual([undefined, 0x1234000]);
    cpu.cr0 |= CR0.PG; // 32-bit paging without PSE: 4 KiB pages only, one page goes
    invlpgInsn(cpu, 0x5000);
    expect(flushes[flushes.length - 1]).toEqual([undefined, 0x5000]);
    cpu.cr4 = CR4.PSE; // 4 MiB pages possible: the whole TLB goes
    invlpgInsn(cpu, 0x5000);
    expect(flushes[flushes.length - 1]).toEqual([undefined, undefined]);
    cpu.cr0 &= ~CR0.PG;
    cpu.cr4 = 0;
    ring3(cpu);
    expect(faultOf(() => movToCr(cpu, 0, GPR.RAX)).code).toBe(0);
    expect(faultOf(() => invlpgInsn(cpu, 0)).code).toBe(0);
  });

  it('CLTS clears CR0.TS; SMSW returns CR0 (the guest sees its read shadow)', () => {
    const { cpu } = sysMachine();
    cpu.cr0 = CR0.PE | CR0.TS | CR0.ET;
    cltsInsn(cpu);
    expect(cpu.cr0 & CR0.TS).toBe(0);
    const g = fakeGuestExt();
    g.ext.crRead = (_cr, v) => v | CR0.TS;
    cpu.ext = g.ext;
    expect(smswValue(cpu) & CR0.TS).toBe(CR0.TS);
    cpu.ext = null;
    ring3(cpu);
    expect(smswValue(cpu) & 0xffff).toBe((CR0.PE | CR0.ET) & 0xffff);
    expect(faultOf(() => cltsInsn(cpu)).code).toBe(0);
  });

  it('enabling PAE paging checks the PDPTEs CR3 points to', () => {
    const { cpu, mem } = sysMachine();
    mem.write64(0x20000, 0x30000n | 1n | (1n << 7n)); // PS is reserved in a PAE PDPTE
    cpu.cr0 = CR0.PE | CR0.ET;
    cpu.cr4 = CR4.PAE;
    cpu.cr3 = 0x20000;
    setReg64(cpu, GPR.RAX, CR0.PE | CR0.PG);
    expect(faultOf(() => movToCr(cpu, 0, GPR.RAX)).vector).toBe(VEC.GP);
    expect(cpu.cr0 & CR0.PG).toBe(0);
  });

  it('debug registers: DR4/5 alias DR6/7 unless CR4.DE; DR6/DR7 fixed bits', () => {
    const { cpu } = sysMachine();
    setReg64(cpu, GPR.RAX, 0);
    movToDr(cpu, 5, GPR.RAX);
    expect(cpu.dr[7]).toBe(0x400);
    movToDr(cpu, 6, GPR.RAX);
    movFromDr(cpu, 4, GPR.RBX);
    expect(cpu.gpr[GPR.RBX]! >>> 0).toBe(0xffff0ff0);
    cpu.cr4 = CR4.DE;
    expect(faultOf(() => movToDr(cpu, 4, GPR.RAX)).vector).toBe(VEC.UD);
  });
});

describe('SYSCALL, SYSRET, SYSENTER, SYSEXIT, SWAPGS', () => {
  it('SYSCALL saves RIP/RFLAGS in RCX/R11, masks RFLAGS with FMASK and enters LSTAR at CPL 0', () => {
    const { cpu } = kernel64();
    cpu.starHi = 0x00230010;
    cpu.lstar = -0x7f000000;
    cpu.sfmask = RFLAGS.IF | RFLAGS.TF;
    cpu.seg[SEG.CS] = { selector: 0x33, base: 0, limit: 0xffffffff, ar: 0xa0fb };
    cpu.seg[SEG.SS] = { selector: 0x2b, base: 0, limit: 0xffffffff, ar: 0xc0f3 };
    cpu.setRflags(RFLAGS.FIXED1 | RFLAGS.IF | RFLAGS.CF);
    cpu.rip = 0x401002;
    cpu.stateChanged();
    syscallInsn(cpu);
    expect(getReg64(cpu, GPR.RCX)).toBe(0x401002);
    expect(cpu.gpr[GPR.R11]).toBe(0x203);
    expect(cpu.rip).toBe(-0x7f000000);
    expect(cpu.getRflags()).toBe(RFLAGS.FIXED1 | RFLAGS.CF);
    expect([cpu.seg[SEG.CS]!.selector, cpu.seg[SEG.SS]!.selector, cpu.cpl]).toEqual([0x10, 0x18, 0]);
    // SYSRET with REX.W: CS = STAR[63:48]+16 | 3, SS = STAR[63:48]+8 | 3, RFLAGS from R11.
    sysretInsn(cpu, 64);
    expect([cpu.seg[SEG.CS]!.selector, cpu.seg[SEG.SS]!.selector, cpu.cpl, cpu.rip]).toEqual([0x33, 0x2b, 3, 0x401002]);
    expect(cpu.getRflags()).toBe(0x203);
  });

  it('SYSCALL is #UD with EFER.SCE = 0; SYSRET to a non-canonical RCX is #GP; SYSRET at CPL 3 is #GP', () => {
    const { cpu } = kernel64();
    cpu.efer &= ~EFER.SCE;
    expect(faultOf(() => syscallInsn(cpu)).vector).toBe(VEC.UD);
    cpu.efer |= EFER.SCE;
    setReg64(cpu, GPR.RCX, 0x0000_8000_0000_0000);
    expect(faultOf(() => sysretInsn(cpu, 64)).vector).toBe(VEC.GP);
    cpu.seg[SEG.SS]!.ar = 0xc0f3;
    cpu.stateChanged();
    setReg64(cpu, GPR.RCX, 0x1000);
    expect(faultOf(() => sysretInsn(cpu, 64)).vector).toBe(VEC.GP);
  });

  it('SYSENTER/SYSEXIT use IA32_SYSENTER_CS-relative selectors', () => {
    const { cpu } = kernel64();
    cpu.sysenterCs = 0x08;
    cpu.sysenterEip = 0x5000;
    cpu.sysenterEsp = 0x9000;
    setReg64(cpu, GPR.RDX, 0x401000);
    setReg64(cpu, GPR.RCX, 0x7fff0000);
    sysexitInsn(cpu, 64);
    expect([cpu.seg[SEG.CS]!.selector, cpu.seg[SEG.SS]!.selector, cpu.cpl, cpu.rip]).toEqual([0x2b, 0x33, 3, 0x401000]);
    expect(getReg64(cpu, GPR.RSP)).toBe(0x7fff0000);
    sysenterInsn(cpu);
    expect([cpu.seg[SEG.CS]!.selector, cpu.seg[SEG.SS]!.selector, cpu.cpl, cpu.rip]).toEqual([0x08, 0x10, 0, 0x5000]);
    expect(getReg64(cpu, GPR.RSP)).toBe(0x9000);
    cpu.sysenterCs = 0;
    expect(faultOf(() => sysenterInsn(cpu)).code).toBe(0);
  });

  it('SWAPGS exchanges GS.base and KERNEL_GS_BASE, only in 64-bit mode', () => {
    const { cpu } = kernel64();
    cpu.seg[SEG.GS]!.base = 0x1000;
    cpu.kernelGsBase = -0x10000;
    swapgsInsn(cpu);
    expect([cpu.seg[SEG.GS]!.base, cpu.kernelGsBase]).toEqual([-0x10000, 0x1000]);
    cpu.seg[SEG.CS]!.ar = 0xc09b;
    cpu.stateChanged();
    expect(faultOf(() => swapgsInsn(cpu)).vector).toBe(VEC.UD);
  });
});

describe('CPUID, HLT, CLI/STI, I/O permission', () => {
  it('CPUID returns the model leaf (zero-extended) after the guest intercept', () => {
    const { cpu } = sysMachine();
    cpu.gpr[GPR.RAX] = 0;
    cpu.gprHi[GPR.RBX] = -1;
    const g = fakeGuestExt();
    cpu.ext = g.ext;
    cpuidInsn(cpu);
    const [a, b, c, d] = cpu.model.cpuid(0, 0);
    expect([cpu.gpr[GPR.RAX], cpu.gpr[GPR.RBX], cpu.gpr[GPR.RCX], cpu.gpr[GPR.RDX]]).toEqual([a | 0, b | 0, c | 0, d | 0]);
    expect(cpu.gprHi[GPR.RBX]).toBe(0);
    expect(g.log).toEqual([{ kind: INTERCEPT.CPUID, a: 0, b: 0 }]);
  });

  it('HLT enters the HLT activity state at CPL 0 and is #GP at CPL 3', () => {
    const { cpu } = sysMachine();
    hltInsn(cpu);
    expect(cpu.activity).toBe(ACTIVITY.HLT);
    ring3(cpu);
    expect(faultOf(() => hltInsn(cpu)).code).toBe(0);
  });

  it('STI sets the interrupt shadow only when IF goes 0 -> 1; CLI/STI need CPL <= IOPL', () => {
    const { cpu } = sysMachine();
    stiInsn(cpu);
    expect(cpu.interruptibility).toBe(INTERRUPTIBILITY.STI);
    cpu.interruptibility = 0;
    stiInsn(cpu);
    expect(cpu.interruptibility).toBe(0);
    ring3(cpu, 0);
    expect(faultOf(() => cliInsn(cpu)).code).toBe(0);
    ring3(cpu, 3);
    cpu.setRflags(cpu.getRflags() | RFLAGS.IF);
    cliInsn(cpu);
    expect(cpu.getRflags() & RFLAGS.IF).toBe(0);
  });

  it('checks the TSS I/O bitmap when CPL > IOPL', () => {
    const { cpu, mem } = sysMachine();
    ring3(cpu, 0);
    const tss = 0x3000;
    mem.write16(tss + 0x66, 0x68);
    mem.write8(tss + 0x68 + (0x3f8 >>> 3), 0x00);
    mem.write8(tss + 0x68 + (0x3f8 >>> 3) + 1, 0x01); // port 0x400 denied
    cpu.seg[SEG.TR] = { selector: 0x28, base: tss, limit: 0x68 + 0x2000, ar: 0x8b };
    checkIoPermission(cpu, 0x3f8, 1);
    checkIoPermission(cpu, 0x3fc, 4);
    expect(faultOf(() => checkIoPermission(cpu, 0x3fe, 4)).code).toBe(0); // 0x3fe..0x401 covers 0x400
    cpu.seg[SEG.TR]!.limit = 0x67;
    expect(faultOf(() => checkIoPermission(cpu, 0x3f8, 1)).code).toBe(0);
    ring3(cpu, 3);
    checkIoPermission(cpu, 0x400, 1);
  });
});

describe('descriptor-table instructions', () => {
  it('LGDT/SGDT and LIDT/SIDT round-trip; SGDT stores 8 bytes of base in 64-bit mode', () => {
    const { cpu, mem } = kernel64();
    mem.write16(0x6000, 0x37);
    mem.write32(0x6002, 0x1000);
    mem.write32(0x6006, 0xffffffff);
    descTableInsn(cpu, DESC_OP.LGDT, memOperand(0x6000, 64));
    expect(cpu.gdtr).toEqual({ base: -(2 ** 32) + 0x1000, limit: 0x37 });
    descTableInsn(cpu, DESC_OP.SGDT, memOperand(0x6100, 64));
    expect([mem.read16(0x6100), mem.read32(0x6102), mem.read32(0x6106)]).toEqual([0x37, 0x1000, 0xffffffff]);
    mem.write32(0x6006, 0x12345);
    expect(faultOf(() => descTableInsn(cpu, DESC_OP.LIDT, memOperand(0x6000, 64))).code).toBe(0); // non-canonical
  });

  it('LTR loads an available TSS and marks it busy; LLDT rejects a non-LDT descriptor', () => {
    const { cpu, mem } = sysMachine();
    flatGdt(mem, 0x1000, 0x3000, false);
    cpu.gdtr = { base: 0x1000, limit: 0x37 };
    cpu.cr0 = CR0.PE | CR0.ET;
    cpu.gpr[GPR.RAX] = 0x28;
    const reg: InsnOperand = { ...memOperand(0), isReg: true, reg1: GPR.RAX };
    descTableInsn(cpu, DESC_OP.LTR, reg);
    expect(cpu.seg[SEG.TR]).toEqual({ selector: 0x28, base: 0x3000, limit: 0x67, ar: 0x8b });
    expect((mem.read32(0x1000 + 0x28 + 4) >>> 8) & 0xf).toBe(0xb);
    expect(faultOf(() => descTableInsn(cpu, DESC_OP.LTR, reg)).code).toBe(0x28); // busy now
    expect(faultOf(() => descTableInsn(cpu, DESC_OP.LLDT, reg)).code).toBe(0x28);
    cpu.gpr[GPR.RAX] = 0;
    descTableInsn(cpu, DESC_OP.LLDT, reg);
    expect(cpu.seg[SEG.LDTR]!.ar & (1 << 16)).not.toBe(0);
    descTableInsn(cpu, DESC_OP.STR, reg);
    expect(cpu.gpr[GPR.RAX]).toBe(0x28);
  });
});
