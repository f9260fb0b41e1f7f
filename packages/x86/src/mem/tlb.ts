/**
 * A software TLB: linear page -> host DRAM page, one direct-mapped set per access kind
 * (read, write, fetch) and privilege (supervisor, user), so a hit needs no permission check.
 * Only pages that are plain DRAM are cached; MMIO and unclaimed pages always take the slow path.
 * One Tlb per tag (VPID/ASID), selected by Cpu.setTlbTag.
 */
export const TLB_BITS = 8;
export const TLB_SIZE = 1 << TLB_BITS;
export const TLB_MASK = TLB_SIZE - 1;

/** Set numbers: kind * 2 + user. */
export const TLB_SET = { READ: 0, WRITE: 2, FETCH: 4 } as const;
const SETS = 6;

const EMPTY = new Uint8Array(0);

export class Tlb {
  /** Linear page base (a multiple of 4096) per entry, or 0.5 (never a page base) when empty. */
  readonly tag = new Float64Array(SETS * TLB_SIZE).fill(0.5);
  /** The DRAM chunk holding the page. */
  readonly chunk: Uint8Array[] = new Array<Uint8Array>(SETS * TLB_SIZE).fill(EMPTY);
  /** Offset of the page inside its chunk. */
  readonly off = new Int32Array(SETS * TLB_SIZE);
  /** Host frame number (hpa >> 12), to drop write entries when the frame starts holding code. */
  readonly frame = new Float64Array(SETS * TLB_SIZE).fill(-1);

  static index(set: number, la: number): number {
    return set * TLB_SIZE + ((la >>> 12) & TLB_MASK);
  }

  fill(idx: number, page: number, chunk: Uint8Array, off: number, frame: number): void {
    this.tag[idx] = page;
    this.chunk[idx] = chunk;
    this.off[idx] = off;
    this.frame[idx] = frame;
  }

  /**
   * Empties every entry. Only the tags: an entry's chunk and frame are read after its tag
   * matched, and an empty tag matches no page (VPID-less guests flush at every entry and exit).
   */
  flushAll(): void {
    this.tag.fill(0.5);
  }

  /** Drops every entry for the linear page holding `la`. */
  flushPage(la: number): void {
    const page = la - (la & 0xfff);
    for (let s = 0; s < SETS; s++) {
      const idx = Tlb.index(s, la);
      if (this.tag[idx] === page) { this.tag[idx] = 0.5; this.frame[idx] = -1; }
    }
  }

  /** Drops the write entries that map host frame `frame` (it now holds decoded code). */
  flushWriteFrame(frame: number): void {
    for (let idx = TLB_SET.WRITE * TLB_SIZE; idx < (TLB_SET.WRITE + 2) * TLB_SIZE; idx++) {
      if (this.frame[idx] === frame) { this.tag[idx] = 0.5; this.frame[idx] = -1; }
    }
  }
}
