/**
 * The bare-CPU benchmark (`cpu.loop16`, `cpu.loop32`, `cpu.loop64` in DESIGN.md): runs a guest
 * image built from ../shared/bench/guest.S or guest64.S, loaded at 0x7c00, on a CPU with no
 * virtualization, and times it. Ports are swallowed; the run ends at HLT or when the budget
 * of `iterations` loop iterations (7 instructions each, plus set-up and print-out) is spent.
 */
import { Bus, OPEN_BUS } from '../bus.js';
import { Cpu } from '../cpu/cpu.js';
import { AR, SEG, makeSegment } from '../cpu/state.js';
import { PhysMemory } from '../mem/phys-memory.js';

const LOAD_ADDRESS = 0x7c00;
const MEM_SIZE = 0x400000;
const LOOP_BODY = 7;
/** Instructions outside the timed loop (set-up, mode switch, hex print-out, shutdown port writes). */
const OVERHEAD = 200;

export type CpuLoopMode = 'real' | 'pmode32' | 'long64';

export function makeBenchCpu(image: Uint8Array, mode: CpuLoopMode): Cpu {
  const mem = new PhysMemory(MEM_SIZE);
  mem.writeBytes(LOAD_ADDRESS, image);
  const cpu = new Cpu({ bus: new Bus(mem, OPEN_BUS) });
  if (mode === 'long64') {
    // As kvmts run --mode long64 sets it up: identity map of the first 1 GiB with 2 MiB pages.
    const pml4 = MEM_SIZE - 0x3000;
    const pdpt = MEM_SIZE - 0x2000;
    const pd = MEM_SIZE - 0x1000;
    mem.write64(pml4, BigInt(pdpt | 0x3));
    mem.write64(pdpt, BigInt(pd | 0x3));
    for (let k = 0; k < 512; k++) mem.write64(pd + k * 8, (BigInt(k) << 21n) | 0x83n);
    cpu.cr0 = 0x80000033;
    cpu.cr4 = 0x20;
    cpu.efer = 0x500;
    cpu.cr3 = pml4;
    cpu.seg[SEG.CS] = makeSegment(0x08, 0, 0xffffffff, 0x9b | AR.L | AR.G);
    for (const s of [SEG.DS, SEG.ES, SEG.FS, SEG.GS, SEG.SS]) {
      cpu.seg[s] = makeSegment(0x10, 0, 0xffffffff, 0x93 | AR.DB | AR.G);
    }
  } else {
    cpu.seg[SEG.CS] = makeSegment(0, 0, 0xffff, 0x9b);
  }
  cpu.rip = LOAD_ADDRESS;
  cpu.stateChanged();
  return cpu;
}

export function runCpuLoop(image: Uint8Array, mode: CpuLoopMode, iterations: number): { instructions: number; seconds: number } {
  const cpu = makeBenchCpu(image, mode);
  const budget = iterations * LOOP_BODY + OVERHEAD;
  const t0 = process.hrtime.bigint();
  cpu.run(budget);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return { instructions: cpu.icount, seconds };
}
