/**
 * Port I/O: IN and OUT (SDM Vol. 1, chapter 19; Vol. 2). Order: the I/O permission check
 * (IOPL, TSS bitmap), then in guest mode the I/O intercept, then the bus.
 */
import type { Cpu } from '../cpu/cpu.js';
import { IO_INFO, INTERCEPT } from '../cpu/virt.js';
import type { Binder } from '../decode/binders.js';
import type { Insn } from '../decode/insn.js';
import { checkIoPermission } from '../system/system.js';
import { fillOperand, getReg, setReg } from './operand.js';

/** The access size of IN/OUT in bytes: 1, or 2/4 by operand size (a REX.W prefix does not make it 8). */
function ioSize(i: Insn): 1 | 2 | 4 {
  return i.opSize === 8 ? 1 : i.opSize === 16 ? 2 : 4;
}

/**
 * Permission check and guest intercept for one I/O instruction; `info` is the IO_INFO bits
 * without the size. True when the instruction VM-exited: it ends without effect.
 */
export function ioCheck(cpu: Cpu, i: Insn, port: number, size: number, info: number): boolean {
  cpu.syncFlags();
  checkIoPermission(cpu, port, size);
  if (cpu.ext === null || !cpu.ext.guest) return false;
  fillOperand(cpu, i);
  return cpu.ext.intercept(INTERCEPT.IO, port, size | info);
}

function inInsn(cpu: Cpu, i: Insn): void {
  const size = ioSize(i);
  const port = i.aux === 1 ? i.imm : cpu.gpr[2]! & 0xffff;
  if (ioCheck(cpu, i, port, size, IO_INFO.IN | (i.aux === 1 ? IO_INFO.IMM : 0))) return;
  const v = cpu.bus.in(port, size);
  setReg(cpu, 0, size * 8, size === 4 ? v >>> 0 : v & (size === 2 ? 0xffff : 0xff));
}

function outInsn(cpu: Cpu, i: Insn): void {
  const size = ioSize(i);
  const port = i.aux === 1 ? i.imm : cpu.gpr[2]! & 0xffff;
  if (ioCheck(cpu, i, port, size, i.aux === 1 ? IO_INFO.IMM : 0)) return;
  cpu.bus.out(port, size, getReg(cpu, 0, size * 8));
}

export const IO_BINDERS: Record<string, Binder> = {
  IN: (i, info) => { i.aux = info.operands[1] === 'Ib' ? 1 : 0; return inInsn; },
  OUT: (i, info) => { i.aux = info.operands[0] === 'Ib' ? 1 : 0; return outInsn; },
};
