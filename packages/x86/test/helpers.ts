/** Test harness: a bare CPU on flat DRAM with a port log, in real mode or 64-bit long mode. */
import { Bus, type BusFallback } from '../src/bus.js';
import { Cpu } from '../src/cpu/cpu.js';
import { AR, makeSegment, SEG } from '../src/cpu/state.js';
import { PhysMemory } from '../src/mem/phys-memory.js';

export interface Machine {
  cpu: Cpu;
  mem: PhysMemory;
  /** OUT writes, as [port, size, value]. */
  outs: [number, number, number][];
}

export function makeMachine(memSize = 0x200000): Machine {
  const mem = new PhysMemory(memSize);
  const outs: [number, number, number][] = [];
  const fallback: BusFallback = {
    mmioRead: (_a, size) => (size >= 4 ? 0xffffffff : (1 << (size * 8)) - 1),
    mmioWrite: () => {},
    pioIn: (_p, size) => (size === 4 ? 0xffffffff : (1 << (size * 8)) - 1),
    pioOut: (port, size, value) => { outs.push([port, size, value]); },
  };
  const cpu = new Cpu({ bus: new Bus(mem, fallback) });
  return { cpu, mem, outs };
}

/** Real mode, CS=DS=ES=SS=0, IP = `entry`, code loaded at `entry`. */
export function realMode(code: Uint8Array | number[], entry = 0x1000): Machine {
  const m = makeMachine();
  m.mem.writeBytes(entry, Uint8Array.from(code));
  const { cpu } = m;
  cpu.seg[SEG.CS] = makeSegment(0, 0, 0xffff, 0x9b);
  cpu.rip = entry;
  cpu.gpr[4] = 0x8000;
  cpu.stateChanged();
  return m;
}

/**
 * 64-bit long mode as `kvmts run --mode long64` sets it up (DESIGN.md): identity map of the
 * first 1 GiB with 2 MiB pages, CR0=0x80000033, CR4=0x20, EFER=0x500, CS L=1.
 */
export function longMode(code: Uint8Array | number[], entry = 0x1000, memSize = 0x200000): Machine {
  const m = makeMachine(memSize);
  const { cpu, mem } = m;
  const pml4 = memSize - 0x3000;
  const pdpt = memSize - 0x2000;
  const pd = memSize - 0x1000;
  mem.write64(pml4, BigInt(pdpt | 0x3));
  mem.write64(pdpt, BigInt(pd | 0x3));
  for (let k = 0; k < 512; k++) mem.write64(pd + k * 8, BigInt(k) * 0x200000n | 0x83n);
  mem.writeBytes(entry, Uint8Array.from(code));
  cpu.cr0 = 0x80000033;
  cpu.cr4 = 0x20;
  cpu.efer = 0x500;
  cpu.cr3 = pml4;
  cpu.seg[SEG.CS] = makeSegment(0x08, 0, 0xffffffff, 0x9b | AR.L | AR.G);
  for (const s of [SEG.DS, SEG.ES, SEG.FS, SEG.GS, SEG.SS]) cpu.seg[s] = makeSegment(0x10, 0, 0xffffffff, 0x93 | AR.DB | AR.G);
  cpu.rip = entry;
  cpu.gpr[4] = 0x80000;
  cpu.stateChanged();
  return m;
}
