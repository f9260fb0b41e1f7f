/**
 * VM exits (SDM vol. 3C chapter 28): record the exit information, save guest state into the
 * VMCS, store the VM-exit MSR-store list, load host state and the VM-exit MSR-load list.
 */
import { STOP, SEG, RFLAGS, EFER, CR4, INTR_INFO, EVENT_TYPE, ACTIVITY, type Segment, type VirtCpu } from '@kvmts/x86';
import type { VmxCpu } from './silicon.js';
import { FIELD as F } from './fields.js';
import { VM_EXIT, PIN_BASED } from './caps.js';
import type { VmxSilicon } from './silicon.js';
import { VMCS_REGION, type HostStateImage, type VmcsCache } from './region.js';

/** Basic exit reasons (SDM Appendix C, Table C-1), spelled as Linux's EXIT_REASON_*. */
export const EXIT_REASON = {
  EXCEPTION_NMI: 0,
  EXTERNAL_INTERRUPT: 1,
  TRIPLE_FAULT: 2,
  INIT_SIGNAL: 3,
  SIPI_SIGNAL: 4,
  INTERRUPT_WINDOW: 7,
  NMI_WINDOW: 8,
  TASK_SWITCH: 9,
  CPUID: 10,
  GETSEC: 11,
  HLT: 12,
  INVD: 13,
  INVLPG: 14,
  RDPMC: 15,
  RDTSC: 16,
  RSM: 17,
  VMCALL: 18,
  VMCLEAR: 19,
  VMLAUNCH: 20,
  VMPTRLD: 21,
  VMPTRST: 22,
  VMREAD: 23,
  VMRESUME: 24,
  VMWRITE: 25,
  VMOFF: 26,
  VMON: 27,
  CR_ACCESS: 28,
  DR_ACCESS: 29,
  IO_INSTRUCTION: 30,
  MSR_READ: 31,
  MSR_WRITE: 32,
  INVALID_STATE: 33,
  MSR_LOAD_FAIL: 34,
  MWAIT_INSTRUCTION: 36,
  MONITOR_TRAP_FLAG: 37,
  MONITOR_INSTRUCTION: 39,
  PAUSE_INSTRUCTION: 40,
  MCE_DURING_VMENTRY: 41,
  TPR_BELOW_THRESHOLD: 43,
  APIC_ACCESS: 44,
  EOI_INDUCED: 45,
  GDTR_IDTR: 46,
  LDTR_TR: 47,
  EPT_VIOLATION: 48,
  EPT_MISCONFIG: 49,
  INVEPT: 50,
  RDTSCP: 51,
  PREEMPTION_TIMER: 52,
  INVVPID: 53,
  WBINVD: 54,
  XSETBV: 55,
  APIC_WRITE: 56,
  RDRAND: 57,
  INVPCID: 58,
  VMFUNC: 59,
  ENCLS: 60,
  RDSEED: 61,
  PML_FULL: 62,
  XSAVES: 63,
  XRSTORS: 64,
} as const;

/** Bit 31 of the exit reason: VM-entry failure (SDM 28.2.1). */
export const VMX_EXIT_REASONS_FAILED_VMENTRY = 0x80000000;

const REASON_NAMES: readonly string[] = (() => {
  const t: string[] = [];
  for (const [n, v] of Object.entries(EXIT_REASON)) t[v] = n;
  return t;
})();

export function exitReasonName(reason: number): string {
  return REASON_NAMES[reason & 0xffff] ?? `UNKNOWN_${reason & 0xffff}`;
}

/** The exit-information fields a VM exit writes (SDM 28.2). */
export interface ExitInfo {
  reason: number;
  qualification: number;
  intrInfo: number;
  intrErrorCode: number;
  /** Guest-linear address, or NaN when the exit does not report one. */
  linear: number;
  /** Guest-physical address (EPT exits), or NaN. */
  gpa: number;
  /** VM-exit instruction information, or -1. */
  insnInfo: number;
  /** Instruction length for instruction-caused exits, or 0. */
  insnLen: number;
  /**
   * True when the exit is caused by the current instruction (or by a fault in it): the guest RIP
   * saved is the instruction's start, which the CPU keeps in `insnStart` once it has advanced RIP.
   */
  atInsnStart: boolean;
}

/** One exit is recorded at a time, and exits do not nest: every exit fills this one object. */
const scratch: ExitInfo = { reason: 0, qualification: 0, intrInfo: 0, intrErrorCode: 0, linear: NaN, gpa: NaN, insnInfo: -1, insnLen: 0, atInsnStart: false };

/** The exit information of a new exit (the one scratch record, reset). */
export function makeExitInfo(reason: number, qualification = 0): ExitInfo {
  scratch.reason = reason;
  scratch.qualification = qualification;
  scratch.intrInfo = 0;
  scratch.intrErrorCode = 0;
  scratch.linear = NaN;
  scratch.gpa = NaN;
  scratch.insnInfo = -1;
  scratch.insnLen = 0;
  scratch.atInsnStart = false;
  return scratch;
}

/**
 * The segment registers the guest changed: one still holding the object the entry installed is
 * what the VMCS already has (the CPU replaces a register's object to change it).
 */
function saveSegments(s: VmxSilicon, cpu: VirtCpu): void {
  const v = s.vmcs;
  const installed = v.guestSegs;
  for (let i = 0; i < 8; i++) {
    const sg = cpu.seg[i]!;
    if (sg === installed[i]) continue;
    v.exitWrite32(F.GUEST_ES_SELECTOR + i, sg.selector);
    v.exitWriteNum(F.GUEST_ES_BASE + i, sg.base);
    v.exitWrite32(F.GUEST_ES_LIMIT + i, sg.limit);
    v.exitWrite32(F.GUEST_ES_AR_BYTES + i, sg.ar);
  }
}

/**
 * CR0, CR3, CR4 and the SYSENTER MSRs, which a guest seldom changes, compared in one expression
 * exactly as their exit writes would compare them: true when the VMCS already holds every one.
 */
function systemRegsSaved(v: VmcsCache, cpu: VmxCpu): boolean {
  const lo = v.lo;
  const hi = v.hi;
  return lo[F.GUEST_CR0] === (cpu.cr0 | 0) && hi[F.GUEST_CR0] === 0 && lo[F.GUEST_CR4] === (cpu.cr4 | 0) && hi[F.GUEST_CR4] === 0
    && lo[F.GUEST_SYSENTER_CS] === (cpu.sysenterCs | 0) && hi[F.GUEST_SYSENTER_CS] === 0
    && v.readNum(F.GUEST_CR3) === cpu.cr3 && v.readNum(F.GUEST_SYSENTER_ESP) === cpu.sysenterEsp
    && v.readNum(F.GUEST_SYSENTER_EIP) === cpu.sysenterEip;
}

/** SDM 28.3: saving guest state. */
function saveGuestState(s: VmxSilicon, cpu: VmxCpu, atInsnStart: boolean): void {
  const v = s.vmcs;
  if (!systemRegsSaved(v, cpu)) {
    // The real CR0/CR4, not the shadows: the guest/host mask only affects what the guest reads.
    v.exitWriteNum(F.GUEST_CR0, cpu.cr0 >>> 0);
    v.exitWriteNum(F.GUEST_CR3, cpu.cr3);
    v.exitWriteNum(F.GUEST_CR4, cpu.cr4 >>> 0);
    v.exitWrite32(F.GUEST_SYSENTER_CS, cpu.sysenterCs);
    v.exitWriteNum(F.GUEST_SYSENTER_ESP, cpu.sysenterEsp);
    v.exitWriteNum(F.GUEST_SYSENTER_EIP, cpu.sysenterEip);
  }
  if (s.exitCtl & VM_EXIT.SAVE_DEBUG_CONTROLS) v.exitWriteNum(F.GUEST_DR7, cpu.dr[7]!);
  v.exitWriteNum(F.GUEST_RSP, cpu.gprHi[4]! * 4294967296 + (cpu.gpr[4]! >>> 0));
  v.exitWriteNum(F.GUEST_RIP, atInsnStart ? cpu.insnStart : cpu.rip);
  v.exitWriteNum(F.GUEST_RFLAGS, cpu.getRflags() >>> 0);
  saveSegments(s, cpu);
  const tables = v.guestTables;
  if (cpu.gdtr !== tables[0]) {
    v.exitWriteNum(F.GUEST_GDTR_BASE, cpu.gdtr.base);
    v.exitWrite32(F.GUEST_GDTR_LIMIT, cpu.gdtr.limit);
  }
  if (cpu.idtr !== tables[1]) {
    v.exitWriteNum(F.GUEST_IDTR_BASE, cpu.idtr.base);
    v.exitWrite32(F.GUEST_IDTR_LIMIT, cpu.idtr.limit);
  }
  if (s.exitCtl & VM_EXIT.SAVE_IA32_EFER) v.exitWriteNum(F.GUEST_IA32_EFER, cpu.efer);
  if (s.exitCtl & VM_EXIT.SAVE_IA32_PAT) v.exitWriteHalves(F.GUEST_IA32_PAT, cpu.patLo, cpu.patHi);
  v.exitWrite32(F.GUEST_INTERRUPTIBILITY_INFO, cpu.interruptibility);
  v.exitWrite32(F.GUEST_ACTIVITY_STATE, cpu.activity);
  if (s.exitCtl & VM_EXIT.SAVE_VMX_PREEMPTION_TIMER && s.pin & PIN_BASED.VMX_PREEMPTION_TIMER) {
    v.exitWrite32(F.VMX_PREEMPTION_TIMER_VALUE, s.preemptionTimerRemaining());
  }
  // IA-32e mode guest is saved into the entry control (SDM 28.2, "VM-entry controls": bit 9 = EFER.LMA).
  const entry = v.read32(F.VM_ENTRY_CONTROLS);
  const lma = (cpu.efer & EFER.LMA) !== 0;
  v.exitWrite32(F.VM_ENTRY_CONTROLS, lma ? entry | (1 << 9) : entry & ~(1 << 9));
}

const HOST_DATA_SEGS = [
  [SEG.DS, F.HOST_DS_SELECTOR, -1],
  [SEG.ES, F.HOST_ES_SELECTOR, -1],
  [SEG.FS, F.HOST_FS_SELECTOR, F.HOST_FS_BASE],
  [SEG.GS, F.HOST_GS_SELECTOR, F.HOST_GS_BASE],
] as const;

const flat = (selector: number, base: number, ar: number): Segment => Object.freeze({ selector, base, limit: 0xffffffff, ar });

/**
 * Decodes the host-state area into the VMCS's HostStateImage, when a field of it changed since.
 * SDM 28.5.2: selectors from the VMCS, bases from the VMCS or 0, flat limits; a null data
 * selector leaves the register unusable (SS stays usable in 64-bit mode); GDTR and IDTR limits
 * FFFFH. The segment and table objects are frozen: the CPU replaces them, never edits them.
 */
function hostState(s: VmxSilicon): HostStateImage {
  const v = s.vmcs;
  const h = v.host;
  if (!h.stale) return h;
  h.stale = false;
  const hostLong = (s.exitCtl & VM_EXIT.HOST_ADDR_SPACE_SIZE) !== 0;
  h.cr0 = v.readNum(F.HOST_CR0) | 0;
  h.cr3 = v.readNum(F.HOST_CR3);
  h.cr4 = (v.readNum(F.HOST_CR4) | (hostLong ? CR4.PAE : 0)) | 0;
  h.sysenterCs = v.read32(F.HOST_IA32_SYSENTER_CS);
  h.sysenterEsp = v.readNum(F.HOST_IA32_SYSENTER_ESP);
  h.sysenterEip = v.readNum(F.HOST_IA32_SYSENTER_EIP);
  h.efer = s.exitCtl & VM_EXIT.LOAD_IA32_EFER ? v.readNum(F.HOST_IA32_EFER) : -1;
  h.rip = v.readNum(F.HOST_RIP);
  const rsp = v.readNum(F.HOST_RSP);
  h.rspHi = Math.floor(rsp / 4294967296);
  h.rspLo = rsp - h.rspHi * 4294967296;
  const segs = h.segs;
  segs[SEG.CS] = flat(v.read32(F.HOST_CS_SELECTOR), 0, hostLong ? 0xa09b : 0xc09b);
  const ss = v.read32(F.HOST_SS_SELECTOR);
  segs[SEG.SS] = flat(ss, 0, ss === 0 && !hostLong ? 0x1c093 : 0xc093);
  for (const [i, selField, baseField] of HOST_DATA_SEGS) {
    const sel = v.read32(selField);
    segs[i] = flat(sel, baseField < 0 ? 0 : v.readNum(baseField), sel === 0 ? 0x1c093 : 0xc093);
  }
  segs[SEG.TR] = Object.freeze({ selector: v.read32(F.HOST_TR_SELECTOR), base: v.readNum(F.HOST_TR_BASE), limit: 0x67, ar: 0x8b });
  segs[SEG.LDTR] = Object.freeze({ selector: 0, base: 0, limit: 0, ar: 0x10082 });
  h.tables[0] = Object.freeze({ base: v.readNum(F.HOST_GDTR_BASE), limit: 0xffff });
  h.tables[1] = Object.freeze({ base: v.readNum(F.HOST_IDTR_BASE), limit: 0xffff });
  return h;
}

/** SDM 28.5: loading host state, from the decoded image. */
function loadHostState(s: VmxSilicon, cpu: VirtCpu): void {
  const h = hostState(s);
  cpu.cr0 = h.cr0;
  cpu.cr3 = h.cr3;
  cpu.cr4 = h.cr4;
  cpu.dr[7] = 0x400;
  cpu.sysenterCs = h.sysenterCs;
  cpu.sysenterEsp = h.sysenterEsp;
  cpu.sysenterEip = h.sysenterEip;
  if (h.efer >= 0) cpu.efer = h.efer;
  else cpu.efer = s.exitCtl & VM_EXIT.HOST_ADDR_SPACE_SIZE ? cpu.efer | EFER.LMA | EFER.LME : cpu.efer & ~(EFER.LMA | EFER.LME);
  if (s.exitCtl & VM_EXIT.LOAD_IA32_PAT) s.loadPat(F.HOST_IA32_PAT);
  const segs = h.segs;
  for (let i = 0; i < 8; i++) cpu.seg[i] = segs[i]!;
  cpu.gdtr = h.tables[0]!;
  cpu.idtr = h.tables[1]!;
  cpu.rip = h.rip;
  cpu.gpr[4] = h.rspLo;
  cpu.gprHi[4] = h.rspHi;
  cpu.setRflags(RFLAGS.FIXED1);
  cpu.interruptibility = 0;
  cpu.activity = 0;
}

/**
 * SDM 27.8: a VM entry that fails on guest state or on its MSR-load list ends as a VM exit
 * without the guest's part. The failure is recorded (bit 31 of the exit reason set), host state
 * is loaded and the VM-exit MSR-load list processed; the guest-state area keeps what it held.
 */
export function vmEntryFailed(s: VmxSilicon, reason: number, qualification: number): void {
  const cpu = s.cpu;
  const v = s.vmcs;
  v.beginExit();
  v.exitWrite32(F.VM_EXIT_REASON, (reason | VMX_EXIT_REASONS_FAILED_VMENTRY) >>> 0);
  v.exitWriteNum(F.EXIT_QUALIFICATION, qualification);
  // A failed entry decoded no host fields written since the last entry: decode them now.
  v.host.stale = true;
  loadHostState(s, cpu);
  loadHostMsrs(s);
}

/**
 * Performs a VM exit with `info`, then returns to whoever entered: the TypeScript kernel (its
 * `vmlaunch()` call returns) or, for a VMLAUNCH executed by host code on this CPU, the host's run
 * loop, which sees STOP.VMEXIT and may run on in host state. Never returns.
 */
export function vmExit(s: VmxSilicon, info: ExitInfo): never {
  recordVmExit(s, info);
  return s.cpu.stop(STOP.VMEXIT);
}

/**
 * The same VM exit for an intercepted instruction, ended without a throw (cpu.endInsn): its
 * handler returns, and Cpu.run returns STOP.VMEXIT at the instruction boundary. Returns true,
 * the VirtExtension.intercept verdict.
 */
export function vmExitInsn(s: VmxSilicon, info: ExitInfo): true {
  recordVmExit(s, info);
  s.cpu.endInsn(STOP.VMEXIT);
  return true;
}

/** The VM exit proper: exit information, guest-state save, MSR lists, host-state load. */
export function recordVmExit(s: VmxSilicon, info: ExitInfo): void {
  const cpu = s.cpu;
  const v = s.vmcs;
  v.beginExit();
  v.exitWrite32(F.VM_EXIT_REASON, info.reason);
  v.exitWriteNum(F.EXIT_QUALIFICATION, info.qualification);
  v.exitWrite32(F.VM_EXIT_INTR_INFO, info.intrInfo);
  v.exitWrite32(F.VM_EXIT_INTR_ERROR_CODE, info.intrErrorCode);
  if (!Number.isNaN(info.linear)) v.exitWriteNum(F.GUEST_LINEAR_ADDRESS, info.linear);
  if (!Number.isNaN(info.gpa)) v.exitWriteNum(F.GUEST_PHYSICAL_ADDRESS, info.gpa);
  if (info.insnInfo >= 0) v.exitWrite32(F.VMX_INSTRUCTION_INFO, info.insnInfo);
  // IDT-vectoring information (SDM 28.2.4): the event whose delivery this exit interrupted.
  const vect = cpu.vectoringInfo;
  // An exit while an interrupt, NMI or exception is being delivered (or the VM-entry event):
  // RIP has not moved yet and is where that event would return to, not the instruction's start.
  const vectType = (vect >> 8) & 7;
  // An exit during delivery of INT n, INT1, INT3 or INTO reports that instruction's length
  // (SDM 28.2.5), so the VMM can re-inject the event with it (vmx_complete_interrupts).
  const softVect = (vect & INTR_INFO.VALID) !== 0 && vectType >= EVENT_TYPE.SOFT_INTR;
  const insnLen = !softVect ? info.insnLen : s.inInjection ? v.read32(F.VM_ENTRY_INSTRUCTION_LEN) : cpu.insnLength;
  v.exitWrite32(F.VM_EXIT_INSTRUCTION_LEN, insnLen);
  const inHwDelivery = s.inInjection || ((vect & INTR_INFO.VALID) !== 0 && vectType <= 3);
  v.exitWrite32(F.IDT_VECTORING_INFO_FIELD, vect & INTR_INFO.VALID ? vect : 0);
  v.exitWrite32(F.IDT_VECTORING_ERROR_CODE, vect & INTR_INFO.VALID ? cpu.vectoringErrorCode : 0);
  cpu.vectoringInfo = 0;
  // SDM 28.2: the valid bit of the VM-entry interruption-information field is cleared.
  const ei = v.read32(F.VM_ENTRY_INTR_INFO_FIELD);
  if (ei & INTR_INFO.VALID) v.exitWrite32(F.VM_ENTRY_INTR_INFO_FIELD, ei & ~INTR_INFO.VALID);

  s.exitCount++;
  saveGuestState(s, cpu, info.atInsnStart && !inHwDelivery);
  if (s.storeMsrs(v.readNum(F.VM_EXIT_MSR_STORE_ADDR), v.read32(F.VM_EXIT_MSR_STORE_COUNT)) > 0) {
    vmxAbort(s, VMX_ABORT.SAVE_GUEST_MSR_FAIL);
    return;
  }
  loadHostState(s, cpu);
  s.leaveGuest();
  loadHostMsrs(s);
}

/**
 * The last step of a VM exit, and of a VM entry that failed after its checks (SDM 28.6, 27.8):
 * the VM-exit MSR-load list, whose failure is a VMX abort; then the host context runs on.
 */
function loadHostMsrs(s: VmxSilicon): void {
  const v = s.vmcs;
  if (s.loadMsrs(v.readNum(F.VM_EXIT_MSR_LOAD_ADDR), v.read32(F.VM_EXIT_MSR_LOAD_COUNT)) > 0) {
    vmxAbort(s, VMX_ABORT.LOAD_HOST_MSR_FAIL);
    return;
  }
  // The host context replaces the guest's whole: decoded-block chains keep (see VirtCpu.worldSwitched).
  s.cpu.worldSwitched();
}

/** VMX-abort indicators (SDM 28.7) this silicon can raise. */
export const VMX_ABORT = { SAVE_GUEST_MSR_FAIL: 1, LOAD_HOST_MSR_FAIL: 4 } as const;

/**
 * SDM 28.7: a VM exit (or the exit half of a failed VM entry) that cannot complete is a VMX abort. The indicator goes to byte 4 of the
 * current VMCS's region, and the processor enters the VMX-abort shutdown state, which only INIT
 * or RESET leaves: it runs nothing more. kvm_intel never gives the silicon an MSR list, so only
 * hypervisor code running on this CPU can get here.
 */
function vmxAbort(s: VmxSilicon, indicator: number): void {
  const cpu = s.cpu;
  s.mem.write32(s.vmcs.hpa + VMCS_REGION.ABORT, indicator);
  if (s.guest) s.leaveGuest();
  cpu.activity = ACTIVITY.SHUTDOWN;
  cpu.worldSwitched();
}
