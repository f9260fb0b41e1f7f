/**
 * x86_emulate_instruction (arch/x86/kvm/emulate.c, x86.c): runs one guest instruction on an x86
 * CPU of @kvmts/x86 whose bus is the VM's guest-physical space. RAM comes from the memslots;
 * MMIO and port I/O that userspace must answer abort the instruction and exit. The next
 * KVM_RUN re-runs it from the start, replaying the accesses userspace already answered
 * (reads get their data, writes are not repeated), as complete_emulated_mmio / complete_emulated_pio do.
 *
 * A REP string instruction is different: KVM's emulator writes its registers back after every
 * iteration and restarts the instruction (string_insn_completed, EMULATION_RESTART). So an exit
 * in iteration k keeps the k iterations done (RCX, RSI, RDI) with RIP still on the instruction,
 * and the next KVM_RUN replays only iteration k's own accesses: a REP OUTS of n items costs n
 * exits, each replaying one access, not n²/2 replays. REP INS reads ahead as pio_in_emulated
 * does (up to sizeof(read_cache.data) bytes, within the page, within RCX), one exit per chunk.
 */
import { Bus, CR4, Cpu, EFER, SEG, STOP, RFLAGS, decodeInsn, type CpuModel, type VirtCpu } from '@kvmts/x86';
import { kvmCpuid } from './cpuid.js';
import type { KvmVcpu, ExitResult, KvmSegment } from './kvm-types.js';

import { KVM_EXIT, KVM_EXIT_IO, KVM_GUESTDBG, KVM_INTERNAL_ERROR, KVM_MEM, KVM_LIMITS } from '../uapi/constants.js';
import type { UserAccess, Vcpu } from '../kvm/vcpu.js';
import {
  VCPU_REGS, kvmGetRflags, kvmHandleTripleFault, kvmRunInternalError, kvmSetCr0, kvmSetCr3, kvmSetCr4, kvmSetRflags,
  kvmVcpuDoSinglestep, toVcpu,
} from './x86.js';

/** EMULTYPE_* flags of kvm_host.h. */
export const EMULTYPE = {
  NO_DECODE: 1 << 0, TRAP_UD: 1 << 1, SKIP: 1 << 2, ALLOW_RETRY_PF: 1 << 3, TRAP_UD_FORCED: 1 << 4,
  VMWARE_GP: 1 << 5, PF: 1 << 6, COMPLETE_USER_EXIT: 1 << 7, WRITE_PF_TO_SP: 1 << 8,
} as const;

const PAGE = 4096;
/** sizeof(read_cache.data): the most bytes one string-input exit reads ahead. */
const PIO_READ_AHEAD_BYTES = 1024;

/** VCPU_SREG index -> the CPU's SEG index. */
const SREG_TO_SEG = [SEG.ES, SEG.CS, SEG.SS, SEG.DS, SEG.FS, SEG.GS, SEG.TR, SEG.LDTR] as const;

/** Thrown through cpu.stop's unwinding: the instruction needs userspace. */
class NeedsUserspace {
  readonly access: UserAccess;
  readonly count: number;

  constructor(access: UserAccess, count: number) {
    this.access = access;
    this.count = count;
  }
}

/** The guest-physical address space as the emulated instruction sees it. */
export class GuestPhysBus extends Bus {
  /** Position in the replay log. */
  cursor = 0;
  /** Byte offset into the current multi-item PIO read entry. */
  consumed = 0;
  /** The instruction being emulated, when it is a string instruction. */
  str: StringInsn | null = null;
  /** Where the current iteration of a REP string instruction began in the replay log (entry, bytes consumed of it). */
  iterCursor = 0;
  iterConsumed = 0;
  /** RCX at the last logged access: a change means a new iteration began. */
  private rcxLo = NaN;
  private rcxHi = NaN;
  pending: NeedsUserspace | null = null;
  cpu: VirtCpu | null = null;
  /** The vCPU being emulated: one emulator serves every vCPU of a host, one at a time. */
  v: Vcpu;

  constructor(v: Vcpu) {
    super(v.kvm.host.mem);
    this.v = v;
  }

  /** HPA of guest-physical `gpa` when it is RAM the CPU may access directly; -1 otherwise. */
  private ramHpa(gpa: number, write: boolean): number {
    const vm = this.v.kvm;
    const gfn = Math.floor(gpa / PAGE);
    const slot = vm.memslots.find(gfn);
    if (!slot) return -1;
    if (write && slot.flags & KVM_MEM.READONLY) return -1;
    const hpa = vm.proc.hvaToHpa(slot.userspaceAddr + (gfn - slot.baseGfn) * PAGE + (gpa % PAGE));
    if (hpa >= 0 && write) vm.memslots.markDirty(slot, gfn);
    return hpa;
  }

  override resolveRam(pa: number): number {
    const slot = this.v.kvm.memslots.find(Math.floor(pa / PAGE));
    // Read-only and dirty-logged pages take the slow path, so writes are seen.
    if (!slot || slot.flags & (KVM_MEM.READONLY | KVM_MEM.LOG_DIRTY_PAGES)) return -1;
    return this.ramHpa(pa, false);
  }

  override readPhys(addr: number, size: 1 | 2 | 4): number {
    const hpa = this.ramHpa(addr, false);
    if (hpa >= 0) return size === 1 ? this.ram.read8(hpa) : size === 2 ? this.ram.read16(hpa) : this.ram.read32(hpa);
    return this.userRead('mmio', addr, size);
  }

  override writePhys(addr: number, size: 1 | 2 | 4, value: number): void {
    const hpa = this.ramHpa(addr, true);
    if (hpa >= 0) {
      if (size === 1) this.ram.write8(hpa, value);
      else if (size === 2) this.ram.write16(hpa, value);
      else this.ram.write32(hpa, value);
      return;
    }
    this.userWrite('mmio', addr, size, value);
  }

  override readPhys64(addr: number): [number, number] {
    const hpa = this.ramHpa(addr, false);
    if (hpa >= 0) return [this.ram.read32(hpa), this.ram.read32(hpa + 4)];
    const b = this.userReadBytes('mmio', addr, 8);
    const word = (i: number) => (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)) >>> 0;
    return [word(0), word(4)];
  }

  override writePhys64(addr: number, lo: number, hi: number): void {
    const hpa = this.ramHpa(addr, true);
    if (hpa >= 0) { this.ram.write32(hpa, lo); this.ram.write32(hpa + 4, hi); return; }
    const data = new Uint8Array(8);
    new DataView(data.buffer).setUint32(0, lo >>> 0, true);
    new DataView(data.buffer).setUint32(4, hi >>> 0, true);
    this.userWriteBytes('mmio', addr, data);
  }

  override in(port: number, size: 1 | 2 | 4): number {
    return this.userRead('pio', port, size);
  }

  override out(port: number, size: 1 | 2 | 4, value: number): void {
    this.userWrite('pio', port, size, value);
  }

  /** Starts a run of the emulator over the replay log. */
  begin(str: StringInsn | null): void {
    this.cursor = 0;
    this.consumed = 0;
    this.pending = null;
    this.str = str;
    this.iterCursor = 0;
    this.iterConsumed = 0;
    this.rcxLo = NaN;
    this.rcxHi = NaN;
  }

  /** Notes where a REP iteration's accesses begin: each iteration runs with its own RCX. */
  private noteIteration(): void {
    if (!this.str?.rep) return;
    const c = this.cpu!;
    const lo = c.gpr[VCPU_REGS.RCX]!;
    const hi = c.gprHi[VCPU_REGS.RCX]!;
    if (lo === this.rcxLo && hi === this.rcxHi) return;
    this.rcxLo = lo;
    this.rcxHi = hi;
    this.iterCursor = this.cursor;
    this.iterConsumed = this.consumed;
  }

  private userRead(kind: 'pio' | 'mmio', addr: number, size: number): number {
    const b = this.userReadBytes(kind, addr, size);
    let val = 0;
    for (let i = size - 1; i >= 0; i--) val = (val * 256 + b[i]!) >>> 0;
    return size === 4 ? val | 0 : val;
  }

  /** The bytes userspace answered for this read, or an exit to ask for them. */
  private userReadBytes(kind: 'pio' | 'mmio', addr: number, size: number): Uint8Array {
    this.noteIteration();
    const e = this.v.userAccesses[this.cursor];
    if (e && e.kind === kind && !e.isWrite && e.addr === addr && e.size === size) {
      const b = e.data.subarray(this.consumed, this.consumed + size);
      this.consumed += size;
      if (this.consumed >= e.data.length) { this.cursor++; this.consumed = 0; }
      return b;
    }
    const count = kind === 'pio' && this.str?.op === STRING_OP.INS ? insReadAhead(this.cpu!, this.str) : 1;
    this.abort({ kind, isWrite: false, addr, size, data: new Uint8Array(size * count) }, count);
  }

  private userWrite(kind: 'pio' | 'mmio', addr: number, size: number, value: number): void {
    const data = new Uint8Array(size);
    for (let i = 0; i < size; i++) data[i] = (value >>> (8 * i)) & 0xff;
    this.userWriteBytes(kind, addr, data);
  }

  private userWriteBytes(kind: 'pio' | 'mmio', addr: number, data: Uint8Array): void {
    this.noteIteration();
    const e = this.v.userAccesses[this.cursor];
    if (e && e.kind === kind && e.isWrite && e.addr === addr && e.size === data.length) {
      this.cursor++;
      return;
    }
    this.abort({ kind, isWrite: true, addr, size: data.length, data }, 1);
  }

  private abort(access: UserAccess, count: number): never {
    this.pending = new NeedsUserspace(access, count);
    return this.cpu!.stop(STOP.REQUESTED);
  }
}

/** The host's instruction emulator: a CPU over the guest-physical bus of the vCPU it serves. */
export interface Emulator {
  cpu: VirtCpu;
  bus: GuestPhysBus;
}

/**
 * The host's emulator. Emulation is synchronous, so one CPU serves every vCPU in turn; a CPU
 * per vCPU would outlive its VM (the CPU listens to host memory for code writes).
 */
const emulators = new WeakMap<object, Emulator>();

export function emulatorOf(v: Vcpu): Emulator {
  const host = v.kvm.host;
  let e = emulators.get(host);
  if (e) {
    e.bus.v = v;
    return e;
  }
  const bus = new GuestPhysBus(v);
  const model = host.model;
  // CPUID inside emulated code answers from the guest's table, as the emulator's get_cpuid op does.
  const guestModel: CpuModel = {
    vendor: model.vendor,
    name: `${model.name} (guest CPUID)`,
    cpuid: (leaf, subleaf) =>
      kvmCpuid(bus.v.cpuid, leaf, subleaf, (bus.v.arch.cr4 & CR4.OSXSAVE) !== 0),
    createExtension: () => null,
  };
  const cpu = host.createCpu(bus, guestModel);
  cpu.ext = null;
  bus.cpu = cpu;
  e = { cpu, bus };
  emulators.set(host, e);
  return e;
}

function toAr(s: KvmSegment): number {
  return (s.type & 0xf) | (s.s << 4) | ((s.dpl & 3) << 5) | (s.present << 7) | (s.avl << 12) | (s.l << 13) |
    (s.db << 14) | (s.g << 15) | (s.unusable << 16);
}

function fromAr(selector: number, base: number, limit: number, ar: number): KvmSegment {
  return {
    base, limit, selector, type: ar & 0xf, s: (ar >> 4) & 1, dpl: (ar >> 5) & 3, present: (ar >> 7) & 1,
    avl: (ar >> 12) & 1, l: (ar >> 13) & 1, db: (ar >> 14) & 1, g: (ar >> 15) & 1, unusable: (ar >> 16) & 1, padding: 0,
  } as KvmSegment;
}

/**
 * Loads the vCPU's architectural state into the emulator CPU (emulator_get_* through kvm_x86_ops).
 * RFLAGS is the guest's view: the TF of KVM_GUESTDBG_SINGLESTEP is not the guest's to trap on.
 */
export function loadState(v: Vcpu, cpu: VirtCpu, rflagsMask = ~0): void {
  const ops = v.ops;
  for (const r of [VCPU_REGS.EXREG_CR0, VCPU_REGS.EXREG_CR3, VCPU_REGS.EXREG_CR4]) ops.cacheReg(v, r);
  cpu.gpr.set(v.arch.regs);
  cpu.gprHi.set(v.arch.regsHi);
  cpu.rip = v.arch.rip;
  for (let s = 0; s < 8; s++) {
    const k = ops.getSegment(v, s);
    cpu.seg[SREG_TO_SEG[s]!] = { selector: k.selector, base: k.base, limit: k.limit, ar: toAr(k) };
  }
  cpu.gdtr = { ...ops.getGdt(v) };
  cpu.idtr = { ...ops.getIdt(v) };
  cpu.cr0 = v.arch.cr0;
  cpu.cr2 = v.arch.cr2;
  cpu.cr3 = v.arch.cr3;
  cpu.cr4 = v.arch.cr4;
  cpu.cr8 = v.arch.cr8;
  cpu.efer = v.arch.efer;
  cpu.interruptibility = 0;
  cpu.setRflags(kvmGetRflags(v) & rflagsMask);
  cpu.stateChanged();
  cpu.flushTlb();
}

/**
 * Writes back what an instruction can change: GPRs, RIP, RFLAGS, CR2, segments if an exception
 * was delivered, and CR0, CR3 and CR4 through kvm_set_cr* (emulator_set_cr) when they changed
 * (CLTS, LMSW, MOV to CR, a task switch).
 */
export function storeState(v: Vcpu, cpu: VirtCpu): void {
  const ops = v.ops;
  v.arch.regs.set(cpu.gpr);
  v.arch.regsHi.set(cpu.gprHi);
  v.arch.rip = cpu.rip;
  v.arch.cr2 = cpu.cr2;
  if (cpu.cr0 !== v.arch.cr0) kvmSetCr0(v, cpu.cr0);
  if (cpu.cr4 !== v.arch.cr4) kvmSetCr4(v, cpu.cr4);
  if (cpu.cr3 !== v.arch.cr3) kvmSetCr3(v, cpu.cr3);
  kvmSetRflags(v, cpu.getRflags());
  for (let s = 0; s < 8; s++) {
    const c = cpu.seg[SREG_TO_SEG[s]!]!;
    const k = ops.getSegment(v, s);
    if (k.selector !== c.selector || k.base !== c.base || k.limit !== c.limit || toAr(k) !== c.ar) {
      ops.setSegment(v, s, fromAr(c.selector, c.base, c.limit, c.ar));
    }
  }
}

/** The string instructions by opcode (the byte-sized form; the next opcode is the word/dword form). */
const STRING_OP = { INS: 0x6c, OUTS: 0x6e, MOVS: 0xa4, CMPS: 0xa6, STOS: 0xaa, LODS: 0xac, SCAS: 0xae } as const;
const STRING_OPCODES: ReadonlySet<number> = new Set(Object.values(STRING_OP));
const PREFIX_SEG_LOCK: ReadonlySet<number> = new Set([0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0xf0]);

/** A string instruction as the emulator decodes it: which one, with REP or not, its item size and address size. */
interface StringInsn {
  op: number;
  rep: boolean;
  size: number;
  addrBits: 16 | 32 | 64;
}

/** Decodes the string instruction at the guest's RIP, or null for any other instruction. */
function decodeStringInsn(v: Vcpu, cpu: VirtCpu): StringInsn | null {
  let rep = false;
  let addr32 = false;
  let opSize = 4;
  let rexW = false;
  const long = (cpu.seg[SEG.CS]!.ar >> 13) & 1 && (v.arch.efer & EFER.LMA) !== 0;
  for (let i = 0; i < 15; i++) {
    let b: number;
    try {
      b = cpu.readMem(SEG.CS, (cpu.rip + i) >>> 0, 1);
    } catch {
      return null;
    }
    if (b === 0xf3 || b === 0xf2) rep = true;
    else if (b === 0x67) addr32 = true;
    else if (b === 0x66) opSize = 2;
    else if (PREFIX_SEG_LOCK.has(b)) continue;
    else if (long && (b & 0xf0) === 0x40) rexW = (b & 8) !== 0; // REX (only the last one counts, as it must be last)
    else {
      const op = b & ~1;
      if (!STRING_OPCODES.has(op)) return null;
      const isIo = op === STRING_OP.INS || op === STRING_OP.OUTS;
      const size = b & 1 ? (rexW && !isIo ? 8 : opSize) : 1;
      const csDb = (cpu.seg[SEG.CS]!.ar >> 14) & 1;
      const addrBits = long ? (addr32 ? 32 : 64) : (csDb ? !addr32 : addr32) ? 32 : 16;
      return { op, rep, size, addrBits };
    }
  }
  return null;
}

/**
 * String input read-ahead (pio_in_emulated): how many items one exit asks for, from the
 * iteration the CPU is in: at most sizeof(read_cache.data) bytes, the bytes left in RDI's page, and RCX.
 */
function insReadAhead(cpu: VirtCpu, s: StringInsn): number {
  if (!s.rep) return 1;
  const rcx = cpu.gpr[VCPU_REGS.RCX]! >>> 0;
  const count = s.addrBits === 16 ? rcx & 0xffff : s.addrBits === 32 ? rcx : rcx + (cpu.gprHi[VCPU_REGS.RCX]! >>> 0) * 2 ** 32;
  const rdiOff = (cpu.gpr[VCPU_REGS.RDI]! >>> 0) % PAGE;
  // Linux bounds the item count by the page's remaining bytes, not items.
  const inPage = cpu.getRflags() & RFLAGS.DF ? rdiOff : PAGE - rdiOff;
  return Math.max(1, Math.min(inPage, PIO_READ_AHEAD_BYTES / s.size, count));
}

/**
 * The exit came in iteration k of a REP string instruction: keep the k iterations done, with RIP
 * on the instruction to restart it, and only iteration k's own accesses in the replay log.
 */
function commitRepIterations(v: Vcpu, cpu: VirtCpu, bus: GuestPhysBus, insnRip: number): void {
  storeState(v, cpu);
  v.arch.rip = insnRip;
  const kept = v.userAccesses.slice(bus.iterCursor);
  const first = kept[0];
  if (first && bus.iterConsumed) kept[0] = { ...first, data: first.data.subarray(bus.iterConsumed) };
  v.userAccesses = kept;
}

/** Fills kvm_run for the access the emulator stopped on. */
function exitForAccess(v: Vcpu, n: NeedsUserspace): void {
  const a = n.access;
  const run = v.runView;
  if (a.kind === 'mmio') {
    run.exitReason = KVM_EXIT.MMIO;
    run.mmio.set({ physAddr: BigInt(a.addr), data: a.isWrite ? a.data : new Uint8Array(8), len: a.size, isWrite: a.isWrite ? 1 : 0 });
    v.stat['mmio_exits']!++;
  } else {
    run.exitReason = KVM_EXIT.IO;
    run.io.set({ direction: a.isWrite ? KVM_EXIT_IO.OUT : KVM_EXIT_IO.IN, size: a.size, port: a.addr, count: n.count, dataOffset: KVM_LIMITS.PIO_PAGE_OFFSET * PAGE });
    if (a.isWrite) v.pioData.set(a.data);
    v.stat['io_exits']!++;
  }
}

/** complete_emulated_io: takes userspace's answer for the last access, then re-runs the instruction. */
function completeEmulatedIo(v: Vcpu): ExitResult {
  const last = v.userAccesses[v.userAccesses.length - 1];
  if (last && !last.isWrite) {
    if (last.kind === 'mmio') last.data.set(v.runView.mmio.data().subarray(0, last.size));
    else last.data.set(v.pioData.subarray(0, last.data.length));
  }
  return emulate(v);
}

/**
 * EMULTYPE_SKIP: only the instruction's length is wanted (the vendor has no next RIP), so the
 * instruction is decoded and not run, as x86_decode_emulated_instruction does: a far JMP, CALL
 * or IRET whose task switch exited is skipped without switching. A fetch that faults fails.
 */
function skipInstruction(v: Vcpu): ExitResult {
  const { cpu } = emulatorOf(v);
  loadState(v, cpu);
  const start = v.arch.rip;
  let len = 0;
  try {
    if (cpu instanceof Cpu) len = decodeInsn(cpu, cpu.rip, cpu.codeSize).len;
  } catch {
    len = 0;
  }
  if (len < 1) {
    v.stat['insn_emulation_fail']!++;
    return kvmRunInternalError(v, KVM_INTERNAL_ERROR.EMULATION, [start]);
  }
  v.arch.rip = start + len;
  return 'resume';
}

function emulate(v: Vcpu): ExitResult {
  const { cpu, bus } = emulatorOf(v);
  loadState(v, cpu);
  bus.begin(decodeStringInsn(v, cpu));
  const insnRip = v.arch.rip;
  let stop: number;
  try {
    stop = cpu.run(1);
  } catch (e) {
    return kvmRunInternalError(v, KVM_INTERNAL_ERROR.EMULATION, [0, String(e).length]);
  }
  const pending = bus.pending as NeedsUserspace | null;
  if (pending) {
    if (bus.str?.rep) commitRepIterations(v, cpu, bus, insnRip);
    v.userAccesses.push(pending.access);
    exitForAccess(v, pending);
    v.completeUserspaceIo = completeEmulatedIo;
    return 'userspace';
  }
  v.userAccesses = [];
  v.completeUserspaceIo = null;
  if (stop === STOP.SHUTDOWN) return kvmHandleTripleFault(v);
  if (stop === STOP.INTERNAL) {
    v.stat['insn_emulation_fail']!++;
    return kvmRunInternalError(v, KVM_INTERNAL_ERROR.EMULATION, []);
  }
  storeState(v, cpu);
  // The emulator CPU took the guest's own single-step trap itself; KVM's exits to userspace.
  if (v.guestDebug & KVM_GUESTDBG.SINGLESTEP) return kvmVcpuDoSinglestep(v) ? 'resume' : 'userspace';
  return 'resume';
}

/**
 * Emulates the instruction at the guest's RIP (string I/O, MMIO, anything a vendor hands over).
 * Returns 'userspace' after filling kvm_run when the instruction needs userspace.
 */
export function kvmEmulateInstruction(vcpu: KvmVcpu, emulationType: number): ExitResult {
  const v = toVcpu(vcpu);
  if (emulationType & EMULTYPE.SKIP) return skipInstruction(v);
  v.stat['insn_emulation']!++;
  v.userAccesses = [];
  return emulate(v);
}

