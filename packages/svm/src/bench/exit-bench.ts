/**
 * The in-kernel exit benchmarks (core's bench/exit-loops.ts) on kvm_amd: CPUID and OUT loops,
 * and the anchors' 64-bit loop, on a one-pCPU AMD host.
 */
import { benchCpuidExit as cpuidExit, benchPioExit as pioExit, benchVmLoop64 as vmLoop64, type BenchVendor } from '@kvmts/core';
import { amdCpuModel } from '../hw/model.js';
import { svmInitOps } from '../kvm/ops.js';

const AMD: BenchVendor = { model: amdCpuModel, initOps: svmInitOps };

/** ns per CPUID exit handled in the kernel (one KVM_RUN runs the whole loop). */
export const benchCpuidExit = (iterations: number): number => cpuidExit(AMD, iterations);
/** ns per OUT round trip: KVM_RUN to the userspace exit and back. */
export const benchPioExit = (iterations: number): number => pioExit(AMD, iterations);
/** Guest instructions per second of a 64-bit image in long64 mode, until its first non-serial exit. */
export const benchVmLoop64 = (image: Uint8Array): { instructions: number; seconds: number } => vmLoop64(AMD, image);
