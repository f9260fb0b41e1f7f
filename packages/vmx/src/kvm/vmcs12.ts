/**
 * struct vmcs12 (arch/x86/kvm/vmx/vmcs12.h): the VMCS L1 sees, in L1's memory, in KVM's own
 * frozen layout. The offsets are the field table's; width comes from the encoding. KVM keeps a
 * copy of the current one (cached_vmcs12) and writes it back when it stops being current.
 */
import { VMCS_FIELDS, FIELD_COUNT, FIELD_WIDTH, VMCS_WIDTH } from '../hw/fields.js';

export const VMCS12_REVISION = 0x11e57ed0;
export const VMCS12_SIZE = 0x1000;
/** struct vmcs12: hdr.revision_id at 0, abort at 4, launch_state at 8, then padding to 40. */
export const VMCS12_ABORT = 4;
export const VMCS12_LAUNCH_STATE = 8;

const TWO32 = 2 ** 32;

/** The vmcs12 byte offset of every field row, or -1 where vmcs12 has no slot. */
export const VMCS12_OFFSET: Int16Array = Int16Array.from(VMCS_FIELDS, ([, , off]) => (off === null ? -1 : off));

/** The bits of each row vmcs12 keeps: bits 31:0 (16 of them for a 16-bit field), and 63:32 for 64-bit and natural-width ones; none without a slot. */
const LO_MASK: Int32Array = Int32Array.from(VMCS_FIELDS, (_, i) => (VMCS12_OFFSET[i]! < 0 ? 0 : FIELD_WIDTH[i] === VMCS_WIDTH.U16 ? 0xffff : -1));
const HI_MASK: Int32Array = Int32Array.from(VMCS_FIELDS, (_, i) => {
  const w = FIELD_WIDTH[i];
  return VMCS12_OFFSET[i]! < 0 || w === VMCS_WIDTH.U16 || w === VMCS_WIDTH.U32 ? 0 : -1;
});

/**
 * cached_vmcs12. `bytes` is the page in KVM's layout: what VMPTRLD reads in (then `fromPage`)
 * and what is written back to L1 or handed to KVM_GET_NESTED_STATE (after `toPage`). Between
 * the two, the fields live in one pair of 32-bit halves per field-table row, so that each access
 * on the nested round trip (a few hundred of them) is one array element, and a run of VMREADs
 * or VMWRITEs (vmreadRows/vmwriteRows) copies between a VMCS and vmcs12 without a second loop. The header (revision,
 * VMX-abort indicator, launch state) lives in the page itself. Every field sits at a multiple of
 * its width (vmcs12.h lays them out so), so 16- and 32-bit views of the page reach them; the
 * page is little-endian, as those views are on every host Node runs on.
 */
export class Vmcs12 {
  readonly bytes = new Uint8Array(VMCS12_SIZE);
  private readonly u16 = new Uint16Array(this.bytes.buffer);
  private readonly u32 = new Uint32Array(this.bytes.buffer);
  /**
   * Bits 31:0 and 63:32 of every row, truncated to the field's width (0 where vmcs12 has no
   * slot). A VMREAD truncates as vmcs12 does (the width is the encoding's), so a run of VMREADs
   * may fill rows vmcs12 has slots for directly.
   */
  readonly fieldLo = new Int32Array(FIELD_COUNT);
  readonly fieldHi = new Int32Array(FIELD_COUNT);

  get revisionId(): number { return this.u32[0]! & 0x7fffffff; }
  get launchState(): number { return this.u32[VMCS12_LAUNCH_STATE >> 2]!; }
  set launchState(v: number) { this.u32[VMCS12_LAUNCH_STATE >> 2] = v; }
  /** The VMX-abort indicator (SDM 28.7). */
  get abort(): number { return this.u32[VMCS12_ABORT >> 2]!; }
  set abort(v: number) { this.u32[VMCS12_ABORT >> 2] = v; }

  /** The fields from `bytes`, after a new page was copied there. */
  fromPage(): void {
    for (let i = 0; i < FIELD_COUNT; i++) {
      const off = VMCS12_OFFSET[i]!;
      if (off < 0) continue;
      if (FIELD_WIDTH[i] === VMCS_WIDTH.U16) {
        this.fieldLo[i] = this.u16[off >> 1]!;
      } else {
        this.fieldLo[i] = this.u32[off >> 2]!;
        this.fieldHi[i] = HI_MASK[i] ? this.u32[(off >> 2) + 1]! : 0;
      }
    }
  }

  /** The fields into `bytes` at their offsets (the header and the bytes between fields stay as read); returns the page. */
  toPage(): Uint8Array {
    for (let i = 0; i < FIELD_COUNT; i++) {
      const off = VMCS12_OFFSET[i]!;
      if (off < 0) continue;
      if (FIELD_WIDTH[i] === VMCS_WIDTH.U16) {
        this.u16[off >> 1] = this.fieldLo[i]!;
      } else {
        this.u32[off >> 2] = this.fieldLo[i]!;
        if (HI_MASK[i]) this.u32[(off >> 2) + 1] = this.fieldHi[i]!;
      }
    }
    return this.bytes;
  }

  /** Low 32 bits of field row `i` (the whole value for 16/32-bit fields), unsigned. */
  lo(i: number): number {
    return this.fieldLo[i]! >>> 0;
  }

  /** High 32 bits of a 64-bit or natural-width field, 0 for narrower ones. */
  hi(i: number): number {
    return this.fieldHi[i]! >>> 0;
  }

  /** The field as a number: 64-bit values signed canonical, as addresses are kept on hot paths. */
  num(i: number): number {
    const h = this.fieldHi[i]!;
    return h === 0 ? this.fieldLo[i]! >>> 0 : h * TWO32 + (this.fieldLo[i]! >>> 0);
  }

  big(i: number): bigint {
    return (BigInt(this.fieldHi[i]! >>> 0) << 32n) | BigInt(this.fieldLo[i]! >>> 0);
  }

  /** Writes a field, truncated to its width (vmcs12_write_any); a row vmcs12 has no slot for stays 0. */
  set(i: number, lo: number, hi = 0): void {
    this.fieldLo[i] = lo & LO_MASK[i]!;
    this.fieldHi[i] = hi & HI_MASK[i]!;
  }

  setNum(i: number, v: number): void {
    const hi = Math.floor(v / TWO32);
    this.set(i, (v - hi * TWO32) >>> 0, hi >>> 0);
  }
}
