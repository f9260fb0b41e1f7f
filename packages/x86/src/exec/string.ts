/**
 * String instructions (SDM Vol. 1, 7.3.9; Vol. 2): MOVS, CMPS, SCAS, LODS, STOS, INS, OUTS with
 * REP/REPE/REPNE. rSI, rDI and rCX have the address size's width. The source segment may be
 * overridden; ES:rDI may not. A long REP runs in slices: after REP_SLICE iterations the
 * instruction restarts itself (RIP back to its start, not retired), so interrupts are seen
 * between slices, as on hardware; each restart takes one instruction off run()'s budget.
 */
import type { Cpu } from '../cpu/cpu.js';
import { RFLAGS, SEG } from '../cpu/state.js';
import { IO_INFO } from '../cpu/virt.js';
import type { Binder } from '../decode/binders.js';
import type { Insn } from '../decode/insn.js';
import { REP } from '../decode/insn.js';
import { getZF } from '../flags/lazy-flags.js';
import { ALU_OP, alu, alu64 } from './alu.js';
import { ioCheck } from './io.js';
import { getReg, reg64Signed, setReg } from './operand.js';

const REP_SLICE = 1024;
const RCX = 1;
const RSI = 6;
const RDI = 7;
const STR_OP = { MOVS: 0, CMPS: 1, SCAS: 2, LODS: 3, STOS: 4, INS: 5, OUTS: 6 } as const;

function getIdx(cpu: Cpu, r: number, a: number): number {
  return a === 64 ? reg64Signed(cpu, r) : getReg(cpu, r, a);
}

function setIdx(cpu: Cpu, r: number, a: number, v: number): void {
  if (a === 64) { cpu.gpr[r] = v >>> 0; cpu.gprHi[r] = Math.floor(v / 4294967296) | 0; }
  else if (a === 32) { cpu.gpr[r] = v >>> 0; cpu.gprHi[r] = 0; }
  else setReg(cpu, r, 16, v & 0xffff);
}

function advance(cpu: Cpu, r: number, a: number, delta: number): void {
  setIdx(cpu, r, a, getIdx(cpu, r, a) + delta);
}

function readAt(cpu: Cpu, seg: number, off: number, bytes: number): number {
  const la = cpu.linear(seg, off, bytes, false);
  return bytes === 8 ? cpu.read64(la) : cpu.readN(la, bytes);
}

function writeAt(cpu: Cpu, seg: number, off: number, bytes: number, v: number, hi: number): void {
  const la = cpu.linear(seg, off, bytes, true);
  if (bytes === 8) cpu.write64(la, v, hi);
  else cpu.writeN(la, bytes, v);
}

function compare(cpu: Cpu, size: number, a: number, ahi: number, b: number, bhi: number): void {
  if (size === 64) alu64(cpu, ALU_OP.CMP, a, ahi, b, bhi);
  else alu(cpu, ALU_OP.CMP, size, a, b);
}

/** One iteration of `op`; returns false when a REPE/REPNE condition ends the loop. */
function step(cpu: Cpu, i: Insn, op: number, bytes: number, delta: number): void {
  const a = i.addrSize;
  const size = i.opSize;
  switch (op) {
    case STR_OP.MOVS: {
      const v = readAt(cpu, i.seg, getIdx(cpu, RSI, a), bytes);
      writeAt(cpu, SEG.ES, getIdx(cpu, RDI, a), bytes, v, cpu.hi);
      advance(cpu, RSI, a, delta);
      advance(cpu, RDI, a, delta);
      return;
    }
    case STR_OP.CMPS: {
      const x = readAt(cpu, i.seg, getIdx(cpu, RSI, a), bytes);
      const xhi = cpu.hi;
      const y = readAt(cpu, SEG.ES, getIdx(cpu, RDI, a), bytes);
      compare(cpu, size, x, xhi, y, cpu.hi);
      advance(cpu, RSI, a, delta);
      advance(cpu, RDI, a, delta);
      return;
    }
    case STR_OP.SCAS: {
      const y = readAt(cpu, SEG.ES, getIdx(cpu, RDI, a), bytes);
      const yhi = cpu.hi;
      const x = getReg(cpu, 0, size);
      compare(cpu, size, x, cpu.hi, y, yhi);
      advance(cpu, RDI, a, delta);
      return;
    }
    case STR_OP.LODS: {
      const v = readAt(cpu, i.seg, getIdx(cpu, RSI, a), bytes);
      setReg(cpu, 0, size, v);
      advance(cpu, RSI, a, delta);
      return;
    }
    case STR_OP.STOS: {
      const v = getReg(cpu, 0, size);
      writeAt(cpu, SEG.ES, getIdx(cpu, RDI, a), bytes, v, cpu.hi);
      advance(cpu, RDI, a, delta);
      return;
    }
    case STR_OP.INS: {
      const la = cpu.linear(SEG.ES, getIdx(cpu, RDI, a), bytes, true);
      cpu.readForWrite(la, bytes); // the destination must be writable before the port is read
      const v = cpu.bus.in(cpu.gpr[2]! & 0xffff, bytes as 1 | 2 | 4);
      cpu.writeN(la, bytes, v);
      advance(cpu, RDI, a, delta);
      return;
    }
    default: { // OUTS
      const v = readAt(cpu, i.seg, getIdx(cpu, RSI, a), bytes);
      cpu.bus.out(cpu.gpr[2]! & 0xffff, bytes as 1 | 2 | 4, v);
      advance(cpu, RSI, a, delta);
    }
  }
}

function stringInsn(cpu: Cpu, i: Insn): void {
  const op = i.aux;
  const size = op === STR_OP.INS || op === STR_OP.OUTS ? Math.min(i.opSize, 32) : i.opSize;
  const bytes = size >> 3;
  const delta = (cpu.rflags & RFLAGS.DF) !== 0 ? -bytes : bytes;
  const a = i.addrSize;
  if (op === STR_OP.INS || op === STR_OP.OUTS) {
    if (ioCheck(cpu, i, cpu.gpr[2]! & 0xffff, bytes,
      IO_INFO.STRING | (op === STR_OP.INS ? IO_INFO.IN : 0) | (i.rep !== REP.NONE ? IO_INFO.REP : 0))) return;
  }
  if (i.rep === REP.NONE) { step(cpu, i, op, bytes, delta); return; }
  const conditional = op === STR_OP.CMPS || op === STR_OP.SCAS;
  for (let n = 0; n < REP_SLICE; n++) {
    if (getIdx(cpu, RCX, a) === 0) return;
    step(cpu, i, op, bytes, delta);
    advance(cpu, RCX, a, -1);
    if (conditional && getZF(cpu) !== (i.rep === REP.REPE)) return;
  }
  if (getIdx(cpu, RCX, a) !== 0) { // not done: run this instruction again after an event check
    cpu.rip = cpu.insnStart;
    cpu.icount--;
    cpu.runTarget--;
  }
}

export const STRING_BINDERS: Record<string, Binder> = Object.fromEntries(
  Object.entries(STR_OP).map(([mn, op]) => [mn, ((i) => {
    i.aux = op;
    if (i.rep !== REP.NONE || op === STR_OP.INS || op === STR_OP.OUTS) i.endsBlock = true; // a REP may restart itself; I/O may exit
    if (op === STR_OP.INS || op === STR_OP.OUTS) i.opSize = i.opSize === 8 ? 8 : i.opSize === 16 ? 16 : 32;
    return stringInsn;
  }) satisfies Binder]),
);
