/**
 * The seam between the vendor-neutral CPU and a vendor's virtualization silicon (VMX or SVM).
 *
 * The CPU owns instruction decode and execution. The extension owns everything the SDM vol. 3C
 * or APM vol. 2 adds: the VMX/SVM instructions, intercept decisions in guest mode, the second
 * translation stage (EPT/NPT), and VM entry/exit. A CPU with no extension raises #UD on the
 * VMX/SVM opcodes, and no hook here is ever called.
 */
import type { CpuState } from './state.js';
import type { Bus } from '../bus.js';

/** The VMX and SVM opcodes the CPU hands to the extension (any mode, any CPL: the extension checks). */
export const VIRT_OP = {
  // VMX
  VMCALL: 0, VMLAUNCH: 1, VMRESUME: 2, VMXOFF: 3, // 0F 01 C1..C4
  VMREAD: 4, VMWRITE: 5, // 0F 78, 0F 79
  VMPTRLD: 6, VMCLEAR: 7, VMXON: 8, VMPTRST: 9, // 0F C7 /6 (NP, 66, F3), 0F C7 /7
  INVEPT: 10, INVVPID: 11, VMFUNC: 12, // 66 0F 38 80, 66 0F 38 81, 0F 01 D4
  // SVM (0F 01 D8..DF)
  VMRUN: 16, VMMCALL: 17, VMLOAD: 18, VMSAVE: 19, STGI: 20, CLGI: 21, SKINIT: 22, INVLPGA: 23,
} as const;
export type VirtOp = (typeof VIRT_OP)[keyof typeof VIRT_OP];

/**
 * The decoded operand of the current instruction, in the terms the VMX VM-exit
 * instruction-information field uses (SDM 28.2.5, Table 28-13 and following).
 * Filled by the decoder for VMX/SVM instructions, descriptor-table instructions, INVLPG,
 * INVPCID, string I/O and MOV CR/DR.
 */
export interface InsnOperand {
  /** True for a register operand (ModRM.mod = 3). */
  isReg: boolean;
  /** Register operand number (0-15) when isReg. */
  reg1: number;
  /** ModRM.reg extended by REX.R (the "Reg2" field). */
  reg2: number;
  /** 0 = ES … 5 = GS, the effective segment of a memory operand. */
  seg: number;
  /** Base register 0-15, or -1. */
  base: number;
  /** Index register 0-15, or -1. */
  index: number;
  /** log2 of the scale, 0-3. */
  scale: number;
  /** Address size in bits: 16, 32 or 64. */
  addrSize: 16 | 32 | 64;
  /** Operand size in bits: 16, 32 or 64. */
  opSize: 16 | 32 | 64;
  /** Signed displacement. */
  disp: number;
  /** Effective address (offset in the segment, masked to the address size). The VMX displacement field for memory operands. */
  offset: number;
}

/**
 * Interceptable events the CPU reports in guest mode, before the event takes effect. The two
 * numeric arguments (a, b) carry what the exit information needs; the current instruction's
 * length is `cpu.insnLength` and its operand is `cpu.operand`.
 */
export const INTERCEPT = {
  CPUID: 0, // a = EAX, b = ECX
  HLT: 1,
  INVD: 2,
  INVLPG: 3, // a = linear address
  RDPMC: 4,
  RDTSC: 5,
  RDTSCP: 6,
  PAUSE: 7,
  MWAIT: 8,
  MONITOR: 9,
  WBINVD: 10,
  XSETBV: 11,
  RSM: 12,
  IO: 13, // a = port, b = IO_INFO bits
  MSR_READ: 14, // a = ECX
  MSR_WRITE: 15, // a = ECX
  CR_READ: 16, // a = CR number, b = GPR
  CR_WRITE: 17, // a = CR number, b = GPR (the value is in the GPR)
  CLTS: 18,
  LMSW: 19, // a = source value (16 bits), b = 1 if memory operand
  DR_READ: 20, // a = DR number, b = GPR
  DR_WRITE: 21, // a = DR number, b = GPR
  DESC_TABLE: 22, // a = DESC_OP
  INTN: 23, // a = vector (SVM INTn intercept)
  IRET: 24,
  PUSHF: 25,
  POPF: 26,
  TASK_SWITCH: 27, // a = selector, b = source (0 CALL, 1 IRET, 2 JMP, 3 task gate in IDT)
  SHUTDOWN: 28, // triple fault (VMX exit reason 2, SVM SHUTDOWN intercept)
  INIT: 29,
  RDRAND: 30,
  RDSEED: 31,
  INVPCID: 32,
  XSAVES: 33,
  RDPID: 34,
  FERR_FREEZE: 35,
} as const;
export type InterceptKind = (typeof INTERCEPT)[keyof typeof INTERCEPT];

/** The `b` argument of INTERCEPT.IO. Address size and segment of string I/O are in cpu.operand. */
export const IO_INFO = {
  SIZE_MASK: 0x7, // 1, 2 or 4
  IN: 1 << 3,
  STRING: 1 << 4,
  REP: 1 << 5,
  IMM: 1 << 6, // port given as an immediate
} as const;

/** The `a` argument of INTERCEPT.DESC_TABLE. */
export const DESC_OP = { SGDT: 0, SIDT: 1, LGDT: 2, LIDT: 3, SLDT: 4, STR: 5, LLDT: 6, LTR: 7 } as const;

/** Access bits for VirtExtension.translate. */
export const ACCESS = {
  READ: 1 << 0,
  WRITE: 1 << 1,
  FETCH: 1 << 2,
  /** The access is to a guest paging-structure entry during a page walk. */
  WALK: 1 << 3,
  /** The guest-linear address is valid (not set for a walk of PDPTEs loaded by MOV CR3 in PAE mode). */
  LINEAR_VALID: 1 << 4,
  USER: 1 << 5,
} as const;

/** Why Cpu.run returned. */
export const STOP = {
  BUDGET: 0, // the instruction budget ran out
  HLT: 1, // bare CPU: HLT with nothing pending
  SHUTDOWN: 2, // bare CPU: triple fault (the CPU is in the shutdown activity state)
  VMEXIT: 3, // the extension exited to a caller outside the CPU (the TypeScript kernel)
  REQUESTED: 4, // Cpu.requestStop()
  INTERNAL: 5, // a broken invariant inside the model; see Cpu.internalError
} as const;
export type StopReason = (typeof STOP)[keyof typeof STOP];

export interface VirtExtension {
  /** True in VMX non-root operation or SVM guest mode. The hooks below marked "guest" run only then. */
  readonly guest: boolean;
  /**
   * Executes a VMX or SVM instruction. In guest mode it usually VM-exits; outside it, it is the
   * instruction itself (a hypervisor running on this CPU). May raise faults through cpu.fault().
   * A VM exit ends the instruction with cpu.endInsn(): the handler does nothing after this call.
   */
  execute(op: VirtOp, operand: InsnOperand): void;
  /**
   * Guest: an interceptable event. Returns false if not intercepted. Otherwise it VM-exits,
   * ends the instruction with cpu.endInsn() and returns true: the caller returns at once, up to
   * the instruction handler, without effect (or calls cpu.abortInsn() when it cannot return).
   */
  intercept(kind: InterceptKind, a: number, b: number): boolean;
  /**
   * Guest: an exception or interrupt is about to be delivered (VMX interruption-information
   * layout, error code or -1). Returns if not intercepted; otherwise VM-exits.
   */
  event(intrInfo: number, errorCode: number): void;
  /**
   * Guest: the value MOV from CR0/CR4 (or SMSW) returns, given the real register: VMX read
   * shadows for host-owned bits. SVM returns `value`.
   */
  crRead(cr: number, value: number): number;
  /**
   * Guest: a MOV to CR0/CR4 (or CLTS/LMSW) that intercept() let through. Returns the value to
   * load: VMX keeps host-owned bits as they were.
   */
  crWrite(cr: number, value: number, current: number): number;
  /** Guest: guest-physical to host-physical (EPT/NPT). Returns the HPA, or VM-exits on a violation. */
  translate(gpa: number, access: number, linear: number): number;
  /** Guest or not: called at an instruction boundary while cpu.attention is set (windows, timers, pending host interrupts, GIF). */
  checkEvents(): void;
  /** MSRs the extension owns (IA32_VMX_*, FEATURE_CONTROL, VM_CR, VM_HSAVE_PA, …); undefined if not its own. */
  rdmsr(index: number): bigint | undefined;
  /** Returns false when the MSR is not the extension's. Raises #GP through cpu.fault() for a bad value. */
  wrmsr(index: number, value: bigint): boolean;
  /** Guest: TSC offset to add (mod 2^64) to RDTSC/RDTSCP results. */
  tscOffset(): bigint;
}

/** A CPU model: vendor, CPUID, and the virtualization silicon it carries. */
export interface CpuModel {
  readonly vendor: 'intel' | 'amd' | 'generic';
  /** Human-readable name, e.g. "kvmts Intel Core (VMX)". */
  readonly name: string;
  /** The host CPUID table: [eax, ebx, ecx, edx] for (leaf, subleaf). */
  cpuid(leaf: number, subleaf: number): readonly [number, number, number, number];
  /** Attaches the vendor's silicon to a CPU, or returns null for a CPU without virtualization. */
  createExtension(cpu: VirtCpu): VirtExtension | null;
}

/**
 * What the silicon may use of the CPU. Everything is the architectural state plus a few
 * operations the hardware itself has (deliver an event, flush the TLB, run).
 */
export interface VirtCpu extends CpuState {
  readonly bus: Bus;
  readonly model: CpuModel;
  ext: VirtExtension | null;
  /** Length of the instruction being executed (valid in hooks). */
  readonly insnLength: number;
  /**
   * Where the current instruction started: a fault restarts there, and an exit caused by the
   * instruction saves it as the guest RIP. A task switch moves it to the new task's EIP once it
   * commits (faults after that point belong to the new task).
   */
  insnStart: number;
  /** Operand of the instruction being executed (valid in execute() and the hooks that use it). */
  readonly operand: InsnOperand;
  /** Current privilege level. */
  readonly cpl: number;
  /**
   * Bumped whenever the mode is recomputed from CR0, EFER, RFLAGS.VM, CS and SS (stateChanged,
   * worldSwitched). A check on those that passed at one serial passes again at the same serial.
   */
  readonly modeSerial: number;
  /**
   * The platform's timer: when icount reaches `deadline`, the run loop sets it to Infinity and
   * calls `onDeadline` at the next instruction boundary (checked at least every few
   * instructions). The host uses it for its timer tick, which raises an interrupt on the INTR pin.
   */
  deadline: number;
  onDeadline: (() => void) | null;
  /** The silicon's own timer (VMX-preemption timer, …): when icount reaches it, `attention` is raised. Infinity when unused. */
  extDeadline: number;
  /** The physical INTR pin: the vector an interrupt controller would supply, or -1. Cleared by acknowledging (delivery, or a VM exit that acknowledges it). */
  pendingInterrupt: number;
  /** The physical NMI pin. */
  pendingNmi: boolean;
  /** Raises INTR with `vector` (and attention). Delivered through the IDT when RFLAGS.IF=1 and no STI/MOV SS shadow, unless the extension exits first. */
  raiseInterrupt(vector: number): void;
  raiseNmi(): void;
  /** When set, the run loop calls ext.checkEvents() and services pending events at the next instruction boundary. */
  attention: boolean;
  /** RFLAGS with lazily computed arithmetic flags folded in. */
  getRflags(): number;
  setRflags(value: number): void;
  /** After writing state fields directly: recompute cached mode, CPL and sizes. Does not flush the TLB. */
  stateChanged(): void;
  /**
   * The same after a VM entry or exit swapped in a whole context, perhaps one that ran before:
   * chains between decoded blocks are kept, since each is checked against the TLB tag, the CS
   * register object (never changed in place) and the mode it was made under.
   */
  worldSwitched(): void;
  /** Raises an exception from inside an instruction or hook (never returns). errorCode -1: none. */
  fault(vector: number, errorCode?: number): never;
  /**
   * Runs `f` outside any instruction, as KVM's emulator runs a task switch: a fault `f` raises
   * comes back (errorCode -1: none) instead of being delivered; null when `f` completes.
   */
  catchFault(f: () => void): { vector: number; errorCode: number } | null;
  /** Delivers an event now, as VM-entry injection does (VMX interruption-information layout). */
  injectEvent(intrInfo: number, errorCode: number, insnLength: number): void;
  /** Ends Cpu.run with `reason` (never returns). Used by a VM exit that returns to TypeScript. */
  stop(reason: StopReason): never;
  /**
   * Ends the current instruction without a throw: it does not retire, and Cpu.run returns
   * `reason` at the next instruction boundary. The VM exit of an intercepted instruction uses it
   * (a throw through the run loop costs more than the rest of a fast exit); the instruction's
   * handler must return without further effect once the extension reports the exit.
   */
  endInsn(reason: StopReason): void;
  /** After endInsn(), from a caller that cannot return to the handler: unwinds to the run loop. */
  abortInsn(): never;
  /** Runs until `maxInstructions` retire or something stops the CPU. */
  run(maxInstructions: number): StopReason;
  /** Reads/writes through segmentation and paging (for memory operands of VMX/SVM instructions). */
  readMem(seg: number, offset: number, size: 1 | 2 | 4): number;
  writeMem(seg: number, offset: number, size: 1 | 2 | 4, value: number): void;
  /** Selects the TLB tagged `tag` (VPID or ASID; 0 = the host's). Entries of other tags survive. */
  setTlbTag(tag: number): void;
  /** Flushes the TLB entries of `tag` (all tags when undefined); with `linear`, only that page. */
  flushTlb(tag?: number, linear?: number): void;
}
