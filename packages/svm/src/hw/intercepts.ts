/**
 * Guest-mode behaviour (APM 15.7-15.14, 15.21): which events #VMEXIT, and the exit information
 * each carries (Appendix C exit codes; 15.8.1 decode-assist EXITINFO1 for MOV CR/DR and
 * INVLPG; 15.10.2 the IOIO EXITINFO1 layout with the next RIP in EXITINFO2; 15.11 MSRPM;
 * 15.12 exceptions, with the error code in EXITINFO1 and the #PF address in EXITINFO2; 15.21
 * physical and virtual interrupts, V_IRQ and the VINTR intercept; GIF).
 */
import {
  CR0, EVENT_TYPE, INTERCEPT, INTERRUPTIBILITY, INTR_INFO, IO_INFO, RFLAGS, VEC, makeIntrInfo,
  type InterceptKind, type PhysMemory,
} from '@kvmts/x86';
import {
  INTERCEPT_BIT, SVM_EVTINJ, SVM_EXIT, SVM_IOIO, V_IGN_TPR_MASK, V_INTR_PRIO_MASK,
  V_INTR_PRIO_SHIFT, V_IRQ_MASK, V_TPR_MASK, VMCB,
} from './fields.js';
import { hi32 } from './region.js';
import { svmVmexit, svmVmexitInsn } from './exit.js';
import type { SvmSilicon } from './silicon.js';

/** Intercepts that need no exit information beyond the exit code: INTERCEPT kind -> [intercept bit, exit code, reports next RIP]. */
const SIMPLE_INTERCEPTS: readonly (readonly [InterceptKind, number, number])[] = [
  [INTERCEPT.CPUID, INTERCEPT_BIT.CPUID, SVM_EXIT.CPUID],
  [INTERCEPT.HLT, INTERCEPT_BIT.HLT, SVM_EXIT.HLT],
  [INTERCEPT.INVD, INTERCEPT_BIT.INVD, SVM_EXIT.INVD],
  [INTERCEPT.RDPMC, INTERCEPT_BIT.RDPMC, SVM_EXIT.RDPMC],
  [INTERCEPT.RDTSC, INTERCEPT_BIT.RDTSC, SVM_EXIT.RDTSC],
  [INTERCEPT.RDTSCP, INTERCEPT_BIT.RDTSCP, SVM_EXIT.RDTSCP],
  [INTERCEPT.MWAIT, INTERCEPT_BIT.MWAIT, SVM_EXIT.MWAIT],
  [INTERCEPT.MONITOR, INTERCEPT_BIT.MONITOR, SVM_EXIT.MONITOR],
  [INTERCEPT.WBINVD, INTERCEPT_BIT.WBINVD, SVM_EXIT.WBINVD],
  [INTERCEPT.XSETBV, INTERCEPT_BIT.XSETBV, SVM_EXIT.XSETBV],
  [INTERCEPT.RSM, INTERCEPT_BIT.RSM, SVM_EXIT.RSM],
  [INTERCEPT.IRET, INTERCEPT_BIT.IRET, SVM_EXIT.IRET],
  [INTERCEPT.PUSHF, INTERCEPT_BIT.PUSHF, SVM_EXIT.PUSHF],
  [INTERCEPT.POPF, INTERCEPT_BIT.POPF, SVM_EXIT.POPF],
  [INTERCEPT.SHUTDOWN, INTERCEPT_BIT.SHUTDOWN, SVM_EXIT.SHUTDOWN],
  [INTERCEPT.INIT, INTERCEPT_BIT.INIT, SVM_EXIT.INIT],
  [INTERCEPT.FERR_FREEZE, INTERCEPT_BIT.FERR_FREEZE, SVM_EXIT.FERR_FREEZE],
  [INTERCEPT.INVPCID, INTERCEPT_BIT.INVPCID, SVM_EXIT.INVPCID],
];
const SIMPLE_BIT = new Int32Array(64).fill(-1);
const SIMPLE_EXIT = new Int32Array(64);
for (const [kind, bit, code] of SIMPLE_INTERCEPTS) { SIMPLE_BIT[kind] = bit; SIMPLE_EXIT[kind] = code; }

/** DESC_OP order (SGDT, SIDT, LGDT, LIDT, SLDT, STR, LLDT, LTR) -> [intercept bit, exit code]. */
const DESC_TABLE_INTERCEPTS = [
  [INTERCEPT_BIT.STORE_GDTR, SVM_EXIT.GDTR_READ], [INTERCEPT_BIT.STORE_IDTR, SVM_EXIT.IDTR_READ],
  [INTERCEPT_BIT.LOAD_GDTR, SVM_EXIT.GDTR_WRITE], [INTERCEPT_BIT.LOAD_IDTR, SVM_EXIT.IDTR_WRITE],
  [INTERCEPT_BIT.STORE_LDTR, SVM_EXIT.LDTR_READ], [INTERCEPT_BIT.STORE_TR, SVM_EXIT.TR_READ],
  [INTERCEPT_BIT.LOAD_LDTR, SVM_EXIT.LDTR_WRITE], [INTERCEPT_BIT.LOAD_TR, SVM_EXIT.TR_WRITE],
] as const;

export function isIntercept(svm: SvmSilicon, bit: number): boolean {
  return (svm.intercepts[bit >>> 5]! & (1 << (bit & 31))) !== 0;
}

/**
 * #VMEXIT for an intercepted instruction: the CPU has already advanced RIP past it (Bochs
 * style), so RIP is the next RIP (NRIPS) and the guest resumes at the instruction's start.
 */
export function exitInsn(svm: SvmSilicon, code: number, info1Lo: number, info1Hi: number, info2Lo = 0, info2Hi = 0): true {
  return svmVmexitInsn(svm, code, info1Lo, info1Hi, info2Lo, info2Hi, svm.cpu.insnStart, svm.cpu.rip);
}

/** #VMEXIT at an instruction boundary (interrupts, NMI, VINTR): nothing to skip. */
function exitBoundary(svm: SvmSilicon, code: number): void {
  svmVmexit(svm, code, 0, 0, 0, 0, svm.cpu.rip, 0);
}

/** VirtExtension.intercept: true when the event #VMEXITed. */
export function svmIntercept(svm: SvmSilicon, kind: InterceptKind, a: number, b: number): boolean {
  const simpleBit = SIMPLE_BIT[kind]!;
  if (simpleBit >= 0) return isIntercept(svm, simpleBit) && exitInsn(svm, SIMPLE_EXIT[kind]!, 0, 0);
  switch (kind) {
    case INTERCEPT.IO: return ioIntercept(svm, a, b);
    case INTERCEPT.MSR_READ: case INTERCEPT.MSR_WRITE: return msrIntercept(svm, a, kind === INTERCEPT.MSR_WRITE);
    case INTERCEPT.CR_READ:
      // Decode assists: EXITINFO1 bit 63 = valid MOV CRx, bits 3:0 = the GPR.
      return (svm.intercepts[0]! & (1 << a)) !== 0 && exitInsn(svm, SVM_EXIT.READ_CR0 + a, b & 15, 1 << 31);
    case INTERCEPT.CR_WRITE:
      return (svm.intercepts[0]! & (1 << (16 + a))) !== 0 && exitInsn(svm, SVM_EXIT.WRITE_CR0 + a, b & 15, 1 << 31);
    case INTERCEPT.CLTS: case INTERCEPT.LMSW:
      // Not MOV CRx: bit 63 clear. The selective CR0 intercept is checked in crWrite.
      return (svm.intercepts[0]! & (1 << 16)) !== 0 && exitInsn(svm, SVM_EXIT.WRITE_CR0, 0, 0);
    case INTERCEPT.DR_READ:
      return (svm.intercepts[1]! & (1 << a)) !== 0 && exitInsn(svm, SVM_EXIT.READ_DR0 + a, b & 15, 1 << 31);
    case INTERCEPT.DR_WRITE:
      return (svm.intercepts[1]! & (1 << (16 + a))) !== 0 && exitInsn(svm, SVM_EXIT.WRITE_DR0 + a, b & 15, 1 << 31);
    case INTERCEPT.INVLPG:
      return isIntercept(svm, INTERCEPT_BIT.INVLPG) && exitInsn(svm, SVM_EXIT.INVLPG, a >>> 0, hi32(a));
    case INTERCEPT.INTN:
      return isIntercept(svm, INTERCEPT_BIT.INTN) && exitInsn(svm, SVM_EXIT.SWINT, a & 0xff, 0);
    case INTERCEPT.PAUSE:
      if (!isIntercept(svm, INTERCEPT_BIT.PAUSE)) return false;
      // Pause filter (15.14.4): only the count-th PAUSE exits.
      if (svm.pauseFilterCount !== 0 && --svm.pauseFilterLeft > 0) return false;
      svm.pauseFilterLeft = svm.pauseFilterCount;
      return exitInsn(svm, SVM_EXIT.PAUSE, 0, 0);
    case INTERCEPT.TASK_SWITCH: {
      if (!isIntercept(svm, INTERCEPT_BIT.TASK_SWITCH)) return false;
      // EXITINFO1 = the target selector; EXITINFO2 bit 36 = IRET, bit 38 = JMP, and for an
      // exception through a task gate bit 44 = has an error code, which is in bits 31:0 (15.13.2).
      const vectoring = svm.cpu.vectoringInfo;
      const errorCode = b === 3 && vectoring & INTR_INFO.VALID && vectoring & INTR_INFO.DELIVER_CODE;
      const hi = (b === 1 ? 1 << 4 : b === 2 ? 1 << 6 : 0) | (errorCode ? 1 << 12 : 0);
      const lo = errorCode ? svm.cpu.vectoringErrorCode >>> 0 : 0;
      return svmVmexitInsn(svm, SVM_EXIT.TASK_SWITCH, a & 0xffff, 0, lo, hi, svm.cpu.insnStart, 0);
    }
    case INTERCEPT.DESC_TABLE: {
      const [bit, code] = DESC_TABLE_INTERCEPTS[a]!;
      return isIntercept(svm, bit) && exitInsn(svm, code, 0, 0);
    }
    default:
      return false;
  }
}

/** A permission-map byte; a map placed beyond installed memory reads as all ones (open bus), so everything exits. */
function readMap(mem: PhysMemory, pa: number): number {
  return mem.contains(pa) ? mem.read8(pa) : 0xff;
}

/** IOIO: the IOPM has one bit per port; an access of N bytes checks N consecutive bits (15.10.1). */
function ioIntercept(svm: SvmSilicon, port: number, info: number): boolean {
  if (!isIntercept(svm, INTERCEPT_BIT.IOIO_PROT)) return false;
  const size = info & IO_INFO.SIZE_MASK;
  const map = svm.iopm;
  let hit = false;
  for (let p = port; p < port + size && !hit; p++) {
    const byte = map !== null ? map[p >>> 3]! : readMap(svm.mem, svm.iopmPa + (p >>> 3));
    hit = ((byte >>> (p & 7)) & 1) !== 0;
  }
  if (!hit) return false;
  const op = svm.cpu.operand;
  let info1 = (port & 0xffff) << SVM_IOIO.PORT_SHIFT;
  if (info & IO_INFO.IN) info1 |= SVM_IOIO.TYPE_MASK;
  if (info & IO_INFO.STRING) info1 |= SVM_IOIO.STR_MASK | ((op.seg & 7) << SVM_IOIO.SEG_SHIFT);
  if (info & IO_INFO.REP) info1 |= SVM_IOIO.REP_MASK;
  info1 |= (size === 1 ? 1 : size === 2 ? 2 : 4) << SVM_IOIO.SIZE_SHIFT;
  info1 |= (op.addrSize === 16 ? 1 : op.addrSize === 32 ? 2 : 4) << SVM_IOIO.ASIZE_SHIFT;
  const next = svm.cpu.rip;
  return exitInsn(svm, SVM_EXIT.IOIO, info1 >>> 0, 0, next >>> 0, hi32(next));
}

/** The MSRPM byte offset and bit for an MSR, or -1 when it lies outside the three ranges (always intercepted). */
export function msrpmOffset(msr: number): number {
  const m = msr >>> 0;
  let base: number;
  if (m <= 0x1fff) base = 0;
  else if (m >= 0xc0000000 && m <= 0xc0001fff) base = 0x800 * 8;
  else if (m >= 0xc0010000 && m <= 0xc0011fff) base = 0x1000 * 8;
  else return -1;
  return base + (m & 0x1fff) * 2; // bit index into the map: read bit, then write bit
}

function msrIntercept(svm: SvmSilicon, msr: number, write: boolean): boolean {
  if (!isIntercept(svm, INTERCEPT_BIT.MSR_PROT)) return false;
  const bit = msrpmOffset(msr);
  if (bit >= 0) {
    const b = bit + (write ? 1 : 0);
    const map = svm.msrpm;
    const byte = map !== null ? map[b >>> 3]! : readMap(svm.mem, svm.msrpmPa + (b >>> 3));
    if (((byte >>> (b & 7)) & 1) === 0) return false;
  }
  return exitInsn(svm, SVM_EXIT.MSR, write ? 1 : 0, 0);
}

/**
 * Whether an EVENTINJ/EXITINTINFO value is a software event: INTn (type SOFT), or INT3/INTO
 * (type EXCEPTION, vectors 3 and 4), whose return address is the instruction's end.
 */
export function isSoftEventInj(inj: number): boolean {
  const type = inj & SVM_EVTINJ.TYPE_MASK;
  const vec = inj & SVM_EVTINJ.VEC_MASK;
  return type === SVM_EVTINJ.TYPE_SOFT || (type === SVM_EVTINJ.TYPE_EXEPT && (vec === VEC.BP || vec === VEC.OF));
}

/** EVENTINJ in the CPU's event encoding: the layouts coincide, but INT3/INTO are software exceptions there. */
export function eventInjToIntrInfo(inj: number): number {
  const info = (inj & (SVM_EVTINJ.VEC_MASK | SVM_EVTINJ.TYPE_MASK | SVM_EVTINJ.VALID_ERR | SVM_EVTINJ.VALID)) >>> 0;
  if ((inj & SVM_EVTINJ.TYPE_MASK) !== SVM_EVTINJ.TYPE_EXEPT || !isSoftEventInj(inj)) return info;
  return ((info & ~SVM_EVTINJ.TYPE_MASK) | (EVENT_TYPE.SW_EXCEPTION << SVM_EVTINJ.TYPE_SHIFT)) >>> 0;
}

/**
 * An exception or interrupt about to be delivered in the guest (15.12). The event EVENTINJ
 * injects is not intercepted; a fault while delivering it is.
 */
export function svmEvent(svm: SvmSilicon, intrInfo: number, errorCode: number): void {
  if (svm.injecting) { svm.injecting = false; return; }
  const type = (intrInfo >>> 8) & 7;
  const vec = intrInfo & 0xff;
  if (type === EVENT_TYPE.PRIV_SW_EXCEPTION) {
    // Called while INT1 is being delivered: unwind the delivery after the #VMEXIT.
    if (isIntercept(svm, INTERCEPT_BIT.ICEBP) && exitInsn(svm, SVM_EXIT.ICEBP, 0, 0)) svm.cpu.abortInsn();
  } else if (type === EVENT_TYPE.HW_EXCEPTION || type === EVENT_TYPE.SW_EXCEPTION) {
    if ((svm.intercepts[2]! & (1 << vec)) === 0) return;
    // The exception being intercepted is not "during delivery" of itself.
    if ((svm.cpu.vectoringInfo & 0x7ff) === (intrInfo & 0x7ff)) svm.cpu.vectoringInfo = 0;
    const cr2 = vec === VEC.PF ? svm.cpu.cr2 : 0;
    // Faults are delivered at the instruction's start; INT3/INTO/INT1 exit with RIP at the instruction too.
    svmVmexit(svm, SVM_EXIT.EXCP_BASE + vec, errorCode >= 0 ? errorCode >>> 0 : 0, 0, cr2 >>> 0, hi32(cr2), svm.cpu.insnStart, type === EVENT_TYPE.HW_EXCEPTION ? 0 : svm.cpu.rip);
  }
}

/** The selective CR0 write intercept (15.9.1): a CR0 write that changes bits other than TS and MP. */
export function svmCrWrite(svm: SvmSilicon, cr: number, value: number, current: number): number {
  if (cr === 0 && isIntercept(svm, INTERCEPT_BIT.SELECTIVE_CR0) && ((value ^ current) & ~(CR0.TS | CR0.MP)) !== 0) {
    // crWrite must return a value: unwind the MOV after the #VMEXIT instead.
    exitInsn(svm, SVM_EXIT.CR0_SEL_WRITE, 0, 0);
    svm.cpu.abortInsn();
  }
  return value;
}

/**
 * At an instruction boundary while cpu.attention is set: EVENTINJ, then physical NMI and INTR
 * (intercepted, or held while GIF=0), then the virtual interrupt (V_IRQ) when the guest can
 * take it, through the VINTR intercept or by delivering int_vector.
 */
export function svmCheckEvents(svm: SvmSilicon): void {
  const cpu = svm.cpu;
  if (!svm.guest) {
    if (!svm.gif) holdPhysicalEvents(svm);
    return;
  }
  // A nested fault while delivering is reported at this boundary.
  cpu.insnStart = cpu.rip;
  if (svm.pendingInj !== 0) {
    const inj = svm.pendingInj;
    // From here on the event is being delivered: an exit during its delivery (or during a
    // fault it raises) reports what the CPU is vectoring, and a fault unwinds past this point.
    svm.pendingInj = 0;
    svm.injecting = true;
    // An injected INTn, INT3 or INTO is delivered as the instruction would be (gate DPL check
    // included), returning to next_rip: with NRIPS the VMM names the instruction's end there.
    const len = isSoftEventInj(inj) ? svm.pendingInjNextRip - cpu.rip : 0;
    cpu.injectEvent(eventInjToIntrInfo(inj), inj & SVM_EVTINJ.VALID_ERR ? svm.pendingInjErr : -1, len);
  }
  if (!svm.gif) { holdPhysicalEvents(svm); return; }
  if (cpu.pendingNmi && isIntercept(svm, INTERCEPT_BIT.NMI)) exitBoundary(svm, SVM_EXIT.NMI);
  if (cpu.pendingInterrupt >= 0 && isIntercept(svm, INTERCEPT_BIT.INTR)) exitBoundary(svm, SVM_EXIT.INTR);
  if (svm.intCtl & V_IRQ_MASK) {
    const ifSet = (cpu.getRflags() & RFLAGS.IF) !== 0;
    const shadow = (cpu.interruptibility & (INTERRUPTIBILITY.STI | INTERRUPTIBILITY.MOV_SS)) !== 0;
    const prio = (svm.intCtl & V_INTR_PRIO_MASK) >>> V_INTR_PRIO_SHIFT;
    const tprOk = (svm.intCtl & V_IGN_TPR_MASK) !== 0 || prio > (cpu.cr8 & V_TPR_MASK);
    if (ifSet && !shadow && tprOk) {
      if (isIntercept(svm, INTERCEPT_BIT.VINTR)) exitBoundary(svm, SVM_EXIT.VINTR);
      svm.intCtl &= ~V_IRQ_MASK;
      svm.vmcb!.w32(VMCB.int_ctl, svm.intCtl);
      cpu.injectEvent(makeIntrInfo(svm.intVector, EVENT_TYPE.EXT_INTR, false), -1, 0);
    } else {
      // Keep looking at every boundary until the window opens.
      cpu.attention = true;
    }
  }
}

/** While GIF=0 the INTR and NMI pins are held pending (15.17); STGI releases them. */
function holdPhysicalEvents(svm: SvmSilicon): void {
  const cpu = svm.cpu;
  if (cpu.pendingInterrupt >= 0) { svm.heldInterrupt = cpu.pendingInterrupt; cpu.pendingInterrupt = -1; }
  if (cpu.pendingNmi) { svm.heldNmi = true; cpu.pendingNmi = false; }
}

export function releaseHeldEvents(svm: SvmSilicon): void {
  const cpu = svm.cpu;
  if (svm.heldInterrupt >= 0) { cpu.raiseInterrupt(svm.heldInterrupt); svm.heldInterrupt = -1; }
  if (svm.heldNmi) { cpu.raiseNmi(); svm.heldNmi = false; }
}
