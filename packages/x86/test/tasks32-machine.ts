/**
 * A 32-bit protected-mode machine for the task-switch and VME tests: flat code and data
 * segments, a GDT, an IDT and TSSs written by the test around the code of tasks32.S, and
 * task A (TSS 0x18) current. Paging is off, so linear = physical.
 */
import { AR, CR0, RFLAGS, SEG, makeSegment } from '../src/cpu/state.js';
import { makeMachine, type Machine } from './helpers.js';

export const GDT = 0x500;
export const IDT = 0x700;
export const TSS = { A: 0x3000, B: 0x3100, C: 0x3200, D: 0x3300, E: 0x3400, F: 0x3500, G: 0x3600 } as const;
export const SEL = {
  CODE: 0x08, DATA: 0x10, TSS_A: 0x18, TSS_B: 0x20, TSS_C: 0x28, GATE_B: 0x30, TSS_D: 0x38, TSS_E: 0x40,
  CODE16: 0x48, DATA16: 0x50, TSS_F: 0x58, TSS_G: 0x60,
} as const;

/** Descriptor type bytes (P, DPL, S, type) and flag nibbles (G, D/B). */
const CODE32 = 0x9b;
const DATA32 = 0x93;
const TSS32_AVAIL = 0x89;
const TSS16_AVAIL = 0x81;
const TASK_GATE = 0x85;
const INTR_GATE32 = 0x8e;
const G_DB = 0xc;

export function descriptor(base: number, limit: number, access: number, flags: number): [number, number] {
  const lo = ((limit & 0xffff) | ((base & 0xffff) << 16)) >>> 0;
  const hi = (((base >>> 16) & 0xff) | (access << 8) | (limit & 0xf0000) | (flags << 20) | (base & 0xff000000)) >>> 0;
  return [lo, hi];
}

export interface Tss32Init {
  eip: number;
  esp: number;
  eflags?: number;
  cs?: number;
  ss?: number;
  ds?: number;
  eax?: number;
  ss0?: number;
  esp0?: number;
  cr3?: number;
  ldt?: number;
  trap?: boolean;
  ioMapBase?: number;
}

export class TaskMachine {
  readonly m: Machine;
  constructor() {
    this.m = makeMachine(0x200000);
    const { cpu } = this.m;
    this.setDesc(SEL.CODE, ...descriptor(0, 0xfffff, CODE32, G_DB));
    this.setDesc(SEL.DATA, ...descriptor(0, 0xfffff, DATA32, G_DB));
    this.setDesc(SEL.TSS_A, ...descriptor(TSS.A, 0x67, TSS32_AVAIL | 2, 0)); // busy: the current task
    this.setDesc(SEL.TSS_B, ...descriptor(TSS.B, 0x67, TSS32_AVAIL, 0));
    this.setDesc(SEL.TSS_C, ...descriptor(TSS.C, 0x67, TSS32_AVAIL, 0));
    this.setDesc(SEL.GATE_B, (SEL.TSS_B << 16) >>> 0, TASK_GATE << 8);
    this.setDesc(SEL.TSS_D, ...descriptor(TSS.D, 0x50, TSS32_AVAIL, 0));
    this.setDesc(SEL.TSS_E, ...descriptor(TSS.E, 0x2b, TSS16_AVAIL, 0));
    this.setDesc(SEL.CODE16, ...descriptor(0, 0xffff, CODE32, 0));
    this.setDesc(SEL.DATA16, ...descriptor(0, 0xffff, DATA32, 0));
    this.setDesc(SEL.TSS_F, ...descriptor(TSS.F, 0x67, TSS32_AVAIL, 0));
    this.setDesc(SEL.TSS_G, ...descriptor(TSS.G, 0x67, TSS32_AVAIL, 0));
    cpu.gdtr = { base: GDT, limit: 0x67 };
    cpu.idtr = { base: IDT, limit: 0x20 * 8 - 1 };
    cpu.cr0 = CR0.PE | CR0.ET;
    cpu.seg[SEG.CS] = makeSegment(SEL.CODE, 0, 0xffffffff, CODE32 | AR.DB | AR.G);
    for (const s of [SEG.DS, SEG.ES, SEG.FS, SEG.GS, SEG.SS]) cpu.seg[s] = makeSegment(SEL.DATA, 0, 0xffffffff, DATA32 | AR.DB | AR.G);
    cpu.seg[SEG.TR] = { selector: SEL.TSS_A, base: TSS.A, limit: 0x67, ar: 0x8b };
    cpu.seg[SEG.LDTR] = { selector: 0, base: 0, limit: 0, ar: AR.UNUSABLE };
    cpu.rflags = RFLAGS.FIXED1;
    cpu.gpr[4] = 0x8000;
    cpu.stateChanged();
  }

  setDesc(sel: number, lo: number, hi: number): void {
    this.m.mem.write32(GDT + (sel & 0xfff8), lo);
    this.m.mem.write32(GDT + (sel & 0xfff8) + 4, hi);
  }

  /** The type nibble of a GDT descriptor (busy TSSs have bit 1 set). */
  descType(sel: number): number {
    return (this.m.mem.read32(GDT + (sel & 0xfff8) + 4) >>> 8) & 0xf;
  }

  taskGate(vector: number, tssSel: number): void {
    this.m.mem.write32(IDT + vector * 8, (tssSel << 16) >>> 0);
    this.m.mem.write32(IDT + vector * 8 + 4, TASK_GATE << 8);
  }

  intrGate(vector: number, offset: number): void {
    this.m.mem.write32(IDT + vector * 8, ((SEL.CODE << 16) | (offset & 0xffff)) >>> 0);
    this.m.mem.write32(IDT + vector * 8 + 4, ((offset & 0xffff0000) | (INTR_GATE32 << 8)) >>> 0);
  }

  tss32(base: number, t: Tss32Init): void {
    const w = (off: number, v: number) => this.m.mem.write32(base + off, v >>> 0);
    const data = t.ds ?? SEL.DATA;
    w(0x04, t.esp0 ?? 0x9000);
    w(0x08, t.ss0 ?? SEL.DATA);
    w(0x1c, t.cr3 ?? 0);
    w(0x20, t.eip);
    w(0x24, t.eflags ?? RFLAGS.FIXED1);
    w(0x28, t.eax ?? 0);
    w(0x38, t.esp);
    w(0x48, SEL.DATA);
    w(0x4c, t.cs ?? SEL.CODE);
    w(0x50, t.ss ?? SEL.DATA);
    w(0x54, data);
    w(0x58, SEL.DATA);
    w(0x5c, SEL.DATA);
    w(0x60, t.ldt ?? 0);
    w(0x64, ((t.ioMapBase ?? 0x68) << 16) | (t.trap === true ? 1 : 0));
  }

  read32(a: number): number {
    return this.m.mem.read32(a) >>> 0;
  }

  read16(a: number): number {
    return this.read32(a) & 0xffff;
  }

  reports(): number[] {
    return this.m.outs.filter(([port]) => port === 0xe9).map(([, , v]) => v >>> 0);
  }

  start(eip: number): void {
    this.m.cpu.rip = eip;
    this.m.cpu.stateChanged();
  }
}
