/**
 * The VMCB page (APM 15.5, Appendix B) and the host state-save area at VM_HSAVE_PA, both in
 * host physical memory, read and written the way the silicon does: by offset, 64-bit fields as
 * two 32-bit halves (no BigInt on the VMRUN/#VMEXIT path). The host save area uses the VMCB
 * state-save layout, as Linux assumes when it VMSAVEs host state into the same page.
 */
import { AR, type PhysMemory, type Segment, type DescriptorTableReg } from '@kvmts/x86';
import { VMCB_FIELDS, type VmcbFieldName } from './fields.js';

const TWO32 = 2 ** 32;

/** A 64-bit value from its halves, as a signed canonical number (addresses, RIP, bases). */
export function signed64(lo: number, hi: number): number {
  return (hi | 0) * TWO32 + (lo >>> 0);
}

/** A 64-bit value from its halves, as a non-negative number (physical addresses below 2^53). */
export function unsigned64(lo: number, hi: number): number {
  return (hi >>> 0) * TWO32 + (lo >>> 0);
}

export function hi32(v: number): number {
  return Math.floor(v / TWO32) | 0;
}

/** VMCB segment attributes (descriptor bits 47:40 and 55:52 packed into 11:0) to the CPU's AR layout. */
export function attribToAr(attrib: number): number {
  const ar = (attrib & 0xff) | ((attrib & 0xf00) << 4);
  return ar & AR.P ? ar : ar | AR.UNUSABLE;
}

/** The VMCB has no "unusable" bit: an unusable segment is stored not present, its other attributes kept. */
export function arToAttrib(ar: number): number {
  const attrib = (ar & 0xff) | ((ar >>> 4) & 0xf00);
  return ar & AR.UNUSABLE ? attrib & ~AR.P : attrib;
}

export class VmcbRegion {
  /**
   * A view of the page inside its backing chunk: a 4 KiB-aligned page never straddles a chunk,
   * so every field access is one DataView access (VMRUN and #VMEXIT touch ~50 fields).
   */
  private readonly view: DataView;
  /** Aligned views of the same bytes: VMCB fields are naturally aligned, and x86 hosts are little-endian like the VMCB. */
  private readonly u8: Uint8Array;
  private readonly u16: Uint16Array;
  private readonly u32: Uint32Array;
  readonly mem: PhysMemory;
  readonly pa: number;

  constructor(mem: PhysMemory, pa: number) {
    this.mem = mem;
    this.pa = pa;
    const chunk = mem.chunk(pa);
    const at = chunk.byteOffset + (pa % chunk.length);
    this.view = new DataView(chunk.buffer, at, 4096);
    this.u8 = new Uint8Array(chunk.buffer, at, 4096);
    this.u16 = new Uint16Array(chunk.buffer, at, 2048);
    this.u32 = new Uint32Array(chunk.buffer, at, 1024);
    // The silicon writes the page directly: keep decoded-code caches coherent should it ever hold code.
    mem.noteWrite(pa, 4096);
  }

  r8(off: number): number { return this.u8[off]!; }
  r16(off: number): number { return this.u16[off >>> 1]!; }
  r32(off: number): number { return this.u32[off >>> 2]!; }
  w8(off: number, v: number): void { this.u8[off] = v; }
  w16(off: number, v: number): void { this.u16[off >>> 1] = v; }
  w32(off: number, v: number): void { this.u32[off >>> 2] = v; }

  /** A 64-bit field as a signed canonical number. */
  rAddr(off: number): number { return signed64(this.r32(off), this.r32(off + 4)); }
  /** A 64-bit field as an unsigned number (physical addresses). */
  rPa(off: number): number { return unsigned64(this.r32(off), this.r32(off + 4)); }
  /** Writes a 64-bit field from a (signed or unsigned) integral number. */
  w64(off: number, v: number): void { this.w32(off, v >>> 0); this.w32(off + 4, hi32(v)); }
  w64Halves(off: number, lo: number, hi: number): void { this.w32(off, lo); this.w32(off + 4, hi); }

  /** Loads a vmcb_seg into an existing Segment (VMRUN, #VMEXIT and VMLOAD reload segments without allocating). */
  loadSeg(off: number, s: Segment): void {
    s.selector = this.r16(off);
    s.ar = attribToAr(this.r16(off + 2));
    s.limit = this.r32(off + 4);
    s.base = this.rAddr(off + 8);
  }

  writeSeg(off: number, s: Segment): void {
    this.w16(off, s.selector);
    this.w16(off + 2, arToAttrib(s.ar));
    this.w32(off + 4, s.limit);
    this.w64(off + 8, s.base);
  }

  readDtr(off: number): DescriptorTableReg {
    return { limit: this.r32(off + 4) & 0xffff, base: this.rAddr(off + 8) };
  }

  /** Loads a GDTR/IDTR field into an existing register (VMRUN and #VMEXIT, without allocating). */
  loadDtr(off: number, d: DescriptorTableReg): void {
    d.limit = this.r32(off + 4) & 0xffff;
    d.base = this.rAddr(off + 8);
  }

  writeDtr(off: number, d: DescriptorTableReg): void {
    this.w32(off + 4, d.limit);
    this.w64(off + 8, d.base);
  }

  /** Any field by name, as a BigInt (API edge: inspection, tests). */
  get(name: VmcbFieldName): bigint {
    const f = FIELD_BY_NAME.get(name)!;
    switch (f.size) {
      case 1: return BigInt(this.r8(f.off));
      case 2: return BigInt(this.r16(f.off));
      case 4: return BigInt(this.r32(f.off));
      default: return this.view.getBigUint64(f.off, true);
    }
  }

  set(name: VmcbFieldName, value: bigint): void {
    const f = FIELD_BY_NAME.get(name)!;
    switch (f.size) {
      case 1: this.w8(f.off, Number(value & 0xffn)); break;
      case 2: this.w16(f.off, Number(value & 0xffffn)); break;
      case 4: this.w32(f.off, Number(value & 0xffffffffn)); break;
      default: this.view.setBigUint64(f.off, BigInt.asUintN(64, value), true);
    }
  }
}

const FIELD_BY_NAME = new Map<string, { off: number; size: number }>(
  VMCB_FIELDS.map(([name, off, size]) => [name, { off, size }]),
);
