import { describe, expect, it } from 'vitest';
import { Uart16550 } from './serial.js';

describe('Uart16550', () => {
  const make = () => { const out: number[] = []; return { uart: new Uart16550(0x3f8, (b) => out.push(b)), out }; };

  it('prints THR writes and reports the transmitter empty', () => {
    const { uart, out } = make();
    uart.out(0x3f8, 0x41);
    expect(out).toEqual([0x41]);
    expect(uart.in(0x3fd)).toBe(0x60);
    expect(uart.in(0x3fa)).toBe(0x01);
  });

  it('sends divisor-latch writes (LCR.DLAB) nowhere near the output', () => {
    const { uart, out } = make();
    uart.out(0x3fb, 0x80);
    uart.out(0x3f8, 0x01);
    expect(out).toEqual([]);
    expect(uart.in(0x3f8)).toBe(0x01);
    uart.out(0x3fb, 0x03);
    expect(uart.in(0x3fb)).toBe(0x03);
    expect(uart.in(0x3f8)).toBe(0);
  });

  it('claims its eight ports only', () => {
    const { uart } = make();
    expect([0x3f7, 0x3f8, 0x3ff, 0x400].map((p) => uart.claims(p))).toEqual([false, true, true, false]);
  });
});
