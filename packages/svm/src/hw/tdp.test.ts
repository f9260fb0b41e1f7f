import { describe, expect, it } from 'vitest';
import { ACCESS, PhysMemory } from '@kvmts/x86';
import { nptWalk, type NptResult } from './tdp.js';

const NCR3 = 0x10000;
const PDPT = 0x11000;
const PD = 0x12000;
const PT = 0x13000;

function tables(): PhysMemory {
  const m = new PhysMemory(4 << 20);
  m.write32(NCR3, PDPT | 0x7);
  m.write32(PDPT, PD | 0x7);
  m.write32(PD, PT | 0x7); // GPA 0..2M through a page table
  m.write32(PD + 8, 0x200000 | 0x87); // GPA 2M..4M: a 2 MiB page at HPA 2M
  m.write32(PT + 1 * 8, 0x300000 | 0x7); // GPA 0x1000 -> HPA 0x300000, writable
  m.write32(PT + 2 * 8, 0x301000 | 0x5); // GPA 0x2000 -> read-only
  m.write32(PT + 3 * 8, 0x302000 | 0x7); m.write32(PT + 3 * 8 + 4, 1 << 31); // GPA 0x3000: NX
  m.write32(PT + 4 * 8, 0x303000 | 0x7); m.write32(PT + 4 * 8 + 4, 1 << 19); // GPA 0x4000: bit 51 reserved
  return m;
}

const out = (): NptResult => ({ hpa: 0, info1Lo: 0, info1Hi: 0 });

describe('the NPT walk (APM 15.25)', () => {
  it('translates 4 KiB and 2 MiB pages and sets A/D in the nested entries', () => {
    const m = tables();
    expect(nptWalk(m, NCR3, 0x1234, ACCESS.WRITE, out()).hpa).toBe(0x300234);
    expect(m.read32(PT + 8) & 0x60).toBe(0x60);
    expect(nptWalk(m, NCR3, 0x2abcde, ACCESS.READ, out()).hpa).toBe(0x2abcde);
  });

  it('reports a non-present GPA with P=0, US=1 and the final-translation bit', () => {
    const r = nptWalk(tables(), NCR3, 0x9000, ACCESS.READ, out());
    expect([r.hpa, r.info1Lo, r.info1Hi]).toEqual([-1, 0x4, 1]);
  });

  it('reports a write to a read-only page as P|RW|US', () => {
    const r = nptWalk(tables(), NCR3, 0x2000, ACCESS.WRITE, out());
    expect([r.hpa, r.info1Lo, r.info1Hi]).toEqual([-1, 0x7, 1]);
  });

  it('reports a fetch from an NX page with ID, and a walk access with bit 33', () => {
    expect(nptWalk(tables(), NCR3, 0x3000, ACCESS.FETCH, out()).info1Lo).toBe(0x15);
    const r = nptWalk(tables(), NCR3, 0x9000, ACCESS.READ | ACCESS.WALK, out());
    expect(r.info1Hi).toBe(2);
  });

  it('reports reserved bits with RSV (the MMIO SPTE fast path)', () => {
    const r = nptWalk(tables(), NCR3, 0x4000, ACCESS.READ, out());
    expect([r.hpa, r.info1Lo]).toEqual([-1, 0x1 | 0x4 | 0x8]);
  });
});
