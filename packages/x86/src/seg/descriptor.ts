/**
 * Segment descriptors (SDM Vol. 3A, 3.4.5): reading them from the GDT/LDT and converting them
 * to the cached Segment form (base, byte-granular limit, VMX access rights).
 */
import type { VirtCpu } from '../cpu/virt.js';
import { AR, SEG, type Segment } from '../cpu/state.js';
import { readLinear, writeLinear } from '../mmu/linear.js';

/** System-descriptor types (S = 0), SDM Vol. 3A Table 3-2; in IA-32e mode 0x9/0xB are the 64-bit TSS, 0xC/0xE/0xF the 64-bit gates. */
export const SYS_TYPE = {
  TSS16_AVAIL: 0x1, LDT: 0x2, TSS16_BUSY: 0x3, CALL_GATE16: 0x4, TASK_GATE: 0x5, INTR_GATE16: 0x6, TRAP_GATE16: 0x7,
  TSS_AVAIL: 0x9, TSS_BUSY: 0xb, CALL_GATE: 0xc, INTR_GATE: 0xe, TRAP_GATE: 0xf,
} as const;

/** Code/data type bits (S = 1). */
export const SEG_TYPE = { ACCESSED: 1, WRITABLE: 2, READABLE: 2, EXPAND_DOWN: 4, CONFORMING: 4, CODE: 8 } as const;

/** A raw 8-byte descriptor as two dwords, and where it sits (for the accessed bit). */
export interface RawDescriptor {
  lo: number;
  hi: number;
  /** Linear address of the descriptor. */
  addr: number;
}

export function descBase(d: RawDescriptor): number {
  return ((d.lo >>> 16) | ((d.hi & 0xff) << 16) | (d.hi & 0xff000000)) >>> 0;
}

export function descLimit(d: RawDescriptor): number {
  const raw = (d.lo & 0xffff) | (d.hi & 0xf0000);
  return d.hi & (1 << 23) ? raw * 4096 + 0xfff : raw;
}

/** Access rights in the VMX layout: descriptor bits 47:40 and 55:52. */
export function descAr(d: RawDescriptor): number {
  return (d.hi >>> 8) & 0xf0ff;
}

export function descToSegment(selector: number, d: RawDescriptor): Segment {
  return { selector, base: descBase(d), limit: descLimit(d), ar: descAr(d) };
}

export const dplOf = (ar: number): number => (ar & AR.DPL_MASK) >> AR.DPL_SHIFT;
export const isCode = (ar: number): boolean => (ar & (AR.S | SEG_TYPE.CODE)) === (AR.S | SEG_TYPE.CODE);
export const isData = (ar: number): boolean => (ar & (AR.S | SEG_TYPE.CODE)) === AR.S;

/**
 * Reads the descriptor `selector` names (TI picks GDT or LDT). Past the table's limit, or an
 * LDT reference with an unusable LDTR: fault `vector` with the selector error code (plus EXT).
 */
export function readDescriptor(cpu: VirtCpu, selector: number, vector: number, ext = 0): RawDescriptor {
  const index = selector & 0xfff8;
  let base: number;
  let limit: number;
  if (selector & 4) {
    const ldtr = cpu.seg[SEG.LDTR]!;
    if (ldtr.ar & AR.UNUSABLE || ldtr.selector === 0) cpu.fault(vector, (selector & 0xfffc) | ext);
    base = ldtr.base;
    limit = ldtr.limit;
  } else {
    base = cpu.gdtr.base;
    limit = cpu.gdtr.limit;
  }
  if (index + 7 > limit) cpu.fault(vector, (selector & 0xfffc) | ext);
  const addr = base + index;
  return { lo: readLinear(cpu, addr, 4), hi: readLinear(cpu, addr + 4, 4), addr };
}

/** The upper 8 bytes of a 16-byte system descriptor (IA-32e mode): bits 63:32 of the base. */
export function readDescriptorHigh(cpu: VirtCpu, selector: number, vector: number, ext = 0): number {
  const index = (selector & 0xfff8) + 8;
  const table = selector & 4 ? cpu.seg[SEG.LDTR]! : { base: cpu.gdtr.base, limit: cpu.gdtr.limit };
  if (index + 7 > table.limit) cpu.fault(vector, (selector & 0xfffc) | ext);
  return readLinear(cpu, table.base + index, 4) | 0;
}

/** Sets the accessed bit of a code/data descriptor in memory (SDM 3.4.5.1), as the CPU does on a load. */
export function setAccessed(cpu: VirtCpu, d: RawDescriptor): void {
  if (d.hi & (1 << 8)) return;
  d.hi = (d.hi | (1 << 8)) >>> 0;
  writeLinear(cpu, d.addr + 4, 4, d.hi);
}

/** An unusable segment (null selector loaded in protected mode). DPL kept for SS, where it is the CPL. */
export function nullSegment(selector: number, dpl = 0): Segment {
  return { selector, base: 0, limit: 0, ar: AR.UNUSABLE | (dpl << AR.DPL_SHIFT) };
}
