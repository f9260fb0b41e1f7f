/**
 * The x86-64 processor: architectural state (CpuState), the software TLB and memory access
 * path, cached decoded blocks, and the run loop. Instructions are decoded by decode/ and
 * executed by the handlers in exec/; system architecture (paging walk, descriptor loads, event
 * delivery, MSRs, CRs) lives in mmu/, seg/, exceptions/ and system/.
 */
import type { Bus } from '../bus.js';
import { decodeInsn } from '../decode/decoder.js';
import type { Handler, Insn } from '../decode/insn.js';
import {
  DR6, DR7_ENABLE_MASK, dataBreakpoints, dataBreakpointsArmed, dr6After, instructionBreakpoints,
} from '../exceptions/debug.js';
import { deliverEvent } from '../exceptions/deliver.js';
import { flushFlags, materialize, type LazyFlags } from '../flags/lazy-flags.js';
import { CHUNK_SIZE } from '../mem/phys-memory.js';
import { TLB_MASK, TLB_SET, TLB_SIZE, Tlb } from '../mem/tlb.js';
import { translateLinear } from '../mmu/page-walk.js';
import { EVENT_TYPE, VEC, makeIntrInfo } from './events.js';
import { genericModel } from './generic-model.js';
import { ACTIVITY, AR, CR0, CpuState, EFER, INTERRUPTIBILITY, RFLAGS, SEG, type Segment } from './state.js';
import {
  ACCESS, STOP, type CpuModel, type InsnOperand, type StopReason, type VirtCpu, type VirtExtension,
} from './virt.js';

/** Thrown by Cpu.fault() and caught by the run loop; preallocated so a fault allocates nothing. */
class FaultSignal { }
/** Thrown by Cpu.stop(). */
class StopSignal { }
const FAULT = new FaultSignal();
const STOP_SIGNAL = new StopSignal();

/** Longest straight-line block, in instructions. */
const MAX_BLOCK_INSNS = 64;
/** Nested faults while delivering one event before the CPU gives up (the deliverer handles #DF itself). */
const MAX_NESTED_FAULTS = 4;
/** RFLAGS bits that exist (SDM Vol. 1, 3.4.3); bit 1 reads as 1. */
const RFLAGS_DEFINED = 0x3f7fd5;
const CANONICAL_LIMIT = 0x800000000000;
/** RFLAGS bits that make the run loop go one instruction at a time (single-step, resume flag). */
const STEP_FLAGS = RFLAGS.TF | RFLAGS.RF;

/** Executions after which a block's handler calls are fused into one generated function. */
const HOT_BLOCK_RUNS = 8;

type CompiledBlock = (cpu: Cpu) => void;

/**
 * Fuses a block into one function that calls each instruction's handler from its own call site
 * (monomorphic, so V8 inlines the handlers). insnStart is exact before every instruction; RIP
 * and curInsn are set where something can observe them (before the last instruction, before
 * RIP-relative addressing, on leaving early); the catch counts retired instructions from k.
 * This only sequences handlers: decoding and execution stay where they are.
 */
function compileBlock(b: Block): CompiledBlock {
  const n = b.insns.length;
  const starts = b.insns.map((i) => i.end - i.len);
  // A block that branches back to its own start (a loop) keeps running here while nothing needs the run loop.
  const lines = ['return function block(cpu) {', 'const r = cpu.rip;', 'let k = 0;', 'for (;;) {', 'try {'];
  for (let k = 0; k < n; k++) {
    const i = b.insns[k]!;
    if (k === n - 1 || i.mayExit) {
      // The last instruction may branch, reach the extension or restart itself, and a mayExit
      // one reports its length and RIP in a VM exit: full state.
      lines.push(`k = ${k}; cpu.curInsn = i${k}; cpu.insnStart = r + ${starts[k]}; cpu.rip = r + ${i.end}; h${k}(cpu, i${k});`);
    } else {
      // insnStart is kept exact (a VM exit from a page walk reports it); RIP only where read.
      lines.push(`k = ${k}; cpu.insnStart = r + ${starts[k]};${i.ripRel ? ` cpu.rip = r + ${i.end};` : ''} h${k}(cpu, i${k});`);
    }
    if (k === n - 1) break;
    if (i.mayWrite) lines.push(`if (!blk.valid) { cpu.rip = r + ${i.end}; cpu.icount += ${k + 1}; return; }`);
    // A VM exit ended it: the extension owns RIP, and the instruction did not retire.
    if (i.mayExit) lines.push(`if (cpu.aborted) { cpu.aborted = false; cpu.icount += ${k}; return; }`);
  }
  // A fault is delivered from insnStart; after a stop (VM exit) the extension owns RIP: only count.
  lines.push('} catch (e) {', 'cpu.icount += k;', 'throw e;', '}');
  // Besides the mayExit ones, only the last instruction can end in a VM exit without a throw.
  lines.push(`if (cpu.aborted) { cpu.aborted = false; cpu.icount += ${n - 1}; return; }`);
  lines.push(`cpu.icount += ${n};`);
  lines.push(`if (cpu.rip !== r || cpu.attention || cpu.icount + ${n} > cpu.loopLimit || !blk.valid) return;`, '}', '};');
  const names = b.insns.flatMap((_, k) => [`h${k}`, `i${k}`]);
  const args = b.insns.flatMap((i) => [i.exec, i]);
  const source = lines.join('\n');
  const key = `${source}\n${b.insns.map((i) => handlerId(i.exec)).join(',')}`;
  let factory = BLOCK_FACTORIES.get(key);
  if (factory === undefined) {
    if (BLOCK_FACTORIES.size >= MAX_BLOCK_FACTORIES) BLOCK_FACTORIES.clear();
    factory = new Function('blk', ...names, source) as BlockFactory;
    BLOCK_FACTORIES.set(key, factory);
  }
  return factory(b, ...args);
}

type BlockFactory = (blk: Block, ...handlersAndInsns: unknown[]) => CompiledBlock;

/**
 * Block factories by generated source and handler identities. The same code decoded again (on a
 * new VM's CPU, after a migration, or after self-modifying code) reuses its factory, and the
 * blocks one factory makes share their feedback in V8, so the new ones start out optimised.
 */
const BLOCK_FACTORIES = new Map<string, BlockFactory>();
const MAX_BLOCK_FACTORIES = 16384;
const HANDLER_IDS = new WeakMap<Handler, number>();
let nextHandlerId = 0;

function handlerId(h: Handler): number {
  let id = HANDLER_IDS.get(h);
  if (id === undefined) {
    id = nextHandlerId++;
    HANDLER_IDS.set(h, id);
  }
  return id;
}

/** One tag's entries: all of them, or those of the page holding `linear`. */
function flushOne(t: Tlb, linear: number | undefined): void {
  if (linear === undefined) t.flushAll();
  else t.flushPage(linear);
}

/** Decoded straight-line code starting at one host-physical address, for one code-segment size. */
class Block {
  valid = true;
  runs = 0;
  compiled: CompiledBlock | null = null;
  /**
   * Up to two successors, chained after they ran once, valid while the fetch context they were
   * chained in holds: cpu.fetchGen, the TLB (its tag), the CS register object and the mode bits.
   */
  succRip0 = NaN;
  succ0: Block | null = null;
  succRip1 = NaN;
  succ1: Block | null = null;
  chainGen = -1;
  chainTlb: Tlb | null = null;
  chainCs: Segment | null = null;
  chainMode = -1;
  readonly insns: Insn[];
  readonly key: number;
  readonly map: Map<number, Block> | null;
  constructor(insns: Insn[], key: number, map: Map<number, Block> | null) {
    this.insns = insns;
    this.key = key;
    this.map = map;
  }

  /** The bytes [lo, hi) this block's code occupies in host frame `frame` (its own, or the next one a last instruction runs into). */
  extentIn(frame: number): [number, number] {
    const start = this.key % 4096;
    const end = start + this.insns[this.insns.length - 1]!.end;
    return frame === Math.floor(this.key / 4096) ? [start, Math.min(end, 4096)] : [0, end - 4096];
  }
}

/** The decoded blocks of one host frame, and the span [lo, hi) of the frame their code covers. */
class FrameCode {
  blocks: Block[] = [];
  lo = 4096;
  hi = 0;

  add(b: Block, frame: number): void {
    this.blocks.push(b);
    const [lo, hi] = b.extentIn(frame);
    if (lo < this.lo) this.lo = lo;
    if (hi > this.hi) this.hi = hi;
  }
}

export interface CpuOptions {
  bus: Bus;
  model?: CpuModel;
  /** Fuse hot blocks into generated functions (default true; false runs every block through the interpreter loop). */
  fuseBlocks?: boolean;
}

export class Cpu extends CpuState implements VirtCpu, LazyFlags {
  readonly bus: Bus;
  readonly model: CpuModel;
  ext: VirtExtension | null = null;

  readonly operand: InsnOperand = {
    isReg: false, reg1: 0, reg2: 0, seg: 3, base: -1, index: -1, scale: 0, addrSize: 32, opSize: 32, disp: 0, offset: 0,
  };

  deadline = Infinity;
  onDeadline: (() => void) | null = null;
  extDeadline = Infinity;
  pendingInterrupt = -1;
  pendingNmi = false;
  attention = false;
  /** What went wrong when run() returned STOP.INTERNAL. */
  internalError = '';

  // Lazy arithmetic flags (flags/lazy-flags.ts). Zero lfMask outside run(): rflags is exact there.
  lfMask = 0;
  lfOp = 0;
  lfDst = 0;
  lfSrc = 0;
  lfRes = 0;
  lfSign = 0;
  lfCin = 0;

  /** High half of the last 64-bit value a 64-bit accessor returned. */
  hi = 0;
  /** Linear address of the current read-modify-write memory operand (exec/operand.ts). */
  rmwLa = 0;
  /** Halves of the last 64-bit effective address (exec/operand.ts), exact for LEA. */
  eaLo = 0;
  eaHi = 0;

  // Mode, recomputed by stateChanged().
  /** Bumped by every recompute of the mode: state a mode check read is unchanged while it holds. */
  modeSerial = 0;
  /** Default operand/address size of the code segment: 16, 32 or 64. */
  codeSize = 16;
  long64 = false;
  /** CR0.PE and not virtual-8086. */
  protectedMode = false;
  v86 = false;
  pagingOn = false;
  /** Stack address size: 16, 32 or 64. */
  stackSize = 16;
  private cplValue = 0;

  /** The instruction being executed, and the RIP it started at. */
  curInsn: Insn | null = null;
  insnStart = 0;

  private faultVector = 0;
  private faultCode = -1;
  private stopReason: StopReason = STOP.BUDGET;
  private stopRequested = false;
  /** endInsn() asked run() to return stopReason at the next instruction boundary. */
  private stopPending = false;
  /** The current instruction ended in a VM exit (endInsn): it does not retire, and its block ends. */
  aborted = false;
  private inRun = false;
  /** A fault raised while injecting an event outside run(), delivered when run() starts. */
  private faultPending = false;
  /** DR6 bits of a #DB trap held back by a MOV SS/POP SS shadow (SDM 6.8.3), reported after the next instruction. */
  private heldDebugTrap = 0;
  /** Set when the current instruction delivered an event itself (INT n, INT3, INTO, INT1): no single-step trap after it. */
  private deliveredInInsn = false;
  /**
   * DR7 arms a data breakpoint: read and write accesses are not cached in the TLB, so every one
   * reaches readSlow/writeSlow, which collect the breakpoints hit in `dataHits`.
   */
  private watchData = false;
  private dataHits = 0;
  /**
   * run() returns STOP.BUDGET when icount reaches this. A REP string instruction that restarts
   * itself after a slice of iterations lowers it by one, so a long REP consumes budget too.
   */
  runTarget = 0;
  /** A fused self-looping block may start another iteration while icount + its length stays within this. */
  loopLimit = 0;

  private readonly fuseBlocks: boolean;
  private readonly tlbs = new Map<number, Tlb>();
  private tlb: Tlb;
  private rdSet = 0;
  private wrSet = 0;
  private fxSet = 0;

  private readonly blocks = [new Map<number, Block>(), new Map<number, Block>(), new Map<number, Block>()];
  private readonly frameBlocks = new Map<number, FrameCode>();
  /** Blocks decoded so far: a guest whose writes keep dropping its decoded code shows here. */
  blocksDecoded = 0;
  private curBlock: Block | null = null;
  /** Bumped whenever the linear-to-physical mapping of code or the mode may have changed: unchains blocks. */
  private fetchGen = 0;
  /** Code size, user, paging and virtual-8086 as bits (recomputeMode): part of a chain's fetch context. */
  private fetchMode = 0;
  /** Host frames the block being decoded reads. */
  private decodeFrames: number[] = [];

  constructor(options: CpuOptions) {
    super();
    this.bus = options.bus;
    this.model = options.model ?? genericModel;
    this.fuseBlocks = options.fuseBlocks ?? true;
    this.tlb = new Tlb();
    this.tlbs.set(0, this.tlb);
    this.bus.ram.onCodeWrite((frame, off, len) => this.invalidateFrame(frame, off, len));
    this.stateChanged();
    this.ext = this.model.createExtension(this);
  }

  get cpl(): number {
    return this.cplValue;
  }

  get insnLength(): number {
    return this.curInsn?.len ?? 0;
  }

  // ---- Flags ----------------------------------------------------------------------------

  getRflags(): number {
    return materialize(this);
  }

  setRflags(value: number): void {
    const old = this.rflags;
    this.rflags = (value & RFLAGS_DEFINED) | RFLAGS.FIXED1;
    this.lfMask = 0;
    // A fused self-looping block must leave so the run loop starts stepping.
    if ((this.rflags & STEP_FLAGS) !== 0) this.attention = true;
    if (((old ^ this.rflags) & RFLAGS.VM) !== 0) this.stateChanged();
  }

  /** Folds lazy flags into rflags before code outside the interpreter core looks at the state. */
  syncFlags(): void {
    flushFlags(this);
  }

  // ---- Mode -----------------------------------------------------------------------------

  stateChanged(): void {
    this.recomputeMode();
    this.fetchGen++;
  }

  worldSwitched(): void {
    this.recomputeMode();
  }

  /** The mode, CPL and sizes the state fields imply, and the fetch-mode bits block chains are checked against. */
  private recomputeMode(): void {
    this.modeSerial++;
    const cs = this.seg[SEG.CS]!;
    const ss = this.seg[SEG.SS]!;
    const pe = (this.cr0 & CR0.PE) !== 0;
    this.v86 = pe && (this.rflags & RFLAGS.VM) !== 0;
    this.protectedMode = pe && !this.v86;
    this.long64 = pe && (this.efer & EFER.LMA) !== 0 && (cs.ar & AR.L) !== 0;
    this.codeSize = this.long64 ? 64 : this.protectedMode && (cs.ar & AR.DB) !== 0 ? 32 : 16;
    this.stackSize = this.long64 ? 64 : this.protectedMode && (ss.ar & AR.DB) !== 0 ? 32 : 16;
    this.cplValue = !pe ? 0 : this.v86 ? 3 : (ss.ar & AR.DPL_MASK) >> AR.DPL_SHIFT;
    this.pagingOn = pe && (this.cr0 & CR0.PG) !== 0;
    this.selectTlbSets();
    this.fetchMode = this.codeSize | (this.cplValue === 3 ? 1 : 0) | (this.pagingOn ? 2 : 0) | (this.v86 ? 4 : 0);
  }

  private selectTlbSets(): void {
    const user = this.cplValue === 3 ? 1 : 0;
    this.rdSet = (TLB_SET.READ + user) * TLB_SIZE;
    this.wrSet = (TLB_SET.WRITE + user) * TLB_SIZE;
    this.fxSet = (TLB_SET.FETCH + user) * TLB_SIZE;
  }

  // ---- Faults, stops, events ------------------------------------------------------------

  fault(vector: number, errorCode = -1): never {
    this.faultVector = vector;
    this.faultCode = errorCode;
    throw FAULT;
  }

  stop(reason: StopReason): never {
    this.stopReason = reason;
    throw STOP_SIGNAL;
  }

  catchFault(f: () => void): { vector: number; errorCode: number } | null {
    try {
      f();
      return null;
    } catch (e) {
      if (e !== FAULT) throw e;
      return { vector: this.faultVector, errorCode: this.faultCode };
    }
  }

  endInsn(reason: StopReason): void {
    this.stopReason = reason;
    this.stopPending = true;
    this.aborted = true;
    this.attention = true;
  }

  abortInsn(): never {
    throw STOP_SIGNAL;
  }

  requestStop(): void {
    this.stopRequested = true;
    this.attention = true;
  }

  raiseInterrupt(vector: number): void {
    this.pendingInterrupt = vector & 0xff;
    this.attention = true;
  }

  raiseNmi(): void {
    this.pendingNmi = true;
    this.attention = true;
  }

  injectEvent(intrInfo: number, errorCode: number, insnLength: number): void {
    flushFlags(this);
    if (this.inRun) {
      deliverEvent(this, intrInfo, errorCode, insnLength);
      this.stateChanged();
      return;
    }
    // Outside run() nothing may throw: a fault while delivering is delivered by the next run().
    this.insnStart = this.rip;
    try {
      deliverEvent(this, intrInfo, errorCode, insnLength);
      this.stateChanged();
    } catch (e) {
      if (e === FAULT) this.faultPending = true;
      else if (e !== STOP_SIGNAL) this.internalError = this.describe(e);
    }
  }

  /** Delivers an event from inside an instruction (INT n, INT3, INTO, INT1). */
  deliverSoftware(intrInfo: number, insnLength: number): void {
    flushFlags(this);
    this.deliveredInInsn = true;
    this.debugConditions = 0;
    deliverEvent(this, intrInfo, -1, insnLength);
    this.stateChanged();
  }

  // ---- Run loop -------------------------------------------------------------------------

  run(maxInstructions: number): StopReason {
    this.runTarget = this.icount + maxInstructions;
    const nested = this.faultPending ? 1 : 0;
    this.faultPending = false;
    // A VM exit outside run() (while injecting from TypeScript) stops nothing.
    this.stopPending = false;
    this.aborted = false;
    this.inRun = true;
    try {
      return this.runLoop(nested);
    } finally {
      this.inRun = false;
    }
  }

  private runLoop(nestedAtStart: number): StopReason {
    let nested = nestedAtStart;
    for (;;) {
      try {
        if (nested > 0) { this.deliverFault(); nested = 0; }
        const r = this.runBlocks();
        flushFlags(this);
        return r;
      } catch (e) {
        flushFlags(this);
        this.curBlock = null;
        if (e === STOP_SIGNAL) {
          this.stopPending = false;
          this.aborted = false;
          return this.stopReason;
        }
        if (e !== FAULT) return this.internal(e);
        if (nested++ >= MAX_NESTED_FAULTS) {
          this.activity = ACTIVITY.SHUTDOWN;
          return STOP.SHUTDOWN;
        }
      }
    }
  }

  private internal(e: unknown): StopReason {
    this.internalError = this.describe(e);
    return STOP.INTERNAL;
  }

  private describe(e: unknown): string {
    return e instanceof Error ? `${e.message}\n${e.stack ?? ''}` : String(e);
  }

  /** Delivers the fault the last instruction raised, at its start. A fault while delivering it propagates. */
  private deliverFault(): void {
    this.rip = this.insnStart;
    this.interruptibility &= ~(INTERRUPTIBILITY.STI | INTERRUPTIBILITY.MOV_SS);
    const vec = this.faultVector;
    const code = this.faultCode;
    const info = makeIntrInfo(vec, EVENT_TYPE.HW_EXCEPTION, code >= 0);
    deliverEvent(this, info, code, 0);
    this.stateChanged();
  }

  private runBlocks(): StopReason {
    for (;;) {
      if (this.attention || this.icount >= this.deadline || this.icount >= this.extDeadline) {
        if (this.stopPending) {
          // curBlock stays: after a VM exit and the entry back, its chain is followed only if the
          // fetch context it was made in holds and RIP is where its successor starts.
          this.stopPending = false;
          return this.stopReason;
        }
        if (this.stopRequested) {
          this.stopRequested = false;
          return STOP.REQUESTED;
        }
        this.serviceEvents();
      }
      if (this.activity !== ACTIVITY.ACTIVE) {
        return this.activity === ACTIVITY.SHUTDOWN ? STOP.SHUTDOWN : STOP.HLT;
      }
      let left = this.runTarget - this.icount;
      if (left <= 0) return STOP.BUDGET;
      // The silicon's timers (MTF, the VMX-preemption timer) are exact: stop the block there.
      const toExt = this.extDeadline - this.icount;
      if (toExt > 0 && toExt < left) left = toExt;
      const shadow = (this.interruptibility & (INTERRUPTIBILITY.STI | INTERRUPTIBILITY.MOV_SS)) !== 0;
      if (shadow) left = 1;
      if ((this.rflags & STEP_FLAGS) !== 0 || (this.dr[7]! & DR7_ENABLE_MASK) !== 0 || this.heldDebugTrap !== 0) {
        this.stepDebug();
        if (shadow) this.interruptibility &= ~(INTERRUPTIBILITY.STI | INTERRUPTIBILITY.MOV_SS);
        continue;
      }
      this.watchData = false;

      this.insnStart = this.rip;
      const b = this.nextBlock();
      const insns = b.insns;
      if (insns.length <= left) {
        const fn = b.compiled;
        if (fn !== null) {
          const d = this.deadline < this.extDeadline ? this.deadline : this.extDeadline;
          this.loopLimit = d < this.runTarget ? d : this.runTarget;
          fn(this);
          continue;
        }
        if (++b.runs === HOT_BLOCK_RUNS && b.map !== null && this.fuseBlocks) b.compiled = compileBlock(b);
      }
      const n = insns.length < left ? insns.length : left;
      for (let k = 0; k < n && b.valid; k++) {
        const i = insns[k]!;
        this.curInsn = i;
        const start = this.rip;
        this.insnStart = start;
        this.rip = start + i.len;
        i.exec(this, i);
        if (this.aborted) { this.aborted = false; break; }
        this.icount++;
      }
      if (shadow) this.interruptibility &= ~(INTERRUPTIBILITY.STI | INTERRUPTIBILITY.MOV_SS);
    }
  }

  /**
   * One instruction with the debug conditions checked around it (SDM Vol. 3A 18.3.1): an
   * instruction breakpoint before it (a fault, unless RF is set), the single-step trap after it
   * when TF was set at its start (so not after the POPF/IRET that sets TF), none after an
   * instruction that delivered an event itself, and RF cleared once it retires.
   */
  private stepDebug(): void {
    const start = this.rip;
    const flags = this.rflags;
    this.insnStart = start;
    if ((flags & RFLAGS.RF) === 0 && (this.dr[7]! & DR7_ENABLE_MASK) !== 0) {
      const hits = instructionBreakpoints(this.dr, this.codeLinear(start));
      if (hits !== 0) {
        this.dr[6] = dr6After(this.dr[6]!, hits);
        this.debugConditions = hits;
        // The image pushed for this fault has RF = 1, so the IRET back does not hit it again (SDM 18.3.1.1).
        this.rflags |= RFLAGS.RF;
        this.fault(VEC.DB);
      }
    }
    const watch = dataBreakpointsArmed(this.dr[7]!);
    if (watch && !this.watchData) this.flushTlb(); // drop the read/write entries cached before
    this.watchData = watch;
    this.dataHits = 0;
    const movSsBefore = this.interruptibility & INTERRUPTIBILITY.MOV_SS;
    const i = this.nextBlock().insns[0]!;
    this.curInsn = i;
    this.rip = start + i.len;
    this.deliveredInInsn = false;
    i.exec(this, i);
    if (this.aborted) { this.aborted = false; return; }
    this.icount++;
    if ((flags & RFLAGS.RF) !== 0) this.rflags &= ~RFLAGS.RF;
    // Data breakpoints are traps too: reported after the instruction that made the access (SDM 18.3.1.2).
    let bits = this.heldDebugTrap | this.dataHits;
    this.heldDebugTrap = 0;
    if ((flags & RFLAGS.TF) !== 0 && !this.deliveredInInsn) bits |= DR6.BS;
    if (bits === 0) return;
    // MOV SS/POP SS hold debug traps until after the next instruction (SDM 6.8.3).
    if (movSsBefore === 0 && (this.interruptibility & INTERRUPTIBILITY.MOV_SS) !== 0) {
      this.heldDebugTrap = bits;
      return;
    }
    this.deliverDebugTrap(bits);
  }

  /** A #DB trap after an instruction: DR6 first (SVM's #DB intercept sees it, VMX reports it as the exit qualification), RIP past the instruction. */
  private deliverDebugTrap(bits: number): void {
    this.dr[6] = dr6After(this.dr[6]!, bits);
    this.debugConditions = bits;
    this.insnStart = this.rip;
    flushFlags(this);
    deliverEvent(this, makeIntrInfo(VEC.DB, EVENT_TYPE.HW_EXCEPTION, false), -1, 0);
    this.stateChanged();
  }

  private serviceEvents(): void {
    this.attention = false;
    if (this.icount >= this.deadline) {
      this.deadline = Infinity;
      if (this.onDeadline !== null) this.onDeadline();
    }
    if (this.icount >= this.extDeadline) this.attention = true;
    flushFlags(this);
    if (this.ext !== null) this.ext.checkEvents();
    const blocked = (this.interruptibility & (INTERRUPTIBILITY.STI | INTERRUPTIBILITY.MOV_SS)) !== 0;
    if (this.pendingNmi && !blocked && (this.interruptibility & INTERRUPTIBILITY.NMI) === 0) {
      this.pendingNmi = false;
      this.activity = ACTIVITY.ACTIVE;
      this.insnStart = this.rip;
      deliverEvent(this, makeIntrInfo(VEC.NMI, EVENT_TYPE.NMI, false), -1, 0);
      this.interruptibility |= INTERRUPTIBILITY.NMI;
      this.stateChanged();
    } else if (this.pendingInterrupt >= 0 && !blocked && (this.rflags & RFLAGS.IF) !== 0) {
      const vector = this.pendingInterrupt;
      this.pendingInterrupt = -1;
      this.activity = ACTIVITY.ACTIVE;
      this.insnStart = this.rip;
      deliverEvent(this, makeIntrInfo(vector, EVENT_TYPE.EXT_INTR, false), -1, 0);
      this.stateChanged();
    }
    if (this.pendingNmi || this.pendingInterrupt >= 0) this.attention = true;
  }

  // ---- Decoded blocks -------------------------------------------------------------------

  private nextBlock(): Block {
    const rip = this.rip;
    const prev = this.curBlock;
    const cs = this.seg[SEG.CS]!;
    const chainsHold = prev !== null && prev.chainGen === this.fetchGen && prev.chainTlb === this.tlb && prev.chainCs === cs && prev.chainMode === this.fetchMode;
    if (chainsHold) {
      const s0 = prev.succ0;
      if (prev.succRip0 === rip && s0 !== null && s0.valid) return (this.curBlock = s0);
      const s1 = prev.succ1;
      if (prev.succRip1 === rip && s1 !== null && s1.valid) return (this.curBlock = s1);
    }
    const b = this.lookupBlock(rip);
    if (prev !== null && b.map !== null) {
      if (!chainsHold) {
        prev.chainGen = this.fetchGen;
        prev.chainTlb = this.tlb;
        prev.chainCs = cs;
        prev.chainMode = this.fetchMode;
        prev.succ0 = prev.succ1 = null;
        prev.succRip0 = prev.succRip1 = NaN;
      }
      if (prev.succ0 === null || !prev.succ0.valid) { prev.succ0 = b; prev.succRip0 = rip; }
      else { prev.succ1 = b; prev.succRip1 = rip; }
    }
    this.curBlock = b;
    return b;
  }

  private lookupBlock(rip: number): Block {
    const la = this.codeLinear(rip);
    const t = this.tlb;
    let idx = this.fxSet + ((la >>> 12) & TLB_MASK);
    const o = la & 0xfff;
    if (t.tag[idx] !== la - o) {
      this.xlate(la, this.fxSet, ACCESS.FETCH);
      idx = this.fxSet + ((la >>> 12) & TLB_MASK);
      if (t.tag[idx] !== la - o) return this.buildBlock(rip, -1, null); // not DRAM: decode every time
    }
    const key = t.frame[idx]! * 4096 + o;
    const map = this.blocks[this.codeSize === 64 ? 2 : this.codeSize === 32 ? 1 : 0]!;
    return map.get(key) ?? this.buildBlock(rip, key, map);
  }

  private buildBlock(rip: number, key: number, map: Map<number, Block> | null): Block {
    const insns: Insn[] = [];
    this.decodeFrames = [];
    const pageLeft = 4096 - (this.codeLinear(rip) & 0xfff);
    let off = 0;
    while (insns.length < MAX_BLOCK_INSNS && off < pageLeft) {
      let i: Insn;
      try {
        i = decodeInsn(this, rip + off, this.codeSize);
      } catch (e) {
        if (e === FAULT && insns.length > 0) break; // fault when the instruction is reached
        throw e;
      }
      off += i.len;
      i.end = off;
      insns.push(i);
      if (i.endsBlock) break;
    }
    const b = new Block(insns, key, map);
    this.blocksDecoded++;
    if (map !== null) {
      map.set(key, b);
      for (const f of this.decodeFrames) {
        // A frame already holding code has no write entries cached anywhere.
        if (!this.bus.ram.isCodeFrame(f)) {
          this.bus.ram.markCodeFrame(f);
          for (const t of this.tlbs.values()) t.flushWriteFrame(f);
        }
        let code = this.frameBlocks.get(f);
        if (code === undefined) this.frameBlocks.set(f, (code = new FrameCode()));
        code.add(b, f);
      }
    }
    return b;
  }

  /**
   * A write to bytes [off, off+len) of a frame holding decoded code: the blocks whose code it
   * touches are dropped, the others stay (data beside code in one page is common). Returns
   * whether the frame still holds this CPU's code.
   */
  private invalidateFrame(frame: number, off: number, len: number): boolean {
    const code = this.frameBlocks.get(frame);
    if (code === undefined) return false;
    if (off >= code.hi || off + len <= code.lo) return true;
    const kept = new FrameCode();
    for (const b of code.blocks) {
      if (!b.valid) continue;
      const [lo, hi] = b.extentIn(frame);
      if (off < hi && off + len > lo) {
        b.valid = false;
        if (b.map !== null && b.map.get(b.key) === b) b.map.delete(b.key);
      } else {
        kept.add(b, frame);
      }
    }
    if (kept.blocks.length === 0) {
      this.frameBlocks.delete(frame);
      return false;
    }
    this.frameBlocks.set(frame, kept);
    return true;
  }

  /** One code byte at CS:`offset`, for the decoder (CS limit, fetch translation). */
  fetchCode(offset: number): number {
    const la = this.codeLinear(offset);
    if (!this.long64 && offset > this.seg[SEG.CS]!.limit) this.fault(VEC.GP, 0);
    const t = this.tlb;
    let idx = this.fxSet + ((la >>> 12) & TLB_MASK);
    const o = la & 0xfff;
    if (t.tag[idx] !== la - o) {
      const hpa = this.xlate(la, this.fxSet, ACCESS.FETCH);
      idx = this.fxSet + ((la >>> 12) & TLB_MASK);
      if (t.tag[idx] !== la - o) return this.bus.readPhys(hpa, 1);
    }
    const frame = t.frame[idx]!;
    const fl = this.decodeFrames;
    if (fl.length === 0 || fl[fl.length - 1] !== frame) fl.push(frame);
    return t.chunk[idx]![t.off[idx]! + o]!;
  }

  private codeLinear(rip: number): number {
    if (this.long64) {
      if (rip < -CANONICAL_LIMIT || rip >= CANONICAL_LIMIT) this.fault(VEC.GP, 0);
      return rip;
    }
    return (this.seg[SEG.CS]!.base + rip) >>> 0;
  }

  // ---- TLB ------------------------------------------------------------------------------

  setTlbTag(tag: number): void {
    let t = this.tlbs.get(tag);
    if (t === undefined) this.tlbs.set(tag, (t = new Tlb()));
    this.tlb = t;
  }

  flushTlb(tag?: number, linear?: number): void {
    if (tag === undefined) {
      for (const t of this.tlbs.values()) flushOne(t, linear);
    } else {
      const t = this.tlbs.get(tag);
      if (t !== undefined) flushOne(t, linear);
    }
    this.fetchGen++;
  }

  /**
   * Translates `la` for an access of the kind `set` selects and caches it when the page is DRAM
   * (write entries never for frames holding decoded code). Returns the host-physical address.
   */
  private xlate(la: number, set: number, kind: number): number {
    const user = (set / TLB_SIZE) & 1;
    let hpa: number;
    if (this.pagingOn || (this.ext !== null && this.ext.guest)) {
      flushFlags(this);
      hpa = translateLinear(this, la, kind | (user !== 0 ? ACCESS.USER : 0));
    } else {
      hpa = this.long64 ? la : la >>> 0;
    }
    const ram = this.bus.resolveRam(hpa);
    if (ram >= 0 && (kind === ACCESS.FETCH || !this.watchData)) {
      const frame = Math.floor(ram / 4096);
      if (kind !== ACCESS.WRITE || !this.bus.ram.isCodeFrame(frame)) {
        const pageRam = ram - (ram & 0xfff);
        this.tlb.fill(set + ((la >>> 12) & TLB_MASK), la - (la & 0xfff), this.bus.ram.chunk(pageRam), pageRam % CHUNK_SIZE, frame);
      }
    }
    return hpa;
  }

  // ---- Segmentation ---------------------------------------------------------------------

  /**
   * Segment `seg` : `offset` to a linear address for a `size`-byte access, with the limit and
   * type checks of SDM Vol. 3A 5.3-5.4 outside 64-bit mode and the canonical check in it.
   */
  linear(seg: number, offset: number, size: number, write: boolean): number {
    if (this.long64) {
      const la = seg >= SEG.FS ? offset + this.seg[seg]!.base : offset;
      if (la < -CANONICAL_LIMIT || la >= CANONICAL_LIMIT) this.fault(seg === SEG.SS ? VEC.SS : VEC.GP, 0);
      return la;
    }
    const s = this.seg[seg]!;
    const ar = s.ar;
    const end = offset + size - 1;
    if (this.protectedMode) {
      const type = ar & AR.TYPE_MASK;
      if ((ar & AR.UNUSABLE) !== 0 || (write ? (type & 0xa) !== 2 : (type & 0xa) === 8)) this.segFault(seg);
    }
    if ((ar & (AR.S | 0xc)) === (AR.S | 0x4)) { // expand-down data segment
      const upper = (ar & AR.DB) !== 0 ? 0xffffffff : 0xffff;
      if (offset <= s.limit || end > upper) this.segFault(seg);
    } else if (end > s.limit) {
      this.segFault(seg);
    }
    return (s.base + offset) >>> 0;
  }

  private segFault(seg: number): never {
    return this.fault(seg === SEG.SS ? VEC.SS : VEC.GP, 0);
  }

  // ---- Linear memory --------------------------------------------------------------------

  read8(la: number): number {
    const o = la & 0xfff;
    const idx = this.rdSet + ((la >>> 12) & TLB_MASK);
    const t = this.tlb;
    if (t.tag[idx] === la - o) return t.chunk[idx]![t.off[idx]! + o]!;
    return this.readSlow(la, 1, this.rdSet, ACCESS.READ);
  }

  read16(la: number): number {
    const o = la & 0xfff;
    const idx = this.rdSet + ((la >>> 12) & TLB_MASK);
    const t = this.tlb;
    if (t.tag[idx] === la - o && o <= 0xffe) {
      const c = t.chunk[idx]!;
      const p = t.off[idx]! + o;
      return c[p]! | (c[p + 1]! << 8);
    }
    return this.readSlow(la, 2, this.rdSet, ACCESS.READ);
  }

  /** Unsigned 32-bit read. */
  read32(la: number): number {
    const o = la & 0xfff;
    const idx = this.rdSet + ((la >>> 12) & TLB_MASK);
    const t = this.tlb;
    if (t.tag[idx] === la - o && o <= 0xffc) {
      const c = t.chunk[idx]!;
      const p = t.off[idx]! + o;
      return (c[p]! | (c[p + 1]! << 8) | (c[p + 2]! << 16) | (c[p + 3]! << 24)) >>> 0;
    }
    return this.readSlow(la, 4, this.rdSet, ACCESS.READ);
  }

  /** 64-bit read: returns the low half (unsigned), leaves the high half (signed int32) in `hi`. */
  read64(la: number): number {
    const o = la & 0xfff;
    if (o <= 0xff8 && this.tlb.tag[this.rdSet + ((la >>> 12) & TLB_MASK)] !== la - o && !this.watchData) {
      // Not a cached RAM page: a device sees one 8-byte access, not two 4-byte ones.
      const hpa = this.xlate(la, this.rdSet, ACCESS.READ);
      if (this.bus.resolveRam(hpa) < 0) {
        const v = this.bus.readPhys64(hpa);
        this.hi = v[1] | 0;
        return v[0] >>> 0;
      }
    }
    const lo = this.read32(la);
    this.hi = this.read32(la + 4) | 0;
    return lo;
  }

  /** Reads for a read-modify-write: translated for writing, so a read-only page faults before anything changes. */
  readForWrite(la: number, size: number): number {
    const o = la & 0xfff;
    const idx = this.wrSet + ((la >>> 12) & TLB_MASK);
    const t = this.tlb;
    if (t.tag[idx] === la - o && o <= 4096 - size) {
      const c = t.chunk[idx]!;
      const p = t.off[idx]! + o;
      if (size === 4) return (c[p]! | (c[p + 1]! << 8) | (c[p + 2]! << 16) | (c[p + 3]! << 24)) >>> 0;
      if (size === 1) return c[p]!;
      return c[p]! | (c[p + 1]! << 8);
    }
    return this.readSlow(la, size, this.wrSet, ACCESS.WRITE);
  }

  write8(la: number, v: number): void {
    const o = la & 0xfff;
    const idx = this.wrSet + ((la >>> 12) & TLB_MASK);
    const t = this.tlb;
    if (t.tag[idx] === la - o) { t.chunk[idx]![t.off[idx]! + o] = v; return; }
    this.writeSlow(la, 1, v);
  }

  write16(la: number, v: number): void {
    const o = la & 0xfff;
    const idx = this.wrSet + ((la >>> 12) & TLB_MASK);
    const t = this.tlb;
    if (t.tag[idx] === la - o && o <= 0xffe) {
      const c = t.chunk[idx]!;
      const p = t.off[idx]! + o;
      c[p] = v; c[p + 1] = v >>> 8;
      return;
    }
    this.writeSlow(la, 2, v);
  }

  write32(la: number, v: number): void {
    const o = la & 0xfff;
    const idx = this.wrSet + ((la >>> 12) & TLB_MASK);
    const t = this.tlb;
    if (t.tag[idx] === la - o && o <= 0xffc) {
      const c = t.chunk[idx]!;
      const p = t.off[idx]! + o;
      c[p] = v; c[p + 1] = v >>> 8; c[p + 2] = v >>> 16; c[p + 3] = v >>> 24;
      return;
    }
    this.writeSlow(la, 4, v);
  }

  write64(la: number, lo: number, hi: number): void {
    const o = la & 0xfff;
    if (o <= 0xff8 && this.tlb.tag[this.wrSet + ((la >>> 12) & TLB_MASK)] !== la - o && !this.watchData) {
      const hpa = this.xlate(la, this.wrSet, ACCESS.WRITE);
      if (this.bus.resolveRam(hpa) < 0) { this.bus.writePhys64(hpa, lo, hi); return; }
    }
    if (o > 0xff8) { // both pages must be writable before either half is stored
      this.xlate(la, this.wrSet, ACCESS.WRITE);
      this.xlate(la - (la & 0xfff) + 4096, this.wrSet, ACCESS.WRITE); // CR2 is the first byte on the second page
    }
    this.write32(la, lo);
    this.write32(la + 4, hi);
  }

  /** Sized access helpers for handlers parameterised by width (size in bytes: 1, 2, 4). */
  readN(la: number, size: number): number {
    return size === 4 ? this.read32(la) : size === 1 ? this.read8(la) : this.read16(la);
  }

  writeN(la: number, size: number, v: number): void {
    if (size === 4) this.write32(la, v);
    else if (size === 1) this.write8(la, v);
    else this.write16(la, v);
  }

  private readSlow(la: number, size: number, set: number, kind: number): number {
    if (this.watchData) this.dataHits |= dataBreakpoints(this.dr, la, size, kind === ACCESS.WRITE);
    const o = la & 0xfff;
    if (o + size > 4096) {
      const first = 4096 - o;
      const h1 = this.xlate(la, set, kind);
      const h2 = this.xlate(la + first, set, kind);
      let v = 0;
      for (let k = size - 1; k >= 0; k--) v = (v << 8) | this.bus.readPhys(k < first ? h1 + k : h2 + k - first, 1);
      return v >>> 0;
    }
    const hpa = this.xlate(la, set, kind);
    const idx = set + ((la >>> 12) & TLB_MASK);
    const t = this.tlb;
    if (t.tag[idx] === la - o) {
      const c = t.chunk[idx]!;
      const p = t.off[idx]! + o;
      let v = 0;
      for (let k = size - 1; k >= 0; k--) v = (v << 8) | c[p + k]!;
      return v >>> 0;
    }
    return this.bus.readPhys(hpa, size as 1 | 2 | 4) >>> 0;
  }

  private writeSlow(la: number, size: number, v: number): void {
    if (this.watchData) this.dataHits |= dataBreakpoints(this.dr, la, size, true);
    const o = la & 0xfff;
    const set = this.wrSet;
    if (o + size > 4096) {
      const first = 4096 - o;
      const h1 = this.xlate(la, set, ACCESS.WRITE);
      const h2 = this.xlate(la + first, set, ACCESS.WRITE);
      for (let k = 0; k < size; k++) this.bus.writePhys(k < first ? h1 + k : h2 + k - first, 1, (v >>> (8 * k)) & 0xff);
      return;
    }
    const hpa = this.xlate(la, set, ACCESS.WRITE);
    const idx = set + ((la >>> 12) & TLB_MASK);
    const t = this.tlb;
    if (t.tag[idx] === la - o) {
      const c = t.chunk[idx]!;
      const p = t.off[idx]! + o;
      for (let k = 0; k < size; k++) c[p + k] = v >>> (8 * k);
      return;
    }
    this.bus.writePhys(hpa, size as 1 | 2 | 4, v);
  }

  // ---- Segmented memory (VirtCpu) -------------------------------------------------------

  readMem(seg: number, offset: number, size: 1 | 2 | 4): number {
    return this.readN(this.linear(seg, offset, size, false), size);
  }

  writeMem(seg: number, offset: number, size: 1 | 2 | 4, value: number): void {
    this.writeN(this.linear(seg, offset, size, true), size, value);
  }
}
