/**
 * Data movement (SDM Vol. 2): MOV (register, memory, immediate, moffs), MOVZX, MOVSX, MOVSXD,
 * LEA, XCHG, CMOVcc, CBW/CWDE/CDQE, CWD/CDQ/CQO, XLAT, BSWAP, MOVBE, and the NOP forms.
 */
import type { Cpu } from '../cpu/cpu.js';
import { VEC } from '../cpu/events.js';
import { SEG } from '../cpu/state.js';
import type { Binder } from '../decode/binders.js';
import type { Insn } from '../decode/insn.js';
import { testCC } from '../flags/lazy-flags.js';
import { effAddr, getReg, readE, readRmw, setReg, signExtend, writeE, writeRmw } from './operand.js';
import { pauseInsn } from './privileged.js';

function movEG(cpu: Cpu, i: Insn): void {
  const v = getReg(cpu, i.reg, i.opSize);
  writeE(cpu, i, i.opSize, v);
}

function movGE(cpu: Cpu, i: Insn): void {
  setReg(cpu, i.reg, i.opSize, readE(cpu, i, i.opSize));
}

function mov32RR(cpu: Cpu, i: Insn): void {
  cpu.gpr[i.reg] = cpu.gpr[i.rm]!;
  cpu.gprHi[i.reg] = 0;
}

function mov64RR(cpu: Cpu, i: Insn): void {
  cpu.gpr[i.reg] = cpu.gpr[i.rm]!;
  cpu.gprHi[i.reg] = cpu.gprHi[i.rm]!;
}

const TWO32 = 4294967296;
const CANONICAL_LIMIT = 0x800000000000;

/**
 * Linear address of a [base + disp] operand in 64-bit mode. Doubles are exact here: a sum that
 * would round lies far outside the canonical range, and faults as the exact one would.
 */
function baseDispLinear(cpu: Cpu, i: Insn): number {
  const b = i.base;
  let a = cpu.gprHi[b]! * TWO32 + (cpu.gpr[b]! >>> 0) + i.disp;
  if (i.seg >= SEG.FS) a += cpu.seg[i.seg]!.base;
  if (a < -CANONICAL_LIMIT || a >= CANONICAL_LIMIT) cpu.fault(i.seg === SEG.SS ? VEC.SS : VEC.GP, 0);
  return a;
}

// MOV between a register and [base + disp] in 64-bit mode: the common load and store of compiled code.
function movLoad64(cpu: Cpu, i: Insn): void {
  cpu.gpr[i.reg] = cpu.read64(baseDispLinear(cpu, i));
  cpu.gprHi[i.reg] = cpu.hi;
}

function movStore64(cpu: Cpu, i: Insn): void {
  cpu.write64(baseDispLinear(cpu, i), cpu.gpr[i.reg]!, cpu.gprHi[i.reg]!);
}

function movLoad32(cpu: Cpu, i: Insn): void {
  cpu.gpr[i.reg] = cpu.read32(baseDispLinear(cpu, i));
  cpu.gprHi[i.reg] = 0;
}

function movStore32(cpu: Cpu, i: Insn): void {
  cpu.write32(baseDispLinear(cpu, i), cpu.gpr[i.reg]!);
}

function movEI(cpu: Cpu, i: Insn): void {
  cpu.hi = i.immHi;
  writeE(cpu, i, i.opSize, i.imm);
}

function mov32RI(cpu: Cpu, i: Insn): void {
  cpu.gpr[i.rm] = i.imm;
  cpu.gprHi[i.rm] = 0;
}

function movzx(cpu: Cpu, i: Insn): void {
  const v = readE(cpu, i, i.aux);
  if (i.opSize === 64) cpu.hi = 0;
  setReg(cpu, i.reg, i.opSize, v);
}

function movsx(cpu: Cpu, i: Insn): void {
  const v = signExtend(readE(cpu, i, i.aux), i.aux);
  if (i.opSize === 64) cpu.hi = v >> 31;
  setReg(cpu, i.reg, i.opSize, i.opSize === 16 ? v & 0xffff : v >>> 0);
}

function lea(cpu: Cpu, i: Insn): void {
  const a = effAddr(cpu, i);
  if (i.addrSize === 64) { // exact halves; a 32-bit LEA keeps the low half
    if (i.opSize === 64) { cpu.gpr[i.reg] = cpu.eaLo; cpu.gprHi[i.reg] = cpu.eaHi; return; }
    setReg(cpu, i.reg, i.opSize, i.opSize === 16 ? cpu.eaLo & 0xffff : cpu.eaLo >>> 0);
    return;
  }
  if (i.opSize === 64) { cpu.gpr[i.reg] = a >>> 0; cpu.gprHi[i.reg] = 0; return; } // 67-prefixed: zero-extended
  setReg(cpu, i.reg, i.opSize, i.opSize === 16 ? a & 0xffff : a >>> 0);
}

function xchg(cpu: Cpu, i: Insn): void {
  const size = i.opSize;
  const a = readRmw(cpu, i, size);
  const ahi = cpu.hi;
  const b = getReg(cpu, i.reg, size);
  writeRmw(cpu, i, size, b);
  cpu.hi = ahi;
  setReg(cpu, i.reg, size, a);
}

function cmov(cpu: Cpu, i: Insn): void {
  const v = readE(cpu, i, i.opSize); // the source is read (and may fault) even when the condition is false
  if (testCC(cpu, i.op)) setReg(cpu, i.reg, i.opSize, v);
  else if (i.opSize === 32) cpu.gprHi[i.reg] = 0; // a 32-bit CMOV zero-extends even when it does not move
}

/** CBW / CWDE / CDQE. */
function cbw(cpu: Cpu, i: Insn): void {
  const size = i.opSize;
  const half = size >> 1;
  const v = signExtend(getReg(cpu, 0, half), half);
  if (size === 64) cpu.hi = v >> 31;
  setReg(cpu, 0, size, size === 16 ? v & 0xffff : v >>> 0);
}

/** CWD / CDQ / CQO. */
function cwd(cpu: Cpu, i: Insn): void {
  const size = i.opSize;
  const neg = size === 64 ? cpu.gprHi[0]! < 0 : (getReg(cpu, 0, size) & (size === 16 ? 0x8000 : 0x80000000)) !== 0;
  const fill = neg ? 0xffffffff : 0;
  if (size === 64) cpu.hi = fill | 0;
  setReg(cpu, 2, size, size === 16 ? fill & 0xffff : fill);
}

function xlat(cpu: Cpu, i: Insn): void {
  const base = i.addrSize === 64 ? cpu.gprHi[3]! * 4294967296 + (cpu.gpr[3]! >>> 0) : getReg(cpu, 3, i.addrSize);
  const off = base + (cpu.gpr[0]! & 0xff);
  const masked = i.addrSize === 16 ? off & 0xffff : i.addrSize === 32 ? off >>> 0 : off;
  setReg(cpu, 0, 8, cpu.read8(cpu.linear(i.seg, masked, 1, false)));
}

function bswap(cpu: Cpu, i: Insn): void {
  const r = i.reg;
  const sw = (v: number): number => ((v >>> 24) | ((v >>> 8) & 0xff00) | ((v << 8) & 0xff0000) | (v << 24)) | 0;
  if (i.opSize === 64) {
    const lo = cpu.gpr[r]!;
    cpu.gpr[r] = sw(cpu.gprHi[r]!);
    cpu.gprHi[r] = sw(lo);
  } else if (i.opSize === 32) {
    cpu.gpr[r] = sw(cpu.gpr[r]!);
    cpu.gprHi[r] = 0;
  } else {
    setReg(cpu, r, 16, 0); // BSWAP of a 16-bit register is undefined; Intel and AMD clear it
  }
}

/** MOVBE: a load or store with the bytes reversed (i.aux = 1 for the store form). */
function movbe(cpu: Cpu, i: Insn): void {
  const size = i.opSize;
  const rev16 = (v: number): number => ((v & 0xff) << 8) | (v >>> 8);
  const rev32 = (v: number): number => (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;
  if (i.aux === 0) {
    const v = readE(cpu, i, size);
    if (size === 64) { const hi = cpu.hi; cpu.hi = rev32(v) | 0; setReg(cpu, i.reg, 64, rev32(hi)); }
    else setReg(cpu, i.reg, size, size === 16 ? rev16(v) : rev32(v));
  } else {
    const v = getReg(cpu, i.reg, size);
    if (size === 64) { const hi = cpu.hi; cpu.hi = rev32(v) | 0; writeE(cpu, i, 64, rev32(hi)); }
    else writeE(cpu, i, size, size === 16 ? rev16(v) : rev32(v));
  }
}

function nop(): void { }

function xchgZ(cpu: Cpu, i: Insn): void {
  const size = i.opSize;
  const a = getReg(cpu, 0, size);
  const ahi = cpu.hi;
  const b = getReg(cpu, i.reg, size);
  setReg(cpu, 0, size, b);
  cpu.hi = ahi;
  setReg(cpu, i.reg, size, a);
}

export const MOVE_BINDERS: Record<string, Binder> = {
  MOV: (i, info) => {
    const [dst, src] = info.operands;
    if (src !== undefined && /^I/.test(src)) {
      if (dst!.startsWith('Z')) { i.rm = i.reg; if (i.opSize === 32) return mov32RI; }
      return movEI;
    }
    if (dst === 'AL' || dst === 'rAX') { i.reg = 0; return movGE; } // A0/A1: moffs source
    if (src === 'AL' || src === 'rAX') { i.reg = 0; return movEG; } // A2/A3
    const baseDisp = i.rm < 0 && i.addrSize === 64 && i.base >= 0 && i.index < 0 && !i.ripRel;
    if (dst!.startsWith('G')) {
      if (i.rm >= 0 && i.opSize === 32) return mov32RR;
      if (i.rm >= 0 && i.opSize === 64) return mov64RR;
      if (baseDisp && i.opSize >= 32) return i.opSize === 64 ? movLoad64 : movLoad32;
      return movGE;
    }
    if (baseDisp && i.opSize >= 32) return i.opSize === 64 ? movStore64 : movStore32;
    return movEG;
  },
  MOVZX: (i, info) => { i.aux = info.operands[1] === 'Eb' ? 8 : 16; return movzx; },
  MOVSX: (i, info) => { i.aux = info.operands[1] === 'Eb' ? 8 : 16; return movsx; },
  MOVSXD: (i) => { i.aux = 32; return i.opSize === 64 ? movsx : movGE; },
  LEA: (i) => (i.rm >= 0 ? udHandler : lea),
  XCHG: (i, info) => (info.operands[0] === 'Zv' ? xchgZ : xchg),
  NOP90: (i) => {
    if (i.reg !== 0) { i.opSize = i.opSize === 64 ? 64 : i.opSize; return xchgZ; } // 90 with REX.B: XCHG r8, rAX
    if (i.rep !== 1) return nop;
    i.endsBlock = true; // PAUSE may be intercepted
    return pauseInsn;
  },
  CMOVCC: () => cmov,
  CBW: () => cbw,
  CWD: () => cwd,
  XLAT: () => xlat,
  BSWAP: () => bswap,
  MOVBE: (i, info) => {
    if (i.rm >= 0) return udHandler;
    i.aux = info.operands[0]!.startsWith('M') ? 1 : 0;
    return movbe;
  },
  NOP: () => nop,
  FWAIT: () => nop,
  LFENCE: () => nop,
  MFENCE: () => nop,
  SFENCE: () => nop,
};

function udHandler(cpu: Cpu): void {
  cpu.fault(6);
}
