import { describe, expect, it } from 'vitest';
import { STOP } from '../src/cpu/virt.js';
import { RFLAGS } from '../src/cpu/state.js';
import { assemble, hasAssembler } from './asm.js';
import { realMode } from './helpers.js';

/** Real-mode machine with IVT entries 0x20 and 0x21 pointing at handlers assembled at 0x2000 and 0x2100. */
function withHandlers(main: string): ReturnType<typeof realMode> {
  const m = realMode(assemble(main, 16));
  m.mem.writeBytes(0x2000, assemble('mov bl, dl\ninc bh\niret', 16, 0x2000));
  m.mem.writeBytes(0x2100, assemble('mov si, 0x21\niret', 16, 0x2100));
  m.mem.write16(0x20 * 4, 0x2000); m.mem.write16(0x20 * 4 + 2, 0);
  m.mem.write16(0x21 * 4, 0x2100); m.mem.write16(0x21 * 4 + 2, 0);
  m.cpu.gpr[4] = 0x7000;
  return m;
}

describe.skipIf(!hasAssembler)('external interrupts, the interrupt shadow and HLT', () => {
  it('HLT wakes on INTR when IF=1; the handler runs and IRET returns past the HLT', () => {
    const m = withHandlers('sti\nhlt\nmov cl, bh\nhlt');
    expect(m.cpu.run(100)).toBe(STOP.HLT);
    expect(m.cpu.gpr[3]! >> 8 & 0xff).toBe(0);
    m.cpu.raiseInterrupt(0x20);
    expect(m.cpu.run(100)).toBe(STOP.HLT);
    expect(m.cpu.gpr[1]! & 0xff).toBe(1);
    expect(m.cpu.pendingInterrupt).toBe(-1);
  });

  it('IF=0 keeps the interrupt pending; STI delays delivery by one instruction', () => {
    const m = withHandlers('mov dl, 1\nsti\nmov dl, 2\nmov dl, 3\nhlt');
    m.cpu.setRflags(RFLAGS.FIXED1); // IF=0
    m.cpu.raiseInterrupt(0x20);
    expect(m.cpu.run(1)).toBe(STOP.BUDGET); // mov dl, 1: IF=0, nothing delivered
    expect(m.cpu.pendingInterrupt).toBe(0x20);
    expect(m.cpu.run(100)).toBe(STOP.HLT);
    expect(m.cpu.gpr[3]! & 0xff).toBe(2); // the handler saw DL after the instruction in the STI shadow
  });

  it('INT n goes through the IVT and returns to the next instruction', () => {
    const m = withHandlers('int 0x21\nmov di, si\nhlt');
    expect(m.cpu.run(100)).toBe(STOP.HLT);
    expect(m.cpu.gpr[7]! & 0xffff).toBe(0x21);
  });

  it('requestStop and the deadline callback stop or interrupt a running loop', () => {
    const m = withHandlers('sti\n1: inc ax\njmp 1b');
    let fired = 0;
    m.cpu.deadline = m.cpu.icount + 500;
    m.cpu.onDeadline = () => { fired++; m.cpu.raiseInterrupt(0x20); };
    expect(m.cpu.run(2000)).toBe(STOP.BUDGET);
    expect(fired).toBe(1);
    expect(m.cpu.gpr[3]! >> 8 & 0xff).toBe(1); // handler ran once
    m.cpu.requestStop();
    expect(m.cpu.run(2000)).toBe(STOP.REQUESTED);
  });
});

describe.skipIf(!hasAssembler)('injectEvent', () => {
  it('delivers at once outside run(), through the IVT, without throwing', () => {
    const m = withHandlers('hlt\nhlt');
    m.cpu.injectEvent((0x21 | (0 << 8) | (1 << 31)) >>> 0, -1, 0);
    expect(m.cpu.rip).toBe(0x2100);
    expect(m.cpu.run(100)).toBe(STOP.HLT);
    expect(m.cpu.gpr[6]! & 0xffff).toBe(0x21);
  });
});
