/**
 * The AMD SVM silicon attached to one @kvmts/x86 CPU: the VirtExtension the CPU calls, the
 * state the APM gives the processor (GIF, VM_CR, VM_HSAVE_PA, the control area cached at
 * VMRUN), and the instructions as methods for the TypeScript kernel.
 */
import {
  EFER, STOP, makeSegment, type DescriptorTableReg, type InsnOperand, type Segment, type InterceptKind, type PhysMemory, type StopReason, type VirtCpu,
  type VirtExtension, type VirtOp,
} from '@kvmts/x86';
import {
  MSR_EFER, MSR_VM_CR, MSR_VM_HSAVE_PA, SVM_VM_CR_LOCK, SVM_VM_CR_SVM_DISABLE,
  SVM_VM_CR_VALID_MASK, isPageAlignedPa,
} from './caps.js';
import { VmcbRegion } from './region.js';
import { svmCheckEvents, svmCrWrite, svmEvent, svmIntercept, releaseHeldEvents } from './intercepts.js';
import { runGuest, svmExecute, vmloadState, vmsaveState } from './instructions.js';
import { svmEnterGuest, VmrunCheckCache } from './entry.js';
import { HostSaved } from './region.js';
import { svmVmexit } from './exit.js';
import { nptWalk, PagingByAsid, type NptResult } from './tdp.js';
import { SVM_EXIT } from './fields.js';

const MSR_PAT = 0x277;

/**
 * The CPU as the silicon uses it: the VirtCpu seam plus the start of the current instruction,
 * which the x86 Cpu keeps (it advances RIP before executing) and an exit must report.
 */
export type SvmCpu = VirtCpu & { insnStart: number };

/** What the silicon keeps per VMCB-layout page it has used: the view, and the VMRUN check cache. */
export class VmcbPage {
  readonly pa: number;
  readonly region: VmcbRegion;
  readonly checks = new VmrunCheckCache();
  constructor(region: VmcbRegion) {
    this.pa = region.pa;
    this.region = region;
  }
}

const NO_PAGE = { pa: -1 } as VmcbPage;

export class SvmSilicon implements VirtExtension {
  readonly cpu: SvmCpu;
  readonly mem: PhysMemory;
  guest = false;
  /** The global interrupt flag (15.17). */
  gif = true;
  vmCr = 0;
  hsavePa = 0;
  /** The VMCB of the guest that runs or last ran. */
  vmcb: VmcbRegion | null = null;
  /** Why the last VMRUN failed its consistency checks (the APM's wording), or null. */
  entryFailure: string | null = null;
  lastExitCode = 0;
  exitCount = 0;
  /** True while a guest runs inside Cpu.run: a #VMEXIT then stops the run loop. */
  inRun = false;

  // The control area as loaded by VMRUN.
  readonly intercepts = new Int32Array(6);
  iopmPa = 0;
  msrpmPa = 0;
  /** The permission maps as views of memory (null: a map straddles a chunk or leaves DRAM; read it byte by byte). */
  iopm: Uint8Array | null = null;
  msrpm: Uint8Array | null = null;
  tscOffsetLo = 0;
  tscOffsetHi = 0;
  tscOffsetBig = 0n;
  asid = 0;
  intCtl = 0;
  intVector = 0;
  npEnable = false;
  nCr3 = 0;
  pauseFilterCount = 0;
  pauseFilterLeft = 0;
  gPatLo = 0x00070406;
  gPatHi = 0x00070406;
  hostCr8 = 0;
  /** The host state VMRUN saved, as the processor keeps it until #VMEXIT. */
  readonly host = new HostSaved();
  /**
   * The segment and descriptor-table registers VMRUN and #VMEXIT switch (ES, CS, SS, DS, GDTR,
   * IDTR) are swapped as whole hidden registers: the host's are held aside while the guest runs
   * (the host save area gets a copy), the guest's are kept for the next VMRUN to load into.
   */
  readonly guestSeg: Segment[] = [makeSegment(), makeSegment(), makeSegment(), makeSegment()];
  guestGdtr: DescriptorTableReg = { base: 0, limit: 0 };
  guestIdtr: DescriptorTableReg = { base: 0, limit: 0 };
  /**
   * The VMCB's ES, CS, SS, DS, GDTR and IDTR hold exactly the kept registers' values (the last
   * #VMEXIT wrote them, and no VMRUN has reloaded a group since): #VMEXIT then writes only the
   * registers the guest replaced (x86 instructions never change a register object in place).
   */
  vmcbSegsCurrent = false;
  /**
   * VMCB state caching (APM 15.15.3): the VMCB whose guest state the processor holds (its last
   * VMRUN here that entered the guest), and that state as the last #VMEXIT left it. A VMRUN of
   * the same VMCB may take the groups its clean bits mark from here instead of from memory.
   */
  cachedVmcbPa = -1;
  guestCr0 = 0;
  guestCr3 = 0;
  guestCr4 = 0;
  guestEfer = 0;
  guestDr6 = 0;
  guestDr7 = 0;

  /**
   * EVENTINJ waiting for the first instruction boundary, with the VMCB's next_rip at VMRUN (the
   * return address of an injected INTn, INT3 or INTO under NRIPS), and whether it is being delivered.
   */
  pendingInj = 0;
  pendingInjErr = 0;
  pendingInjNextRip = 0;
  injecting = false;
  /** INTR/NMI held while GIF=0. */
  heldInterrupt = -1;
  heldNmi = false;

  /** Per ASID, the paging controls at its last #VMEXIT (see tdp.ts flushIfPagingChanged). */
  readonly paging = new PagingByAsid();
  private readonly regions = new Map<number, VmcbPage>();
  /**
   * The last two pages used: a kernel's VMRUN/#VMEXIT cycle touches two (its VMCB, and the host
   * save area that Linux also VMSAVEs host state into), so the map is not searched per exit.
   */
  private mru0: VmcbPage = NO_PAGE;
  private mru1: VmcbPage = NO_PAGE;
  private readonly npt: NptResult = { hpa: 0, info1Lo: 0, info1Hi: 0 };

  constructor(cpu: VirtCpu) {
    this.cpu = cpu as SvmCpu;
    this.mem = cpu.bus.ram;
  }

  /** The page at `pa` as the silicon keeps it (views and check cache made on first use). */
  pageOf(pa: number): VmcbPage {
    const m0 = this.mru0;
    if (m0.pa === pa) return m0;
    let p = this.mru1;
    if (p.pa !== pa) {
      p = this.regions.get(pa) ?? NO_PAGE;
      if (p === NO_PAGE) { p = new VmcbPage(new VmcbRegion(this.mem, pa)); this.regions.set(pa, p); }
    }
    this.mru1 = m0;
    this.mru0 = p;
    return p;
  }

  /** The VMCB-layout page at `pa` (views are cached per page). */
  vmcbAt(pa: number): VmcbRegion {
    return this.pageOf(pa).region;
  }

  hsave(): VmcbRegion {
    return this.vmcbAt(this.hsavePa);
  }

  // ---- the instructions, for the TypeScript kernel (CPL 0, EFER.SVME set by the kernel) ----

  /**
   * VMRUN from TypeScript: enters the guest and returns at its #VMEXIT with the CPU's stop
   * reason (STOP.VMEXIT normally; a failed consistency check returns STOP.VMEXIT too, with
   * exit_code VMEXIT_INVALID). Returns -1 for a #GP/#UD the instruction would raise.
   */
  vmrun(vmcbPa: number): StopReason | -1 {
    if (!(this.cpu.efer & EFER.SVME) || !isPageAlignedPa(vmcbPa) || this.guest) return -1;
    if (!this.mem.contains(vmcbPa) || !this.mem.contains(this.hsavePa)) return -1;
    if (!svmEnterGuest(this, vmcbPa, this.cpu.rip)) return STOP.VMEXIT;
    return runGuest(this);
  }

  vmload(pa: number): boolean {
    if (!(this.cpu.efer & EFER.SVME) || !isPageAlignedPa(pa) || !this.mem.contains(pa)) return false;
    vmloadState(this, this.vmcbAt(pa));
    return true;
  }

  vmsave(pa: number): boolean {
    if (!(this.cpu.efer & EFER.SVME) || !isPageAlignedPa(pa) || !this.mem.contains(pa)) return false;
    vmsaveState(this, this.vmcbAt(pa));
    return true;
  }

  stgi(): void {
    this.gif = true;
    releaseHeldEvents(this);
  }

  clgi(): void {
    this.gif = false;
  }

  invlpga(linear: number, asid: number): void {
    this.cpu.flushTlb(asid, linear);
  }

  // ---- VirtExtension ----

  execute(op: VirtOp, operand: InsnOperand): void {
    svmExecute(this, op, operand);
  }

  intercept(kind: InterceptKind, a: number, b: number): boolean {
    return svmIntercept(this, kind, a, b);
  }

  event(intrInfo: number, errorCode: number): void {
    svmEvent(this, intrInfo, errorCode);
  }

  crRead(_cr: number, value: number): number {
    return value;
  }

  crWrite(cr: number, value: number, current: number): number {
    return svmCrWrite(this, cr, value, current);
  }

  translate(gpa: number, access: number, _linear: number): number {
    if (!this.npEnable) return gpa;
    const r = nptWalk(this.mem, this.nCr3, gpa, access, this.npt);
    if (r.hpa >= 0) return r.hpa;
    svmVmexit(this, SVM_EXIT.NPF, r.info1Lo, r.info1Hi, gpa >>> 0, Math.floor(gpa / 2 ** 32), this.cpu.insnStart, 0);
    return -1;
  }

  checkEvents(): void {
    svmCheckEvents(this);
  }

  rdmsr(index: number): bigint | undefined {
    if (index === MSR_VM_CR) return BigInt(this.vmCr);
    if (index === MSR_VM_HSAVE_PA) return BigInt(this.hsavePa);
    if (index === MSR_PAT && this.guest && this.npEnable) return (BigInt(this.gPatHi >>> 0) << 32n) | BigInt(this.gPatLo >>> 0);
    return undefined;
  }

  wrmsr(index: number, value: bigint): boolean {
    const cpu = this.cpu;
    switch (index) {
      case MSR_VM_CR: {
        if (value & ~BigInt(SVM_VM_CR_VALID_MASK)) cpu.fault(13, 0);
        const locked = SVM_VM_CR_LOCK | SVM_VM_CR_SVM_DISABLE;
        // With LOCK set, writes to LOCK and SVMDIS are ignored (15.30.1).
        this.vmCr = this.vmCr & SVM_VM_CR_LOCK ? (this.vmCr & locked) | (Number(value) & ~locked) : Number(value);
        return true;
      }
      case MSR_VM_HSAVE_PA: {
        const pa = Number(BigInt.asUintN(64, value));
        if (!isPageAlignedPa(pa)) cpu.fault(13, 0);
        this.hsavePa = pa;
        this.host.pa = -1;
        return true;
      }
      case MSR_EFER:
        // Setting EFER.SVME while VM_CR.SVMDIS is set is #GP (15.4); the CPU owns EFER otherwise.
        if (!this.guest && (Number(value & 0xffffffffn) & EFER.SVME) && (this.vmCr & SVM_VM_CR_SVM_DISABLE)) cpu.fault(13, 0);
        return false;
      case MSR_PAT:
        if (!this.guest || !this.npEnable) return false;
        this.gPatLo = Number(value & 0xffffffffn) | 0;
        this.gPatHi = Number((value >> 32n) & 0xffffffffn) | 0;
        return true;
      default:
        return false;
    }
  }

  tscOffset(): bigint {
    return this.tscOffsetBig;
  }

  /** The host save area's PA as a number, and the VMCB's, for inspection. */
  get currentVmcbPa(): number {
    return this.vmcb ? this.vmcb.pa : -1;
  }
}

