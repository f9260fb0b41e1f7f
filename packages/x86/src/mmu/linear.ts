/**
 * Linear-address accesses for system operations (descriptor tables, TSS, IDT, event frames):
 * translate each page through translateLinear and touch the bus, splitting at page boundaries.
 * They bypass the Cpu's TLB; these accesses are rare next to ordinary loads and stores.
 */
import type { VirtCpu } from '../cpu/virt.js';
import { ACCESS } from '../cpu/virt.js';
import { EFER } from '../cpu/state.js';
import { translateLinear } from './page-walk.js';

/** Access flags for a system ("implicit supervisor") access: never USER. */
export const SUPERVISOR_READ = ACCESS.READ;
export const SUPERVISOR_WRITE = ACCESS.WRITE;

/** Linear addresses wrap at 4 GiB outside IA-32e mode. */
function wrapLinear(cpu: VirtCpu, la: number): number {
  return cpu.efer & EFER.LMA ? la : la >>> 0;
}

export function readLinear(cpu: VirtCpu, la: number, size: 1 | 2 | 4, access: number = SUPERVISOR_READ): number {
  la = wrapLinear(cpu, la);
  const off = la & 0xfff;
  if (off + size <= 4096) return cpu.bus.readPhys(translateLinear(cpu, la, access), size);
  let v = 0;
  for (let i = 0; i < size; i++) v |= readLinear(cpu, la + i, 1, access) << (8 * i);
  return size === 4 ? v >>> 0 : v;
}

/**
 * Writes `size` bytes. Translates every page first, so that a #PF on the second page leaves
 * memory untouched, as a real write that faults does.
 */
export function writeLinear(cpu: VirtCpu, la: number, size: 1 | 2 | 4, value: number, access: number = SUPERVISOR_WRITE): void {
  la = wrapLinear(cpu, la);
  const off = la & 0xfff;
  if (off + size <= 4096) { cpu.bus.writePhys(translateLinear(cpu, la, access), size, value); return; }
  const pas: number[] = [];
  for (let i = 0; i < size; i++) pas.push(translateLinear(cpu, wrapLinear(cpu, la + i), access));
  for (let i = 0; i < size; i++) cpu.bus.writePhys(pas[i]!, 1, (value >>> (8 * i)) & 0xff);
}
