/**
 * The TDP MMU (arch/x86/kvm/mmu/tdp_mmu.c): 4-level EPT or NPT tables in host pages, filled
 * one 4 KiB leaf per fault (kvm_tdp_mmu_map), zapped when memslots change, and write-protected
 * for dirty logging. Entry bits come from the vendor's TdpFormat; the core never hardcodes
 * EPT or NPT layouts.
 */
import type { HostKernel } from '../x86/kvm-types.js';
import type { TdpFormat } from '../x86/kvm-x86-ops.js';

const ENTRIES = 512;
const TWO32 = 2 ** 32;
/** Physical-address bits 51:32 of an entry's high word (bit 63 is NX/suppress-#VE, not address). */
const HI_ADDR_MASK = 0xfffff;

export class TdpMmu {
  readonly format: TdpFormat;
  readonly root: number;
  /** Every table page below the root, so zapping can free them. */
  private readonly tables = new Set<number>();
  private mapped = 0;

  private readonly host: HostKernel;

  constructor(host: HostKernel, format: TdpFormat) {
    this.host = host;
    this.format = format;
    const root = host.allocPage();
    if (root < 0) throw new Error('out of memory for the TDP root');
    this.root = root;
  }

  /** Leaf pages currently mapped (the pages_4k stat). */
  get pagesMapped(): number {
    return this.mapped;
  }

  get tablePages(): number {
    return this.tables.size + 1;
  }

  private static index(gfn: number, level: number): number {
    return Math.floor(gfn / ENTRIES ** (level - 1)) % ENTRIES;
  }

  private entryAddr(table: number, gfn: number, level: number): number {
    return table + TdpMmu.index(gfn, level) * 8;
  }

  private present(lo: number): boolean {
    const f = this.format;
    return (lo & (f.read | f.write | f.exec | (f.kind === 'npt' ? 1 : 0))) !== 0;
  }

  private tableOf(lo: number, hi: number): number {
    return (hi & HI_ADDR_MASK) * TWO32 + ((lo & ~0xfff) >>> 0);
  }

  /**
   * For range walks: the leaf entry's address for `gfn`, or, when a table on the way is
   * absent, minus the first GFN past the range that absent entry covers.
   */
  private leafOrSkip(gfn: number): number {
    const mem = this.host.mem;
    let table = this.root;
    for (let level = 4; level > 1; level--) {
      const ea = this.entryAddr(table, gfn, level);
      const lo = mem.read32(ea);
      if (!this.present(lo) || this.isMmioSpte(lo, mem.read32(ea + 4))) {
        const span = ENTRIES ** (level - 1);
        return -((Math.floor(gfn / span) + 1) * span);
      }
      table = this.tableOf(lo, mem.read32(ea + 4));
    }
    return this.entryAddr(table, gfn, 1);
  }

  /** The leaf entry's address for `gfn`, creating tables on the way when `create`; -1 if absent. */
  private walk(gfn: number, create: boolean): number {
    const mem = this.host.mem;
    let table = this.root;
    for (let level = 4; level > 1; level--) {
      const ea = this.entryAddr(table, gfn, level);
      const lo = mem.read32(ea);
      if (this.present(lo) && !this.isMmioSpte(lo, mem.read32(ea + 4))) {
        table = this.tableOf(lo, mem.read32(ea + 4));
        continue;
      }
      if (!create) return -1;
      const next = this.host.allocPage();
      if (next < 0) return -1;
      this.tables.add(next);
      const f = this.format;
      mem.write32(ea, ((next % TWO32) | f.read | f.write | f.exec | f.nonLeaf) >>> 0);
      mem.write32(ea + 4, Math.floor(next / TWO32));
      table = next;
    }
    return this.entryAddr(table, gfn, 1);
  }

  private isMmioSpte(lo: number, hi: number): boolean {
    const m = this.format.mmioSpte;
    return m !== null && lo === m.lo && hi === m.hi;
  }

  /** The leaf for `gfn`: {hpa, writable}, or null when not mapped. */
  lookup(gfn: number): { hpa: number; writable: boolean; mmio: boolean } | null {
    const ea = this.walk(gfn, false);
    if (ea < 0) return null;
    const lo = this.host.mem.read32(ea);
    const hi = this.host.mem.read32(ea + 4);
    if (this.isMmioSpte(lo, hi)) return { hpa: -1, writable: false, mmio: true };
    if (!this.present(lo)) return null;
    return { hpa: this.tableOf(lo, hi), writable: (lo & this.format.write) !== 0, mmio: false };
  }

  /** kvm_tdp_mmu_map for one 4 KiB page. Returns false when a table page cannot be allocated. */
  map(gfn: number, hpa: number, writable: boolean): boolean {
    const ea = this.walk(gfn, true);
    if (ea < 0) return false;
    const mem = this.host.mem;
    const f = this.format;
    const wasPresent = this.present(mem.read32(ea)) && !this.isMmioSpte(mem.read32(ea), mem.read32(ea + 4));
    const lo = ((hpa % TWO32) | f.read | f.exec | (writable ? f.write : 0) | f.leafExtra) >>> 0;
    mem.write32(ea, lo);
    mem.write32(ea + 4, Math.floor(hpa / TWO32));
    if (!wasPresent) this.mapped++;
    return true;
  }

  /** Installs the vendor's MMIO SPTE for a GFN with no memslot, so the next access faults as MMIO. */
  mapMmio(gfn: number): boolean {
    const m = this.format.mmioSpte;
    if (!m) return false;
    const ea = this.walk(gfn, true);
    if (ea < 0) return false;
    this.host.mem.write32(ea, m.lo);
    this.host.mem.write32(ea + 4, m.hi);
    return true;
  }

  /**
   * Calls `f` with the address of each leaf entry of [gfn, gfn+npages), skipping the ranges a
   * missing table covers. Returns true when any call returned true (a TLB flush is due).
   */
  private forEachLeaf(gfn: number, npages: number, f: (ea: number) => boolean): boolean {
    let flush = false;
    for (let g = gfn; g < gfn + npages; g++) {
      const ea = this.leafOrSkip(g);
      if (ea < 0) {
        g = -ea - 1;
        continue;
      }
      if (f(ea)) flush = true;
    }
    return flush;
  }

  /** Clears the leaves of [gfn, gfn+npages). Returns true when anything was present (a flush is due). */
  zapRange(gfn: number, npages: number): boolean {
    const mem = this.host.mem;
    return this.forEachLeaf(gfn, npages, (ea) => {
      const lo = mem.read32(ea);
      const hi = mem.read32(ea + 4);
      if (lo === 0 && hi === 0) return false;
      if (this.present(lo) && !this.isMmioSpte(lo, hi)) this.mapped--;
      mem.write32(ea, 0);
      mem.write32(ea + 4, 0);
      return true;
    });
  }

  /** Clears the write bit of [gfn, gfn+npages) leaves (dirty logging). Returns true when any changed. */
  writeProtect(gfn: number, npages: number): boolean {
    const mem = this.host.mem;
    const w = this.format.write;
    return this.forEachLeaf(gfn, npages, (ea) => {
      const lo = mem.read32(ea);
      if (!this.present(lo) || this.isMmioSpte(lo, mem.read32(ea + 4)) || !(lo & w)) return false;
      mem.write32(ea, (lo & ~w) >>> 0);
      return true;
    });
  }

  /** Zaps everything (kvm_tdp_mmu_zap_all): the root stays, every table below it is freed. */
  zapAll(): void {
    this.host.mem.fill(this.root, 4096, 0);
    for (const t of this.tables) this.host.freePage(t);
    this.tables.clear();
    this.mapped = 0;
  }

  /** Frees every page, root included (VM destruction). */
  destroy(): void {
    this.zapAll();
    this.host.freePage(this.root);
  }
}
