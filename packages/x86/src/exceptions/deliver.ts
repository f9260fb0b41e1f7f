/**
 * Event delivery and IRET (SDM Vol. 3A chapter 6 and 7.15; Vol. 2 INT n and IRET pseudocode):
 * the real-mode IVT, protected-mode IDT gates with the TSS stack switch, task gates (a task
 * switch, seg/task-switch.ts), IA-32e 16-byte gates with RSPn/IST, the double-fault rules, and
 * triple fault reported as a shutdown.
 */
import type { VirtCpu } from '../cpu/virt.js';
import { ACCESS, INTERCEPT, STOP } from '../cpu/virt.js';
import { EVENT_TYPE, INTR_INFO, VEC, makeIntrInfo } from '../cpu/events.js';
import { ACTIVITY, AR, CR4, EFER, INTERRUPTIBILITY, RFLAGS, SEG, type Segment } from '../cpu/state.js';
import { readLinear } from '../mmu/linear.js';
import {
  SEG_TYPE, SYS_TYPE, descAr, descToSegment, dplOf, isCode, nullSegment, readDescriptor, setAccessed,
} from '../seg/descriptor.js';
import {
  checkReturnCs, checkReturnSs, isLong64, isRealMode, isV86, nullifyInaccessibleSegments,
} from '../seg/segments.js';
import { StackCursor, readSp, stackAddrSize, writeSp } from '../seg/stack.js';
import { readTss64Stack, readTssStack } from '../seg/tss.js';
import { TASK_SOURCE, readGateTss, switchTasks, taskReturn } from '../seg/task-switch.js';
import { isCanonical } from '../system/regs.js';
import { EXC_CLASS, exceptionClass, isDoubleFault, isFaultClass } from './exception-class.js';

/** RFLAGS bits an IRET or POPF may always change in protected mode (SDM Vol. 2, IRET: 257FD5H without IF and IOPL). */
const IRET_ALWAYS = 0x254dd5;

/** Cleared on delivery through a protected-mode or IA-32e gate (SDM 6.12.1.3). */
const GATE_CLEARS = RFLAGS.TF | RFLAGS.NT | RFLAGS.RF | RFLAGS.VM;

function tripleFault(cpu: VirtCpu): never {
  cpu.vectoringInfo = 0;
  const ext = cpu.ext;
  if (ext !== null && ext.guest && ext.intercept(INTERCEPT.SHUTDOWN, 0, 0)) cpu.abortInsn();
  cpu.activity = ACTIVITY.SHUTDOWN;
  return cpu.stop(STOP.SHUTDOWN);
}

/** See the contract in the brief: delivers `intrInfo` (VMX layout) with `errorCode` (-1: none). */
export function deliverEvent(cpu: VirtCpu, intrInfo: number, errorCode: number, insnLength: number): void {
  const real = isRealMode(cpu);
  // Real mode pushes no error codes, and the event reports none (SDM 28.2.2, 20.1.4).
  let info = (real ? intrInfo & ~INTR_INFO.DELIVER_CODE : intrInfo) >>> 0;
  let code = real ? -1 : errorCode;
  const type = (info & INTR_INFO.TYPE_MASK) >>> INTR_INFO.TYPE_SHIFT;
  const prior = cpu.vectoringInfo >>> 0;
  const ext = cpu.ext;
  const guest = ext !== null && ext.guest;

  // A hardware exception while delivering another event (SDM Table 7-5).
  if (prior & INTR_INFO.VALID && type === EVENT_TYPE.HW_EXCEPTION) {
    const pType = (prior & INTR_INFO.TYPE_MASK) >>> INTR_INFO.TYPE_SHIFT;
    const pVec = prior & INTR_INFO.VECTOR_MASK;
    const pClass = pType === EVENT_TYPE.HW_EXCEPTION ? exceptionClass(pVec) : EXC_CLASS.BENIGN;
    if (pClass === EXC_CLASS.DOUBLE_FAULT) tripleFault(cpu);
    if (isDoubleFault(pClass, exceptionClass(info & 0xff))) {
      if (guest) ext.event(info, code);
      info = makeIntrInfo(VEC.DF, EVENT_TYPE.HW_EXCEPTION, !real);
      code = real ? -1 : 0;
    }
  }
  if (guest) ext.event(info, code);

  cpu.vectoringInfo = (info | (code >= 0 ? INTR_INFO.DELIVER_CODE : 0)) >>> 0;
  cpu.vectoringErrorCode = code >= 0 ? code : 0;

  const vector = info & 0xff;
  const t = (info & INTR_INFO.TYPE_MASK) >>> INTR_INFO.TYPE_SHIFT;
  const software = t === EVENT_TYPE.SOFT_INTR || t === EVENT_TYPE.SW_EXCEPTION;
  const retRip = software || t === EVENT_TYPE.PRIV_SW_EXCEPTION ? cpu.rip + insnLength : cpu.rip;
  // A fault-class exception pushes RF = 1, a software interrupt RF = 0 (it was cleared at the
  // start of the INT); other events push RF as it is (SDM 18.3.1.1). Delivery then clears RF.
  if (t === EVENT_TYPE.HW_EXCEPTION && isFaultClass(vector)) cpu.setRflags(cpu.getRflags() | RFLAGS.RF);
  else if (software || t === EVENT_TYPE.PRIV_SW_EXCEPTION) cpu.setRflags(cpu.getRflags() & ~RFLAGS.RF);

  if (real) deliverReal(cpu, vector, retRip);
  else if (t === EVENT_TYPE.SOFT_INTR && isV86(cpu) && cpu.cr4 & CR4.VME && v86Redirected(cpu, vector)) deliverV86(cpu, vector, retRip);
  else if (cpu.efer & EFER.LMA) deliverLong(cpu, vector, code, retRip, software);
  else deliverProtected(cpu, vector, t, code, retRip, software);

  cpu.vectoringInfo = 0;
  cpu.vectoringErrorCode = 0;
  cpu.interruptibility &= ~(INTERRUPTIBILITY.STI | INTERRUPTIBILITY.MOV_SS);
  if (t === EVENT_TYPE.NMI) cpu.interruptibility |= INTERRUPTIBILITY.NMI;
  cpu.activity = ACTIVITY.ACTIVE;
  cpu.stateChanged();
}

/** Real mode: IVT entry of 4 bytes, push FLAGS, CS, IP; clear IF, TF, AC (SDM Vol. 2, INT n "REAL-ADDRESS-MODE"). */
function deliverReal(cpu: VirtCpu, vector: number, retRip: number): void {
  const off = vector * 4;
  if (off + 3 > cpu.idtr.limit) cpu.fault(VEC.GP, 0);
  const ip = readLinear(cpu, cpu.idtr.base + off, 2);
  const cs = readLinear(cpu, cpu.idtr.base + off + 2, 2);
  const flags = cpu.getRflags();
  farCall16(cpu, flags, retRip, cs, ip, 0);
  cpu.setRflags(flags & ~(RFLAGS.IF | RFLAGS.TF | RFLAGS.AC));
}

/** The 8086 interrupt frame (FLAGS image, CS, IP) on SS:SP, then CS:IP from the table entry. */
/** CS after a real-mode or virtual-8086 far transfer: the new selector and base, limit and rights kept. */
function realCs(old: Segment, cs: number): Segment {
  return { selector: cs, base: cs << 4, limit: old.limit, ar: old.ar };
}

function farCall16(cpu: VirtCpu, image: number, retRip: number, cs: number, ip: number, access: number): void {
  const st = new StackCursor(cpu, cpu.seg[SEG.SS]!, readSp(cpu, 16), 16, access);
  st.push(2, image);
  st.push(2, cpu.seg[SEG.CS]!.selector);
  st.push(2, retRip);
  writeSp(cpu, 16, st.sp);
  cpu.seg[SEG.CS] = realCs(cpu.seg[SEG.CS]!, cs);
  cpu.rip = ip;
}

/**
 * INT n in virtual-8086 mode with CR4.VME (SDM 20.3.3, Table 20-2): bit n of the interrupt
 * redirection bitmap, the 32 bytes below the I/O map base of the 32-bit TSS, clear sends it to
 * the 8086 handler (methods 5 and 6); set, it goes to the IDT with IOPL = 3 (method 4) and
 * raises #GP(0) with IOPL < 3 (method 3).
 */
function v86Redirected(cpu: VirtCpu, vector: number): boolean {
  const tr = cpu.seg[SEG.TR]!;
  const type = tr.ar & 0xf;
  if (tr.ar & AR.UNUSABLE || (type !== SYS_TYPE.TSS_AVAIL && type !== SYS_TYPE.TSS_BUSY) || tr.limit < 0x67) cpu.fault(VEC.GP, 0);
  const off = readLinear(cpu, tr.base + 0x66, 2) - 32 + (vector >>> 3);
  if (off < 0 || off > tr.limit) cpu.fault(VEC.GP, 0);
  const bit = (readLinear(cpu, tr.base + off, 1) >>> (vector & 7)) & 1;
  if (bit === 0) return true;
  if ((cpu.getRflags() & RFLAGS.IOPL) !== RFLAGS.IOPL) cpu.fault(VEC.GP, 0);
  return false;
}

/**
 * A redirected INT n: through the 8086 IVT at linear address 0 of the virtual-8086 task, on
 * its own stack. With IOPL < 3 the pushed FLAGS show VIF as IF and IOPL as 3, and VIF (not
 * IF) is cleared (SDM Vol. 3A 20.3.3, Table 20-2, methods 5 and 6).
 */
function deliverV86(cpu: VirtCpu, vector: number, retRip: number): void {
  const flags = cpu.getRflags();
  const iopl3 = (flags & RFLAGS.IOPL) === RFLAGS.IOPL;
  const image = iopl3 ? flags : (flags & ~RFLAGS.IF) | (flags & RFLAGS.VIF ? RFLAGS.IF : 0) | RFLAGS.IOPL;
  const ip = readLinear(cpu, vector * 4, 2);
  const cs = readLinear(cpu, vector * 4 + 2, 2);
  farCall16(cpu, image, retRip, cs, ip, ACCESS.USER);
  cpu.setRflags(flags & ~(RFLAGS.TF | (iopl3 ? RFLAGS.IF : RFLAGS.VIF)));
}

/** Protected mode (and virtual-8086): 8-byte gates, stack switch from the TSS on an inner privilege level. */
function deliverProtected(cpu: VirtCpu, vector: number, t: number, code: number, retRip: number, software: boolean): void {
  const ext = software ? 0 : 1;
  const idtErr = vector * 8 + 2 + ext;
  const v86 = isV86(cpu);
  const flags = cpu.getRflags();
  if (v86 && t === EVENT_TYPE.SOFT_INTR && (flags & RFLAGS.IOPL) !== RFLAGS.IOPL) cpu.fault(VEC.GP, 0);
  if (vector * 8 + 7 > cpu.idtr.limit) cpu.fault(VEC.GP, idtErr);
  const gla = cpu.idtr.base + vector * 8;
  const lo = readLinear(cpu, gla, 4);
  const hi = readLinear(cpu, gla + 4, 4);
  const gateAr = (hi >>> 8) & 0xff;
  const gateType = gateAr & 0x1f; // S bit included: gates are system descriptors
  const valid = gateType === SYS_TYPE.INTR_GATE || gateType === SYS_TYPE.TRAP_GATE
    || gateType === SYS_TYPE.INTR_GATE16 || gateType === SYS_TYPE.TRAP_GATE16 || gateType === SYS_TYPE.TASK_GATE;
  if (!valid) cpu.fault(VEC.GP, idtErr);
  if (software && dplOf(gateAr) < cpu.cpl) cpu.fault(VEC.GP, idtErr);
  if (!(gateAr & AR.P)) cpu.fault(VEC.NP, idtErr);
  if (gateType === SYS_TYPE.TASK_GATE) {
    // The old task saves the return EIP; an exception's error code goes on the new task's stack.
    const tssSel = lo >>> 16;
    const tss = readGateTss(cpu, tssSel, ext);
    if (switchTasks(cpu, tssSel, tss, TASK_SOURCE.GATE, retRip, code, ext)) cpu.abortInsn();
    return;
  }
  const sel = lo >>> 16;
  const offset = ((lo & 0xffff) | (hi & 0xffff0000)) >>> 0;
  if ((sel & 0xfffc) === 0) cpu.fault(VEC.GP, ext);
  const d = readDescriptor(cpu, sel, VEC.GP, ext);
  const ar = descAr(d);
  const selErr = (sel & 0xfffc) | ext;
  if (!isCode(ar) || dplOf(ar) > cpu.cpl) cpu.fault(VEC.GP, selErr);
  if (!(ar & AR.P)) cpu.fault(VEC.NP, selErr);
  const oldCpl = cpu.cpl;
  const newCpl = ar & SEG_TYPE.CONFORMING ? oldCpl : dplOf(ar);
  if (v86 && newCpl !== 0) cpu.fault(VEC.GP, selErr);
  const w: 2 | 4 = gateType & 8 ? 4 : 2;
  const oldSs = cpu.seg[SEG.SS]!;
  const oldSize = stackAddrSize(cpu, false);
  const oldSp = readSp(cpu, oldSize);
  const cs = descToSegment((sel & 0xfffc) | newCpl, d);
  if (offset > cs.limit) cpu.fault(VEC.GP, ext);

  let st: StackCursor;
  let newSs = oldSs;
  let newSize = oldSize;
  if (newCpl < oldCpl) {
    const ns = readTssStack(cpu, newCpl, ext);
    newSs = ns.ss;
    newSize = newSs.ar & AR.DB ? 32 : 16;
    st = new StackCursor(cpu, newSs, ns.sp, newSize, 0, (newSs.selector & 0xfffc) | ext);
    if (v86) for (const s of [SEG.GS, SEG.FS, SEG.DS, SEG.ES]) st.push(w, cpu.seg[s]!.selector);
    st.push(w, oldSs.selector);
    st.push(w, oldSp);
  } else {
    st = new StackCursor(cpu, oldSs, oldSp, oldSize, oldCpl === 3 ? ACCESS.USER : 0, ext);
  }
  st.push(w, flags);
  st.push(w, cpu.seg[SEG.CS]!.selector);
  st.push(w, retRip);
  if (code >= 0) st.push(w, code);

  setAccessed(cpu, d);
  cpu.seg[SEG.CS] = cs;
  cpu.seg[SEG.SS] = newSs;
  writeSp(cpu, newSize, st.sp);
  if (v86) for (const s of [SEG.ES, SEG.DS, SEG.FS, SEG.GS]) cpu.seg[s] = nullSegment(0);
  cpu.rip = offset;
  cpu.setRflags(flags & ~(GATE_CLEARS | (gateType & 1 ? 0 : RFLAGS.IF)));
}

/** IA-32e mode: 16-byte gates, RSPn or ISTn, 16-byte aligned 8-byte frame, SS = NULL(new CPL) on a privilege change (SDM 6.14). */
function deliverLong(cpu: VirtCpu, vector: number, code: number, retRip: number, software: boolean): void {
  const ext = software ? 0 : 1;
  const idtErr = vector * 8 + 2 + ext;
  if (vector * 16 + 15 > cpu.idtr.limit) cpu.fault(VEC.GP, idtErr);
  const gla = cpu.idtr.base + vector * 16;
  const lo = readLinear(cpu, gla, 4);
  const hi = readLinear(cpu, gla + 4, 4);
  const hi2 = readLinear(cpu, gla + 8, 4) | 0;
  const gateAr = (hi >>> 8) & 0xff;
  const gateType = gateAr & 0x1f;
  if (gateType !== SYS_TYPE.INTR_GATE && gateType !== SYS_TYPE.TRAP_GATE) cpu.fault(VEC.GP, idtErr);
  if (software && dplOf(gateAr) < cpu.cpl) cpu.fault(VEC.GP, idtErr);
  if (!(gateAr & AR.P)) cpu.fault(VEC.NP, idtErr);
  const sel = lo >>> 16;
  const offset = hi2 * 0x1_0000_0000 + (((lo & 0xffff) | (hi & 0xffff0000)) >>> 0);
  const ist = hi & 7;
  if ((sel & 0xfffc) === 0) cpu.fault(VEC.GP, ext);
  const d = readDescriptor(cpu, sel, VEC.GP, ext);
  const ar = descAr(d);
  const selErr = (sel & 0xfffc) | ext;
  if (!isCode(ar) || !(ar & AR.L) || ar & AR.DB || dplOf(ar) > cpu.cpl) cpu.fault(VEC.GP, selErr);
  if (!(ar & AR.P)) cpu.fault(VEC.NP, selErr);
  if (!isCanonical(offset)) cpu.fault(VEC.GP, ext);
  const oldCpl = cpu.cpl;
  const newCpl = ar & SEG_TYPE.CONFORMING ? oldCpl : dplOf(ar);
  const flags = cpu.getRflags();
  const oldSsSel = cpu.seg[SEG.SS]!.selector;
  const oldRsp = readSp(cpu, isLong64(cpu) ? 64 : stackAddrSize(cpu, false));
  let rsp = newCpl < oldCpl || ist !== 0 ? readTss64Stack(cpu, newCpl, ist, ext) : readSp(cpu, 64);
  rsp -= ((rsp % 16) + 16) % 16;
  if (!isCanonical(rsp)) cpu.fault(VEC.SS, ext);
  const st = new StackCursor(cpu, null, rsp, 64, newCpl === 3 ? ACCESS.USER : 0);
  st.push(8, oldSsSel);
  st.pushNum(8, oldRsp);
  st.push(8, flags);
  st.push(8, cpu.seg[SEG.CS]!.selector);
  st.pushNum(8, retRip);
  if (code >= 0) st.push(8, code);

  setAccessed(cpu, d);
  cpu.seg[SEG.CS] = descToSegment((sel & 0xfffc) | newCpl, d);
  if (newCpl !== oldCpl) cpu.seg[SEG.SS] = nullSegment(newCpl, newCpl);
  writeSp(cpu, 64, st.sp);
  cpu.rip = offset;
  cpu.setRflags(flags & ~(GATE_CLEARS | (gateType & 1 ? 0 : RFLAGS.IF)));
}

function popWidth(opSize: 16 | 32 | 64): 2 | 4 | 8 {
  return opSize === 16 ? 2 : opSize === 32 ? 4 : 8;
}

/** IRET/IRETD/IRETQ (SDM Vol. 2, IRET). Unblocks NMIs. The executor reports the IRET intercept first. */
export function iret(cpu: VirtCpu, opSize: 16 | 32 | 64): void {
  const w = popWidth(opSize);
  const old = cpu.getRflags();
  const long64 = isLong64(cpu);
  const size = stackAddrSize(cpu, long64);
  const st = new StackCursor(cpu, cpu.seg[SEG.SS]!, readSp(cpu, size), size, cpu.cpl === 3 ? ACCESS.USER : 0);

  if (isV86(cpu) && (old & RFLAGS.IOPL) !== RFLAGS.IOPL) {
    if (!(cpu.cr4 & CR4.VME) || w !== 2) cpu.fault(VEC.GP, 0);
    iretV86Virtual(cpu, st, old);
    return;
  }
  if (isRealMode(cpu) || isV86(cpu)) {
    const ip = st.pop(w);
    const cs = st.pop(w) & 0xffff;
    const fl = st.pop(w);
    // Real mode keeps VM, VIF, VIP; virtual-8086 also keeps IOPL.
    const keep = isV86(cpu) ? 0x1a3000 : 0x1a0000;
    const keep16 = keep & 0xffff;
    const next = w === 4 ? (fl & 0x257fd5 & ~keep) | (old & keep) : (old & ~0xffff) | (fl & 0xffff & ~keep16) | (old & keep16);
    if (ip > cpu.seg[SEG.CS]!.limit && w === 4 && !isV86(cpu)) cpu.fault(VEC.GP, 0);
    writeSp(cpu, size, st.sp);
    cpu.seg[SEG.CS] = realCs(cpu.seg[SEG.CS]!, cs);
    cpu.rip = w === 4 ? ip >>> 0 : ip & 0xffff;
    cpu.setRflags(next);
    cpu.interruptibility &= ~INTERRUPTIBILITY.NMI;
    cpu.stateChanged();
    return;
  }

  // A nested task returns to its caller's task; IA-32e mode has no task switches.
  if (old & RFLAGS.NT) {
    if (cpu.efer & EFER.LMA) cpu.fault(VEC.GP, 0);
    if (taskReturn(cpu, cpu.rip)) return;
    cpu.interruptibility &= ~INTERRUPTIBILITY.NMI;
    cpu.stateChanged();
    return;
  }
  const lma = (cpu.efer & EFER.LMA) !== 0;
  const ripRaw = st.pop(w);
  const csSel = st.pop(w) & 0xffff;
  const fl = w === 8 ? st.pop(8) % 0x1_0000_0000 >>> 0 : st.pop(w);
  const cpl = cpu.cpl;

  if (!lma && w === 4 && fl & RFLAGS.VM && cpl === 0) {
    returnToV86(cpu, st, ripRaw, csSel, fl);
    return;
  }

  const d = checkReturnCs(cpu, csSel, lma);
  const rpl = csSel & 3;
  const cs = descToSegment(csSel, d);
  const to64 = lma && (cs.ar & AR.L) !== 0;
  const rip = to64 ? ripRaw : w === 2 ? ripRaw & 0xffff : ripRaw >>> 0;
  if (to64 ? !isCanonical(rip) : rip > cs.limit) cpu.fault(VEC.GP, 0);

  let mask = IRET_ALWAYS;
  if (cpl <= (old & RFLAGS.IOPL) >>> RFLAGS.IOPL_SHIFT) mask |= RFLAGS.IF;
  if (cpl === 0) mask |= RFLAGS.IOPL | RFLAGS.VIF | RFLAGS.VIP;
  if (w === 2) mask &= 0xffff;
  const next = (old & ~mask) | (fl & mask);

  if (rpl > cpl || long64) {
    const newSp = st.pop(w);
    const ssSel = st.pop(w) & 0xffff;
    const ss = checkReturnSs(cpu, ssSel, rpl, to64);
    setAccessed(cpu, d);
    cpu.seg[SEG.CS] = cs;
    cpu.seg[SEG.SS] = ss;
    const newSize = to64 ? 64 : ss.ar & AR.DB ? 32 : 16;
    writeSp(cpu, newSize, newSp);
    if (rpl > cpl) nullifyInaccessibleSegments(cpu, rpl);
  } else {
    setAccessed(cpu, d);
    cpu.seg[SEG.CS] = cs;
    writeSp(cpu, size, st.sp);
  }
  cpu.rip = rip;
  cpu.setRflags(next);
  cpu.interruptibility &= ~INTERRUPTIBILITY.NMI;
  cpu.stateChanged();
}

/**
 * 16-bit IRET in virtual-8086 mode with CR4.VME and IOPL < 3 (SDM Vol. 2, IRET; Vol. 3A 20.3.2): the
 * popped IF goes to VIF, IF and IOPL stay; #GP(0) if it would set VIF with VIP pending, or set TF.
 */
function iretV86Virtual(cpu: VirtCpu, st: StackCursor, old: number): void {
  const ip = st.pop(2);
  const cs = st.pop(2);
  const fl = st.pop(2);
  if ((fl & RFLAGS.IF && old & RFLAGS.VIP) || fl & RFLAGS.TF) cpu.fault(VEC.GP, 0);
  const keep = RFLAGS.IF | RFLAGS.IOPL;
  const next = (old & ~0xffff & ~RFLAGS.VIF) | (fl & 0xffff & ~keep) | (old & keep) | (fl & RFLAGS.IF ? RFLAGS.VIF : 0);
  writeSp(cpu, 16, st.sp);
  cpu.seg[SEG.CS] = realCs(cpu.seg[SEG.CS]!, cs);
  cpu.rip = ip;
  cpu.setRflags(next | RFLAGS.FIXED1);
  cpu.interruptibility &= ~INTERRUPTIBILITY.NMI;
  cpu.stateChanged();
}

/** IRETD at CPL 0 with EFLAGS.VM set in the image: pop ESP, SS, ES, DS, FS, GS and enter virtual-8086 mode. */
function returnToV86(cpu: VirtCpu, st: StackCursor, eip: number, cs: number, fl: number): void {
  const esp = st.pop(4);
  const ss = st.pop(4) & 0xffff;
  const es = st.pop(4) & 0xffff;
  const ds = st.pop(4) & 0xffff;
  const fs = st.pop(4) & 0xffff;
  const gs = st.pop(4) & 0xffff;
  const sels = [es, cs, ss, ds, fs, gs];
  for (let i = 0; i <= SEG.GS; i++) {
    cpu.seg[i] = { selector: sels[i]!, base: sels[i]! << 4, limit: 0xffff, ar: i === SEG.CS ? 0xfb : 0xf3 };
  }
  cpu.gpr[4] = esp | 0;
  cpu.gprHi[4] = 0;
  cpu.rip = eip & 0xffff;
  cpu.setRflags(fl);
  cpu.interruptibility &= ~INTERRUPTIBILITY.NMI;
  cpu.stateChanged();
}
