/**
 * Flag instructions (SDM Vol. 1, 3.4.3; Vol. 2): CLC, STC, CMC, CLD, STD, LAHF, SAHF, SALC,
 * PUSHF and POPF with the IOPL and virtual-8086 rules for which flags may change.
 */
import type { Cpu } from '../cpu/cpu.js';
import { VEC } from '../cpu/events.js';
import { RFLAGS } from '../cpu/state.js';
import { INTERCEPT } from '../cpu/virt.js';
import type { Binder } from '../decode/binders.js';
import type { Insn } from '../decode/insn.js';
import { getCF, materialize, setFlagBits } from '../flags/lazy-flags.js';
import { setReg } from './operand.js';
import { pop, push } from './stack.js';

/** The flags POPF may always change (SDM Vol. 2, POPF, Table 4-15 "Effect of POPF/POPFD on the EFLAGS Register"). */
const POPF_ALWAYS = RFLAGS.CF | RFLAGS.PF | RFLAGS.AF | RFLAGS.ZF | RFLAGS.SF | RFLAGS.TF | RFLAGS.DF | RFLAGS.OF
  | RFLAGS.NT | RFLAGS.AC | RFLAGS.ID;
/** SAHF/LAHF: SF ZF AF PF CF. */
const AH_FLAGS = RFLAGS.SF | RFLAGS.ZF | RFLAGS.AF | RFLAGS.PF | RFLAGS.CF;

function iopl(cpu: Cpu): number {
  return (cpu.rflags & RFLAGS.IOPL) >> RFLAGS.IOPL_SHIFT;
}

function pushf(cpu: Cpu, i: Insn): void {
  if (cpu.v86 && iopl(cpu) < 3) cpu.fault(VEC.GP, 0);
  if (cpu.ext !== null && cpu.ext.guest) { cpu.syncFlags(); if (cpu.ext.intercept(INTERCEPT.PUSHF, 0, 0)) return; }
  const v = materialize(cpu) & ~(RFLAGS.VM | RFLAGS.RF);
  push(cpu, i.opSize >> 3, i.opSize === 16 ? v & 0xffff : v);
}

function popf(cpu: Cpu, i: Insn): void {
  if (cpu.v86 && iopl(cpu) < 3) cpu.fault(VEC.GP, 0);
  if (cpu.ext !== null && cpu.ext.guest) { cpu.syncFlags(); if (cpu.ext.intercept(INTERCEPT.POPF, 0, 0)) return; }
  const v = pop(cpu, i.opSize >> 3);
  let mask = POPF_ALWAYS;
  if (cpu.cpl <= iopl(cpu) || !cpu.protectedMode) mask |= RFLAGS.IF;
  if (cpu.cpl === 0 && !cpu.v86) mask |= RFLAGS.IOPL;
  if (i.opSize === 16) mask &= 0xffff;
  const old = materialize(cpu);
  cpu.rflags = ((old & ~mask) | (v & mask) | RFLAGS.FIXED1) & ~RFLAGS.RF;
  cpu.lfMask = 0;
  if ((cpu.rflags & (RFLAGS.IF | RFLAGS.TF)) !== 0) cpu.attention = true;
}

function sahf(cpu: Cpu): void {
  setFlagBits(cpu, AH_FLAGS, (cpu.gpr[0]! >> 8) & 0xff);
}

function lahf(cpu: Cpu): void {
  setReg(cpu, 16, 8, (materialize(cpu) & (AH_FLAGS | RFLAGS.FIXED1)) & 0xff);
}

function salc(cpu: Cpu): void {
  setReg(cpu, 0, 8, getCF(cpu) !== 0 ? 0xff : 0);
}

function setFlag(which: number, value: number): Binder {
  return () => (cpu) => setFlagBits(cpu, which, value);
}

export const FLAG_BINDERS: Record<string, Binder> = {
  CLC: setFlag(RFLAGS.CF, 0),
  STC: setFlag(RFLAGS.CF, RFLAGS.CF),
  CMC: () => (cpu) => setFlagBits(cpu, RFLAGS.CF, getCF(cpu) ^ 1),
  CLD: () => (cpu) => { cpu.rflags &= ~RFLAGS.DF; },
  STD: () => (cpu) => { cpu.rflags |= RFLAGS.DF; },
  SAHF: () => sahf,
  LAHF: () => lahf,
  SALC: () => salc,
  PUSHF: () => pushf,
  POPF: () => popf,
};

