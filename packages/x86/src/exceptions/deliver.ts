import type { VirtCpu } from '../cpu/virt.js';
import { VEC } from '../cpu/events.js';

export function deliverEvent(cpu: VirtCpu, intrInfo: number, errorCode: number, insnLength: number): void { void intrInfo; void errorCode; void insnLength; cpu.fault(VEC.UD); }
export function iret(cpu: VirtCpu, opSize: 16 | 32 | 64): void { void opSize; cpu.fault(VEC.UD); }
