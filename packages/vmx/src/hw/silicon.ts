/**
 * The VMX silicon attached to one @kvmts/x86 CPU: the VirtExtension the CPU calls in VMX
 * operation, and the instruction methods a TypeScript kernel calls on its pCPU (what kvm_intel's
 * inline assembly would execute). Holds the per-logical-processor VMX state (SDM 24.11: VMX
 * root/non-root, the VMXON pointer, the current-VMCS pointer) and, while a guest runs, the
 * controls decoded from the current VMCS.
 */
import {
  STOP, VIRT_OP, VEC, INTR_INFO, rdmsrValue, wrmsrValue, type VirtCpu, type VirtExtension, type VirtOp, type InsnOperand,
  type InterceptKind, type PhysMemory, type StopReason,
} from '@kvmts/x86';
import { FIELD as F, FIELD_COUNT, VMCS_MAX_INDEX } from './fields.js';
import { VmcsCache, VmcsCacheSet, INVALID_VMCS_PTR } from './region.js';
import {
  MSR_IA32_FEATURE_CONTROL, FEATURE_CONTROL, MSR_IA32_VMX, vmxCapabilityMsrs, CPU_BASED, SECONDARY_EXEC, PIN_BASED,
  PREEMPTION_TIMER_RATE, VMX_MISC, VM_ENTRY,
} from './caps.js';
import * as insn from './instructions.js';
import { VMX_STATUS, type VmxStatus } from './instructions.js';
import {
  incrementalEntryCheck, fullEntryCheck, loadGuestState, segmentsStale, HOST_STATE_STALE, entryFailureQualification, type EntryCheck, type EntryContext,
} from './entry.js';
import { EXIT_REASON, makeExitInfo, vmExit, vmEntryFailed, recordVmExit } from './exit.js';
import { vmxIntercept, vmxEvent, vmxInstructionExit, interruptWindowOpen } from './intercepts.js';
import { vmcsShadowAccess } from './shadow.js';
import { eptTranslate, EPTP } from './tdp.js';

const TWO32 = 4294967296;

/** The CPU as the VMX silicon sees it: the agreed seam, plus the start of the current instruction. */
export type VmxCpu = VirtCpu & { insnStart: number };

/** IA32_VMX_VMCS_ENUM: the highest field index (encoding bits 9:1) used, in bits 9:1 (SDM A.9). */
const VMCS_ENUM = VMCS_MAX_INDEX << 1;

export interface VmxSiliconOptions {
  /** IA32_FEATURE_CONTROL at reset (firmware's choice). Default: locked with VMXON outside SMX enabled. */
  featureControl?: number;
  /** IA32_VMX_MISC bit 29. Default true. */
  vmwriteAnyField?: boolean;
  /** Run every VM-entry check on every entry instead of only those whose fields changed. */
  fullEntryChecks?: boolean;
}

export class VmxSilicon implements VirtExtension {
  readonly cpu: VmxCpu;
  readonly mem: PhysMemory;
  guest = false;
  inVmxOperation = false;
  /** The CPU's modeSerial when vmxRootPrelude's checks last passed (-1: not since VMXON/VMXOFF). */
  rootChecked = -1;
  vmxonPtr = -1;
  featureControl: number;
  readonly vmwriteAnyField: boolean;
  readonly fullEntryChecks: boolean;
  /** The VMCSs on chip (SDM 25.11.1), and the current one: always `vmcsCache.current`. */
  readonly vmcsCache = new VmcsCacheSet();
  vmcs: VmcsCache = this.vmcsCache.current;
  readonly fieldVmInstructionError = F.VM_INSTRUCTION_ERROR;
  lastStatus: VmxStatus = VMX_STATUS.SUCCEED;
  /** The check that failed the last VM entry, or null. */
  lastFailedCheck: EntryCheck | null = null;
  /** The VMCS and processor context the context checks last passed with. */
  private contextCheckedVmcs: VmcsCache | null = null;
  private contextCheckedLma = false;
  readonly capMsrs: ReadonlyMap<number, bigint>;
  exitCount = 0;
  entryCount = 0;
  /** Why the last cpu.run in guest mode returned (STOP.VMEXIT normally). */
  lastStop: StopReason = STOP.VMEXIT;

  // Controls decoded from the current VMCS at VM entry (the hot paths read these, not the VMCS).
  pin = 0;
  proc = 0;
  proc2 = 0;
  exitCtl = 0;
  entryCtl = 0;
  exceptionBitmap = 0;
  pfecMask = 0;
  pfecMatch = 0;
  cr0Mask = 0;
  cr4Mask = 0;
  cr0Shadow = 0;
  cr4Shadow = 0;
  ioBitmapA = 0;
  ioBitmapB = 0;
  msrBitmap = 0;
  ept = false;
  eptRoot = 0;
  eptAd = false;
  tscOffsetValue = 0n;
  /** TSC_OFFSET of the current controls, and the halves tscOffsetValue was made from. */
  private tscLo = 0;
  private tscHi = 0;
  private tscValueLo = 0;
  private tscValueHi = 0;
  private entryIcount = 0;
  /** The VMCS whose controls the fields above were decoded from. */
  private controlsOf: VmcsCache | null = null;
  private readonly entryContext: EntryContext = { hostLma: false };
  /** The TLB tag (VPID) the CPU has selected. */
  private tlbTag = 0;
  /** The VM-entry interruption-information field is valid and not yet delivered. */
  private injectionPending = false;
  /** The next event() call is the delivery of the injected event itself. */
  private injecting = false;
  /** The VM-entry event is being delivered (a VM exit now saves the RIP it would return to). */
  inInjection = false;
  private timerDeadline = Infinity;
  /** True when the current entry came from a TypeScript caller, which cpu.stop() returns to. */
  private fromTs = false;

  constructor(cpu: VmxCpu, opts: VmxSiliconOptions = {}) {
    this.cpu = cpu;
    this.mem = cpu.bus.ram;
    this.featureControl = opts.featureControl ?? (FEATURE_CONTROL.LOCKED | FEATURE_CONTROL.VMXON_OUTSIDE_SMX);
    this.vmwriteAnyField = opts.vmwriteAnyField ?? true;
    this.fullEntryChecks = opts.fullEntryChecks ?? false;
    const caps = new Map(vmxCapabilityMsrs(VMCS_ENUM));
    if (!this.vmwriteAnyField) caps.set(MSR_IA32_VMX.MISC, caps.get(MSR_IA32_VMX.MISC)! & ~BigInt(VMX_MISC.VMWRITE_ANY_FIELD));
    this.capMsrs = caps;
  }

  // ---- the instructions, as the TypeScript kernel executes them ----------------------------------

  vmxon(pa: number): VmxStatus { return insn.vmxon(this, pa); }
  vmxoff(): VmxStatus { return insn.vmxoff(this); }
  vmclear(pa: number): VmxStatus { return insn.vmclear(this, pa); }
  vmptrld(pa: number): VmxStatus { return insn.vmptrld(this, pa); }
  vmptrst(): number { return insn.vmptrst(this); }
  invept(type: number, eptp: bigint): VmxStatus { void eptp; return insn.invept(this, type); }
  invvpid(type: number, vpid: number, linear = 0): VmxStatus { return insn.invvpid(this, type, vpid, linear); }

  /** VMREAD of a 16/32-bit field (or the high half of a 64-bit one); 0 after VMfail. */
  vmread32(encoding: number): number {
    const i = insn.vmreadField(this, encoding);
    return i < 0 ? 0 : insn.vmreadLo(this, i, encoding);
  }
  /** VMREAD of a 64-bit or natural-width field as a number (signed canonical for addresses). */
  vmreadNum(encoding: number): number {
    const i = insn.vmreadField(this, encoding);
    return i < 0 ? 0 : (insn.vmreadHi(this, i, encoding) | 0) * TWO32 + insn.vmreadLo(this, i, encoding);
  }
  vmread64(encoding: number): bigint {
    const i = insn.vmreadField(this, encoding);
    return i < 0 ? 0n : (BigInt(insn.vmreadHi(this, i, encoding)) << 32n) | BigInt(insn.vmreadLo(this, i, encoding));
  }
  vmwrite32(encoding: number, value: number): VmxStatus { return insn.vmwriteHalves(this, encoding, value >>> 0, 0); }
  vmwriteNum(encoding: number, value: number): VmxStatus {
    const hi = Math.floor(value / TWO32);
    return insn.vmwriteHalves(this, encoding, (value - hi * TWO32) >>> 0, hi >>> 0);
  }
  vmwrite64(encoding: number, value: bigint): VmxStatus {
    return insn.vmwriteHalves(this, encoding, Number(value & 0xffffffffn), Number((value >> 32n) & 0xffffffffn));
  }

  /** VMLAUNCH from TypeScript: returns after the next VM exit (or at once on VMfail / entry failure). */
  vmlaunch(): VmxStatus { return this.vmentry(true, true); }
  vmresume(): VmxStatus { return this.vmentry(false, true); }

  // ---- VM entry (SDM 27) -------------------------------------------------------------------------

  private vmentry(launch: boolean, fromTs: boolean): VmxStatus {
    const pre = insn.vmentryPrelude(this, launch);
    if (pre !== null) return pre;
    const v = this.vmcs;
    const ctx = this.entryContext;
    ctx.hostLma = (this.cpu.efer & (1 << 10)) !== 0;
    const contextChanged = v !== this.contextCheckedVmcs || ctx.hostLma !== this.contextCheckedLma;
    const failed = this.fullEntryChecks ? fullEntryCheck(v, ctx) : incrementalEntryCheck(v, ctx, contextChanged);
    this.lastFailedCheck = failed;
    if (failed !== null) {
      if (failed.cls === 'control') return insn.vmFail(this, insn.VMXERR.ENTRY_INVALID_CONTROL_FIELD);
      if (failed.cls === 'host') return insn.vmFail(this, insn.VMXERR.ENTRY_INVALID_HOST_STATE_FIELD);
      return this.entryFailure(EXIT_REASON.INVALID_STATE, entryFailureQualification(failed));
    }
    this.contextCheckedVmcs = v;
    this.contextCheckedLma = ctx.hostLma;
    this.cacheControls();
    const stale = segmentsStale(v);
    if (stale & HOST_STATE_STALE) v.host.stale = true;
    // Every check passed on the current values: only later writes need re-checking.
    v.clearDirty();
    loadGuestState(v, this.cpu, stale);
    if (this.entryCtl & VM_ENTRY.LOAD_IA32_PAT) this.loadPat(F.GUEST_IA32_PAT);
    const bad = this.loadMsrs(v.readNum(F.VM_ENTRY_MSR_LOAD_ADDR), v.read32(F.VM_ENTRY_MSR_LOAD_COUNT));
    if (bad > 0) return this.entryFailure(EXIT_REASON.MSR_LOAD_FAIL, bad);
    if (launch) v.launched = true;
    this.enterGuest(fromTs);
    return this.runGuest(fromTs);
  }

  /** SDM 27.8: a VM entry that fails after the VMfail checks loads host state like a VM exit. */
  private entryFailure(reason: number, qualification: number): VmxStatus {
    // The exit controls say how host state loads; they passed their checks.
    this.cacheControls();
    vmEntryFailed(this, reason, qualification);
    insn.vmSucceed(this);
    return VMX_STATUS.SUCCEED;
  }

  private cacheControls(): void {
    const v = this.vmcs;
    // Decoded controls belong to one VMCS: entering on another one decodes its controls afresh.
    const switched = v !== this.controlsOf;
    if (!v.controlsDirty && !switched) return;
    this.controlsOf = v;
    v.controlsDirty = false;
    this.pin = v.read32(F.PIN_BASED_VM_EXEC_CONTROL);
    this.proc = v.read32(F.CPU_BASED_VM_EXEC_CONTROL);
    this.proc2 = this.proc & CPU_BASED.ACTIVATE_SECONDARY_CONTROLS ? v.read32(F.SECONDARY_VM_EXEC_CONTROL) : 0;
    this.exitCtl = v.read32(F.VM_EXIT_CONTROLS);
    this.entryCtl = v.read32(F.VM_ENTRY_CONTROLS);
    this.exceptionBitmap = v.read32(F.EXCEPTION_BITMAP);
    this.pfecMask = v.read32(F.PAGE_FAULT_ERROR_CODE_MASK);
    this.pfecMatch = v.read32(F.PAGE_FAULT_ERROR_CODE_MATCH);
    this.cr0Mask = v.lo[F.CR0_GUEST_HOST_MASK]!;
    this.cr4Mask = v.lo[F.CR4_GUEST_HOST_MASK]!;
    this.cr0Shadow = v.lo[F.CR0_READ_SHADOW]!;
    this.cr4Shadow = v.lo[F.CR4_READ_SHADOW]!;
    this.ioBitmapA = v.readNum(F.IO_BITMAP_A);
    this.ioBitmapB = v.readNum(F.IO_BITMAP_B);
    this.msrBitmap = v.readNum(F.MSR_BITMAP);
    this.ept = (this.proc2 & SECONDARY_EXEC.ENABLE_EPT) !== 0;
    const eptp = v.readNum(F.EPT_POINTER);
    this.eptRoot = eptp - (eptp % 4096);
    this.eptAd = (v.lo[F.EPT_POINTER]! & EPTP.AD_ENABLE) !== 0;
    // The TSC offset as halves: the BigInt RDTSC wants is made by tscOffset(), when they changed.
    const offsetting = (this.proc & CPU_BASED.USE_TSC_OFFSETTING) !== 0;
    this.tscLo = offsetting ? v.lo[F.TSC_OFFSET]! : 0;
    this.tscHi = offsetting ? v.hi[F.TSC_OFFSET]! : 0;
  }

  private enterGuest(fromTs: boolean): void {
    const cpu = this.cpu;
    const v = this.vmcs;
    this.fromTs = fromTs;
    this.guest = true;
    this.entryCount++;
    const vpid = this.proc2 & SECONDARY_EXEC.ENABLE_VPID ? v.read32(F.VIRTUAL_PROCESSOR_ID) : 0;
    // Without VPIDs, entries and exits flush the linear mappings of VPID 0 (SDM 29.4.3.3).
    if (vpid !== this.tlbTag) { cpu.setTlbTag(vpid); this.tlbTag = vpid; }
    if (vpid === 0) cpu.flushTlb(0);
    cpu.worldSwitched();
    this.entryIcount = cpu.icount;
    this.timerDeadline = Infinity;
    if (this.pin & PIN_BASED.VMX_PREEMPTION_TIMER) {
      this.timerDeadline = cpu.icount + v.read32(F.VMX_PREEMPTION_TIMER_VALUE) * 2 ** PREEMPTION_TIMER_RATE;
      cpu.extDeadline = this.timerDeadline;
    }
    if (this.proc & (CPU_BASED.INTR_WINDOW_EXITING | CPU_BASED.NMI_WINDOW_EXITING | CPU_BASED.MONITOR_TRAP_FLAG)
      || this.timerDeadline <= cpu.icount) cpu.attention = true;
    // MTF: ask the run loop to look again after one instruction.
    if (this.proc & CPU_BASED.MONITOR_TRAP_FLAG) cpu.extDeadline = Math.min(cpu.extDeadline, cpu.icount + 1);
    // SDM 27.6: event injection, after guest state is loaded, before any instruction. It is
    // delivered at the first instruction boundary inside the run loop, so that a VM exit during
    // delivery (an EPT violation on the IDT, say) unwinds the run like any other.
    if (v.read32(F.VM_ENTRY_INTR_INFO_FIELD) & INTR_INFO.VALID) {
      this.injectionPending = true;
      cpu.attention = true;
    }
  }

  /** Delivers the VM-entry event. The exception bitmap does not apply to it (SDM 27.6.1). */
  private injectEntryEvent(): void {
    const v = this.vmcs;
    this.injectionPending = false;
    this.injecting = true;
    this.inInjection = true;
    const info = v.read32(F.VM_ENTRY_INTR_INFO_FIELD);
    const code = info & INTR_INFO.DELIVER_CODE ? v.read32(F.VM_ENTRY_EXCEPTION_ERROR_CODE) : -1;
    this.cpu.injectEvent(info, code, v.read32(F.VM_ENTRY_INSTRUCTION_LEN));
    this.injecting = false;
    this.inInjection = false;
  }

  private runGuest(fromTs: boolean): VmxStatus {
    if (!fromTs) return insn.vmSucceed(this);
    const r = this.cpu.run(Infinity);
    this.lastStop = r;
    if (this.guest) {
      // The CPU stopped in guest mode for a reason of its own (requestStop, an internal error):
      // leave non-root operation the way an external interrupt would, so the kernel regains control.
      recordVmExit(this, makeExitInfo(EXIT_REASON.EXTERNAL_INTERRUPT));
    }
    return VMX_STATUS.SUCCEED;
  }

  /** Called by vmExit once host state is loaded. */
  leaveGuest(): void {
    this.guest = false;
    this.injectionPending = false;
    this.injecting = false;
    this.inInjection = false;
    this.cpu.extDeadline = Infinity;
    // Host code on this CPU translates with VPID 0. The TypeScript kernel runs no instructions
    // here, so its exits keep the guest's tag selected, and the next entry need not switch.
    if (!this.fromTs && this.tlbTag !== 0) { this.cpu.setTlbTag(0); this.tlbTag = 0; }
    if (!(this.proc2 & SECONDARY_EXEC.ENABLE_VPID)) this.cpu.flushTlb(0);
  }

  /** Remaining preemption-timer value at a VM exit. */
  preemptionTimerRemaining(): number {
    const left = this.timerDeadline - this.cpu.icount;
    return left <= 0 ? 0 : Math.ceil(left / 2 ** PREEMPTION_TIMER_RATE);
  }

  /** Loads IA32_PAT from a VMCS field: the guest PAT at entry, the host PAT at exit. */
  loadPat(field: number): void {
    const v = this.vmcs;
    this.cpu.patLo = v.lo[field]!;
    this.cpu.patHi = v.hi[field]!;
  }

  /**
   * MSR-load list (SDM 27.4 / 28.6): 16-byte entries {index, reserved, data}, each loaded as WRMSR
   * at CPL 0 would load it. Returns 0, or the 1-based entry that failed: one the list may not
   * load, one with reserved bits set, or one whose WRMSR would #GP.
   */
  loadMsrs(addr: number, count: number): number {
    const cpu = this.cpu;
    for (let i = 0; i < count; i++) {
      const e = addr + i * 16;
      const index = this.mem.read32(e);
      // MSRs the list may not load (SDM 27.4): FS/GS base, x2APIC range, SMM monitor, microcode.
      if (index === 0xc0000100 || index === 0xc0000101 || (index >>> 8) === 0x8 || index === 0x9b || index === 0x79) return i + 1;
      if (this.mem.read32(e + 4) !== 0) return i + 1;
      const value = this.mem.read64(e + 8);
      if (cpu.catchFault(() => wrmsrValue(cpu, index, value)) !== null) return i + 1;
    }
    return 0;
  }

  /**
   * MSR-store list (SDM 28.4): each entry's data gets what RDMSR returns. Returns 0, or the
   * 1-based entry that failed (x2APIC range, IA32_SMBASE, reserved bits set, or an MSR RDMSR
   * would #GP on), which the VM exit turns into a VMX abort.
   */
  storeMsrs(addr: number, count: number): number {
    const cpu = this.cpu;
    for (let i = 0; i < count; i++) {
      const e = addr + i * 16;
      const index = this.mem.read32(e);
      if ((index >>> 8) === 0x8 || index === 0x9e || this.mem.read32(e + 4) !== 0) return i + 1;
      let value = 0n;
      if (cpu.catchFault(() => { value = rdmsrValue(cpu, index); }) !== null) return i + 1;
      this.mem.write64(e + 8, value);
    }
    return 0;
  }

  /** Inspection port (not an instruction): rows of VMCS_FIELDS the last VM exit changed in the current VMCS. */
  fieldsChangedAtLastExit(): number[] {
    const out: number[] = [];
    for (let i = 0; i < FIELD_COUNT; i++) if (this.vmcs.changedAtLastExit(i)) out.push(i);
    return out;
  }

  // ---- VirtExtension -----------------------------------------------------------------------------

  execute(op: VirtOp, operand: InsnOperand): void {
    if (this.guest) {
      if ((op === VIRT_OP.VMREAD || op === VIRT_OP.VMWRITE) && vmcsShadowAccess(this, op, operand)) return;
      return vmxInstructionExit(this, op, operand);
    }
    const cpu = this.cpu;
    switch (op) {
      case VIRT_OP.VMXON: insn.vmxon(this, this.readM64(operand)); return;
      case VIRT_OP.VMXOFF: insn.vmxoff(this); return;
      case VIRT_OP.VMCLEAR: insn.vmclear(this, this.readM64(operand)); return;
      case VIRT_OP.VMPTRLD: insn.vmptrld(this, this.readM64(operand)); return;
      case VIRT_OP.VMPTRST: {
        const p = insn.vmptrst(this);
        const hi = p === INVALID_VMCS_PTR ? 0xffffffff : Math.floor(p / TWO32);
        cpu.writeMem(operand.seg, operand.offset, 4, p === INVALID_VMCS_PTR ? 0xffffffff : p >>> 0);
        cpu.writeMem(operand.seg, operand.offset + 4, 4, hi);
        return;
      }
      case VIRT_OP.VMREAD: {
        const enc = cpu.gpr[operand.reg2]! >>> 0;
        const e = cpu.gprHi[operand.reg2] === 0 || operand.opSize !== 64 ? enc : -1;
        const i = insn.vmreadField(this, e);
        if (i < 0) return;
        const lo = insn.vmreadLo(this, i, e);
        const hi = insn.vmreadHi(this, i, e);
        if (operand.isReg) {
          cpu.gpr[operand.reg1] = lo;
          cpu.gprHi[operand.reg1] = operand.opSize === 64 ? hi : 0;
        } else {
          cpu.writeMem(operand.seg, operand.offset, 4, lo);
          if (operand.opSize === 64) cpu.writeMem(operand.seg, operand.offset + 4, 4, hi);
        }
        return;
      }
      case VIRT_OP.VMWRITE: {
        const enc = cpu.gpr[operand.reg2]! >>> 0;
        let lo: number;
        let hi = 0;
        if (operand.isReg) {
          lo = cpu.gpr[operand.reg1]! >>> 0;
          if (operand.opSize === 64) hi = cpu.gprHi[operand.reg1]! >>> 0;
        } else {
          lo = cpu.readMem(operand.seg, operand.offset, 4);
          if (operand.opSize === 64) hi = cpu.readMem(operand.seg, operand.offset + 4, 4);
        }
        insn.vmwriteHalves(this, cpu.gprHi[operand.reg2] === 0 || operand.opSize !== 64 ? enc : -1, lo, hi);
        return;
      }
      case VIRT_OP.VMLAUNCH: this.vmentry(true, false); return;
      case VIRT_OP.VMRESUME: this.vmentry(false, false); return;
      case VIRT_OP.INVEPT: insn.invept(this, cpu.gpr[operand.reg2]! >>> 0); return;
      case VIRT_OP.INVVPID: {
        const vpid = cpu.readMem(operand.seg, operand.offset, 2);
        const lin = cpu.readMem(operand.seg, operand.offset + 8, 4) + cpu.readMem(operand.seg, operand.offset + 12, 4) * TWO32;
        insn.invvpid(this, cpu.gpr[operand.reg2]! >>> 0, vpid, lin);
        return;
      }
      case VIRT_OP.VMCALL:
        insn.vmxRootPrelude(this);
        insn.vmFail(this, insn.VMXERR.VMCALL_IN_VMX_ROOT_OPERATION);
        return;
      default:
        cpu.fault(VEC.UD);
    }
  }

  private readM64(op: InsnOperand): number {
    if (op.isReg) this.cpu.fault(VEC.UD);
    const lo = this.cpu.readMem(op.seg, op.offset, 4);
    const hi = this.cpu.readMem(op.seg, op.offset + 4, 4);
    return hi * TWO32 + lo;
  }

  intercept(kind: InterceptKind, a: number, b: number): boolean {
    return this.guest && vmxIntercept(this, kind, a, b);
  }

  event(intrInfo: number, errorCode: number): void {
    if (this.injecting) { this.injecting = false; return; }
    if (this.guest) vmxEvent(this, intrInfo, errorCode);
  }

  crRead(cr: number, value: number): number {
    if (cr === 0) return (value & ~this.cr0Mask) | (this.cr0Shadow & this.cr0Mask);
    if (cr === 4) return (value & ~this.cr4Mask) | (this.cr4Shadow & this.cr4Mask);
    return value;
  }

  crWrite(cr: number, value: number, current: number): number {
    if (cr === 0) return (value & ~this.cr0Mask) | (current & this.cr0Mask);
    if (cr === 4) return (value & ~this.cr4Mask) | (current & this.cr4Mask);
    return value;
  }

  translate(gpa: number, access: number, linear: number): number {
    return this.guest && this.ept ? eptTranslate(this, gpa, access, linear) : gpa;
  }

  checkEvents(): void {
    if (!this.guest) return;
    const cpu = this.cpu;
    if (this.injectionPending) {
      this.injectEntryEvent();
      if (this.proc & (CPU_BASED.INTR_WINDOW_EXITING | CPU_BASED.NMI_WINDOW_EXITING | CPU_BASED.MONITOR_TRAP_FLAG)) cpu.attention = true;
      return;
    }
    if (this.proc & CPU_BASED.MONITOR_TRAP_FLAG && cpu.icount > this.entryIcount) vmExit(this, makeExitInfo(EXIT_REASON.MONITOR_TRAP_FLAG));
    if (cpu.icount >= this.timerDeadline) vmExit(this, makeExitInfo(EXIT_REASON.PREEMPTION_TIMER));
    if (cpu.pendingNmi && this.pin & PIN_BASED.NMI_EXITING) {
      cpu.pendingNmi = false;
      const info = makeExitInfo(EXIT_REASON.EXCEPTION_NMI);
      info.intrInfo = (2 | (2 << 8) | INTR_INFO.VALID) >>> 0;
      vmExit(this, info);
    }
    if (cpu.pendingInterrupt >= 0 && this.pin & PIN_BASED.EXT_INTR_MASK) {
      vmxEvent(this, cpu.pendingInterrupt | INTR_INFO.VALID, -1);
    }
    if (this.proc & CPU_BASED.NMI_WINDOW_EXITING && !(cpu.interruptibility & 0xa)) vmExit(this, makeExitInfo(EXIT_REASON.NMI_WINDOW));
    if (this.proc & CPU_BASED.INTR_WINDOW_EXITING && interruptWindowOpen(this)) vmExit(this, makeExitInfo(EXIT_REASON.INTERRUPT_WINDOW));
    // Still waiting for a window or for the first instruction under MTF: look again next boundary.
    if (this.proc & (CPU_BASED.INTR_WINDOW_EXITING | CPU_BASED.NMI_WINDOW_EXITING | CPU_BASED.MONITOR_TRAP_FLAG)) cpu.attention = true;
  }

  rdmsr(index: number): bigint | undefined {
    if (index === MSR_IA32_FEATURE_CONTROL) return BigInt(this.featureControl);
    return this.capMsrs.get(index);
  }

  wrmsr(index: number, value: bigint): boolean {
    if (index === MSR_IA32_FEATURE_CONTROL) {
      if (this.featureControl & FEATURE_CONTROL.LOCKED || value >> 32n !== 0n) this.cpu.fault(VEC.GP, 0);
      this.featureControl = Number(value);
      return true;
    }
    if (this.capMsrs.has(index)) this.cpu.fault(VEC.GP, 0);
    return false;
  }

  tscOffset(): bigint {
    if (this.tscLo !== this.tscValueLo || this.tscHi !== this.tscValueHi) {
      this.tscValueLo = this.tscLo;
      this.tscValueHi = this.tscHi;
      this.tscOffsetValue = BigInt.asUintN(64, (BigInt(this.tscHi) << 32n) | BigInt(this.tscLo >>> 0));
    }
    return this.tscOffsetValue;
  }
}

