import { describe, it, expect } from 'vitest';
import { loadImage } from '@kvmts/guests';
import { benchNestedCpuid } from './nested-bench.js';

describe('nested.cpuid.intel', () => {
  it('times L2 CPUIDs reflected to L1 (ns each, finite and positive)', () => {
    const ns = benchNestedCpuid(loadImage('nested-vmx-cpuid'));
    console.log(`nested.cpuid.intel: ${ns.toFixed(0)} ns per L2 CPUID handled by L1`);
    expect(ns).toBeGreaterThan(0);
    expect(Number.isFinite(ns)).toBe(true);
  });
});
