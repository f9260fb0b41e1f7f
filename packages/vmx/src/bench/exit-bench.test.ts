import { it, expect } from 'vitest';
import { benchCpuidExit, benchPioExit } from './exit-bench.js';

it('the CPUID and OUT loops run to HLT with one exit per iteration', () => {
  const cpuid = benchCpuidExit(20000);
  const pio = benchPioExit(5000);
  console.log(`exit.cpuid.intel ${cpuid.toFixed(0)} ns, exit.pio.intel ${pio.toFixed(0)} ns`);
  expect(cpuid).toBeGreaterThan(0);
  expect(pio).toBeGreaterThan(0);
});
