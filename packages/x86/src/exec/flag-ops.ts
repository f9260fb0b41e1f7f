/**
 * Flag instructions (SDM Vol. 1, 3.4.3; Vol. 2): CLC, STC, CMC, CLD, STD, LAHF, SAHF, SALC,
 * PUSHF and POPF with the IOPL and virtual-8086 rules for which flags may change (and VIF
 * under CR4.VME).
 */
import type { Cpu } from '../cpu/cpu.js';
import { VEC } from '../cpu/events.js';
import { CR4, RFLAGS } from '../cpu/state.js';
import { INTERCEPT } from '../cpu/virt.js';
import type { Binder } from '../decode/binders.js';
import type { Insn } from '../decode/insn.js';
import { getCF, materialize, setFlagBits } from '../flags/lazy-flags.js';
import { setReg } from './operand.js';
import { peek, pop, push } from './stack.js';

/** The flags POPF may always change (SDM Vol. 2, POPF, Table 4-15 "Effect of POPF/POPFD on the EFLAGS Register"). */
const POPF_ALWAYS = RFLAGS.CF | RFLAGS.PF | RFLAGS.AF | RFLAGS.ZF | RFLAGS.SF | RFLAGS.TF | RFLAGS.DF | RFLAGS.OF
  | RFLAGS.NT | RFLAGS.AC | RFLAGS.ID;
/** SAHF/LAHF: SF ZF AF PF CF. */
const AH_FLAGS = RFLAGS.SF | RFLAGS.ZF | RFLAGS.AF | RFLAGS.PF | RFLAGS.CF;

function iopl(cpu: Cpu): number {
  return (cpu.rflags & RFLAGS.IOPL) >> RFLAGS.IOPL_SHIFT;
}

/**
 * Virtual-8086 mode with IOPL < 3: #GP(0), unless CR4.VME is set and the operand size is 16
 * (SDM Vol. 3A 20.3.2, the virtual interrupt mechanism): then PUSHF and POPF work on VIF in
 * place of IF. True in that case.
 */
function v86Virtual(cpu: Cpu, i: Insn): boolean {
  if (!cpu.v86 || iopl(cpu) === 3) return false;
  if (!(cpu.cr4 & CR4.VME) || i.opSize !== 16) cpu.fault(VEC.GP, 0);
  return true;
}

function pushf(cpu: Cpu, i: Insn): void {
  const virtual = v86Virtual(cpu, i);
  if (cpu.ext !== null && cpu.ext.guest) { cpu.syncFlags(); if (cpu.ext.intercept(INTERCEPT.PUSHF, 0, 0)) return; }
  let v = materialize(cpu) & ~(RFLAGS.VM | RFLAGS.RF);
  // The image shows VIF as IF, and IOPL as 3 (SDM Vol. 2, PUSHF).
  if (virtual) v = (v & ~RFLAGS.IF) | (v & RFLAGS.VIF ? RFLAGS.IF : 0) | RFLAGS.IOPL;
  push(cpu, i.opSize >> 3, i.opSize === 16 ? v & 0xffff : v);
}

/** POPF in virtual-8086 mode with VME: IF goes to VIF; #GP(0) if it would set VIF with VIP pending, or set TF. */
function popfVirtual(cpu: Cpu): void {
  const v = peek(cpu, 2);
  const old = materialize(cpu);
  if ((v & RFLAGS.IF && old & RFLAGS.VIP) || v & RFLAGS.TF) cpu.fault(VEC.GP, 0);
  pop(cpu, 2);
  const mask = POPF_ALWAYS & 0xffff;
  const vif = v & RFLAGS.IF ? RFLAGS.VIF : 0;
  cpu.rflags = ((old & ~mask & ~RFLAGS.VIF) | (v & mask) | vif | RFLAGS.FIXED1) & ~RFLAGS.RF;
  cpu.lfMask = 0;
}

function popf(cpu: Cpu, i: Insn): void {
  const virtual = v86Virtual(cpu, i);
  if (cpu.ext !== null && cpu.ext.guest) { cpu.syncFlags(); if (cpu.ext.intercept(INTERCEPT.POPF, 0, 0)) return; }
  if (virtual) { popfVirtual(cpu); return; }
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

