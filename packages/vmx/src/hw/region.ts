/**
 * The VMCS region in host physical memory (SDM 25.2 "Format of the VMCS Region") and the
 * processor's cache of active VMCSs (SDM 25.11.1: "a logical processor may maintain a number
 * of VMCSs that are active... and may optimize by keeping VMCS data in the processor").
 *
 * Region layout: bytes 0-3 revision identifier (bit 31 shadow-VMCS indicator), 4-7 VMX-abort
 * indicator, then implementation-specific data. Ours: byte 8 launch state, from byte 64 bits 31:0
 * of every row of VMCS_FIELDS (4 bytes a row), then bits 63:32 of every row (so a load or a
 * write-back of the whole VMCS is two block copies). VMPTRLD of a VMCS that is not on chip reads it in (evicting,
 * and so writing back, the least recently current one when the cache is full); VMPTRLD of one that
 * is only makes it current; VMCLEAR writes it back and drops it.
 */
import { CHUNK_SIZE, type DescriptorTableReg, type PhysMemory, type Segment } from '@kvmts/x86';
import { FIELD_COUNT, FIELD_WIDTH, FIELD_TYPE, VMCS_WIDTH, VMCS_TYPE } from './fields.js';

export const VMCS_REGION = { REVISION: 0, ABORT: 4, LAUNCH_STATE: 8, DATA: 64 } as const;

/** "FFFFFFFF_FFFFFFFFH": the current-VMCS pointer when no VMCS is current. */
export const INVALID_VMCS_PTR = -1;

const TWO32 = 4294967296;

/** Every field row, in order: what a freshly loaded VMCS has dirty. */
const ALL_ROWS: Int16Array = Int16Array.from({ length: FIELD_COUNT }, (_, i) => i);

/**
 * The field slots of the region at `hpa` as int32s: row i's bits 31:0 at [i], its bits 63:32 at
 * [FIELD_COUNT + i]. A view on the DRAM itself, so loads and write-backs are plain array copies.
 * A region is page-aligned, hence in one chunk; the DRAM is little-endian, as Int32Array is on
 * every host Node runs on.
 */
export function vmcsRegionSlots(mem: PhysMemory, hpa: number): Int32Array {
  const c = mem.chunk(hpa);
  return new Int32Array(c.buffer, c.byteOffset + (hpa % CHUNK_SIZE) + VMCS_REGION.DATA, FIELD_COUNT * 2);
}

/** What a VMWRITE keeps of each row's low half (16 bits of a 16-bit field) and high half (only 64-bit and natural-width fields have one). */
export const FIELD_LO_MASK: Int32Array = Int32Array.from(FIELD_WIDTH, (w) => (w === VMCS_WIDTH.U16 ? 0xffff : -1));
export const FIELD_HI_MASK: Int32Array = Int32Array.from(FIELD_WIDTH, (w) => (w === VMCS_WIDTH.U16 || w === VMCS_WIDTH.U32 ? 0 : -1));
const LO_MASK = FIELD_LO_MASK;
const HI_MASK = FIELD_HI_MASK;

/**
 * The host-state area decoded into what a VM exit loads (SDM 28.5): made from the fields once,
 * remade after one of them (or the VM-exit controls) changed, so an exit copies values.
 */
export class HostStateImage {
  stale = true;
  readonly segs: Segment[] = [];
  readonly tables: DescriptorTableReg[] = [];
  cr0 = 0;
  cr3 = 0;
  cr4 = 0;
  sysenterCs = 0;
  sysenterEsp = 0;
  sysenterEip = 0;
  /** IA32_EFER when the exit loads it; -1 when the exit only sets LMA and LME from the host address-space size. */
  efer = -1;
  rip = 0;
  rspLo = 0;
  rspHi = 0;
}

/**
 * One active VMCS as the silicon holds it: each field as two int32 halves, so that the per-exit
 * path reads and writes numbers, never BigInt. Dirty tracking is per VMCS, so switching between
 * active VMCSs keeps each one's incremental entry checks exact.
 */
export class VmcsCache {
  /** The region's HPA, or INVALID_VMCS_PTR for the placeholder that stands for "no current VMCS". */
  hpa = INVALID_VMCS_PTR;
  launched = false;
  /** Every row's bits 31:0 then every row's bits 63:32, as the region keeps them: `lo` and `hi` are its halves. */
  private readonly halves = new Int32Array(FIELD_COUNT * 2);
  readonly lo = this.halves.subarray(0, FIELD_COUNT);
  readonly hi = this.halves.subarray(FIELD_COUNT);
  /** Fields written since the last successful VM entry: the incremental entry checks re-run only checks that read them. */
  readonly dirty = new Uint8Array(FIELD_COUNT);
  /** The dirty fields as a list, so an entry visits only what changed. */
  readonly dirtyList = new Int16Array(FIELD_COUNT);
  dirtyCount = 0;
  /** Fields changed since the region was read in or written back: all a write-back has to store. */
  private readonly unsaved = new Uint8Array(FIELD_COUNT);
  private readonly unsavedList = new Int16Array(FIELD_COUNT);
  private unsavedCount = 0;
  /** Per field, the serial of the VM exit that last changed it: the inspector's "changed at the last exit". */
  readonly changedAtExit = new Uint32Array(FIELD_COUNT);
  /** Serial of the current VM exit (bumped by beginExit, and by load so nothing carries over). */
  exitSerial = 1;

  constructor() {
    this.markAllDirty();
  }

  /** A control field changed since the silicon last decoded the controls. */
  controlsDirty = true;

  /**
   * The frozen segment registers, GDTR and IDTR the last VM entry installed in the processor
   * (entry.ts), kept per VMCS like its fields.
   */
  readonly guestSegs: (Segment | null)[] = [null, null, null, null, null, null, null, null];
  readonly guestTables: (DescriptorTableReg | null)[] = [null, null];
  /** The host-state area as VM exits load it (exit.ts). */
  readonly host = new HostStateImage();

  markDirty(i: number): void {
    if (this.unsaved[i] === 0) {
      this.unsaved[i] = 1;
      this.unsavedList[this.unsavedCount++] = i;
    }
    if (this.dirty[i] === 0) {
      this.dirty[i] = 1;
      this.dirtyList[this.dirtyCount++] = i;
      if (FIELD_TYPE[i] === VMCS_TYPE.CONTROL) this.controlsDirty = true;
    }
  }

  markAllDirty(): void {
    // A VMCS never entered since its last load (a shadow VMCS, loaded around every copy) is all dirty already.
    if (this.dirtyCount !== FIELD_COUNT) {
      this.dirty.fill(1);
      this.dirtyList.set(ALL_ROWS);
      this.dirtyCount = FIELD_COUNT;
    }
    this.controlsDirty = true;
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
    const h = this.hi[i]!;
    // Most fields fit in 32 bits: no floating-point multiply for them.
    return h === 0 ? this.lo[i]! >>> 0 : h * TWO32 + (this.lo[i]! >>> 0);
  }

  read64(i: number): bigint {
    return (BigInt(this.hi[i]!) << 32n) | BigInt(this.lo[i]! >>> 0);
  }

  write32(i: number, v: number): void {
    const lo = v & LO_MASK[i]!;
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
    const l = lo & LO_MASK[i]!;
    const h = hi & HI_MASK[i]!;
    if (this.lo[i] === l && this.hi[i] === h) return;
    this.markDirty(i);
    this.lo[i] = l;
    this.hi[i] = h;
  }

  /** A new VM exit (or entry failure) starts: the writes below are its changes. */
  beginExit(): void {
    this.exitSerial++;
  }

  /** True when the last VM exit changed field `i`. */
  changedAtLastExit(i: number): boolean {
    return this.changedAtExit[i] === this.exitSerial;
  }

  /** A write by the silicon itself at VM exit: records the change for the inspector. */
  exitWrite32(i: number, v: number): void {
    const l = v | 0;
    // Most of what an exit saves is what the entry loaded: compare first, write only changes.
    if (this.lo[i] === l && this.hi[i] === 0) return;
    this.exitChange(i, l, 0);
  }

  exitWriteNum(i: number, v: number): void {
    if (v >= 0 && v < TWO32) {
      const l = v | 0;
      if (this.lo[i] === l && this.hi[i] === 0) return;
      this.exitChange(i, l, 0);
      return;
    }
    const h = Math.floor(v / TWO32);
    const l = (v - h * TWO32) | 0;
    if (this.lo[i] === l && this.hi[i] === (h | 0)) return;
    this.exitChange(i, l, h | 0);
  }

  /** A 64-bit field's halves, as exitWriteNum writes a number. */
  exitWriteHalves(i: number, l: number, h: number): void {
    if (this.lo[i] === l && this.hi[i] === h) return;
    this.exitChange(i, l, h);
  }

  private exitChange(i: number, l: number, h: number): void {
    this.changedAtExit[i] = this.exitSerial;
    this.markDirty(i);
    this.lo[i] = l;
    this.hi[i] = h;
  }

  /**
   * The region's field slots in DRAM, kept with the address they were made for (entries are
   * reused, often for the same region: the shadow VMCS is loaded and cleared around every copy).
   */
  private slots: Int32Array | null = null;
  private slotsHpa = INVALID_VMCS_PTR;

  private regionSlots(mem: PhysMemory): Int32Array {
    if (this.slots === null || this.slotsHpa !== this.hpa) {
      this.slots = vmcsRegionSlots(mem, this.hpa);
      this.slotsHpa = this.hpa;
    }
    return this.slots;
  }

  /** Reads the region at `hpa` into this entry (VMPTRLD of a VMCS not on chip). */
  load(mem: PhysMemory, hpa: number): void {
    this.hpa = hpa;
    this.launched = mem.read8(hpa + VMCS_REGION.LAUNCH_STATE) === 1;
    // The region and the on-chip copy share one layout: one block copy.
    this.halves.set(this.regionSlots(mem));
    this.clearUnsaved();
    this.markAllDirty();
    this.exitSerial++;
  }

  private clearUnsaved(): void {
    for (let k = 0; k < this.unsavedCount; k++) this.unsaved[this.unsavedList[k]!] = 0;
    this.unsavedCount = 0;
  }

  /** Writes the fields changed since the last load or write-back to the region (VMCLEAR, VMXOFF, or eviction). */
  flush(mem: PhysMemory): void {
    if (this.hpa === INVALID_VMCS_PTR) return;
    const launch = this.launched ? 1 : 0;
    // Stores only what changed, the launch state too (a write to DRAM is looked up among code pages).
    if (mem.read8(this.hpa + VMCS_REGION.LAUNCH_STATE) !== launch) mem.write8(this.hpa + VMCS_REGION.LAUNCH_STATE, launch);
    if (this.unsavedCount === 0) return;
    mem.noteWrite(this.hpa + VMCS_REGION.DATA, FIELD_COUNT * 8);
    const slots = this.regionSlots(mem);
    const list = this.unsavedList;
    for (let k = 0; k < this.unsavedCount; k++) {
      const i = list[k]!;
      slots[i] = this.lo[i]!;
      slots[FIELD_COUNT + i] = this.hi[i]!;
    }
    this.clearUnsaved();
  }
}

/** How many VMCSs the silicon keeps on chip: vmcs01 and vmcs02 of a few vCPUs, and a shadow VMCS. */
export const VMCS_CACHE_ENTRIES = 8;

/**
 * The processor's set of on-chip VMCSs, keyed by region address, and which one is current.
 * `current` is never null: with no current VMCS it is a placeholder whose hpa is INVALID_VMCS_PTR.
 * The lists are fixed arrays with counts: VMPTRLD and VMCLEAR (on the nested round trip) neither
 * allocate nor resize an array.
 */
export class VmcsCacheSet {
  /** Stands for "no current VMCS": never written, since every VMX instruction fails without a current VMCS. */
  private readonly none = new VmcsCache();
  current: VmcsCache = this.none;
  /** On-chip entries [0, count), most recently current last. */
  private readonly entries: VmcsCache[] = Array.from({ length: VMCS_CACHE_ENTRIES }, () => this.none);
  private count = 0;
  /** Entries given back by VMCLEAR or eviction [0, freeCount), reused so a VMPTRLD allocates nothing. */
  private readonly free: VmcsCache[] = Array.from({ length: VMCS_CACHE_ENTRIES }, () => this.none);
  private freeCount = 0;

  /** The on-chip entry for the region at `hpa`, or undefined. */
  find(hpa: number): VmcsCache | undefined {
    const k = this.indexOf(hpa);
    return k < 0 ? undefined : this.entries[k];
  }

  private indexOf(hpa: number): number {
    const e = this.entries;
    for (let k = this.count - 1; k >= 0; k--) if (e[k]!.hpa === hpa) return k;
    return -1;
  }

  /** Takes entry `k` out of the list, those after it moving down one. */
  private remove(k: number): VmcsCache {
    const e = this.entries;
    const v = e[k]!;
    const last = --this.count;
    for (let j = k; j < last; j++) e[j] = e[j + 1]!;
    e[last] = this.none;
    return v;
  }

  /** VMPTRLD: makes the region at `hpa` current, reading it in unless it is on chip already. */
  makeCurrent(mem: PhysMemory, hpa: number): VmcsCache {
    const k = this.indexOf(hpa);
    let v: VmcsCache;
    if (k >= 0) {
      v = this.remove(k);
    } else {
      if (this.count === VMCS_CACHE_ENTRIES) this.evict(mem, this.remove(0));
      v = this.freeCount > 0 ? this.free[--this.freeCount]! : new VmcsCache();
      v.load(mem, hpa);
    }
    this.entries[this.count++] = v;
    this.current = v;
    return v;
  }

  /** VMCLEAR: writes the region at `hpa` back if it is on chip and drops it; true when it was. */
  clear(mem: PhysMemory, hpa: number): boolean {
    const k = this.indexOf(hpa);
    if (k < 0) return false;
    const v = this.remove(k);
    v.launched = false;
    this.evict(mem, v);
    return true;
  }

  /** No VMCS is current any more (VMCLEAR of the current one, VMXON); on-chip entries stay. */
  dropCurrent(): void {
    this.current = this.none;
  }

  /** VMXOFF: every on-chip VMCS written back. */
  flushAll(mem: PhysMemory): void {
    while (this.count > 0) this.evict(mem, this.remove(this.count - 1));
    this.dropCurrent();
  }

  private evict(mem: PhysMemory, v: VmcsCache): void {
    v.flush(mem);
    if (this.current === v) this.current = this.none;
    v.hpa = INVALID_VMCS_PTR;
    // At most VMCS_CACHE_ENTRIES entries ever exist, so the free list has room.
    this.free[this.freeCount++] = v;
  }
}
