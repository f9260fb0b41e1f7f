import type { VirtCpu } from '../cpu/virt.js';
import { VEC } from '../cpu/events.js';

export function loadSegment(cpu: VirtCpu, seg: number, selector: number): void { void seg; void selector; cpu.fault(VEC.UD); }
export function farJump(cpu: VirtCpu, selector: number, offset: number, opSize: 16 | 32 | 64): void { void selector; void offset; void opSize; cpu.fault(VEC.UD); }
export function farCall(cpu: VirtCpu, selector: number, offset: number, opSize: 16 | 32 | 64, nextRip: number): void { void selector; void offset; void opSize; void nextRip; cpu.fault(VEC.UD); }
export function farReturn(cpu: VirtCpu, opSize: 16 | 32 | 64, popBytes: number): void { void opSize; void popBytes; cpu.fault(VEC.UD); }
