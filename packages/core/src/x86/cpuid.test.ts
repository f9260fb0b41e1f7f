import { describe, expect, test } from 'vitest';
import { kvmCpuid, guestVendorIsAmd, type CpuidEntry } from './cpuid.js';

const entry = (fn: number, eax: number, ebx = 0, ecx = 0, edx = 0): CpuidEntry => ({ function: fn, index: 0, flags: 0, eax, ebx, ecx, edx });
const GENUINE_INTEL = [0x756e6547, 0x6c65746e, 0x49656e69] as const; // ebx, ecx, edx
const AUTHENTIC_AMD = [0x68747541, 0x444d4163, 0x69746e65] as const;

function table(vendor: readonly [number, number, number]): CpuidEntry[] {
  return [entry(0, 0xd, vendor[0], vendor[1], vendor[2]), entry(0xd, 0x1111), entry(0x80000000, 0x80000008)];
}

describe('kvm_cpuid out-of-range leaves follow the guest vendor', () => {
  test('an Intel guest gets the highest basic leaf', () => {
    expect(guestVendorIsAmd(table(GENUINE_INTEL))).toBe(false);
    expect(kvmCpuid(table(GENUINE_INTEL), 0x40, 0, false)).toEqual([0x1111, 0, 0, 0]);
  });

  test('an AMD guest gets zeros, whatever host it runs on', () => {
    expect(guestVendorIsAmd(table(AUTHENTIC_AMD))).toBe(true);
    expect(kvmCpuid(table(AUTHENTIC_AMD), 0x40, 0, false)).toEqual([0, 0, 0, 0]);
  });
});
