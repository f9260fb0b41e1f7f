/**
 * Mnemonic -> binder: the function that, given a decoded instruction, picks its handler (and
 * may specialise it, e.g. a 32-bit register-register ADD). Unknown mnemonics are #UD.
 */
import type { Cpu } from '../cpu/cpu.js';
import { VEC } from '../cpu/events.js';
import { ALU_BINDERS } from '../exec/alu.js';
import { ATOMIC_BINDERS } from '../exec/atomic.js';
import { BCD_BINDERS } from '../exec/bcd.js';
import { BIT_BINDERS } from '../exec/bit.js';
import { CONTROL_BINDERS } from '../exec/control.js';
import { DESCRIPTOR_QUERY_BINDERS } from '../exec/descriptor-query.js';
import { FLAG_BINDERS } from '../exec/flag-ops.js';
import { IO_BINDERS } from '../exec/io.js';
import { MOVE_BINDERS } from '../exec/move.js';
import { MULDIV_BINDERS } from '../exec/muldiv.js';
import { PRIVILEGED_BINDERS } from '../exec/privileged.js';
import { SHIFT_BINDERS } from '../exec/shift.js';
import { STACK_BINDERS } from '../exec/stack.js';
import { STRING_BINDERS } from '../exec/string.js';
import { VIRT_BINDERS } from '../exec/virt-ops.js';
import type { Handler, Insn } from './insn.js';
import type { OpInfo } from './opcode-info.js';

export type Binder = (i: Insn, info: OpInfo) => Handler;

export function udHandler(cpu: Cpu): void {
  cpu.fault(VEC.UD);
}

export function gp0Handler(cpu: Cpu): void {
  cpu.fault(VEC.GP, 0);
}

let table: Map<string, Binder> | null = null;

/** Built on first use: the exec modules import this module's types, so build lazily to keep load order simple. */
function binders(): Map<string, Binder> {
  if (table === null) {
    table = new Map(Object.entries({
      ...ALU_BINDERS, ...ATOMIC_BINDERS, ...BCD_BINDERS, ...BIT_BINDERS, ...CONTROL_BINDERS, ...DESCRIPTOR_QUERY_BINDERS, ...FLAG_BINDERS,
      ...IO_BINDERS, ...MOVE_BINDERS, ...MULDIV_BINDERS, ...PRIVILEGED_BINDERS, ...SHIFT_BINDERS, ...STACK_BINDERS,
      ...STRING_BINDERS, ...VIRT_BINDERS,
    }));
  }
  return table;
}

export function bindHandler(i: Insn, info: OpInfo): Handler {
  const b = binders().get(info.mn);
  return b === undefined ? udHandler : b(i, info);
}
