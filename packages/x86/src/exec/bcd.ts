/** Decimal adjusts (SDM Vol. 2): DAA, DAS, AAA, AAS, AAM, AAD. Invalid in 64-bit mode. */
import type { Cpu } from '../cpu/cpu.js';
import { VEC } from '../cpu/events.js';
import { RFLAGS } from '../cpu/state.js';
import type { Binder } from '../decode/binders.js';
import type { Insn } from '../decode/insn.js';
import { getAF, getCF, setResultFlags } from '../flags/lazy-flags.js';
import { getReg, setReg } from './operand.js';

function al(cpu: Cpu): number {
  return cpu.gpr[0]! & 0xff;
}

function daa(cpu: Cpu): void {
  const old = al(cpu);
  const oldCf = getCF(cpu);
  let v = old;
  let cf = 0;
  let af = 0;
  if ((v & 0xf) > 9 || getAF(cpu)) { cf = oldCf | (v + 6 > 0xff ? 1 : 0); v = (v + 6) & 0xff; af = RFLAGS.AF; }
  if (old > 0x99 || oldCf !== 0) { v = (v + 0x60) & 0xff; cf = 1; } else cf = 0;
  setReg(cpu, 0, 8, v);
  setResultFlags(cpu, v, 0x80, cf | af);
}

function das(cpu: Cpu): void {
  const old = al(cpu);
  const oldCf = getCF(cpu);
  let v = old;
  let cf = 0;
  let af = 0;
  if ((v & 0xf) > 9 || getAF(cpu)) { cf = oldCf | (v < 6 ? 1 : 0); v = (v - 6) & 0xff; af = RFLAGS.AF; }
  if (old > 0x99 || oldCf !== 0) { v = (v - 0x60) & 0xff; cf = 1; }
  setReg(cpu, 0, 8, v);
  setResultFlags(cpu, v, 0x80, cf | af);
}

function aaa(cpu: Cpu): void {
  let ax = getReg(cpu, 0, 16);
  let f = 0;
  if ((ax & 0xf) > 9 || getAF(cpu)) { ax = (ax + 0x106) & 0xffff; f = RFLAGS.AF | RFLAGS.CF; }
  ax &= 0xff0f;
  setReg(cpu, 0, 16, ax);
  setResultFlags(cpu, ax & 0xff, 0x80, f);
}

function aas(cpu: Cpu): void {
  let ax = getReg(cpu, 0, 16);
  let f = 0;
  if ((ax & 0xf) > 9 || getAF(cpu)) {
    const lo = ((ax & 0xff) - 6) & 0xff;
    const hi = ((ax >> 8) - 1) & 0xff;
    ax = (hi << 8) | lo;
    f = RFLAGS.AF | RFLAGS.CF;
  }
  ax &= 0xff0f;
  setReg(cpu, 0, 16, ax);
  setResultFlags(cpu, ax & 0xff, 0x80, f);
}

function aam(cpu: Cpu, i: Insn): void {
  if (i.imm === 0) cpu.fault(VEC.DE);
  const a = al(cpu);
  const v = a % i.imm;
  setReg(cpu, 0, 16, (Math.floor(a / i.imm) << 8) | v);
  setResultFlags(cpu, v, 0x80, 0);
}

function aad(cpu: Cpu, i: Insn): void {
  const v = (al(cpu) + ((cpu.gpr[0]! >> 8) & 0xff) * i.imm) & 0xff;
  setReg(cpu, 0, 16, v);
  setResultFlags(cpu, v, 0x80, 0);
}

export const BCD_BINDERS: Record<string, Binder> = {
  DAA: () => daa, DAS: () => das, AAA: () => aaa, AAS: () => aas, AAM: () => aam, AAD: () => aad,
};
