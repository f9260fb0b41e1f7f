/**
 * Hardware task switching (SDM Vol. 3A 7.3 "Task Switching" and Table 7-1; Vol. 2 JMP, CALL,
 * INT n and IRET, their "TASK-GATE", "TASK-STATE-SEGMENT" and "TASK-RETURN" parts) for 32-bit
 * and 16-bit TSSs outside IA-32e mode. The callers check the gate or TSS descriptor the
 * instruction names; `switchTasks` does the rest: the new TSS's limit, the VM exit, saving the
 * old task, the busy bits and the link, the commit, then loading the new task, whose faults
 * are delivered in its own context.
 */
import type { VirtCpu } from '../cpu/virt.js';
import { ACCESS, INTERCEPT } from '../cpu/virt.js';
import { EVENT_TYPE, VEC, makeIntrInfo } from '../cpu/events.js';
import { AR, CR0, RFLAGS, SEG, type Segment } from '../cpu/state.js';
import { readLinear, writeLinear } from '../mmu/linear.js';
import { DR6, dr6After } from '../exceptions/debug.js';
import { setCr3 } from '../system/control-regs.js';
import {
  SEG_TYPE, SYS_TYPE, descAr, descBase, descLimit, descToSegment, dplOf, isCode, isData, nullSegment,
  readDescriptor, setAccessed, type RawDescriptor,
} from './descriptor.js';
import { StackCursor, readSp, writeSp } from './stack.js';

/** What started the switch: the `b` argument of INTERCEPT.TASK_SWITCH (VMX exit qualification bits 31:30). */
export const TASK_SOURCE = { CALL: 0, IRET: 1, JMP: 2, GATE: 3 } as const;
export type TaskSource = (typeof TASK_SOURCE)[keyof typeof TASK_SOURCE];

/**
 * The TSS layouts (SDM Figures 7-2 and 7-11): offsets of the fields a switch saves or loads.
 * `min` is the smallest limit a new TSS may have; `saveMin` the one the old TSS needs for its
 * dynamic fields.
 */
const TSS32 = { eip: 0x20, eflags: 0x24, gpr: 0x28, sel: 0x48, ldt: 0x60, trap: 0x64, cr3: 0x1c, width: 4, min: 0x67, saveMin: 0x5f } as const;
const TSS16 = { eip: 0x0e, eflags: 0x10, gpr: 0x12, sel: 0x22, ldt: 0x2a, trap: -1, cr3: -1, width: 2, min: 0x2b, saveMin: 0x29 } as const;
type TssLayout = typeof TSS32 | typeof TSS16;

/** DR7 L0-L3 and LE: the local breakpoint enables every task switch clears (SDM 18.2.4). */
const DR7_LOCAL = 0x155;
/** The T flag of a 32-bit TSS (offset 0x64, bit 0). */
const TSS_T = 1;
/** The EFLAGS bits a task switch loads (CF..ID; the reserved ones stay as the architecture fixes them). */
const EFLAGS_DEFINED = 0x3f7fd5;
const BUSY = 2;

export function isTss(ar: number): boolean {
  const t = ar & (AR.S | 0xd);
  return t === SYS_TYPE.TSS16_AVAIL || t === SYS_TYPE.TSS_AVAIL;
}

function isBusy(ar: number): boolean {
  return (ar & BUSY) !== 0;
}

function layout(ar: number): TssLayout {
  return ar & 8 ? TSS32 : TSS16;
}

/** The Cpu keeps where a fault restarts in `insnStart`; after the commit point that is the new task's EIP. */
function restartAt(cpu: VirtCpu, eip: number): void {
  cpu.insnStart = eip;
}

/**
 * The TSS descriptor a task gate names (SDM Vol. 2, JMP/CALL/INT n "TASK-GATE"): in the GDT,
 * an available TSS, present; else #GP or #NP with the TSS selector and `ext` (the EXT bit).
 */
export function readGateTss(cpu: VirtCpu, selector: number, ext: number): RawDescriptor {
  const err = (selector & 0xfffc) | ext;
  if (selector & 4) cpu.fault(VEC.GP, err);
  const d = readDescriptor(cpu, selector, VEC.GP, ext);
  const ar = descAr(d);
  if (!isTss(ar) || isBusy(ar)) cpu.fault(VEC.GP, err);
  if (!(ar & AR.P)) cpu.fault(VEC.NP, err);
  return d;
}

/**
 * JMP or CALL far to a TSS or task gate (protected mode, not IA-32e). Returns after the switch,
 * or at once when the switch VM-exited.
 */
export function farTaskSwitch(cpu: VirtCpu, selector: number, d: RawDescriptor, source: TaskSource, nextEip: number): void {
  const ar = descAr(d);
  const err = selector & 0xfffc;
  const dpl = dplOf(ar);
  if (dpl < cpu.cpl || dpl < (selector & 3)) cpu.fault(VEC.GP, err);
  let tssSel = selector;
  let tss = d;
  if ((ar & 0xf) === SYS_TYPE.TASK_GATE) {
    if (!(ar & AR.P)) cpu.fault(VEC.NP, err);
    tssSel = d.lo >>> 16;
    tss = readGateTss(cpu, tssSel, 0);
  } else {
    // TSS descriptors live in the GDT only (SDM 7.2.2); a busy TSS cannot be entered.
    if (selector & 4 || isBusy(ar)) cpu.fault(VEC.GP, err);
    if (!(ar & AR.P)) cpu.fault(VEC.NP, err);
  }
  switchTasks(cpu, tssSel, tss, source, nextEip, -1, 0);
}

/**
 * IRET with EFLAGS.NT = 1: back to the task in the previous-task link (SDM Vol. 2, IRET
 * "TASK-RETURN"). Returns true when the switch VM-exited instead.
 */
export function taskReturn(cpu: VirtCpu, nextEip: number): boolean {
  const tr = cpu.seg[SEG.TR]!;
  const link = readLinear(cpu, tr.base, 2);
  const err = link & 0xfffc;
  if (link & 4) cpu.fault(VEC.TS, err);
  const d = readDescriptor(cpu, link, VEC.TS);
  const ar = descAr(d);
  if (!isTss(ar) || !isBusy(ar)) cpu.fault(VEC.TS, err);
  if (!(ar & AR.P)) cpu.fault(VEC.NP, err);
  return switchTasks(cpu, link, d, TASK_SOURCE.IRET, nextEip, -1, 0);
}

/** Sets or clears the busy bit of the GDT's TSS descriptor `selector`. */
function setBusy(cpu: VirtCpu, selector: number, busy: boolean): void {
  const la = cpu.gdtr.base + (selector & 0xfff8) + 4;
  const hi = readLinear(cpu, la, 4);
  writeLinear(cpu, la, 4, busy ? hi | (BUSY << 8) : hi & ~(BUSY << 8));
}

/** The new task's state, read whole before anything is written (SDM 7.3, step 5: nothing changes if a read faults). */
interface TaskState {
  eip: number;
  eflags: number;
  gpr: number[];
  /** ES, CS, SS, DS, FS, GS. */
  sel: number[];
  ldt: number;
  cr3: number;
  trap: boolean;
}

function readTaskState(cpu: VirtCpu, base: number, l: TssLayout): TaskState {
  const w = l.width;
  const gpr: number[] = [];
  for (let i = 0; i < 8; i++) {
    const v = readLinear(cpu, base + l.gpr + i * w, w);
    // A 16-bit TSS holds the low words; the upper words read as ones, as on Intel parts (Bochs does the same).
    gpr.push(w === 4 ? v | 0 : (0xffff0000 | v) | 0);
  }
  const sel: number[] = [];
  const nSel = w === 4 ? 6 : 4;
  for (let i = 0; i < 6; i++) sel.push(i < nSel ? readLinear(cpu, base + l.sel + i * w, 2) : 0);
  return {
    eip: readLinear(cpu, base + l.eip, w),
    eflags: readLinear(cpu, base + l.eflags, w),
    gpr,
    sel,
    ldt: readLinear(cpu, base + l.ldt, 2),
    cr3: l.cr3 >= 0 ? readLinear(cpu, base + l.cr3, 4) : 0,
    trap: l.trap >= 0 && (readLinear(cpu, base + l.trap, 2) & TSS_T) !== 0,
  };
}

/** Writes the dynamic fields of the current task into its TSS (SDM 7.3, step 8). */
function saveTaskState(cpu: VirtCpu, base: number, l: TssLayout, eip: number, eflags: number): void {
  const w = l.width;
  writeLinear(cpu, base + l.eip, w, eip);
  writeLinear(cpu, base + l.eflags, w, eflags);
  for (let i = 0; i < 8; i++) writeLinear(cpu, base + l.gpr + i * w, w, cpu.gpr[i]!);
  const nSel = w === 4 ? 6 : 4;
  for (let i = 0; i < nSel; i++) writeLinear(cpu, base + l.sel + i * w, 2, cpu.seg[i]!.selector);
}

/**
 * Switches from the task in TR to the TSS `selector` (descriptor `d`, already checked by the
 * caller as the instruction requires). `savedEip` goes into the old TSS; `errorCode` (-1:
 * none) is pushed on the new task's stack for an exception through a task gate. Returns true
 * when the extension VM-exited instead (the switch has not begun).
 */
export function switchTasks(
  cpu: VirtCpu, selector: number, d: RawDescriptor, source: TaskSource, savedEip: number, errorCode: number, ext: number,
): boolean {
  const ar = descAr(d);
  const l = layout(ar);
  const base = descBase(d);
  const limit = descLimit(d);
  if (limit < l.min) cpu.fault(VEC.TS, (selector & 0xfffc) | ext);
  const x = cpu.ext;
  if (x !== null && x.guest && x.intercept(INTERCEPT.TASK_SWITCH, selector & 0xffff, source)) return true;

  const tr = cpu.seg[SEG.TR]!;
  const oldL = layout(tr.ar);
  if (tr.ar & AR.UNUSABLE || tr.limit < oldL.saveMin) cpu.fault(VEC.TS, (tr.selector & 0xfffc) | ext);
  const next = readTaskState(cpu, base, l);

  const nesting = source === TASK_SOURCE.CALL || source === TASK_SOURCE.GATE;
  if (!nesting) setBusy(cpu, tr.selector, false);
  let oldFlags = cpu.getRflags();
  if (source === TASK_SOURCE.IRET) oldFlags &= ~RFLAGS.NT;
  saveTaskState(cpu, tr.base, oldL, savedEip, oldFlags);
  if (nesting) writeLinear(cpu, base, 2, tr.selector);
  if (source !== TASK_SOURCE.IRET) setBusy(cpu, selector, true);

  // Commit point: from here on the new task is current, and a fault is delivered in its context.
  // The event that caused the switch counts as delivered.
  cpu.vectoringInfo = 0;
  cpu.vectoringErrorCode = 0;
  cpu.seg[SEG.TR] = { selector: selector & 0xffff, base, limit, ar: ar | BUSY };
  cpu.cr0 |= CR0.TS;
  cpu.dr[7] = cpu.dr[7]! & ~DR7_LOCAL;
  loadTaskState(cpu, next, l, nesting);

  if (errorCode >= 0) {
    const ss = cpu.seg[SEG.SS]!;
    const size = ss.ar & AR.DB ? 32 : 16;
    const st = new StackCursor(cpu, ss, readSp(cpu, size), size, cpu.cpl === 3 ? ACCESS.USER : 0, ext);
    st.push(l.width, errorCode);
    writeSp(cpu, size, st.sp);
  }
  if (cpu.rip > cpu.seg[SEG.CS]!.limit) cpu.fault(VEC.GP, ext);
  if (next.trap) {
    // The T flag: a #DB trap before the new task's first instruction, with DR6.BT (SDM 18.3.1.5).
    cpu.dr[6] = dr6After(cpu.dr[6]!, DR6.BT);
    cpu.debugConditions = DR6.BT;
    cpu.injectEvent(makeIntrInfo(VEC.DB, EVENT_TYPE.HW_EXCEPTION, false), -1, 0);
  }
  return false;
}

/**
 * Loads the new task (SDM 7.3, steps 11-13): registers and raw selectors first, so that a
 * fault while loading a descriptor is taken by the new task; then CR3, LDTR, and the segments
 * with the checks of Table 7-1 (SS, DS, ES, FS, GS, then CS).
 */
function loadTaskState(cpu: VirtCpu, s: TaskState, l: TssLayout, nesting: boolean): void {
  for (let i = 0; i < 8; i++) cpu.gpr[i] = s.gpr[i]!;
  cpu.rip = s.eip;
  restartAt(cpu, s.eip);
  cpu.setRflags((s.eflags & EFLAGS_DEFINED) | RFLAGS.FIXED1 | (nesting ? RFLAGS.NT : 0));
  const v86 = (s.eflags & RFLAGS.VM) !== 0 && l === TSS32;
  const cpl = v86 ? 3 : s.sel[SEG.CS]! & 3;
  // Until SS is loaded the CPU runs at CPL 3, so a fault here switches to a stack from the new TSS.
  for (let i = 0; i <= SEG.GS; i++) cpu.seg[i] = nullSegment(s.sel[i]!, 3);
  cpu.seg[SEG.LDTR] = nullSegment(s.ldt);
  cpu.stateChanged();

  if (l === TSS32 && cpu.cr0 & CR0.PG) setCr3(cpu, s.cr3 >>> 0);
  loadTaskLdt(cpu, s.ldt);
  if (v86) {
    for (let i = 0; i <= SEG.GS; i++) {
      const sel = s.sel[i]!;
      cpu.seg[i] = { selector: sel, base: sel << 4, limit: 0xffff, ar: i === SEG.CS ? 0xfb : 0xf3 };
    }
    cpu.stateChanged();
    return;
  }
  cpu.seg[SEG.SS] = taskStackSegment(cpu, s.sel[SEG.SS]!, cpl);
  cpu.stateChanged();
  for (const i of [SEG.DS, SEG.ES, SEG.FS, SEG.GS]) cpu.seg[i] = taskDataSegment(cpu, s.sel[i]!, cpl);
  cpu.seg[SEG.CS] = taskCodeSegment(cpu, s.sel[SEG.CS]!);
  cpu.stateChanged();
}

function loadTaskLdt(cpu: VirtCpu, sel: number): void {
  const err = sel & 0xfffc;
  if (err === 0) return;
  if (sel & 4) cpu.fault(VEC.TS, err);
  const d = readDescriptor(cpu, sel, VEC.TS);
  const ar = descAr(d);
  if ((ar & (AR.S | 0xf)) !== SYS_TYPE.LDT || !(ar & AR.P)) cpu.fault(VEC.TS, err);
  cpu.seg[SEG.LDTR] = descToSegment(sel, d);
}

function taskStackSegment(cpu: VirtCpu, sel: number, cpl: number): Segment {
  const err = sel & 0xfffc;
  if (err === 0) cpu.fault(VEC.TS, 0);
  const d = readDescriptor(cpu, sel, VEC.TS);
  const ar = descAr(d);
  if (!isData(ar) || !(ar & SEG_TYPE.WRITABLE)) cpu.fault(VEC.TS, err);
  if (!(ar & AR.P)) cpu.fault(VEC.SS, err);
  if (dplOf(ar) !== cpl || dplOf(ar) !== (sel & 3)) cpu.fault(VEC.TS, err);
  setAccessed(cpu, d);
  return descToSegment(sel, d);
}

function taskDataSegment(cpu: VirtCpu, sel: number, cpl: number): Segment {
  const err = sel & 0xfffc;
  if (err === 0) return nullSegment(sel);
  const d = readDescriptor(cpu, sel, VEC.TS);
  const ar = descAr(d);
  if (!(ar & AR.S) || (isCode(ar) && !(ar & SEG_TYPE.READABLE))) cpu.fault(VEC.TS, err);
  const conformingCode = isCode(ar) && (ar & SEG_TYPE.CONFORMING) !== 0;
  if (!conformingCode && (dplOf(ar) < cpl || dplOf(ar) < (sel & 3))) cpu.fault(VEC.TS, err);
  if (!(ar & AR.P)) cpu.fault(VEC.NP, err);
  setAccessed(cpu, d);
  return descToSegment(sel, d);
}

function taskCodeSegment(cpu: VirtCpu, sel: number): Segment {
  const err = sel & 0xfffc;
  if (err === 0) cpu.fault(VEC.TS, 0);
  const d = readDescriptor(cpu, sel, VEC.TS);
  const ar = descAr(d);
  const rpl = sel & 3;
  if (!isCode(ar)) cpu.fault(VEC.TS, err);
  if (ar & SEG_TYPE.CONFORMING ? dplOf(ar) > rpl : dplOf(ar) !== rpl) cpu.fault(VEC.TS, err);
  if (!(ar & AR.P)) cpu.fault(VEC.NP, err);
  setAccessed(cpu, d);
  return descToSegment(sel, d);
}
