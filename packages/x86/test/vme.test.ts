/**
 * Virtual-8086 mode extensions and protected-mode virtual interrupts (SDM Vol. 3A 20.3, 20.4):
 * a guest from tasks32.S runs in virtual-8086 mode with CR4.VME and IOPL = 0. CLI/STI move VIF,
 * PUSHF shows it as IF with IOPL 3, INT n is redirected through the 8086 IVT when its bit in
 * the TSS's redirection bitmap is clear and raises #GP when set, IRET restores VIF, and STI with
 * VIP pending raises #GP. PVI: CLI/STI at CPL 3 move VIF. /dev/kvm is no reference for this
 * (it cannot run guest-made mode switches or deliver guest exceptions).
 */
import { describe, expect, it } from 'vitest';
import { VEC } from '../src/cpu/events.js';
import { AR, CR4, RFLAGS, SEG, makeSegment } from '../src/cpu/state.js';
import { STOP } from '../src/cpu/virt.js';
import { cliInsn, stiInsn } from '../src/system/system.js';
import { buildGuest, guestToolsMissing } from './system-guest-build.js';
import { faultOf, sysMachine } from './system-harness.js';
import { SEL, TSS, TaskMachine } from './tasks32-machine.js';

const missing = guestToolsMissing();
if (missing !== null) console.log(`VME guest tests skipped: ${missing}`);

/** The redirection bitmap sits in the 32 bytes below the I/O map base. */
const IO_MAP_BASE = 0x88;
const TSS_LIMIT = 0xff;

describe.skipIf(missing !== null)('virtual-8086 mode with CR4.VME', () => {
  const g = missing === null ? buildGuest('tasks32.S') : null;
  const sym = (name: string) => g!.sym(name);

  function v86Machine(extraFlags = 0): TaskMachine {
    const t = new TaskMachine();
    const { cpu, mem } = t.m;
    mem.writeBytes(0x1000, g!.image);
    t.tss32(TSS.A, { eip: 0, esp: 0, esp0: 0x9000, ioMapBase: IO_MAP_BASE });
    t.setDesc(SEL.TSS_A, (TSS_LIMIT | (TSS.A << 16)) >>> 0, 0x8b00);
    cpu.seg[SEG.TR] = { selector: SEL.TSS_A, base: TSS.A, limit: TSS_LIMIT, ar: 0x8b };
    mem.write8(TSS.A + IO_MAP_BASE - 32 + (0x22 >> 3), 1 << (0x22 & 7)); // INT 0x22 is not redirected
    mem.write16(0x21 * 4, sym('v86_int21'));
    mem.write16(0x21 * 4 + 2, 0);
    t.intrGate(VEC.GP, sym('v86_gp'));
    cpu.cr4 = CR4.VME;
    cpu.rflags = RFLAGS.FIXED1 | RFLAGS.VM | RFLAGS.IF | extraFlags;
    for (let s: number = SEG.ES; s <= SEG.GS; s++) cpu.seg[s] = makeSegment(0, 0, 0xffff, s === SEG.CS ? 0xfb : 0xf3);
    cpu.gpr[4] = 0x7000;
    t.start(sym('v86_start'));
    return t;
  }

  it('CLI/STI/PUSHF/INT n/IRET work on VIF; a non-redirected INT n raises #GP(0)', () => {
    const t = v86Machine();
    expect(t.m.cpu.run(200)).toBe(STOP.HLT);
    const r = t.reports();
    expect(r.length).toBe(9);
    const [afterCli, afterSti, inHandler, bx, afterIret, code, eip, cs, eflags] = r;
    const IF_IOPL = RFLAGS.IF | RFLAGS.IOPL;
    expect(afterCli! & IF_IOPL).toBe(RFLAGS.IOPL);
    expect(afterSti! & IF_IOPL).toBe(IF_IOPL);
    expect(inHandler! & IF_IOPL).toBe(RFLAGS.IOPL);
    expect(bx).toBe(0x2121);
    expect(afterIret! & IF_IOPL).toBe(IF_IOPL);
    // #GP(0) at the INT 0x22, delivered to the protected-mode handler: the real IF was never touched.
    expect(code).toBe(0);
    expect(eip).toBe(sym('v86_int22'));
    expect(cs).toBe(0);
    expect(eflags! & (RFLAGS.VM | RFLAGS.VIF | RFLAGS.IF | RFLAGS.IOPL)).toBe(RFLAGS.VM | RFLAGS.VIF | RFLAGS.IF);
    // The redirected INT 0x21 pushed its frame on the v86 stack: IP after the INT (sti, pushf, pop, out, int), CS 0.
    expect(t.read16(0x7000 - 6)).toBe(sym('v86_sti') + 7);
    expect(t.read16(0x7000 - 4)).toBe(0);
    expect(t.m.cpu.gpr[4]! >>> 0).toBe(0x9000 - 40 + 16); // the ring-0 frame (GS, FS, DS, ES, SS, ESP, EFLAGS, CS, EIP, error code) after four pops
  });

  it('with IOPL = 3 the flags are the real ones: a redirected INT n clears IF, a set bit goes to the IDT', () => {
    const t = v86Machine(RFLAGS.IOPL);
    expect(t.m.cpu.run(200)).toBe(STOP.HLT);
    const [afterCli, afterSti, inHandler, bx, afterIret, code, eip, , eflags] = t.reports();
    expect(afterCli! & RFLAGS.IF).toBe(0);
    expect(afterSti! & RFLAGS.IF).toBe(RFLAGS.IF);
    expect(inHandler! & RFLAGS.IF).toBe(0);
    expect(bx).toBe(0x2121);
    expect(afterIret! & RFLAGS.IF).toBe(RFLAGS.IF);
    // IDT[0x22] is empty: #GP(0x22 * 8 + 2) shows the INT went to the IDT.
    expect(code).toBe(0x22 * 8 + 2);
    expect(eip).toBe(sym('v86_int22'));
    expect(eflags! & (RFLAGS.VM | RFLAGS.VIF | RFLAGS.IF)).toBe(RFLAGS.VM | RFLAGS.IF);
  });

  it('STI with VIP pending raises #GP(0) and leaves VIF clear', () => {
    const t = v86Machine(RFLAGS.VIP);
    expect(t.m.cpu.run(200)).toBe(STOP.HLT);
    const [afterCli, code, eip, cs, eflags] = t.reports();
    expect(afterCli! & RFLAGS.IF).toBe(0);
    expect(code).toBe(0);
    expect(eip).toBe(sym('v86_sti'));
    expect(cs).toBe(0);
    expect(eflags! & (RFLAGS.VM | RFLAGS.VIF | RFLAGS.VIP)).toBe(RFLAGS.VM | RFLAGS.VIP);
  });
});

describe('protected-mode virtual interrupts (CR4.PVI)', () => {
  function cpl3(pvi: boolean) {
    const m = sysMachine();
    const { cpu } = m;
    cpu.cr0 = 0x11;
    cpu.cr4 = pvi ? CR4.PVI : 0;
    cpu.seg[SEG.CS] = makeSegment(0x1b, 0, 0xffffffff, 0xfb | AR.DB | AR.G);
    cpu.seg[SEG.SS] = makeSegment(0x23, 0, 0xffffffff, 0xf3 | AR.DB | AR.G);
    cpu.rflags = RFLAGS.FIXED1 | RFLAGS.IF | RFLAGS.VIF;
    cpu.stateChanged();
    return cpu;
  }

  it('CLI and STI at CPL 3 with IOPL 0 move VIF, leave IF', () => {
    const cpu = cpl3(true);
    cliInsn(cpu);
    expect(cpu.rflags & (RFLAGS.IF | RFLAGS.VIF)).toBe(RFLAGS.IF);
    stiInsn(cpu);
    expect(cpu.rflags & (RFLAGS.IF | RFLAGS.VIF)).toBe(RFLAGS.IF | RFLAGS.VIF);
  });

  it('STI with VIP set, and CLI without PVI, raise #GP(0)', () => {
    const cpu = cpl3(true);
    cpu.rflags |= RFLAGS.VIP;
    cliInsn(cpu);
    const f = faultOf(() => stiInsn(cpu));
    expect([f.vector, f.code]).toEqual([VEC.GP, 0]);
    expect(cpu.rflags & RFLAGS.VIF).toBe(0);
    const f2 = faultOf(() => cliInsn(cpl3(false)));
    expect([f2.vector, f2.code]).toEqual([VEC.GP, 0]);
  });
});
