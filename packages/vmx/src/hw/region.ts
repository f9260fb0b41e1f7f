/**
 * The VMCS region in host physical memory (SDM 25.2 "Format of the VMCS Region") and the
 * processor's cache of the current VMCS (SDM 25.11.1: "a logical processor may maintain a number
 * of VMCSs that are active... and may optimize by keeping VMCS data in the processor").
 *
 * Region layout: bytes 0-3 revision identifier (bit 31 shadow-VMCS indicator), 4-7 VMX-abort
 * indicator, then implementation-specific data. Ours: byte 8 launch state, and from byte 64 one
 * 8-byte slot per row of VMCS_FIELDS. VMCLEAR writes the cache back; VMPTRLD reads it in.
 */
import type { PhysMemory } from '@kvmts/x86';
import { FIELD_COUNT, FIELD_WIDTH, FIELD_TYPE, VMCS_WIDTH, VMCS_TYPE } from './fields.js';

export const VMCS_REGION = { REVISION: 0, ABORT: 4, LAUNCH_STATE: 8, DATA: 64 } as const;

/** "FFFFFFFF_FFFFFFFFH": the current-VMCS pointer when no VMCS is current. */
export const INVALID_VMCS_PTR = -1;

const TWO32 = 4294967296;

/** Truncates a field's value to its width, as a VMWRITE stores it. */
function widthMask(i: number, lo: number, hi: number): [number, number] {
  const w = FIELD_WIDTH[i]!;
  if (w === VMCS_WIDTH.U16) return [lo & 0xffff, 0];
  if (w === VMCS_WIDTH.U32) return [lo | 0, 0];
  return [lo | 0, hi | 0];
}

/**
 * The current VMCS as the silicon holds it: each field as two int32 halves, so that the per-exit
 * path reads and writes numbers, never BigInt.
 */
export class VmcsCache {
  /** Current-VMCS pointer (HPA), or INVALID_VMCS_PTR. */
  hpa = INVALID_VMCS_PTR;
  launched = false;
  readonly lo = new Int32Array(FIELD_COUNT);
  readonly hi = new Int32Array(FIELD_COUNT);
  /** Fields written since the last successful VM entry: the incremental entry checks re-run only checks that read them. */
  readonly dirty = new Uint8Array(FIELD_COUNT);
  /** The dirty fields as a list, so an entry visits only what changed. */
  readonly dirtyList = new Int16Array(FIELD_COUNT);
  dirtyCount = 0;
  /** Fields the last VM exit changed, for the inspector. */
  readonly changedAtExit = new Uint8Array(FIELD_COUNT);

  constructor() {
    this.markAllDirty();
  }

  /** A control field changed since the silicon last decoded the controls. */
  controlsDirty = true;

  markDirty(i: number): void {
    if (this.dirty[i] === 0) {
      this.dirty[i] = 1;
      this.dirtyList[this.dirtyCount++] = i;
      if (FIELD_TYPE[i] === VMCS_TYPE.CONTROL) this.controlsDirty = true;
    }
  }

  markAllDirty(): void {
    this.dirty.fill(0);
    this.dirtyCount = 0;
    for (let i = 0; i < FIELD_COUNT; i++) this.markDirty(i);
  }

  clearDirty(): void {
    for (let k = 0; k < this.dirtyCount; k++) this.dirty[this.dirtyList[k]!] = 0;
    this.dirtyCount = 0;
  }

  /** Unsigned 32-bit (or 16-bit) value of a field. */
  read32(i: number): number {
    return this.lo[i]! >>> 0;
  }

  /**
   * A 64-bit or natural-width field as a number: signed for canonical addresses (bit 63 set
   * reads negative), exact whenever the value is a sign-extended 53-bit quantity.
   */
  readNum(i: number): number {
    return this.hi[i]! * TWO32 + (this.lo[i]! >>> 0);
  }

  read64(i: number): bigint {
    return (BigInt(this.hi[i]!) << 32n) | BigInt(this.lo[i]! >>> 0);
  }

  write32(i: number, v: number): void {
    const [lo] = widthMask(i, v, 0);
    if (this.lo[i] !== lo || this.hi[i] !== 0) this.markDirty(i);
    this.lo[i] = lo;
    this.hi[i] = 0;
  }

  writeNum(i: number, v: number): void {
    const hi = Math.floor(v / TWO32);
    this.writeHalves(i, v - hi * TWO32, hi);
  }

  write64(i: number, v: bigint): void {
    this.writeHalves(i, Number(v & 0xffffffffn), Number((v >> 32n) & 0xffffffffn));
  }

  writeHalves(i: number, lo: number, hi: number): void {
    const [l, h] = widthMask(i, lo, hi);
    if (this.lo[i] !== l || this.hi[i] !== h) this.markDirty(i);
    this.lo[i] = l;
    this.hi[i] = h;
  }

  /** A write by the silicon itself at VM exit: records the change for the inspector. */
  exitWrite32(i: number, v: number): void {
    const l = v | 0;
    if (this.lo[i] !== l || this.hi[i] !== 0) { this.changedAtExit[i] = 1; this.markDirty(i); }
    this.lo[i] = l;
    this.hi[i] = 0;
  }

  exitWriteNum(i: number, v: number): void {
    const h = Math.floor(v / TWO32) | 0;
    const l = (v - Math.floor(v / TWO32) * TWO32) | 0;
    if (this.lo[i] !== l || this.hi[i] !== h) { this.changedAtExit[i] = 1; this.markDirty(i); }
    this.lo[i] = l;
    this.hi[i] = h;
  }

  /** VMPTRLD: makes the region at `hpa` current, reading its data into the cache. */
  load(mem: PhysMemory, hpa: number): void {
    this.hpa = hpa;
    this.launched = mem.read8(hpa + VMCS_REGION.LAUNCH_STATE) === 1;
    for (let i = 0; i < FIELD_COUNT; i++) {
      this.lo[i] = mem.read32(hpa + VMCS_REGION.DATA + i * 8) | 0;
      this.hi[i] = mem.read32(hpa + VMCS_REGION.DATA + i * 8 + 4) | 0;
    }
    this.markAllDirty();
    this.changedAtExit.fill(0);
  }

  /** Writes the cached data back to the region (VMCLEAR, or VMPTRLD of another VMCS). */
  flush(mem: PhysMemory): void {
    if (this.hpa === INVALID_VMCS_PTR) return;
    mem.write8(this.hpa + VMCS_REGION.LAUNCH_STATE, this.launched ? 1 : 0);
    for (let i = 0; i < FIELD_COUNT; i++) {
      mem.write32(this.hpa + VMCS_REGION.DATA + i * 8, this.lo[i]! >>> 0);
      mem.write32(this.hpa + VMCS_REGION.DATA + i * 8 + 4, this.hi[i]! >>> 0);
    }
  }
}
