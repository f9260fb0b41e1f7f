/**
 * Exchange-and-operate instructions (SDM Vol. 2): XADD, CMPXCHG, CMPXCHG8B, CMPXCHG16B. A
 * single CPU runs one instruction at a time, so LOCK needs no extra work here.
 */
import type { Cpu } from '../cpu/cpu.js';
import { VEC } from '../cpu/events.js';
import { RFLAGS } from '../cpu/state.js';
import type { Binder } from '../decode/binders.js';
import type { Insn } from '../decode/insn.js';
import { setFlagBits } from '../flags/lazy-flags.js';
import { ALU_OP, alu, alu64 } from './alu.js';
import { getReg, memLinear, readRmw, setReg, writeRmw } from './operand.js';

function xadd(cpu: Cpu, i: Insn): void {
  const size = i.opSize;
  const d = readRmw(cpu, i, size);
  const dhi = cpu.hi;
  const s = getReg(cpu, i.reg, size);
  const shi = cpu.hi;
  const r = size === 64 ? alu64(cpu, ALU_OP.ADD, d, dhi, s, shi) : alu(cpu, ALU_OP.ADD, size, d, s);
  const rhi = cpu.hi;
  cpu.hi = dhi;
  setReg(cpu, i.reg, size, d);
  cpu.hi = rhi;
  writeRmw(cpu, i, size, r);
}

function cmpxchg(cpu: Cpu, i: Insn): void {
  const size = i.opSize;
  const d = readRmw(cpu, i, size); // a memory destination is written either way (SDM: "the processor never produces a locked read without also producing a locked write")
  const dhi = cpu.hi;
  const a = getReg(cpu, 0, size);
  const ahi = cpu.hi;
  if (size === 64) alu64(cpu, ALU_OP.CMP, a, ahi, d, dhi);
  else alu(cpu, ALU_OP.CMP, size, a, d);
  const equal = d === a && (size !== 64 || dhi === ahi);
  if (equal) {
    const s = getReg(cpu, i.reg, size);
    writeRmw(cpu, i, size, s);
  } else {
    cpu.hi = dhi;
    if (i.rm < 0) writeRmw(cpu, i, size, d);
    cpu.hi = dhi;
    setReg(cpu, 0, size, d);
  }
}

/** CMPXCHG8B m64 / CMPXCHG16B m128 (REX.W; 16-byte aligned or #GP). */
function cmpxchgWide(cpu: Cpu, i: Insn): void {
  if (i.rm >= 0) cpu.fault(VEC.UD);
  const wide = i.opSize === 64;
  const bytes = wide ? 16 : 8;
  const la = memLinear(cpu, i, bytes, true);
  if (wide && (la & 15) !== 0) cpu.fault(VEC.GP, 0);
  const g = cpu.gpr;
  const gh = cpu.gprHi;
  if (!wide) {
    const lo = cpu.readForWrite(la, 4);
    const hi = cpu.readForWrite(la + 4, 4);
    if (lo === g[0]! >>> 0 && hi === g[2]! >>> 0) {
      cpu.write64(la, g[3]!, g[1]!);
      setFlagBits(cpu, RFLAGS.ZF, RFLAGS.ZF);
    } else {
      cpu.write64(la, lo, hi);
      setReg(cpu, 0, 32, lo);
      setReg(cpu, 2, 32, hi);
      setFlagBits(cpu, RFLAGS.ZF, 0);
    }
    return;
  }
  const w = [0, 4, 8, 12].map((k) => cpu.readForWrite(la + k, 4) | 0);
  if (w[0] === g[0] && w[1] === gh[0] && w[2] === g[2] && w[3] === gh[2]) {
    cpu.write64(la, g[3]!, gh[3]!);
    cpu.write64(la + 8, g[1]!, gh[1]!);
    setFlagBits(cpu, RFLAGS.ZF, RFLAGS.ZF);
  } else {
    cpu.write64(la, w[0]!, w[1]!);
    cpu.write64(la + 8, w[2]!, w[3]!);
    g[0] = w[0]!; gh[0] = w[1]!; g[2] = w[2]!; gh[2] = w[3]!;
    setFlagBits(cpu, RFLAGS.ZF, 0);
  }
}

export const ATOMIC_BINDERS: Record<string, Binder> = {
  XADD: () => xadd,
  CMPXCHG: () => cmpxchg,
  CMPXCHG8B: () => cmpxchgWide,
};
