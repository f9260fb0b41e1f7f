/** The VMM's view of its guest RAM: guest-physical reads and writes through its own mmap'd memory. */
import type { Process } from '../host/process.js';
import type { Gpa, Hva } from './types.js';

export interface GuestRegion {
  readonly gpa: Gpa;
  readonly size: number;
  readonly hva: Hva;
}

export class GuestMemory {
  private readonly proc: Process;
  readonly regions: GuestRegion[] = [];

  constructor(proc: Process) {
    this.proc = proc;
  }

  addRegion(r: GuestRegion): void {
    this.regions.push(r);
  }

  /** The HVA of `gpa` for `len` bytes within one region, or null. */
  hvaOf(gpa: number, len = 1): number | null {
    for (const r of this.regions) if (gpa >= r.gpa && gpa + len <= r.gpa + r.size) return r.hva + (gpa - r.gpa);
    return null;
  }

  read(gpa: number, len: number): Uint8Array {
    const h = this.hvaOf(gpa, len);
    const b = h === null ? null : this.proc.readUser(h, len);
    if (!b) throw new RangeError(`guest memory [0x${gpa.toString(16)}, +${len}) is not backed`);
    return b;
  }

  write(gpa: number, bytes: Uint8Array): void {
    const h = this.hvaOf(gpa, bytes.length);
    if (h === null || !this.proc.writeUser(h, bytes)) throw new RangeError(`guest memory [0x${gpa.toString(16)}, +${bytes.length}) is not backed`);
  }

  read32(gpa: number): number {
    return new DataView(this.read(gpa, 4).buffer).getUint32(0, true);
  }

  write32(gpa: number, v: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v >>> 0, true);
    this.write(gpa, b);
  }
}
