/**
 * Bit instructions (SDM Vol. 2): BT, BTS, BTR, BTC (register and immediate offsets; a register
 * offset into memory addresses beyond the operand), BSF, BSR, TZCNT, LZCNT, POPCNT, SETcc.
 */
import type { Cpu } from '../cpu/cpu.js';
import { VEC } from '../cpu/events.js';
import { RFLAGS } from '../cpu/state.js';
import type { Binder } from '../decode/binders.js';
import type { Insn } from '../decode/insn.js';
import { REP } from '../decode/insn.js';
import { ARITH_FLAGS, setFlagBits, testCC } from '../flags/lazy-flags.js';
import { effAddr, getReg, readE, setReg, writeE } from './operand.js';

/** i.aux: 0 BT, 1 BTS, 2 BTR, 3 BTC. */
function bitTest(cpu: Cpu, i: Insn): void {
  const size = i.opSize;
  const kind = i.aux;
  let offset: number;
  let offLo: number;
  if (i.operandIsImm) offset = offLo = i.imm & (size - 1);
  else {
    offLo = getReg(cpu, i.reg, size);
    // As a signed bit offset: exact for 64-bit offsets within +-2^53 bits, far past canonical addresses.
    offset = size === 64 ? cpu.hi * 4294967296 + offLo : size === 32 ? offLo | 0 : (offLo << 16) >> 16;
  }
  if (i.rm >= 0) {
    const bit = offLo & (size - 1);
    const r = i.rm;
    const half = bit >= 32 ? cpu.gprHi : cpu.gpr;
    const m = 1 << (bit & 31);
    const old = (half[r]! & m) !== 0 ? 1 : 0;
    if (kind !== 0) {
      if (size === 16) {
        const v = getReg(cpu, r, 16);
        setReg(cpu, r, 16, kind === 1 ? v | m : kind === 2 ? v & ~m : v ^ m);
      } else {
        half[r] = kind === 1 ? half[r]! | m : kind === 2 ? half[r]! & ~m : half[r]! ^ m;
        if (size === 32) cpu.gprHi[r] = 0;
      }
    }
    setFlagBits(cpu, RFLAGS.CF, old);
    return;
  }
  // Memory: the byte holding the bit, at the effective address plus offset >> 3 (signed).
  const ea = effAddr(cpu, i) + Math.floor(offset / 8);
  const off = i.addrSize === 64 ? ea : i.addrSize === 32 ? ea >>> 0 : ea & 0xffff;
  const m = 1 << (offLo & 7);
  const la = cpu.linear(i.seg, off, 1, kind !== 0);
  const v = kind === 0 ? cpu.read8(la) : cpu.readForWrite(la, 1);
  if (kind !== 0) cpu.write8(la, kind === 1 ? v | m : kind === 2 ? v & ~m : v ^ m);
  setFlagBits(cpu, RFLAGS.CF, (v & m) !== 0 ? 1 : 0);
}

/** Count trailing zeros of (lo, hi) over `size` bits; `size` when zero. */
function tzcnt(lo: number, hi: number, size: number): number {
  if (lo !== 0) return 31 - Math.clz32(lo & -lo);
  if (size === 64 && hi !== 0) return 32 + 31 - Math.clz32(hi & -hi);
  return size;
}

function lzcnt(lo: number, hi: number, size: number): number {
  if (size === 64) return hi !== 0 ? Math.clz32(hi) : 32 + Math.clz32(lo);
  return Math.clz32(lo) - (32 - size);
}

function popcount32(v: number): number {
  v -= (v >>> 1) & 0x55555555;
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24);
}

/** i.aux: 0 BSF, 1 BSR, 2 TZCNT, 3 LZCNT, 4 POPCNT. */
function bitScan(cpu: Cpu, i: Insn): void {
  const size = i.opSize;
  const lo = readE(cpu, i, size);
  const hi = size === 64 ? cpu.hi : 0;
  const zero = lo === 0 && hi === 0;
  let r: number;
  switch (i.aux) {
    case 0: case 1:
      if (zero) { setFlagBits(cpu, RFLAGS.ZF, RFLAGS.ZF); return; } // destination unchanged
      r = i.aux === 0 ? tzcnt(lo, hi, size) : size - 1 - lzcnt(lo, hi, size);
      setFlagBits(cpu, RFLAGS.ZF, 0);
      break;
    case 2: case 3:
      r = i.aux === 2 ? tzcnt(lo, hi, size) : lzcnt(lo, hi, size);
      setFlagBits(cpu, RFLAGS.CF | RFLAGS.ZF, (zero ? RFLAGS.CF : 0) | (r === 0 ? RFLAGS.ZF : 0));
      break;
    default:
      r = popcount32(lo) + popcount32(hi);
      setFlagBits(cpu, ARITH_FLAGS, zero ? RFLAGS.ZF : 0);
  }
  cpu.hi = 0;
  setReg(cpu, i.reg, size, r);
}

function setcc(cpu: Cpu, i: Insn): void {
  writeE(cpu, i, 8, testCC(cpu, i.op) ? 1 : 0);
}

function bitTestBinder(kind: number): Binder {
  return (i, info) => {
    i.aux = kind;
    i.operandIsImm = info.imms.length > 0;
    return bitTest;
  };
}

/** BSF/BSR, or with an F3 prefix TZCNT/LZCNT. */
function scanBinder(kind: number): Binder {
  return (i) => { i.aux = i.rep === REP.REPE ? kind + 2 : kind; return bitScan; };
}

export const BIT_BINDERS: Record<string, Binder> = {
  BT: bitTestBinder(0), BTS: bitTestBinder(1), BTR: bitTestBinder(2), BTC: bitTestBinder(3),
  BSF: scanBinder(0),
  BSR: scanBinder(1),
  POPCNT: (i) => { if (i.rep !== REP.REPE) return (cpu: Cpu) => cpu.fault(VEC.UD); i.aux = 4; return bitScan; },
  SETCC: () => setcc,
};
