import { it, expect } from 'vitest';
import { hasImage, loadImage } from '@kvmts/guests';
import { benchCpuidExit, benchPioExit, benchVmLoop64 } from './exit-bench.js';

it('the CPUID and OUT loops run to HLT with one exit per iteration', () => {
  const cpuid = benchCpuidExit(20000);
  const pio = benchPioExit(5000);
  console.log(`exit.cpuid.amd ${cpuid.toFixed(0)} ns, exit.pio.amd ${pio.toFixed(0)} ns`);
  expect(cpuid).toBeGreaterThan(0);
  expect(pio).toBeGreaterThan(0);
});

it('the 64-bit loop runs in a VM to its final report (7 instructions per iteration)', () => {
  if (!hasImage('loop64_1000')) {
    console.log('skipped: no loop64_1000 image (build @kvmts/guests)');
    return;
  }
  const r = benchVmLoop64(loadImage('loop64_1000'));
  expect(r.instructions).toBeGreaterThanOrEqual(7000);
  expect(r.instructions).toBeLessThan(7000 + 200);
});
