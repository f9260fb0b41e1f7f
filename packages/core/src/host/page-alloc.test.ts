import { describe, expect, it } from 'vitest';
import { PhysMemory } from '@kvmts/x86';
import { PageAllocator } from './page-alloc.js';

describe('PageAllocator', () => {
  it('hands out distinct zeroed pages and re-zeroes freed ones', () => {
    const mem = new PhysMemory(1 << 20);
    const a = new PageAllocator(mem);
    const p = a.allocPage();
    const q = a.allocPage();
    expect(p).toBe(0x1000);
    expect(q).toBe(0x2000);
    mem.write32(p, 0xdeadbeef);
    a.freePage(p);
    expect(a.allocPage()).toBe(p);
    expect(mem.read32(p)).toBe(0);
    expect(a.pagesInUse).toBe(2);
  });

  it('aligns multi-page allocations and fails when memory runs out', () => {
    const mem = new PhysMemory(64 * 1024);
    const a = new PageAllocator(mem);
    expect(a.allocPages(2)).toBe(0x4000);
    expect(a.allocPages(4)).toBe(-1);
  });
});
