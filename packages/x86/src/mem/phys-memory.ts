/**
 * Host physical memory: the DRAM the silicon reads. Sparse, and paid for when touched: backing
 * store is allocated in 2 MiB chunks on first access, so a 64 GiB machine whose guests touch
 * 16 MiB costs 16 MiB. Addresses are plain numbers (physical addresses stay below 2^52).
 */
export const CHUNK_SHIFT = 21;
export const CHUNK_SIZE = 1 << CHUNK_SHIFT;
const CHUNK_MASK = CHUNK_SIZE - 1;
export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;

export class PhysMemory {
  readonly size: number;
  private readonly chunks = new Map<number, Uint8Array>();
  /**
   * Frames (hpa >> 12) from which some CPU has decoded instructions. A write to one through
   * this class tells every listener, so decoded-code caches stay coherent with self-modifying
   * code and with writes from outside the CPU (the VMM, the kernel). The CPU's own fast write
   * path must not cache write access to these frames.
   */
  private readonly codeFrames = new Set<number>();
  private readonly codeWriteListeners: ((frame: number, off: number, len: number) => boolean)[] = [];

  constructor(size: number) {
    if (!Number.isSafeInteger(size) || size <= 0 || size % PAGE_SIZE !== 0) {
      throw new RangeError(`physical memory size ${size} must be a positive multiple of 4 KiB`);
    }
    this.size = size;
  }

  /** The chunk holding `hpa`, allocated on first touch. Callers index it with `hpa & (CHUNK_SIZE-1)`. */
  chunk(hpa: number): Uint8Array {
    const n = Math.floor(hpa / CHUNK_SIZE);
    let c = this.chunks.get(n);
    if (c === undefined) {
      if (hpa < 0 || hpa >= this.size) throw new RangeError(`physical address 0x${hpa.toString(16)} is beyond memory`);
      c = new Uint8Array(CHUNK_SIZE);
      this.chunks.set(n, c);
    }
    return c;
  }

  markCodeFrame(frame: number): void {
    this.codeFrames.add(frame);
  }

  isCodeFrame(frame: number): boolean {
    return this.codeFrames.has(frame);
  }

  /**
   * `listener(frame, off, len)` hears of each write to bytes [off, off+len) of a code frame, and
   * answers whether the frame still holds its code afterwards; a frame nobody keeps stops being one.
   */
  onCodeWrite(listener: (frame: number, off: number, len: number) => boolean): void {
    this.codeWriteListeners.push(listener);
  }

  /** Call before writing [hpa, hpa+len) by any path that bypasses this class's write methods. */
  noteWrite(hpa: number, len: number): void {
    if (this.codeFrames.size === 0) return;
    const last = Math.floor((hpa + len - 1) / PAGE_SIZE);
    for (let f = Math.floor(hpa / PAGE_SIZE); f <= last; f++) {
      if (!this.codeFrames.has(f)) continue;
      const from = Math.max(hpa, f * PAGE_SIZE);
      const to = Math.min(hpa + len, (f + 1) * PAGE_SIZE);
      let kept = false;
      for (const l of this.codeWriteListeners) if (l(f, from - f * PAGE_SIZE, to - from)) kept = true;
      if (!kept) this.codeFrames.delete(f);
    }
  }

  /** True when `hpa` lies in the installed DRAM range. */
  contains(hpa: number): boolean {
    return hpa >= 0 && hpa < this.size;
  }

  /** Bytes of backing store actually allocated. */
  get residentBytes(): number {
    return this.chunks.size * CHUNK_SIZE;
  }

  read8(hpa: number): number {
    return this.chunk(hpa)[hpa & CHUNK_MASK]!;
  }

  write8(hpa: number, v: number): void {
    if (this.codeFrames.size !== 0) this.noteWrite(hpa, 1);
    this.chunk(hpa)[hpa & CHUNK_MASK] = v;
  }

  read16(hpa: number): number {
    const o = hpa & CHUNK_MASK;
    if (o <= CHUNK_MASK - 1) { const c = this.chunk(hpa); return c[o]! | (c[o + 1]! << 8); }
    return this.read8(hpa) | (this.read8(hpa + 1) << 8);
  }

  write16(hpa: number, v: number): void {
    this.write8(hpa, v & 0xff);
    this.write8(hpa + 1, (v >>> 8) & 0xff);
  }

  /** Unsigned 32-bit read. */
  read32(hpa: number): number {
    const o = hpa & CHUNK_MASK;
    if (o <= CHUNK_MASK - 3) {
      const c = this.chunk(hpa);
      return (c[o]! | (c[o + 1]! << 8) | (c[o + 2]! << 16) | (c[o + 3]! << 24)) >>> 0;
    }
    return (this.read16(hpa) | (this.read16(hpa + 2) << 16)) >>> 0;
  }

  write32(hpa: number, v: number): void {
    const o = hpa & CHUNK_MASK;
    if (o <= CHUNK_MASK - 3) {
      if (this.codeFrames.size !== 0) this.noteWrite(hpa, 4);
      const c = this.chunk(hpa);
      c[o] = v; c[o + 1] = v >>> 8; c[o + 2] = v >>> 16; c[o + 3] = v >>> 24;
      return;
    }
    this.write16(hpa, v & 0xffff);
    this.write16(hpa + 2, v >>> 16);
  }

  /** 64-bit read as a BigInt: for API edges and cold paths only (VMCS/VMCB fields, MSR areas). */
  read64(hpa: number): bigint {
    return (BigInt(this.read32(hpa + 4)) << 32n) | BigInt(this.read32(hpa));
  }

  write64(hpa: number, v: bigint): void {
    this.write32(hpa, Number(v & 0xffffffffn));
    this.write32(hpa + 4, Number((v >> 32n) & 0xffffffffn));
  }

  readBytes(hpa: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    let done = 0;
    while (done < len) {
      const a = hpa + done;
      const o = a & CHUNK_MASK;
      const n = Math.min(len - done, CHUNK_SIZE - o);
      out.set(this.chunk(a).subarray(o, o + n), done);
      done += n;
    }
    return out;
  }

  writeBytes(hpa: number, src: Uint8Array): void {
    this.noteWrite(hpa, src.length);
    let done = 0;
    while (done < src.length) {
      const a = hpa + done;
      const o = a & CHUNK_MASK;
      const n = Math.min(src.length - done, CHUNK_SIZE - o);
      this.chunk(a).set(src.subarray(done, done + n), o);
      done += n;
    }
  }

  fill(hpa: number, len: number, value = 0): void {
    this.noteWrite(hpa, len);
    let done = 0;
    while (done < len) {
      const a = hpa + done;
      const o = a & CHUNK_MASK;
      const n = Math.min(len - done, CHUNK_SIZE - o);
      this.chunk(a).fill(value, o, o + n);
      done += n;
    }
  }
}
