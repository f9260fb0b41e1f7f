import { expect, test } from 'vitest';
import { genericModel } from '@kvmts/x86';
import { Host } from './host.js';
import { MAP, PROT } from './process.js';

test('reading untouched anonymous memory costs no frames (the zero page); writing does', () => {
  const host = new Host({ model: genericModel, pcpus: 1, memBytes: 64 << 20 });
  const proc = host.spawn();
  const hva = proc.mmap(16 << 20, PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.ANONYMOUS);
  const before = host.pagesInUse;
  expect(proc.readUser(hva + 0x5000, 0x3000)).toEqual(new Uint8Array(0x3000));
  expect(host.pagesInUse).toBe(before);
  expect(proc.writeUser(hva + 0x6000, new Uint8Array([1, 2, 3]))).toBe(true);
  expect(host.pagesInUse).toBe(before + 1);
  expect(Array.from(proc.readUser(hva + 0x5fff, 5)!)).toEqual([0, 1, 2, 3, 0]);
});
