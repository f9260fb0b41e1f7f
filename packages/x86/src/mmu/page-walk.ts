import type { VirtCpu } from '../cpu/virt.js';
import { VEC } from '../cpu/events.js';

export function translateLinear(cpu: VirtCpu, la: number, access: number): number {
  void la; void access;
  return cpu.fault(VEC.UD);
}
