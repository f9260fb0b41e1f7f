/**
 * The VMCB page (APM 15.5, Appendix B) and the host state-save area at VM_HSAVE_PA, both in
 * host physical memory, read and written the way the silicon does: by offset, 64-bit fields as
 * two 32-bit halves (no BigInt on the VMRUN/#VMEXIT path). The host save area uses the VMCB
 * state-save layout, as Linux assumes when it VMSAVEs host state into the same page.
 */
import { AR, makeSegment, type PhysMemory, type Segment, type DescriptorTableReg } from '@kvmts/x86';
import { VMCB_FIELDS, type VmcbFieldName } from './fields.js';

const TWO32 = 2 ** 32;
/** 2^-32: scaling by it is exact, and a multiply costs a fraction of a divide. */
const TWO_NEG32 = 2 ** -32;

/** A 64-bit value from its halves, as a signed canonical number (addresses, RIP, bases). */
export function signed64(lo: number, hi: number): number {
  return hi === 0 ? lo >>> 0 : (hi | 0) * TWO32 + (lo >>> 0);
}

/** A 64-bit value from its halves, as a non-negative number (physical addresses below 2^53). */
export function unsigned64(lo: number, hi: number): number {
  return hi === 0 ? lo >>> 0 : (hi >>> 0) * TWO32 + (lo >>> 0);
}

/** The high dword of an integral number below 2^64 in magnitude; most values the VMCB holds fit the low dword. */
export function hi32(v: number): number {
  if (v >= 0 && v < TWO32) return 0;
  if (v < 0 && v >= -TWO32) return -1;
  return Math.floor(v * TWO_NEG32) | 0;
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

/**
 * The hot paths' primitives, on the page as dwords (dword index = byte offset / 4). They are
 * small so that V8 inlines them: VMRUN, #VMEXIT, VMLOAD and VMSAVE move about 100 dwords, and
 * a call per dword would cost more than the moves.
 */

/** Stores an integral number (signed or unsigned) as the 64-bit field at dword `d`. */
export function put64(m: Uint32Array, d: number, v: number): void {
  m[d] = v >>> 0;
  m[d + 1] = v >= 0 && v < TWO32 ? 0 : hi32(v);
}

/** The 64-bit field at dword `d` as a signed canonical number. */
export function getAddr(m: Uint32Array, d: number): number {
  const hi = m[d + 1]!;
  return hi === 0 ? m[d]! : (hi | 0) * TWO32 + m[d]!;
}

/** Stores a segment register as the vmcb_seg at dword `d` (selector and attributes share a dword). */
export function putSeg(m: Uint32Array, d: number, s: Segment): void {
  m[d] = (s.selector & 0xffff) | (arToAttrib(s.ar) << 16);
  m[d + 1] = s.limit;
  put64(m, d + 2, s.base);
}

/** Fills `s`, a segment object not yet installed in the CPU, from the vmcb_seg at dword `d`. */
export function getSeg(m: Uint32Array, d: number, s: Segment): void {
  const selAttrib = m[d]!;
  s.selector = selAttrib & 0xffff;
  s.ar = attribToAr(selAttrib >>> 16);
  s.limit = m[d + 1]!;
  s.base = getAddr(m, d + 2);
}

export class VmcbRegion {
  /**
   * A view of the page inside its backing chunk: a 4 KiB-aligned page never straddles a chunk,
   * so every field access is one typed-array access.
   */
  private readonly view: DataView;
  /** Aligned views of the same bytes: VMCB fields are naturally aligned, and x86 hosts are little-endian like the VMCB. */
  private readonly u8: Uint8Array;
  private readonly u16: Uint16Array;
  /** The page as dwords, for the silicon's hot paths (put64, getSeg, …). */
  readonly u32: Uint32Array;
  /**
   * FS, GS, TR and LDTR as VMLOAD last installed them from this page or VMSAVE last stored them
   * to it (frozen objects: the CPU replaces a segment register, never edits it), and their
   * vmcb_seg dwords as VMSAVE writes them. A VMLOAD that finds the same dwords installs the same
   * objects; a VMSAVE of those objects writes those dwords without encoding them again.
   */
  readonly vmloadSegs: (Segment | null)[] = [null, null, null, null];
  readonly vmloadDwords = new Uint32Array(16);
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
  w64(off: number, v: number): void { put64(this.u32, off >>> 2, v); }
  w64Halves(off: number, lo: number, hi: number): void { this.w32(off, lo); this.w32(off + 4, hi); }

  writeSeg(off: number, s: Segment): void {
    putSeg(this.u32, off >>> 2, s);
  }

  readDtr(off: number): DescriptorTableReg {
    return { limit: this.r32(off + 4) & 0xffff, base: this.rAddr(off + 8) };
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

/**
 * The host state VMRUN saves and #VMEXIT restores (APM 15.5.1, 15.6), as the processor keeps it
 * from one to the other: ES, CS, SS, DS, GDTR and IDTR as the CPU held them (the register
 * objects: never changed in place, so the next VMRUN tells by identity whether the save area's
 * copy is still current), then EFER, CR0, CR3, CR4, RFLAGS, RIP, RSP and RAX. The host save area
 * holds a copy, written where it changed: its format is the processor's own (15.30.4).
 */
export class HostSaved {
  /** The host save area holding the copy, or -1 before the first VMRUN (or after VM_HSAVE_PA moves). */
  pa = -1;
  readonly seg: Segment[] = [makeSegment(), makeSegment(), makeSegment(), makeSegment()];
  gdtr: DescriptorTableReg = { base: 0, limit: 0 };
  idtr: DescriptorTableReg = { base: 0, limit: 0 };
  efer = 0;
  cr0 = 0;
  cr3 = 0;
  cr4 = 0;
  rflags = 0;
  /** The instruction after VMRUN. */
  rip = 0;
  rspLo = 0;
  rspHi = 0;
  raxLo = 0;
  raxHi = 0;
}
