/**
 * Hardware task switching (SDM Vol. 3A 7.3): guests assembled from tasks32.S switch tasks by
 * JMP, by CALL through a task gate and IRET back, take #DF through a task gate, and fail with
 * the faults Table 7-1 and the JMP/CALL pages list. TSSs, busy bits and links are checked in
 * memory. The machine's /dev/kvm is no reference here (it cannot deliver guest exceptions, and
 * task switches run through its emulator), so nothing is compared with it.
 */
import { describe, expect, it } from 'vitest';
import { CR0, INTERRUPTIBILITY, RFLAGS, SEG } from '../src/cpu/state.js';
import { INTERCEPT, STOP, type VirtExtension } from '../src/cpu/virt.js';
import { VEC } from '../src/cpu/events.js';
import { buildGuest, guestToolsMissing } from './system-guest-build.js';
import { SEL, TSS, TaskMachine } from './tasks32-machine.js';

const missing = guestToolsMissing();
if (missing !== null) console.log(`task-switch guest tests skipped: ${missing}`);

const TYPE = { TSS_AVAIL: 0x9, TSS_BUSY: 0xb, TSS16_AVAIL: 0x1, TSS16_BUSY: 0x3 } as const;

describe.skipIf(missing !== null)('task switching', () => {
  const g = missing === null ? buildGuest('tasks32.S') : null;
  const sym = (name: string) => g!.sym(name);
  function machine(): TaskMachine {
    const t = new TaskMachine();
    t.m.mem.writeBytes(0x1000, g!.image);
    return t;
  }

  it('JMP to a TSS and back: state saved in each TSS, busy bits moved, no link, no NT, CR0.TS set', () => {
    const t = machine();
    t.tss32(TSS.B, { eip: sym('b_jmp_back'), esp: 0x9000, eax: 0xbbbb });
    t.start(sym('a_jmp'));
    t.m.cpu.gpr[1] = 0x77; // ECX of task A
    expect(t.m.cpu.run(100)).toBe(STOP.HLT);
    const cpu = t.m.cpu;
    // Back in task A at a_after_jmp, with A's registers reloaded from its TSS.
    expect(cpu.rip).toBe(sym('a_after_jmp') + 1);
    expect(cpu.gpr[0]! >>> 0).toBe(0x11111111);
    expect(cpu.gpr[3]! >>> 0).toBe(0x22222222);
    expect(cpu.gpr[1]! >>> 0).toBe(0x77);
    expect(cpu.seg[SEG.TR]!.selector).toBe(SEL.TSS_A);
    expect(cpu.cr0 & CR0.TS).toBe(CR0.TS);
    expect(cpu.rflags & RFLAGS.NT).toBe(0);
    // Task A's TSS: EIP after its JMP, EAX, EBX, ESP, CS.
    expect(t.read32(TSS.A + 0x20)).toBe(sym('a_after_jmp'));
    expect(t.read32(TSS.A + 0x28)).toBe(0x11111111);
    expect(t.read32(TSS.A + 0x34)).toBe(0x22222222);
    expect(t.read32(TSS.A + 0x38)).toBe(0x8000);
    expect(t.read16(TSS.A + 0x4c)).toBe(SEL.CODE);
    // Task B's TSS: EIP after its JMP, ECX it set, EAX it started with; no link written.
    expect(t.read32(TSS.B + 0x20)).toBe(sym('b_after_jmp'));
    expect(t.read32(TSS.B + 0x2c)).toBe(0x33333333);
    expect(t.read32(TSS.B + 0x28)).toBe(0xbbbb);
    expect(t.read16(TSS.B)).toBe(0);
    expect(t.descType(SEL.TSS_A)).toBe(TYPE.TSS_BUSY);
    expect(t.descType(SEL.TSS_B)).toBe(TYPE.TSS_AVAIL);
  });

  it('CALL through a task gate nests (NT, link, both busy); IRET returns and frees the callee', () => {
    const t = machine();
    t.tss32(TSS.B, { eip: sym('b_nested'), esp: 0x9000 });
    t.start(sym('a_call'));
    expect(t.m.cpu.run(200)).toBe(STOP.HLT);
    const cpu = t.m.cpu;
    const [bFlags, bTr, bLink] = t.reports();
    expect(bFlags! & RFLAGS.NT).toBe(RFLAGS.NT);
    expect(bTr).toBe(SEL.TSS_B);
    expect(bLink).toBe(SEL.TSS_A);
    // Back in A after the CALL: its EFLAGS (EDX) without NT, EAX from its TSS.
    expect(cpu.rip).toBe(sym('a_after_call') + 3);
    expect(cpu.gpr[2]! & RFLAGS.NT).toBe(0);
    expect(cpu.gpr[0]! >>> 0).toBe(0x44444444);
    expect(cpu.seg[SEG.TR]!.selector).toBe(SEL.TSS_A);
    expect(t.descType(SEL.TSS_A)).toBe(TYPE.TSS_BUSY);
    expect(t.descType(SEL.TSS_B)).toBe(TYPE.TSS_AVAIL);
    // The IRET saved B with NT cleared in its EFLAGS image, EIP after the IRET.
    expect(t.read32(TSS.B + 0x24) & RFLAGS.NT).toBe(0);
    expect(t.read32(TSS.B + 0x20)).toBe(sym('b_after_iret'));
    expect(t.read32(TSS.A + 0x20)).toBe(sym('a_after_call'));
  });

  it('a #DF through a task gate runs task C with error code 0 on its stack, A linked', () => {
    const t = machine();
    t.tss32(TSS.C, { eip: sym('c_df'), esp: 0xa000 });
    t.taskGate(VEC.DF, SEL.TSS_C);
    t.m.cpu.idtr = { base: t.m.cpu.idtr.base, limit: 9 * 8 - 1 }; // vectors 0-8: #GP has no gate
    t.start(sym('a_fault'));
    expect(t.m.cpu.run(100)).toBe(STOP.HLT);
    const [code, esp, flags] = t.reports();
    expect(code).toBe(0);
    expect(esp).toBe(0xa000);
    expect(flags! & RFLAGS.NT).toBe(RFLAGS.NT);
    expect(t.read16(TSS.C)).toBe(SEL.TSS_A);
    expect(t.descType(SEL.TSS_A)).toBe(TYPE.TSS_BUSY);
    expect(t.descType(SEL.TSS_C)).toBe(TYPE.TSS_BUSY);
    // A faulted at the MOV DS: that is the EIP it will resume at.
    expect(t.read32(TSS.A + 0x20)).toBe(sym('a_fault_insn'));
    expect(t.m.cpu.seg[SEG.TR]!.selector).toBe(SEL.TSS_C);
  });

  it('#TS(selector) for a TSS whose limit is below 67H, before anything changes', () => {
    const t = machine();
    t.intrGate(VEC.TS, sym('h_err'));
    t.start(sym('a_bad_limit'));
    expect(t.m.cpu.run(100)).toBe(STOP.HLT);
    expect(t.reports()).toEqual([SEL.TSS_D, sym('a_bad_limit'), SEL.CODE]);
    expect(t.m.cpu.seg[SEG.TR]!.selector).toBe(SEL.TSS_A);
    expect(t.descType(SEL.TSS_A)).toBe(TYPE.TSS_BUSY);
    expect(t.descType(SEL.TSS_D)).toBe(TYPE.TSS_AVAIL);
    expect(t.read32(TSS.A + 0x20)).toBe(0);
  });

  it('#GP(selector) for a CALL to a busy TSS', () => {
    const t = machine();
    t.intrGate(VEC.GP, sym('h_err'));
    t.start(sym('a_call_busy'));
    expect(t.m.cpu.run(100)).toBe(STOP.HLT);
    expect(t.reports()).toEqual([SEL.TSS_A, sym('a_call_busy'), SEL.CODE]);
  });

  it('a bad data segment in the new TSS faults after the commit point, in the new task', () => {
    const t = machine();
    t.tss32(TSS.F, { eip: sym('f_code'), esp: 0xb000, ds: SEL.TSS_C });
    t.intrGate(VEC.TS, sym('h_err'));
    t.setDesc(0x68, 0, 0); // spare
    t.start(sym('a_bad_limit'));
    // Reuse a_bad_limit's JMP, pointed at TSS F.
    t.m.mem.write16(sym('a_bad_limit') + 5, SEL.TSS_F);
    expect(t.m.cpu.run(100)).toBe(STOP.HLT);
    expect(t.reports()).toEqual([SEL.TSS_C, sym('f_code'), SEL.CODE]);
    expect(t.m.cpu.seg[SEG.TR]!.selector).toBe(SEL.TSS_F);
    expect(t.m.cpu.seg[SEG.DS]!.selector).toBe(SEL.TSS_C);
    expect(t.descType(SEL.TSS_F)).toBe(TYPE.TSS_BUSY);
    expect(t.descType(SEL.TSS_A)).toBe(TYPE.TSS_AVAIL);
  });

  it('the T flag of the new TSS raises a #DB trap with DR6.BT before its first instruction', () => {
    const t = machine();
    t.tss32(TSS.G, { eip: sym('g_code'), esp: 0xb000, trap: true });
    t.intrGate(VEC.DB, sym('h_db'));
    t.start(sym('a_bad_limit'));
    t.m.mem.write16(sym('a_bad_limit') + 5, SEL.TSS_G);
    expect(t.m.cpu.run(100)).toBe(STOP.HLT);
    const [eip, cs, dr6] = t.reports();
    expect(eip).toBe(sym('g_code'));
    expect(cs).toBe(SEL.CODE);
    expect(dr6! & 0x8000).toBe(0x8000);
    expect(t.m.cpu.seg[SEG.TR]!.selector).toBe(SEL.TSS_G);
  });

  it('a 16-bit TSS: low words loaded (upper words ones), FS/GS null, 16-bit state saved on the way back', () => {
    const t = machine();
    const e = TSS.E;
    const w16 = (off: number, v: number) => t.m.mem.write16(e + off, v);
    w16(0x0e, sym('e_code'));
    w16(0x10, 0x0002);
    w16(0x12, 0x1234); // AX
    w16(0x1a, 0x7000); // SP
    w16(0x22, SEL.DATA16);
    w16(0x24, SEL.CODE16);
    w16(0x26, SEL.DATA16);
    w16(0x28, SEL.DATA16);
    t.start(sym('a_jmp16'));
    const cpu = t.m.cpu;
    expect(cpu.run(3)).toBe(STOP.BUDGET); // mov eax; jmp; mov bx in task E
    expect(cpu.seg[SEG.TR]!.selector).toBe(SEL.TSS_E);
    expect(cpu.gpr[0]! >>> 0).toBe(0xffff1234);
    expect(cpu.seg[SEG.CS]!.selector).toBe(SEL.CODE16);
    expect(cpu.seg[SEG.FS]!.selector).toBe(0);
    expect(cpu.seg[SEG.GS]!.selector).toBe(0);
    expect(t.descType(SEL.TSS_E)).toBe(TYPE.TSS16_BUSY);
    expect(cpu.run(100)).toBe(STOP.HLT);
    expect(cpu.seg[SEG.TR]!.selector).toBe(SEL.TSS_A);
    expect(cpu.gpr[0]! >>> 0).toBe(0x55555555);
    expect(t.read16(e + 0x0e)).toBe(sym('e_after_jmp'));
    expect(t.read16(e + 0x18)).toBe(0x6666); // BX
    expect(t.descType(SEL.TSS_E)).toBe(TYPE.TSS16_AVAIL);
  });

  /** A guest-mode extension that VM-exits on TASK_SWITCH only, logging its (a, b). */
  function exitOnTaskSwitch(t: TaskMachine): [number, number][] {
    const seen: [number, number][] = [];
    const cpu = t.m.cpu;
    const ext: VirtExtension = {
      guest: true,
      execute: () => {},
      intercept: (kind, a, b) => {
        if (kind !== INTERCEPT.TASK_SWITCH) return false;
        seen.push([a, b]);
        cpu.endInsn(STOP.VMEXIT);
        return true;
      },
      event: () => {},
      crRead: (_c, v) => v,
      crWrite: (_c, v) => v,
      translate: (gpa) => gpa,
      checkEvents: () => {},
      rdmsr: () => undefined,
      wrmsr: () => false,
      tscOffset: () => 0n,
    };
    cpu.ext = ext;
    return seen;
  }

  it('in guest mode a JMP or CALL reports (TSS selector, source) and does not switch', () => {
    // The far JMP is 10 bytes into a_jmp, the CALL through the gate 5 bytes into a_call.
    for (const [entry, at, source] of [['a_jmp', 10, 2], ['a_call', 5, 0]] as const) {
      const t = machine();
      t.tss32(TSS.B, { eip: sym('b_jmp_back'), esp: 0x9000 });
      const seen = exitOnTaskSwitch(t);
      const cpu = t.m.cpu;
      t.start(sym(entry));
      expect(cpu.run(100)).toBe(STOP.VMEXIT);
      expect(seen).toEqual([[SEL.TSS_B, source]]);
      expect(cpu.insnStart).toBe(sym(entry) + at); // the far JMP/CALL did not retire
      expect(cpu.icount).toBe(at / 5);
      expect(cpu.seg[SEG.TR]!.selector).toBe(SEL.TSS_A);
      expect(t.descType(SEL.TSS_B)).toBe(TYPE.TSS_AVAIL);
    }
  });

  it('in guest mode an IRET with NT reports (link, 1), a task gate in the IDT (TSS, 3)', () => {
    const t = machine();
    t.tss32(TSS.B, { eip: sym('b_nested'), esp: 0x9000 });
    t.start(sym('a_call'));
    expect(t.m.cpu.run(10)).toBe(STOP.BUDGET); // inside task B, before its IRET
    expect(t.m.cpu.seg[SEG.TR]!.selector).toBe(SEL.TSS_B);
    const seen = exitOnTaskSwitch(t);
    t.m.cpu.interruptibility |= INTERRUPTIBILITY.NMI;
    expect(t.m.cpu.run(100)).toBe(STOP.VMEXIT);
    expect(seen).toEqual([[SEL.TSS_A, 1]]);
    expect(t.m.cpu.seg[SEG.TR]!.selector).toBe(SEL.TSS_B);
    // The IRET did not complete: NMIs stay blocked.
    expect(t.m.cpu.interruptibility & INTERRUPTIBILITY.NMI).toBe(INTERRUPTIBILITY.NMI);

    const d = machine();
    d.tss32(TSS.C, { eip: sym('c_df'), esp: 0xa000 });
    d.taskGate(VEC.DF, SEL.TSS_C);
    d.m.cpu.idtr = { base: d.m.cpu.idtr.base, limit: 9 * 8 - 1 };
    const seenDf = exitOnTaskSwitch(d);
    d.start(sym('a_fault'));
    expect(d.m.cpu.run(100)).toBe(STOP.VMEXIT);
    expect(seenDf).toEqual([[SEL.TSS_C, 3]]);
    expect(d.descType(SEL.TSS_C)).toBe(TYPE.TSS_AVAIL);
  });
});
