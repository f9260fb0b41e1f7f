/**
 * Stacks from the task-state segment (SDM Vol. 3A, 8.2.1 and 8.7): SS:ESP for privilege
 * levels 0-2 in a 32-bit (or 16-bit) TSS, RSP0-2 and IST1-7 in the 64-bit TSS.
 */
import type { VirtCpu } from '../cpu/virt.js';
import { VEC } from '../cpu/events.js';
import { AR, SEG, type Segment } from '../cpu/state.js';
import { readLinear } from '../mmu/linear.js';
import { SEG_TYPE, SYS_TYPE, descAr, descToSegment, dplOf, isData, readDescriptor } from './descriptor.js';

/** Checks that TR holds a usable TSS and that bytes [off, off+size) lie inside it: #TS(TR selector + EXT). */
function tssOffset(cpu: VirtCpu, off: number, size: number, ext: number): number {
  const tr = cpu.seg[SEG.TR]!;
  if (tr.ar & AR.UNUSABLE || off + size - 1 > tr.limit) cpu.fault(VEC.TS, (tr.selector & 0xfffc) | ext);
  return tr.base + off;
}

/** The SS:SP for privilege level `dpl`, validated as an inner-level stack (SDM Vol. 2, INT n: "inter-privilege-level-interrupt"). */
export function readTssStack(cpu: VirtCpu, dpl: number, ext: number): { ss: Segment; sp: number } {
  const type = cpu.seg[SEG.TR]!.ar & 0xf;
  const is16 = type === SYS_TYPE.TSS16_AVAIL || type === SYS_TYPE.TSS16_BUSY;
  let ssSel: number;
  let sp: number;
  if (is16) {
    const la = tssOffset(cpu, 2 + 4 * dpl, 4, ext);
    sp = readLinear(cpu, la, 2);
    ssSel = readLinear(cpu, la + 2, 2);
  } else {
    const la = tssOffset(cpu, 4 + 8 * dpl, 8, ext);
    sp = readLinear(cpu, la, 4);
    ssSel = readLinear(cpu, la + 4, 2);
  }
  const err = (ssSel & 0xfffc) | ext;
  if ((ssSel & 0xfffc) === 0) cpu.fault(VEC.TS, ext);
  const d = readDescriptor(cpu, ssSel, VEC.TS, ext);
  const ar = descAr(d);
  if ((ssSel & 3) !== dpl || dplOf(ar) !== dpl || !isData(ar) || !(ar & SEG_TYPE.WRITABLE)) cpu.fault(VEC.TS, err);
  if (!(ar & AR.P)) cpu.fault(VEC.SS, err);
  return { ss: descToSegment(ssSel, d), sp };
}

/** RSPn (n = 0-2) or, with `ist` 1-7, ISTn from the 64-bit TSS, as a signed number. */
export function readTss64Stack(cpu: VirtCpu, dpl: number, ist: number, ext: number): number {
  const off = ist !== 0 ? 0x24 + (ist - 1) * 8 : 4 + dpl * 8;
  const la = tssOffset(cpu, off, 8, ext);
  const lo = readLinear(cpu, la, 4);
  const hi = readLinear(cpu, la + 4, 4) | 0;
  return hi * 0x1_0000_0000 + lo;
}
