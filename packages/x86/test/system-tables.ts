/** Descriptor-table builders for the system tests (SDM Vol. 3A, 3.4.5 and 6.11/6.14.1 layouts). */
import type { PhysMemory } from '../src/mem/phys-memory.js';

/** An 8-byte code/data/system descriptor: `access` is byte 5 (P, DPL, S, type), `flags` the G/DB/L/AVL nibble. */
export function descriptor(base: number, limit: number, access: number, flags: number): [number, number] {
  const lo = ((base & 0xffff) << 16) | (limit & 0xffff);
  const hi = (base & 0xff000000) | ((flags & 0xf) << 20) | (limit & 0xf0000) | ((access & 0xff) << 8) | ((base >>> 16) & 0xff);
  return [lo >>> 0, hi >>> 0];
}

export function writeDescriptor(mem: PhysMemory, table: number, selector: number, d: [number, number]): void {
  mem.write32(table + (selector & ~7), d[0]);
  mem.write32(table + (selector & ~7) + 4, d[1]);
}

/** A 32-bit (or 16-bit) gate: type 0xE interrupt, 0xF trap, 0xC call (byte 5 = P | DPL | type). */
export function writeGate32(mem: PhysMemory, at: number, selector: number, offset: number, type: number, dpl = 0, params = 0): void {
  mem.write32(at, ((selector & 0xffff) << 16) | (offset & 0xffff));
  mem.write32(at + 4, ((offset & 0xffff0000) | 0x8000 | (dpl << 13) | (type << 8) | params) >>> 0);
}

/** A 16-byte IA-32e gate with IST. */
export function writeGate64(mem: PhysMemory, at: number, selector: number, offset: number, type: number, dpl = 0, ist = 0, present = true): void {
  mem.write32(at, ((selector & 0xffff) << 16) | (offset & 0xffff));
  mem.write32(at + 4, ((offset & 0xffff0000) | (present ? 0x8000 : 0) | (dpl << 13) | (type << 8) | ist) >>> 0);
  mem.write32(at + 8, Math.floor(offset / 0x1_0000_0000) | 0);
  mem.write32(at + 12, 0);
}

/** Access bytes: present, DPL, S=1 code/data types. */
export const ACC = {
  CODE0: 0x9a, DATA0: 0x92, CODE3: 0xfa, DATA3: 0xf2, TSS: 0x89, LDT: 0x82,
} as const;
/** Flag nibbles: G|D for 32-bit, G|L for 64-bit code. */
export const FLG = { F32: 0xc, F64: 0xa, NONE: 0 } as const;

/**
 * The flat GDT used by the tests, at `gdt`: 0x08 ring-0 code, 0x10 ring-0 data, 0x18 ring-3
 * code, 0x20 ring-3 data, 0x28 TSS at `tss` (16 bytes in IA-32e mode).
 */
export function flatGdt(mem: PhysMemory, gdt: number, tss: number, long: boolean): void {
  const code = long ? FLG.F64 : FLG.F32;
  writeDescriptor(mem, gdt, 0x08, descriptor(0, 0xfffff, ACC.CODE0, code));
  writeDescriptor(mem, gdt, 0x10, descriptor(0, 0xfffff, ACC.DATA0, FLG.F32));
  writeDescriptor(mem, gdt, 0x18, descriptor(0, 0xfffff, ACC.CODE3, code));
  writeDescriptor(mem, gdt, 0x20, descriptor(0, 0xfffff, ACC.DATA3, FLG.F32));
  writeDescriptor(mem, gdt, 0x28, descriptor(tss, 0x67, ACC.TSS, 0));
  writeDescriptor(mem, gdt, 0x30, [0, 0]);
}
