/**
 * A stand-in for @kvmts/x86's Cpu with just what the VMX silicon touches, for unit tests of hw/
 * that need no instruction execution: faults and stops throw, run() returns at once.
 */
import { Bus, CpuState, PhysMemory, STOP, CR0, CR4, EFER, SEG, makeSegment, type StopReason } from '@kvmts/x86';
import { VmxSilicon, type VmxCpu, type VmxSiliconOptions } from '../src/index.js';

export class FaultError extends Error {
  readonly vector: number;
  readonly errorCode: number;
  constructor(vector: number, errorCode: number) {
    super(`fault ${vector}`);
    this.vector = vector;
    this.errorCode = errorCode;
  }
}
export class StopError extends Error {
  readonly reason: StopReason;
  constructor(reason: StopReason) {
    super(`stop ${reason}`);
    this.reason = reason;
  }
}

export class FakeCpu extends CpuState {
  readonly bus: Bus;
  ext: VmxSilicon | null = null;
  insnLength = 0;
  insnStart = 0;
  cpl = 0;
  deadline = Infinity;
  onDeadline: (() => void) | null = null;
  extDeadline = Infinity;
  pendingInterrupt = -1;
  pendingNmi = false;
  attention = false;
  tlbTag = 0;
  flushes: [number | undefined, number | undefined][] = [];
  injected: [number, number, number][] = [];
  /** What run() does in guest mode: by default nothing (returns BUDGET). */
  onRun: (() => void) | null = null;

  constructor(mem: PhysMemory) {
    super();
    this.bus = new Bus(mem);
  }

  get model(): never { throw new Error('no model'); }
  get operand(): never { throw new Error('no operand'); }
  /** Tests change the mode fields directly: a new serial on every read keeps the silicon's mode checks running. */
  private serial = 0;
  get modeSerial(): number { return ++this.serial; }
  getRflags(): number { return this.rflags; }
  setRflags(v: number): void { this.rflags = v | 2; }
  stateChanged(): void {}
  worldSwitched(): void {}
  fault(vector: number, errorCode = -1): never { throw new FaultError(vector, errorCode); }
  injectEvent(i: number, e: number, l: number): void { this.injected.push([i, e, l]); }
  stop(reason: StopReason): never { throw new StopError(reason); }
  run(_max: number): StopReason {
    try {
      this.onRun?.();
    } catch (e) {
      if (e instanceof StopError) return e.reason;
      throw e;
    }
    return STOP.BUDGET;
  }
  raiseInterrupt(v: number): void { this.pendingInterrupt = v; this.attention = true; }
  raiseNmi(): void { this.pendingNmi = true; this.attention = true; }
  readMem(): number { return 0; }
  writeMem(): void {}
  setTlbTag(tag: number): void { this.tlbTag = tag; }
  flushTlb(tag?: number, linear?: number): void { this.flushes.push([tag, linear]); }
}

/** A pCPU in 64-bit kernel state with CR4.VMXE, as hardware_enable leaves it before VMXON. */
export function makeVmxCpu(opts: VmxSiliconOptions = {}, memBytes = 16 << 20): { cpu: FakeCpu; vmx: VmxSilicon; mem: PhysMemory } {
  const mem = new PhysMemory(memBytes);
  const cpu = new FakeCpu(mem);
  cpu.cr0 = (CR0.PE | CR0.MP | CR0.ET | CR0.NE | CR0.WP | CR0.AM | CR0.PG) | 0;
  cpu.cr4 = CR4.PAE | CR4.PGE | CR4.VMXE | CR4.OSFXSR;
  cpu.efer = EFER.SCE | EFER.LME | EFER.LMA | EFER.NXE;
  cpu.cr3 = 0x1000;
  cpu.seg[SEG.CS] = makeSegment(0x10, 0, 0xffffffff, 0xa09b);
  cpu.seg[SEG.SS] = makeSegment(0x18, 0, 0xffffffff, 0xc093);
  cpu.seg[SEG.TR] = makeSegment(0x40, 0x5000, 0x67, 0x8b);
  const vmx = new VmxSilicon(cpu as unknown as VmxCpu, opts);
  cpu.ext = vmx;
  return { cpu, vmx, mem };
}

/** Writes a VMCS/VMXON region header (revision id) into a fresh page. */
export function makeRegion(mem: PhysMemory, hpa: number, revision: number): number {
  mem.fill(hpa, 4096, 0);
  mem.write32(hpa, revision);
  return hpa;
}
