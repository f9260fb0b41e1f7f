import type { PhysMemory } from './mem/phys-memory.js';

/**
 * What sits behind the CPU's physical address and I/O spaces: DRAM, MMIO devices and ports.
 * An access nobody claims goes to the fallback the owner supplies (for the bare CPU: a test
 * harness; under KVM the silicon never gets here for guest accesses, which exit instead).
 */
export interface MmioHandler {
  read(addr: number, size: 1 | 2 | 4 | 8): number;
  write(addr: number, size: 1 | 2 | 4 | 8, value: number): void;
}

export interface PortHandler {
  in(port: number, size: 1 | 2 | 4): number;
  out(port: number, size: 1 | 2 | 4, value: number): void;
}

/** Unclaimed accesses. Reads return the value to use (0xff bytes is the PC convention). */
export interface BusFallback {
  mmioRead(addr: number, size: 1 | 2 | 4 | 8): number;
  mmioWrite(addr: number, size: 1 | 2 | 4 | 8, value: number): void;
  pioIn(port: number, size: 1 | 2 | 4): number;
  pioOut(port: number, size: 1 | 2 | 4, value: number): void;
}

interface MmioRegion { base: number; size: number; handler: MmioHandler }

export const OPEN_BUS: BusFallback = {
  mmioRead: (_a, size) => (size >= 4 ? 0xffffffff : (1 << (size * 8)) - 1),
  mmioWrite: () => {},
  pioIn: (_p, size) => (size === 4 ? 0xffffffff : (1 << (size * 8)) - 1),
  pioOut: () => {},
};

export class Bus {
  readonly ram: PhysMemory;
  fallback: BusFallback;
  private readonly mmio: MmioRegion[] = [];
  private readonly ports = new Map<number, PortHandler>();

  constructor(ram: PhysMemory, fallback: BusFallback = OPEN_BUS) {
    this.ram = ram;
    this.fallback = fallback;
  }

  /** Claims [base, base+size) for a device. MMIO takes precedence over DRAM. */
  mapMmio(base: number, size: number, handler: MmioHandler): void {
    this.mmio.push({ base, size, handler });
  }

  mapPorts(first: number, count: number, handler: PortHandler): void {
    for (let p = first; p < first + count; p++) this.ports.set(p & 0xffff, handler);
  }

  /** The MMIO handler for `addr`, or undefined when the address is DRAM or unclaimed. */
  mmioAt(addr: number): MmioRegion | undefined {
    for (const r of this.mmio) if (addr >= r.base && addr < r.base + r.size) return r;
    return undefined;
  }

  /**
   * The DRAM address backing physical address `pa` when its whole 4 KiB page is plain memory
   * (so the CPU may cache it in its TLB and index `ram.chunk(hpa)` directly), or -1 when the
   * page is a device's or unclaimed. A bus over another address space (KVM's emulator sees
   * guest-physical memory through memslots) overrides this and readPhys/writePhys/in/out.
   */
  resolveRam(pa: number): number {
    if (!this.ram.contains(pa)) return -1;
    const pageBase = pa - (pa & 0xfff);
    for (const r of this.mmio) if (r.base < pageBase + 4096 && pageBase < r.base + r.size) return -1;
    return pa;
  }

  readPhys(addr: number, size: 1 | 2 | 4): number {
    const r = this.mmioAt(addr);
    if (r) return r.handler.read(addr, size);
    if (!this.ram.contains(addr)) return this.fallback.mmioRead(addr, size);
    return size === 1 ? this.ram.read8(addr) : size === 2 ? this.ram.read16(addr) : this.ram.read32(addr);
  }

  writePhys(addr: number, size: 1 | 2 | 4, value: number): void {
    const r = this.mmioAt(addr);
    if (r) { r.handler.write(addr, size, value); return; }
    if (!this.ram.contains(addr)) { this.fallback.mmioWrite(addr, size, value); return; }
    if (size === 1) this.ram.write8(addr, value);
    else if (size === 2) this.ram.write16(addr, value);
    else this.ram.write32(addr, value);
  }

  /**
   * An aligned-or-not 8-byte access within one page that is not DRAM, as one access: a device
   * (and KVM, which reports it as one KVM_EXIT_MMIO of len 8) sees a single quadword. Returns
   * [bits 31:0, bits 63:32]. This bus splits it for its 4-byte handlers.
   */
  readPhys64(addr: number): [number, number] {
    return [this.readPhys(addr, 4), this.readPhys(addr + 4, 4)];
  }

  writePhys64(addr: number, lo: number, hi: number): void {
    this.writePhys(addr, 4, lo);
    this.writePhys(addr + 4, 4, hi);
  }

  in(port: number, size: 1 | 2 | 4): number {
    const h = this.ports.get(port);
    return h ? h.in(port, size) : this.fallback.pioIn(port, size);
  }

  out(port: number, size: 1 | 2 | 4, value: number): void {
    const h = this.ports.get(port);
    if (h) h.out(port, size, value);
    else this.fallback.pioOut(port, size, value);
  }
}
