/**
 * struct vmcs12 (arch/x86/kvm/vmx/vmcs12.h): the VMCS L1 sees, in L1's memory, in KVM's own
 * frozen layout. The offsets are the field table's; width comes from the encoding. KVM keeps a
 * copy of the current one (cached_vmcs12) and writes it back when it stops being current.
 */
import { VMCS_FIELDS, FIELD_WIDTH, VMCS_WIDTH } from '../hw/fields.js';

export const VMCS12_REVISION = 0x11e57ed0;
export const VMCS12_SIZE = 0x1000;
/** struct vmcs12: hdr.revision_id at 0, abort at 4, launch_state at 8, then padding to 40. */
export const VMCS12_ABORT = 4;
export const VMCS12_LAUNCH_STATE = 8;

const TWO32 = 2 ** 32;

/** The vmcs12 byte offset of every field row, or -1 where vmcs12 has no slot. */
export const VMCS12_OFFSET: Int16Array = Int16Array.from(VMCS_FIELDS, ([, , off]) => (off === null ? -1 : off));

/**
 * Where each row's bits 31:0 are: an index into the 32-bit view; for a 16-bit field, -2 less its
 * index into the 16-bit view; -1 without a slot. Derived once, so an access is one lookup.
 */
const LO_SLOT: Int32Array = Int32Array.from(VMCS_FIELDS, (_, i) => {
  const off = VMCS12_OFFSET[i]!;
  if (off < 0) return -1;
  return FIELD_WIDTH[i] === VMCS_WIDTH.U16 ? -2 - (off >> 1) : off >> 2;
});
/** Where bits 63:32 of a 64-bit or natural-width row are in the 32-bit view, else -1. */
const HI_SLOT: Int32Array = Int32Array.from(VMCS_FIELDS, (_, i) => {
  const off = VMCS12_OFFSET[i]!;
  const w = FIELD_WIDTH[i];
  return off < 0 || w === VMCS_WIDTH.U16 || w === VMCS_WIDTH.U32 ? -1 : (off >> 2) + 1;
});

/**
 * cached_vmcs12: one page, read and written with the field table's offsets and widths. Every
 * field sits at a multiple of its width (vmcs12.h lays them out so), so 16- and 32-bit views
 * reach them directly; the page is little-endian, as those views are on every host Node runs on.
 */
export class Vmcs12 {
  readonly bytes = new Uint8Array(VMCS12_SIZE);
  private readonly u16 = new Uint16Array(this.bytes.buffer);
  private readonly u32 = new Uint32Array(this.bytes.buffer);

  get revisionId(): number { return this.u32[0]! & 0x7fffffff; }
  get launchState(): number { return this.u32[VMCS12_LAUNCH_STATE >> 2]!; }
  set launchState(v: number) { this.u32[VMCS12_LAUNCH_STATE >> 2] = v; }
  /** The VMX-abort indicator (SDM 28.7). */
  get abort(): number { return this.u32[VMCS12_ABORT >> 2]!; }
  set abort(v: number) { this.u32[VMCS12_ABORT >> 2] = v; }

  /** Low 32 bits of field row `i` (the whole value for 16/32-bit fields). */
  lo(i: number): number {
    const k = LO_SLOT[i]!;
    return k >= 0 ? this.u32[k]! : k === -1 ? 0 : this.u16[-2 - k]!;
  }

  /** High 32 bits of a 64-bit or natural-width field, 0 for narrower ones. */
  hi(i: number): number {
    const k = HI_SLOT[i]!;
    return k >= 0 ? this.u32[k]! : 0;
  }

  /** The field as a number: 64-bit values signed canonical, as addresses are kept on hot paths. */
  num(i: number): number {
    return (this.hi(i) | 0) * TWO32 + this.lo(i);
  }

  big(i: number): bigint {
    return (BigInt(this.hi(i)) << 32n) | BigInt(this.lo(i));
  }

  /** Writes a field, truncated to its width (vmcs12_write_any). */
  set(i: number, lo: number, hi = 0): void {
    const k = LO_SLOT[i]!;
    if (k >= 0) this.u32[k] = lo;
    else if (k !== -1) this.u16[-2 - k] = lo;
    const h = HI_SLOT[i]!;
    if (h >= 0) this.u32[h] = hi;
  }

  setNum(i: number, v: number): void {
    const hi = Math.floor(v / TWO32);
    this.set(i, (v - hi * TWO32) >>> 0, hi >>> 0);
  }
}
