/** Runs a 64-bit code snippet (ended by HLT) with chosen registers and returns the CPU. */
import { expect } from 'vitest';
import type { Cpu } from '../src/cpu/cpu.js';
import { STOP } from '../src/cpu/virt.js';
import { assemble } from './asm.js';
import { longMode, realMode, type Machine } from './helpers.js';

export const REGS = ['rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'] as const;
export type RegName = (typeof REGS)[number];

export function setReg64(cpu: Cpu, r: number, v: bigint): void {
  const u = BigInt.asUintN(64, v);
  cpu.gpr[r] = Number(u & 0xffffffffn);
  cpu.gprHi[r] = Number(u >> 32n);
}

export function reg64(cpu: Cpu, name: RegName): bigint {
  const r = REGS.indexOf(name);
  return (BigInt(cpu.gprHi[r]! >>> 0) << 32n) | BigInt(cpu.gpr[r]! >>> 0);
}

/** Runs `source` + HLT in 64-bit mode; `init` sets registers (and `rflags`). Expects HLT. */
export function run64(source: string, init: Partial<Record<RegName | 'rflags', bigint | number>> = {}): Machine {
  const m = longMode(assemble(`${source}\nhlt`, 64));
  for (const [k, v] of Object.entries(init)) {
    if (k === 'rflags') m.cpu.setRflags(Number(v));
    else setReg64(m.cpu, REGS.indexOf(k as RegName), BigInt(v));
  }
  const r = m.cpu.run(100_000);
  expect(r, m.cpu.internalError).toBe(STOP.HLT);
  return m;
}

export function run16(source: string): Machine {
  const m = realMode(assemble(`${source}\nhlt`, 16));
  const r = m.cpu.run(100_000);
  expect(r, m.cpu.internalError).toBe(STOP.HLT);
  return m;
}

/** Runs `source` in 64-bit mode and returns the vectors of the faults raised (the first is the instruction's), and the machine. */
export function faults64(source: string, init: Partial<Record<RegName, bigint | number>> = {}): { vectors: number[]; errorCodes: number[]; m: Machine } {
  const m = longMode(assemble(`${source}\nhlt`, 64));
  for (const [k, v] of Object.entries(init)) setReg64(m.cpu, REGS.indexOf(k as RegName), BigInt(v));
  const vectors: number[] = [];
  const errorCodes: number[] = [];
  const orig = m.cpu.fault.bind(m.cpu);
  m.cpu.fault = (v: number, e = -1): never => { vectors.push(v); errorCodes.push(e); return orig(v, e); };
  m.cpu.run(10_000);
  return { vectors, errorCodes, m };
}
