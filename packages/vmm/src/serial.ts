/**
 * COM1 as a minimal 16550 UART: enough for guests that write THR and poll LSR. Registers by
 * offset from the base (PC16550D data sheet): 0 RBR/THR (DLL when LCR.DLAB), 1 IER (DLM),
 * 2 IIR/FCR, 3 LCR, 4 MCR, 5 LSR, 6 MSR, 7 SCR.
 */
export const COM1_BASE = 0x3f8;
export const UART_PORTS = 8;

const REG = { THR: 0, IER: 1, IIR: 2, LCR: 3, MCR: 4, LSR: 5, MSR: 6, SCR: 7 } as const;
const LCR_DLAB = 0x80;
/** LSR: THR empty | transmitter empty: a polled write may go now. */
const LSR_IDLE = 0x60;
/** IIR: no interrupt pending. */
const IIR_NONE = 0x01;

export class Uart16550 {
  private readonly regs = new Uint8Array(UART_PORTS);
  private readonly divisor = new Uint8Array(2);

  readonly base: number;
  private readonly output: (byte: number) => void;

  constructor(base: number, output: (byte: number) => void) {
    this.base = base;
    this.output = output;
  }

  claims(port: number): boolean {
    return port >= this.base && port < this.base + UART_PORTS;
  }

  out(port: number, value: number): void {
    const reg = port - this.base;
    const dlab = (this.regs[REG.LCR]! & LCR_DLAB) !== 0;
    if (dlab && (reg === REG.THR || reg === REG.IER)) this.divisor[reg] = value;
    else if (reg === REG.THR) this.output(value & 0xff);
    else if (reg !== REG.LSR && reg !== REG.IIR) this.regs[reg] = value;
  }

  in(port: number): number {
    const reg = port - this.base;
    const dlab = (this.regs[REG.LCR]! & LCR_DLAB) !== 0;
    if (dlab && (reg === REG.THR || reg === REG.IER)) return this.divisor[reg]!;
    switch (reg) {
      case REG.THR: return 0; // no input
      case REG.IIR: return IIR_NONE;
      case REG.LSR: return LSR_IDLE;
      default: return this.regs[reg]!;
    }
  }
}
