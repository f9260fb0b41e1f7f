/**
 * A decoded instruction: what the executor needs, computed once. Decoded blocks hold arrays of
 * these. Register numbers of byte operands are already resolved: 0-15 are the low bytes
 * (SPL..DIL with REX), 16-19 are AH, CH, DH, BH.
 */
import type { Cpu } from '../cpu/cpu.js';

export type Handler = (cpu: Cpu, i: Insn) => void;

export const REP = { NONE: 0, REPE: 1, REPNE: 2 } as const;

export class Insn {
  exec: Handler;
  /** Length in bytes. */
  len = 0;
  /** Offset of the next instruction from the block start (so RIP = block RIP + end). */
  end = 0;
  /** Operand width in bits: 8, 16, 32 or 64. */
  opSize = 32;
  addrSize = 32;
  /** ModRM.reg (+REX.R), or the register in the opcode's low bits. */
  reg = 0;
  /** Register operand of ModRM.r/m (+REX.B), or -1 for a memory operand. */
  rm = -1;
  /** Memory operand: effective segment, base and index registers (-1: none), log2 scale, displacement, RIP-relative. */
  seg = 3;
  base = -1;
  index = -1;
  scale = 0;
  disp = 0;
  ripRel = false;
  /** Immediate, unsigned and masked to the operand width (64-bit: the low half, sign in immHi). */
  imm = 0;
  immHi = 0;
  /** Second immediate (ENTER's nesting level, a far pointer's selector). */
  imm2 = 0;
  /** Sub-operation: ALU op index, condition code, group reg field, segment register. */
  op = 0;
  rep = 0;
  /** The second operand is the immediate (TEST, shifts by Ib). */
  operandIsImm = false;
  /** A handler-specific constant chosen at bind time (INC vs DEC, the source width of MOVZX, …). */
  aux = 0;
  /** An operand-size prefix was present (also a mandatory prefix: VMCLEAR, INVEPT). */
  prefix66 = false;
  lock = false;
  /** A segment-override prefix was present. */
  segOverride = false;
  modrmByte = -1;
  /** Ends a decoded block. */
  endsBlock = false;
  /** May end in a VM exit without ending its block (ATTR.EXIT). */
  mayExit = false;
  /** May store to memory (a memory operand, or an implicit one: stack, string destination), so may hit decoded code. */
  mayWrite = false;

  constructor(exec: Handler) {
    this.exec = exec;
  }
}
