/**
 * A scripted stand-in for the @kvmts/x86 Cpu, for the silicon's unit tests: each "instruction"
 * is a function run Bochs-style (RIP advanced before it executes, insnStart kept), events are
 * serviced through ext.checkEvents() while `attention` is set, and stop()/fault() unwind run()
 * as the real CPU's do. It lets a test drive every intercept hook with exact arguments.
 */
import {
  Bus, CpuState, CR0, CR4, EFER, PhysMemory, RFLAGS, STOP,
  type CpuModel, type InsnOperand, type StopReason, type VirtCpu, type VirtExtension,
} from '@kvmts/x86';

export interface Step {
  len: number;
  exec: (cpu: FakeCpu) => void;
}

class StopSignal {
  readonly reason: StopReason;
  constructor(reason: StopReason) { this.reason = reason; }
}

export class FaultSignal {
  readonly vector: number;
  readonly errorCode: number;
  constructor(vector: number, errorCode: number) { this.vector = vector; this.errorCode = errorCode; }
}

export class FakeCpu extends CpuState implements VirtCpu {
  readonly bus: Bus;
  readonly model: CpuModel;
  ext: VirtExtension | null = null;
  insnLength = 0;
  insnStart = 0;
  operand: InsnOperand = { isReg: true, reg1: 0, reg2: 0, seg: 3, base: -1, index: -1, scale: 0, addrSize: 64, opSize: 32, disp: 0, offset: 0 };
  deadline = Infinity;
  onDeadline: (() => void) | null = null;
  extDeadline = Infinity;
  pendingInterrupt = -1;
  pendingNmi = false;
  attention = false;
  script: Step[] = [];
  readonly injected: { info: number; err: number; len: number }[] = [];
  readonly faults: FaultSignal[] = [];
  readonly tlbOps: string[] = [];
  tlbTag = 0;

  constructor(memBytes = 16 << 20, model: CpuModel) {
    super();
    this.bus = new Bus(new PhysMemory(memBytes));
    this.model = model;
    this.ext = model.createExtension(this);
  }

  get cpl(): number {
    return this.cr0 & CR0.PE ? (this.seg[2]!.ar >> 5) & 3 : 0;
  }

  /** Tests change the mode fields directly: a new serial on every read keeps the silicon's mode checks running. */
  private serial = 0;
  get modeSerial(): number { return ++this.serial; }
  getRflags(): number { return this.rflags; }
  setRflags(v: number): void { this.rflags = (v | RFLAGS.FIXED1) >>> 0; }
  stateChanged(): void {}
  worldSwitched(): void {}
  raiseInterrupt(vector: number): void { this.pendingInterrupt = vector; this.attention = true; }
  raiseNmi(): void { this.pendingNmi = true; this.attention = true; }
  fault(vector: number, errorCode = -1): never { throw new FaultSignal(vector, errorCode); }
  catchFault(f: () => void): { vector: number; errorCode: number } | null {
    try { f(); return null; } catch (e) { if (e instanceof FaultSignal) return { vector: e.vector, errorCode: e.errorCode }; throw e; }
  }
  injectEvent(info: number, err: number, len: number): void { this.injected.push({ info, err, len }); }
  stop(reason: StopReason): never { throw new StopSignal(reason); }
  private ended: StopReason | -1 = -1;
  endInsn(reason: StopReason): void { this.ended = reason; }
  abortInsn(): never { throw new StopSignal(this.ended === -1 ? STOP.VMEXIT : this.ended); }
  readMem(): number { return 0; }
  writeMem(): void {}
  setTlbTag(tag: number): void { this.tlbTag = tag; this.tlbOps.push(`tag ${tag}`); }
  flushTlb(tag?: number, linear?: number): void { this.tlbOps.push(`flush ${tag ?? 'all'}${linear === undefined ? '' : ` ${linear}`}`); }

  /** Runs the script: STOP.HLT when it runs out. A fault is recorded and ends the run with STOP.BUDGET. */
  run(max: number): StopReason {
    try {
      for (let n = 0; n < max; n++) {
        if (this.attention) { this.attention = false; this.ext?.checkEvents(); }
        const step = this.script.shift();
        if (!step) return STOP.HLT;
        this.insnStart = this.rip;
        this.insnLength = step.len;
        this.rip += step.len;
        this.ended = -1;
        step.exec(this);
        if (this.ended !== -1) return this.ended;
        this.icount++;
      }
      return STOP.BUDGET;
    } catch (e) {
      if (e instanceof StopSignal) return e.reason;
      if (e instanceof FaultSignal) { this.rip = this.insnStart; this.faults.push(e); return STOP.BUDGET; }
      throw e;
    }
  }

  /** A 64-bit kernel's state, as the core's Host brings a pCPU up, with EFER.SVME set. */
  asHost(): this {
    this.cr0 = CR0.PE | CR0.MP | CR0.ET | CR0.NE | CR0.WP | CR0.AM | CR0.PG;
    this.cr4 = CR4.PAE | CR4.PGE | CR4.OSFXSR | CR4.OSXMMEXCPT;
    this.efer = EFER.SCE | EFER.LME | EFER.LMA | EFER.NXE | EFER.SVME;
    this.cr3 = 0x1000;
    this.seg[1] = { selector: 0x10, base: 0, limit: 0xffffffff, ar: 0xa09b };
    this.seg[2] = { selector: 0x18, base: 0, limit: 0xffffffff, ar: 0xc093 };
    this.seg[0] = { selector: 0, base: 0, limit: 0xffffffff, ar: 0xc093 };
    this.seg[3] = { selector: 0, base: 0, limit: 0xffffffff, ar: 0xc093 };
    this.gdtr = { base: 0x5000, limit: 0x7f };
    this.idtr = { base: 0x6000, limit: 0xfff };
    this.rflags = 0x2;
    this.rip = -0x7fff0000; // a kernel text address
    this.gpr[4] = 0x12340; this.gprHi[4] = -0x8000; // kernel stack
    this.gpr[0] = 0x77; this.gprHi[0] = 0;
    return this;
  }
}
