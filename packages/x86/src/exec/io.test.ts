import { describe, expect, it } from 'vitest';
import { STOP } from '../cpu/virt.js';
import { assemble, hasAssembler } from '../../test/asm.js';
import { longMode } from '../../test/helpers.js';

describe.skipIf(!hasAssembler)('port I/O', () => {
  it('IN/OUT with immediate and DX ports at every size; REP INSB/OUTSW through the bus', () => {
    const m = longMode(assemble(`
      mov al, 0x11
      out 0x80, al
      mov dx, 0x3f8
      mov ax, 0x2233
      out dx, ax
      mov eax, 0x44556677
      out dx, eax
      in al, 0x60
      mov bl, al
      in eax, dx
      mov ecx, eax
      mov dx, 0x60
      mov rdi, 0x3000
      mov rcx, 4
      rep insb
      mov word ptr [0x3100], 0xaabb
      mov word ptr [0x3102], 0xccdd
      mov dx, 0x3f8
      mov rsi, 0x3100
      mov ecx, 2
      rep outsw
      hlt`, 64));
    let next = 0x40;
    const log: [number, number, number][] = [];
    m.cpu.bus.mapPorts(0x60, 1, { in: () => next++, out: () => {} });
    m.cpu.bus.mapPorts(0x3f8, 1, { in: (_p, size) => (size === 4 ? 0x12345678 : 0), out: (p, size, v) => { log.push([p, size, v]); } });
    expect(m.cpu.run(1000)).toBe(STOP.HLT);
    expect(m.outs).toEqual([[0x80, 1, 0x11]]);
    expect(log).toEqual([[0x3f8, 2, 0x2233], [0x3f8, 4, 0x44556677], [0x3f8, 2, 0xaabb], [0x3f8, 2, 0xccdd]]);
    expect(m.cpu.gpr[3]! & 0xff).toBe(0x40);
    expect(Array.from(m.mem.readBytes(0x3000, 4))).toEqual([0x41, 0x42, 0x43, 0x44]);
  });
});
