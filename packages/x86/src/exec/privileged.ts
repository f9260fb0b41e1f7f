/**
 * Instructions whose semantics belong to the system architecture (system/, seg/, mmu/): the
 * handlers here decode operands, fold the lazy flags into RFLAGS (the system code reads and
 * writes RFLAGS directly), call the implementation, and refresh the cached mode afterwards.
 */
import type { Cpu } from '../cpu/cpu.js';
import { VEC } from '../cpu/events.js';
import { INTERRUPTIBILITY, SEG } from '../cpu/state.js';
import { DESC_OP, INTERCEPT } from '../cpu/virt.js';
import type { Binder } from '../decode/binders.js';
import type { Insn } from '../decode/insn.js';
import { loadSegment } from '../seg/segments.js';
import {
  cliInsn, cltsInsn, cpuidInsn, descTableInsn, hltInsn, invlpgInsn, lmswInsn, movFromCr, movFromDr, movToCr, movToDr,
  rdmsrInsn, rdtscInsn, smswValue, stiInsn, swapgsInsn, syscallInsn, sysenterInsn, sysexitInsn, sysretInsn, wrmsrInsn,
} from '../system/system.js';
import { effAddr, fillOperand, memLinear, readE, setReg, writeE } from './operand.js';

/** Runs a system-architecture operation with exact RFLAGS and the mode recomputed afterwards. */
function sys(cpu: Cpu, f: (cpu: Cpu) => void): void {
  cpu.syncFlags();
  f(cpu);
  // One that ended in a VM exit did not execute: the exit has already set up the host's context.
  if (!cpu.aborted) cpu.stateChanged();
}

function ud(cpu: Cpu): void {
  cpu.fault(VEC.UD);
}

export function pauseInsn(cpu: Cpu): void {
  if (cpu.ext !== null && cpu.ext.guest) { cpu.syncFlags(); cpu.ext.intercept(INTERCEPT.PAUSE, 0, 0); } // nothing follows: an exit ends it
}

function movToSeg(cpu: Cpu, i: Insn): void {
  const seg = i.reg & 7;
  if (seg === SEG.CS || seg > SEG.GS) cpu.fault(VEC.UD);
  const sel = readE(cpu, i, 16);
  sys(cpu, () => loadSegment(cpu, seg, sel));
  if (seg === SEG.SS) cpu.interruptibility |= INTERRUPTIBILITY.MOV_SS;
}

function movFromSeg(cpu: Cpu, i: Insn): void {
  const seg = i.reg & 7;
  if (seg > SEG.GS) cpu.fault(VEC.UD);
  const sel = cpu.seg[seg]!.selector;
  // To a register the value is zero-extended to the operand size; to memory it is 16 bits.
  if (i.rm >= 0) setReg(cpu, i.rm, i.opSize === 64 ? 32 : i.opSize, sel);
  else writeE(cpu, i, 16, sel);
}

/** LDS, LES, LFS, LGS, LSS: offset then selector from memory. */
function loadFarPointer(cpu: Cpu, i: Insn): void {
  if (i.rm >= 0) cpu.fault(VEC.UD);
  const bytes = i.opSize >> 3;
  const la = memLinear(cpu, i, bytes + 2, false);
  const off = bytes === 8 ? cpu.read64(la) : cpu.readN(la, bytes);
  const hi = cpu.hi;
  const sel = cpu.read16(la + bytes);
  sys(cpu, () => loadSegment(cpu, i.aux, sel));
  if (i.aux === SEG.SS) cpu.interruptibility |= INTERRUPTIBILITY.MOV_SS;
  cpu.hi = hi;
  setReg(cpu, i.reg, i.opSize, off);
}

function movCr(cpu: Cpu, i: Insn): void {
  const cr = i.reg;
  fillOperand(cpu, i);
  if (i.aux === 1) sys(cpu, () => movToCr(cpu, cr, i.rm));
  else sys(cpu, () => movFromCr(cpu, cr, i.rm));
}

function movDr(cpu: Cpu, i: Insn): void {
  const dr = i.reg;
  fillOperand(cpu, i);
  if (i.aux === 1) sys(cpu, () => movToDr(cpu, dr, i.rm));
  else sys(cpu, () => movFromDr(cpu, dr, i.rm));
}

function descTable(cpu: Cpu, i: Insn): void {
  fillOperand(cpu, i);
  sys(cpu, () => descTableInsn(cpu, i.aux, cpu.operand));
}

function lmsw(cpu: Cpu, i: Insn): void {
  const v = readE(cpu, i, 16);
  fillOperand(cpu, i);
  sys(cpu, () => lmswInsn(cpu, v, i.rm < 0));
}

function smsw(cpu: Cpu, i: Insn): void {
  cpu.syncFlags();
  const v = smswValue(cpu);
  if (i.rm >= 0) setReg(cpu, i.rm, i.opSize === 64 ? 32 : i.opSize, i.opSize === 16 ? v & 0xffff : v >>> 0);
  else writeE(cpu, i, 16, v & 0xffff);
}

function invlpg(cpu: Cpu, i: Insn): void {
  fillOperand(cpu, i);
  const la = cpu.long64 ? effAddr(cpu, i) + (i.seg >= SEG.FS ? cpu.seg[i.seg]!.base : 0) : (cpu.seg[i.seg]!.base + effAddr(cpu, i)) >>> 0;
  sys(cpu, () => invlpgInsn(cpu, la));
}

function simple(f: (cpu: Cpu) => void): Binder {
  // No closure per execution: CPUID, RDMSR and the like run on every exit path.
  return () => (cpu) => sys(cpu, f);
}

/** Intercept-only instructions with no effect on this model's state (INVD, WBINVD, MONITOR, …). */
function interceptOnly(kind: number, needCpl0: boolean): Binder {
  return () => (cpu) => {
    if (needCpl0 && cpu.cpl !== 0) cpu.fault(VEC.GP, 0);
    if (cpu.ext !== null && cpu.ext.guest) { cpu.syncFlags(); cpu.ext.intercept(kind as never, 0, 0); } // nothing follows
  };
}

export const PRIVILEGED_BINDERS: Record<string, Binder> = {
  MOVTOSEG: () => movToSeg,
  MOVFROMSEG: () => movFromSeg,
  LES: (i) => { i.aux = SEG.ES; return loadFarPointer; },
  LDS: (i) => { i.aux = SEG.DS; return loadFarPointer; },
  LSS: (i) => { i.aux = SEG.SS; return loadFarPointer; },
  LFS: (i) => { i.aux = SEG.FS; return loadFarPointer; },
  LGS: (i) => { i.aux = SEG.GS; return loadFarPointer; },
  MOVTOCR: (i) => { i.aux = 1; return movCr; },
  MOVFROMCR: (i) => { i.aux = 0; return movCr; },
  MOVTODR: (i) => { i.aux = 1; return movDr; },
  MOVFROMDR: (i) => { i.aux = 0; return movDr; },
  SGDT: (i) => { i.aux = DESC_OP.SGDT; return descTable; },
  SIDT: (i) => { i.aux = DESC_OP.SIDT; return descTable; },
  LGDT: (i) => { i.aux = DESC_OP.LGDT; return descTable; },
  LIDT: (i) => { i.aux = DESC_OP.LIDT; return descTable; },
  SLDT: (i) => { i.aux = DESC_OP.SLDT; return descTable; },
  STR: (i) => { i.aux = DESC_OP.STR; return descTable; },
  LLDT: (i) => { i.aux = DESC_OP.LLDT; return descTable; },
  LTR: (i) => { i.aux = DESC_OP.LTR; return descTable; },
  LMSW: () => lmsw,
  SMSW: () => smsw,
  INVLPG: () => invlpg,
  CPUID: simple(cpuidInsn),
  RDMSR: simple(rdmsrInsn),
  WRMSR: simple(wrmsrInsn),
  RDTSC: () => (cpu) => sys(cpu, () => rdtscInsn(cpu, false)),
  RDTSCP: () => (cpu) => sys(cpu, () => rdtscInsn(cpu, true)),
  HLT: simple(hltInsn),
  CLI: simple(cliInsn),
  STI: simple(stiInsn),
  CLTS: simple(cltsInsn),
  SYSCALL: simple(syscallInsn),
  SYSRET: (i) => (cpu) => sys(cpu, () => sysretInsn(cpu, i.opSize === 64 ? 64 : 32)),
  SYSENTER: simple(sysenterInsn),
  SYSEXIT: (i) => (cpu) => sys(cpu, () => sysexitInsn(cpu, i.opSize === 64 ? 64 : 32)),
  SWAPGS: simple(swapgsInsn),
  INVD: interceptOnly(INTERCEPT.INVD, true),
  WBINVD: interceptOnly(INTERCEPT.WBINVD, true),
  RDPMC: () => ud,
  RSM: () => ud,
  MONITOR: () => ud,
  MWAIT: () => ud,
  CLAC: () => ud,
  STAC: () => ud,
  XGETBV: () => ud,
  XSETBV: () => ud,
};
