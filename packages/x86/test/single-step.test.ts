/**
 * Single-step and instruction-breakpoint #DB (SDM Vol. 3A 18.3.1.4, 6.8.3, 18.3.1.1) on a bare
 * CPU: raw machine code, real mode with IVT[1] pointing at a handler, and 64-bit mode with an IDT.
 */
import { describe, expect, it } from 'vitest';
import { EVENT_TYPE, VEC, makeIntrInfo } from '../src/cpu/events.js';
import { RFLAGS } from '../src/cpu/state.js';
import { STOP } from '../src/cpu/virt.js';
import { fakeGuestExt } from './system-harness.js';
import { flatGdt, writeGate64 } from './system-tables.js';
import { longMode, realMode, type Machine } from './helpers.js';

const TF = RFLAGS.TF;
const DR6_BS = 1 << 14;
/** #DB handler: DI = pushed IP, DX = pushed FLAGS, SI += 1; clears TF in the image so only one trap is taken. */
const RECORD_ONCE = [0x89, 0xe5, 0x8b, 0x7e, 0x00, 0x8b, 0x56, 0x04, 0x46, 0x81, 0x66, 0x04, 0xff, 0xfe, 0xcf];
/** #DB handler: SI += 1; IRET (keeps stepping). */
const COUNT = [0x46, 0xcf];

function stepMachine(main: number[], handler: number[], flags = RFLAGS.FIXED1 | TF): Machine {
  const m = realMode(main);
  m.mem.writeBytes(0x2000, Uint8Array.from(handler));
  m.mem.write16(VEC.DB * 4, 0x2000);
  m.mem.write16(VEC.DB * 4 + 2, 0);
  m.cpu.setRflags(flags);
  return m;
}

const reg16 = (m: Machine, r: number): number => m.cpu.gpr[r]! & 0xffff;
const SI = 6;
const DI = 7;
const DX = 2;

describe('single-step trap (RFLAGS.TF)', () => {
  it('traps after the instruction: RIP past it, TF in the pushed FLAGS, DR6.BS, handler not stepped', () => {
    const m = stepMachine([0x90, 0xf4], RECORD_ONCE); // nop; hlt
    expect(m.cpu.run(100)).toBe(STOP.HLT);
    expect(reg16(m, DI)).toBe(0x1001);
    expect(reg16(m, DX) & TF).toBe(TF);
    expect(reg16(m, SI)).toBe(1);
    expect(m.cpu.dr[6]! >>> 0).toBe(0xffff4ff0);
    // nop, 6 handler instructions, hlt: the handler ran with TF clear, so nothing else trapped.
    expect(m.cpu.icount).toBe(8);
    expect(m.cpu.rip).toBe(0x1002);
  });

  it('traps after every instruction, including the POPF that clears TF, and not after it', () => {
    // nop; nop; pushf; pop ax; and ax,0xfeff; push ax; popf; hlt
    const m = stepMachine([0x90, 0x90, 0x9c, 0x58, 0x25, 0xff, 0xfe, 0x50, 0x9d, 0xf4], COUNT);
    expect(m.cpu.run(1000)).toBe(STOP.HLT);
    expect(reg16(m, SI)).toBe(7);
    expect(m.cpu.gpr[0]! & TF).toBe(0);
    expect(m.cpu.rflags & TF).toBe(0);
  });

  it('does not trap after the POPF that sets TF, but after the next instruction', () => {
    // pushf; pop ax; or ax,0x100; push ax; popf; nop; nop; hlt
    const m = stepMachine([0x9c, 0x58, 0x0d, 0x00, 0x01, 0x50, 0x9d, 0x90, 0x90, 0xf4], RECORD_ONCE, RFLAGS.FIXED1);
    expect(m.cpu.run(1000)).toBe(STOP.HLT);
    expect(reg16(m, SI)).toBe(1);
    expect(reg16(m, DI)).toBe(0x1008);
  });

  it('holds the trap after MOV SS until after the next instruction', () => {
    const m = stepMachine([0x8e, 0xd0, 0x90, 0xf4], RECORD_ONCE); // mov ss,ax; nop; hlt (AX = 0)
    expect(m.cpu.run(100)).toBe(STOP.HLT);
    expect(reg16(m, SI)).toBe(1);
    expect(reg16(m, DI)).toBe(0x1003);
    expect(m.cpu.dr[6]! & 0x4000).toBe(0x4000);
  });

  it('INT n clears TF for its handler and does not trap after INT itself', () => {
    // int 0x21; nop; hlt. IVT[0x21] -> 0x2100: mov cx,0x55; iret.
    const m = stepMachine([0xcd, 0x21, 0x90, 0xf4], RECORD_ONCE);
    m.mem.writeBytes(0x2100, Uint8Array.of(0xb9, 0x55, 0x00, 0xcf));
    m.mem.write16(0x21 * 4, 0x2100);
    m.mem.write16(0x21 * 4 + 2, 0);
    expect(m.cpu.run(100)).toBe(STOP.HLT);
    expect(m.cpu.gpr[1]! & 0xffff).toBe(0x55);
    expect(reg16(m, SI)).toBe(1);
    expect(reg16(m, DI)).toBe(0x1003); // the first trap is after the NOP the IRET returned to
  });

  it('is not swallowed by a hot fused block: TF set between runs steps one instruction at a time', () => {
    // 1: inc ax; inc ax; inc ax; jmp 1b  -- run hot first, then single-step it.
    const m = stepMachine([0x40, 0x40, 0x40, 0xeb, 0xfb], COUNT, RFLAGS.FIXED1);
    m.cpu.gpr[4] = 0x8000;
    expect(m.cpu.run(400)).toBe(STOP.BUDGET);
    m.cpu.setRflags(m.cpu.getRflags() | TF);
    const before = reg16(m, SI);
    expect(m.cpu.run(9)).toBe(STOP.BUDGET); // 3 guest instructions, each followed by the 2-instruction handler
    expect(reg16(m, SI) - before).toBe(3);
  });
});

describe('single-step in guest mode', () => {
  it('reports the #DB to the extension as a hardware exception, RIP past the instruction, with exactly its conditions', () => {
    const m = stepMachine([0x90, 0xf4], RECORD_ONCE);
    const { ext, events } = fakeGuestExt();
    m.cpu.ext = ext;
    let ripAtEvent = -1;
    let conditions = -1;
    ext.event = (info, code) => {
      events.push([info, code]);
      if (ripAtEvent < 0) { ripAtEvent = m.cpu.rip; conditions = m.cpu.debugConditions; }
    };
    m.cpu.dr[6] = 0xffff0ff0 | 0x2000 | 1; // sticky BD and B0 from an earlier #DB: not this one's conditions
    expect(m.cpu.run(100)).toBe(STOP.HLT);
    expect(events[0]).toEqual([makeIntrInfo(VEC.DB, EVENT_TYPE.HW_EXCEPTION, false), -1]);
    expect(ripAtEvent).toBe(0x1001);
    expect(conditions).toBe(DR6_BS);
  });
});

describe('data breakpoints (DR0-DR3, DR7)', () => {
  it('trap after the instruction that writes the watched bytes, with DR6.Bn; a read does not match R/W = 01', () => {
    // mov al,[0x3000]; mov [0x3002],al; nop; hlt
    const m = stepMachine([0xa0, 0x00, 0x30, 0xa2, 0x02, 0x30, 0x90, 0xf4], RECORD_ONCE, RFLAGS.FIXED1);
    m.cpu.dr[0] = 0x3000;
    m.cpu.dr[7] = 0x400 | 1 | (1 << 16) | (3 << 18); // L0, R/W0 = 01, LEN0 = 4 bytes
    expect(m.cpu.run(100)).toBe(STOP.HLT);
    expect(reg16(m, SI)).toBe(1);
    expect(reg16(m, DI)).toBe(0x1006);
    expect(m.cpu.dr[6]! & 0xf).toBe(1);
    expect(m.cpu.dr[6]! & DR6_BS).toBe(0);
  });

  it('catch a read through a TLB entry cached before the breakpoint was armed', () => {
    // 1: mov al,[0x3001]; jmp 1b -- runs hot, then DR1 (R/W = 11, 1 byte) watches 0x3001.
    const m = stepMachine([0xa0, 0x01, 0x30, 0xeb, 0xfb], RECORD_ONCE, RFLAGS.FIXED1);
    expect(m.cpu.run(200)).toBe(STOP.BUDGET);
    m.cpu.dr[1] = 0x3001;
    m.cpu.dr[7] = 0x400 | (1 << 2) | (3 << 20);
    // Each round: the read (trap), the 6-instruction handler, the jump: 8 instructions.
    expect(m.cpu.run(16)).toBe(STOP.BUDGET);
    expect(reg16(m, SI)).toBe(2);
    expect(reg16(m, DI)).toBe(0x1003);
    expect(m.cpu.dr[6]! & 0xf).toBe(2);
  });
});

describe('instruction breakpoints (DR0-DR3, DR7)', () => {
  it('faults before the instruction with DR6.Bn, and RF in the pushed image lets it run after IRETQ', () => {
    // 0x1000: nop; 0x1001: inc eax; 0x1003: hlt. #DB handler at 0x3000: inc esi; mov rdi,[rsp]; mov rdx,[rsp+16]; iretq
    const m = longMode([0x90, 0xff, 0xc0, 0xf4]);
    flatGdt(m.mem, 0x5000, 0x6000, true);
    m.cpu.gdtr.base = 0x5000;
    m.cpu.gdtr.limit = 0x37;
    writeGate64(m.mem, 0x7000 + VEC.DB * 16, 0x08, 0x3000, 0xe);
    m.cpu.idtr.base = 0x7000;
    m.cpu.idtr.limit = 0xfff;
    m.mem.writeBytes(0x3000, Uint8Array.of(0xff, 0xc6, 0x48, 0x8b, 0x3c, 0x24, 0x48, 0x8b, 0x54, 0x24, 0x10, 0x48, 0xcf));
    m.cpu.dr[1] = 0x1001;
    m.cpu.dr[7] = 0x400 | (1 << 2); // L1, R/W1 = 00 (execute), LEN1 = 00
    expect(m.cpu.run(100)).toBe(STOP.HLT);
    expect(m.cpu.gpr[6]).toBe(1); // one hit, not a loop
    expect(m.cpu.gpr[7]).toBe(0x1001); // a fault: RIP at the instruction
    expect(m.cpu.gpr[2]! & RFLAGS.RF).toBe(RFLAGS.RF);
    expect(m.cpu.dr[6]! & 0xf).toBe(2);
    expect(m.cpu.gpr[0]).toBe(1); // inc eax ran once
    expect(m.cpu.rflags & RFLAGS.RF).toBe(0);
  });
});
