import { describe, expect, it } from 'vitest';
import { VEC } from '../src/cpu/events.js';
import { STOP } from '../src/cpu/virt.js';
import { assemble, hasAssembler } from './asm.js';
import { longMode, type Machine } from './helpers.js';
import { reg64 } from './run-snippet.js';

const MEM = 0x400000;

/** Long mode where the first 2 MiB are mapped with 4 KiB pages through a page table at 0x300000; `absent` pages are not present. */
function fourK(source: string, absent: number[] = []): Machine {
  const m = longMode(assemble(`${source}\nhlt`, 64), 0x1000, MEM);
  const pd = MEM - 0x1000;
  const pt = 0x300000;
  for (let k = 0; k < 512; k++) m.mem.write64(pt + k * 8, absent.includes(k) ? 0n : BigInt(k * 0x1000 + 3));
  m.mem.write64(pd, BigInt(pt + 3));
  return m;
}

function spyFaults(m: Machine): number[] {
  const seen: number[] = [];
  const orig = m.cpu.fault.bind(m.cpu);
  m.cpu.fault = (v: number, e = -1): never => { seen.push(v); return orig(v, e); };
  return seen;
}

describe.skipIf(!hasAssembler)('memory access path', () => {
  it('MMIO is never cached: every access reaches the device, with its size', () => {
    const m = longMode(assemble(`
      mov dword ptr [0x200010], 0x11223344
      mov dword ptr [0x200010], 0x55667788
      mov eax, [0x200010]
      mov bx, [0x200012]
      hlt`, 64), 0x1000, MEM);
    const log: string[] = [];
    m.cpu.bus.mapMmio(0x200000, 0x1000, {
      read: (a, s) => { log.push(`r${s}@${a.toString(16)}`); return 0xabcd; },
      write: (a, s, v) => { log.push(`w${s}@${a.toString(16)}=${v.toString(16)}`); },
    });
    expect(m.cpu.run(100)).toBe(STOP.HLT);
    expect(log).toEqual(['w4@200010=11223344', 'w4@200010=55667788', 'r4@200010', 'r2@200012']);
    expect(reg64(m.cpu, 'rax')).toBe(0xabcdn);
    expect(reg64(m.cpu, 'rbx') & 0xffffn).toBe(0xabcdn);
  });

  it('accesses crossing a page boundary split correctly', () => {
    const m = fourK(`
      mov rax, 0x8877665544332211
      mov [0x4ffd], rax
      mov rbx, [0x4ffd]
      mov ecx, [0x4ffe]`);
    expect(m.cpu.run(100)).toBe(STOP.HLT);
    expect(reg64(m.cpu, 'rbx')).toBe(0x8877665544332211n);
    expect(reg64(m.cpu, 'rcx')).toBe(0x55443322n);
    expect(m.mem.read8(0x4fff)).toBe(0x33);
    expect(m.mem.read8(0x5000)).toBe(0x44);
  });

  it('a crossing write whose second page faults writes nothing (#PF, CR2 = the second page)', () => {
    const m = fourK(`
      mov rax, -1
      mov [0x4ffc], rax`, [5]);
    const seen = spyFaults(m);
    m.cpu.run(100);
    expect(seen[0]).toBe(VEC.PF);
    expect(m.cpu.cr2).toBe(0x5000);
    expect(m.mem.read32(0x4ffc)).toBe(0);
  });

  it('the TLB keeps a stale translation until flushed; tags keep separate entries', () => {
    const m = fourK(`
      mov eax, [0x6000]
      hlt
      mov ebx, [0x6000]
      hlt
      mov ecx, [0x6000]`);
    m.mem.write32(0x6000, 111);
    m.mem.write32(0x7000, 222);
    expect(m.cpu.run(100)).toBe(STOP.HLT);
    m.mem.write64(0x300000 + 6 * 8, 0x7003n); // remap page 6 -> frame 7 behind the TLB's back
    m.cpu.activity = 0;
    expect(m.cpu.run(100)).toBe(STOP.HLT);
    expect(reg64(m.cpu, 'rbx')).toBe(111n); // stale, as the architecture allows
    m.cpu.flushTlb(0, 0x6000);
    m.cpu.activity = 0;
    expect(m.cpu.run(100)).toBe(STOP.HLT);
    expect(reg64(m.cpu, 'rax')).toBe(111n);
    expect(reg64(m.cpu, 'rcx')).toBe(222n);
  });
});
