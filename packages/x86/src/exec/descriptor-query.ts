/**
 * LAR, LSL, VERR, VERW and ARPL (SDM Vol. 2): they test a selector against its descriptor and
 * the current privilege and report in ZF instead of faulting. #UD in real and virtual-8086 mode.
 */
import type { Cpu } from '../cpu/cpu.js';
import { VEC } from '../cpu/events.js';
import { AR, RFLAGS, SEG } from '../cpu/state.js';
import type { Binder } from '../decode/binders.js';
import type { Insn } from '../decode/insn.js';
import { setFlagBits } from '../flags/lazy-flags.js';
import { descLimit, readDescriptor, SEG_TYPE, SYS_TYPE, type RawDescriptor } from '../seg/descriptor.js';
import { getReg, readE, readRmw, setReg, writeRmw } from './operand.js';

/** System types LAR accepts (SDM, LAR Table 3-56); in 64-bit mode only the 64-bit ones and the LDT. */
const LAR_SYSTEM = [SYS_TYPE.TSS16_AVAIL, SYS_TYPE.LDT, SYS_TYPE.TSS16_BUSY, SYS_TYPE.CALL_GATE16, SYS_TYPE.TASK_GATE,
  SYS_TYPE.TSS_AVAIL, SYS_TYPE.TSS_BUSY, SYS_TYPE.CALL_GATE] as const;
const LAR_SYSTEM_64 = [SYS_TYPE.LDT, SYS_TYPE.TSS_AVAIL, SYS_TYPE.TSS_BUSY, SYS_TYPE.CALL_GATE] as const;
/** System types LSL accepts (SDM, LSL Table 3-62). */
const LSL_SYSTEM = [SYS_TYPE.TSS16_AVAIL, SYS_TYPE.LDT, SYS_TYPE.TSS16_BUSY, SYS_TYPE.TSS_AVAIL, SYS_TYPE.TSS_BUSY] as const;
const LSL_SYSTEM_64 = [SYS_TYPE.LDT, SYS_TYPE.TSS_AVAIL, SYS_TYPE.TSS_BUSY] as const;

/** The descriptor `selector` names, or null when it is null or past its table's limit (no fault). */
function lookup(cpu: Cpu, selector: number): RawDescriptor | null {
  if ((selector & 0xfffc) === 0) return null;
  const table = (selector & 4) !== 0 ? cpu.seg[SEG.LDTR]! : { ...cpu.gdtr, ar: 0 };
  if ((selector & 4) !== 0 && (table.ar & AR.UNUSABLE) !== 0) return null;
  if ((selector & 0xfff8) + 7 > table.limit) return null;
  cpu.syncFlags();
  return readDescriptor(cpu, selector, VEC.GP);
}

/** The privilege test shared by all four: code/data unless conforming code need DPL >= max(CPL, RPL). */
function privilegeOk(cpu: Cpu, selector: number, hi: number): boolean {
  const dpl = (hi >>> 13) & 3;
  const conformingCode = (hi & (1 << 12)) !== 0 && ((hi >>> 8) & (SEG_TYPE.CODE | SEG_TYPE.CONFORMING)) === (SEG_TYPE.CODE | SEG_TYPE.CONFORMING);
  return conformingCode || (dpl >= cpu.cpl && dpl >= (selector & 3));
}

function requireProtected(cpu: Cpu): void {
  if (!cpu.protectedMode) cpu.fault(VEC.UD);
}

/** i.aux: 0 LAR, 1 LSL. */
function larLsl(cpu: Cpu, i: Insn): void {
  requireProtected(cpu);
  const sel = readE(cpu, i, 16);
  const d = lookup(cpu, sel);
  let ok = false;
  if (d !== null) {
    const s = (d.hi & (1 << 12)) !== 0;
    const type = (d.hi >>> 8) & 0xf;
    const systemOk = (i.aux === 0 ? (cpu.long64 ? LAR_SYSTEM_64 : LAR_SYSTEM) : (cpu.long64 ? LSL_SYSTEM_64 : LSL_SYSTEM)) as readonly number[];
    ok = (s || systemOk.includes(type)) && privilegeOk(cpu, sel, d.hi);
    if (ok) {
      const v = i.aux === 0 ? (d.hi & (i.opSize === 16 ? 0xff00 : 0x00f0ff00)) >>> 0 : descLimit(d) >>> 0;
      cpu.hi = 0;
      setReg(cpu, i.reg, i.opSize, i.opSize === 16 ? v & 0xffff : v);
    }
  }
  setFlagBits(cpu, RFLAGS.ZF, ok ? RFLAGS.ZF : 0);
}

/** i.aux: 0 VERR, 1 VERW. */
function verify(cpu: Cpu, i: Insn): void {
  requireProtected(cpu);
  const sel = readE(cpu, i, 16);
  const d = lookup(cpu, sel);
  let ok = false;
  if (d !== null && (d.hi & (1 << 12)) !== 0 && privilegeOk(cpu, sel, d.hi)) {
    const type = (d.hi >>> 8) & 0xf;
    const code = (type & SEG_TYPE.CODE) !== 0;
    ok = i.aux === 0 ? !code || (type & SEG_TYPE.READABLE) !== 0 : !code && (type & SEG_TYPE.WRITABLE) !== 0;
  }
  setFlagBits(cpu, RFLAGS.ZF, ok ? RFLAGS.ZF : 0);
}

function arpl(cpu: Cpu, i: Insn): void {
  requireProtected(cpu);
  const d = readRmw(cpu, i, 16);
  const s = getReg(cpu, i.reg, 16);
  if ((d & 3) < (s & 3)) {
    writeRmw(cpu, i, 16, (d & ~3) | (s & 3));
    setFlagBits(cpu, RFLAGS.ZF, RFLAGS.ZF);
  } else {
    setFlagBits(cpu, RFLAGS.ZF, 0);
  }
}

export const DESCRIPTOR_QUERY_BINDERS: Record<string, Binder> = {
  LAR: (i) => { i.aux = 0; return larLsl; },
  LSL: (i) => { i.aux = 1; return larLsl; },
  VERR: (i) => { i.aux = 0; return verify; },
  VERW: (i) => { i.aux = 1; return verify; },
  ARPL: () => arpl,
};
