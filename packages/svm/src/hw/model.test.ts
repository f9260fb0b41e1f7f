import { describe, expect, it } from 'vitest';
import { amdCpuModel } from './model.js';
import { SVM_FEATURE } from './caps.js';

describe('the AMD CPU model', () => {
  const m = amdCpuModel();
  it('says AuthenticAMD and reports SVM in CPUID 8000_0001 ECX bit 2', () => {
    const [, b, c, d] = m.cpuid(0, 0);
    const s = [b, d, c].map((x) => String.fromCharCode(x & 0xff, (x >> 8) & 0xff, (x >> 16) & 0xff, x >>> 24)).join('');
    expect(s).toBe('AuthenticAMD');
    expect(m.cpuid(0x80000001, 0)[2] & 4).toBe(4);
  });

  it('reports revision, ASIDs and the features implemented in 8000_000A', () => {
    const [a, b, , d] = m.cpuid(0x8000000a, 0);
    expect(a).toBe(1);
    expect(b).toBe(0x8000);
    expect(d & (SVM_FEATURE.NPT | SVM_FEATURE.NRIPS | SVM_FEATURE.FLUSHBYASID | SVM_FEATURE.DECODEASSISTS)).toBe(0xc9);
    expect(d & SVM_FEATURE.AVIC).toBe(0);
  });
});
