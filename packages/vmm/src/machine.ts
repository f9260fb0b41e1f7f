/**
 * One VM with one vCPU, set up as the `kvmts run` contract says, and the VMM's side of every
 * userspace exit: COM1, the port-0xf4 test exit, 0xff bytes for unclaimed reads, and interrupt
 * injection through KVM_INTERRUPT. `step()` runs the vCPU to its next userspace exit, so a CLI
 * can run to the end and a dashboard can stop, inspect and resume between exits.
 */
import { LONG64_MIN_MEM, setupLong64 } from '@kvmts/core';
import { littleEndian } from './hex.js';
import {
  KVM_REGS_FIELDS, type HostPort, type KvmRegName, type KvmRegs, type KvmSregs, type MigrationReport, type VcpuExit, type VcpuPort, type VmPort, type GuestMemory,
} from './kvm-port.js';
import { realSregs, sregsFromKvm, sregsToKvm } from './sregs.js';
import { COM1_BASE, Uart16550 } from './serial.js';
import { finalRow, ioRow, mmioRow, type FinalRow, type TraceRow } from './trace.js';

export type GuestMode = 'real' | 'long64';

/** The contract's defaults (DESIGN.md). */
export const RUN_DEFAULTS = { mem: 0x200000, load: 0x1000, entry: 0x1000, mode: 'real' as GuestMode } as const;

/** kvm-unit-tests' test exit: an OUT of any size here ends the run with the value as its code. */
export const DEBUG_EXIT_PORT = 0xf4;

/**
 * Interrupts the VMM injects with KVM_INTERRUPT: `vector` each time the guest halts with IF=1
 * (a timer that wakes it), `count` times, or forever when `count` is absent.
 */
export interface IrqPlan {
  readonly vector: number;
  readonly count?: number;
}

export interface MachineOptions {
  readonly image: Uint8Array;
  readonly mem?: number;
  readonly load?: number;
  readonly entry?: number;
  readonly mode?: GuestMode;
  /** Initial GPRs other than 0 (the LWN guest starts with RAX = RBX = 2). */
  readonly regs?: Partial<Record<KvmRegName, number | bigint>>;
  readonly irqs?: IrqPlan;
  /** Each byte the guest writes to COM1's THR. */
  readonly onSerial?: (byte: number) => void;
}

export interface MachineMigrateOptions {
  /** Live pre-copy: the guest runs this many exits between rounds (0 or absent: no rounds, only the full copy). */
  readonly liveExits?: number;
  readonly maxRounds?: number;
  /** Trace rows the guest produces while it runs during pre-copy. */
  readonly onRow?: (row: TraceRow) => void;
}

/** What one step did: the KVM exit, and the trace row it produced (null when the VMM claimed it). */
export interface MachineStep {
  readonly exit: VcpuExit;
  readonly row: TraceRow | null;
  /** Set once the run has ended (this step's row is then the final row). */
  readonly final: FinalRow | null;
}

export class Machine {
  readonly mem: number;
  readonly mode: GuestMode;
  /** Every byte COM1 printed. */
  serialText = '';
  /** The final row, once the guest has ended. */
  final: FinalRow | null = null;
  /** Userspace exits seen, by kind (io, mmio, hlt, …), claimed ones included. */
  readonly exitCounts: Record<string, number> = {};
  /** Every migration this VM went through, oldest first. */
  readonly migrations: MigrationReport[] = [];
  // Not readonly: migrate() moves the VM to another host, and these with it.
  host: HostPort;
  vm: VmPort;
  vcpu: VcpuPort;
  memory: GuestMemory;
  private readonly opts: MachineOptions;
  private readonly uart: Uart16550;
  private irqsLeft: number;

  private constructor(host: HostPort, vm: VmPort, vcpu: VcpuPort, memory: GuestMemory, opts: MachineOptions) {
    this.host = host;
    this.vm = vm;
    this.vcpu = vcpu;
    this.memory = memory;
    this.opts = opts;
    this.mem = opts.mem ?? RUN_DEFAULTS.mem;
    this.mode = opts.mode ?? RUN_DEFAULTS.mode;
    this.irqsLeft = opts.irqs ? (opts.irqs.count ?? Infinity) : 0;
    this.uart = new Uart16550(COM1_BASE, (b) => {
      this.serialText += String.fromCharCode(b);
      opts.onSerial?.(b);
    });
  }

  /** Creates the VM, its memslot and vCPU, loads the image and sets the start state; or returns why not. */
  static create(host: HostPort, opts: MachineOptions): Machine | string {
    const mem = opts.mem ?? RUN_DEFAULTS.mem;
    const load = opts.load ?? RUN_DEFAULTS.load;
    const mode = opts.mode ?? RUN_DEFAULTS.mode;
    if (mem <= 0 || mem % 0x1000 !== 0) return `--mem ${mem} must be a positive multiple of 4096`;
    if (mode === 'long64' && mem < LONG64_MIN_MEM) return `long64 needs at least ${LONG64_MIN_MEM / 1024} KiB of memory for its tables`;
    if (load < 0 || load + opts.image.length > mem) return `image of ${opts.image.length} bytes at 0x${load.toString(16)} does not fit in ${mem} bytes`;
    const vm = host.createVm();
    if (typeof vm === 'number') return `KVM_CREATE_VM failed: errno ${-vm}`;
    const memory = vm.addMemslot(0, 0, mem);
    if (typeof memory === 'number') { vm.destroy(); return `KVM_SET_USER_MEMORY_REGION failed: errno ${-memory}`; }
    const vcpu = vm.createVcpu(0);
    if (typeof vcpu === 'number') { vm.destroy(); return `KVM_CREATE_VCPU failed: errno ${-vcpu}`; }
    const m = new Machine(host, vm, vcpu, memory, opts);
    m.setUp(load);
    return m;
  }

  private setUp(load: number): void {
    this.memory.write(load, this.opts.image);
    const reset = this.vcpu.getSregs();
    if (this.mode === 'long64') {
      this.vcpu.setSregs(sregsFromKvm(setupLong64(this.mem, (gpa, bytes) => this.memory.write(gpa, bytes), sregsToKvm(reset))));
    } else {
      this.vcpu.setSregs(realSregs(reset));
    }
    const regs = {} as KvmRegs;
    for (const name of KVM_REGS_FIELDS) regs[name] = BigInt(this.opts.regs?.[name] ?? 0);
    regs.rip = BigInt(this.opts.entry ?? RUN_DEFAULTS.entry);
    regs.rflags = 0x2n;
    this.vcpu.setRegs(regs);
  }

  get done(): boolean {
    return this.final !== null;
  }

  regs(): KvmRegs {
    return this.vcpu.getRegs();
  }

  sregs(): KvmSregs {
    return this.vcpu.getSregs();
  }

  /** Runs to the next userspace exit (or a preemption, `intr`) and handles it. */
  step(): MachineStep {
    if (this.final) return { exit: { kind: 'hlt' }, row: this.final, final: this.final };
    return this.account(this.vcpu.run());
  }

  private account(exit: VcpuExit): MachineStep {
    this.exitCounts[exit.kind] = (this.exitCounts[exit.kind] ?? 0) + 1;
    const row = this.handle(exit);
    return { exit, row, final: this.final };
  }

  /**
   * KVM_RUN with immediate_exit until -EINTR, handling what comes back: it completes the I/O the
   * VMM answered, and a string PIO may need more userspace exits first (complete_emulated_pio).
   * After this the vCPU's state is all in KVM's hands, ready for the stop-and-copy.
   */
  private completeIo(onRow?: (row: TraceRow) => void): void {
    if (this.vcpu.immediateExit === undefined) return;
    this.vcpu.immediateExit = true;
    try {
      while (!this.final) {
        const exit = this.vcpu.run();
        if (exit.kind === 'intr') break;
        const { row } = this.account(exit);
        if (row) onRow?.(row);
      }
    } finally {
      this.vcpu.immediateExit = false;
    }
  }

  /** Steps until the run ends, or `maxSteps` exits; returns the trace rows in order. */
  runToEnd(onRow?: (row: TraceRow) => void, maxSteps = Infinity): TraceRow[] {
    const rows: TraceRow[] = [];
    for (let n = 0; n < maxSteps && !this.final; n++) {
      const { row } = this.step();
      if (row) { rows.push(row); onRow?.(row); }
    }
    return rows;
  }

  /**
   * Moves the VM to `target` (issue 9) and goes on there: the serial device, the trace and the
   * exit counts stay here in the VMM. Returns the report, or why not (the VM is then untouched).
   */
  migrate(target: HostPort, opts: MachineMigrateOptions = {}): MigrationReport | string {
    if (!this.vm.migrate) return 'this VM\'s port cannot migrate';
    const live = opts.liveExits ?? 0;
    const runSlice = live > 0
      ? () => {
        for (let i = 0; i < live && !this.final; i++) { const { row } = this.step(); if (row) opts.onRow?.(row); }
        this.completeIo(opts.onRow);
      }
      : undefined;
    this.completeIo(opts.onRow);
    const r = this.vm.migrate([this.vcpu], target, { ...(runSlice && { runSlice }), ...(opts.maxRounds !== undefined && { maxRounds: opts.maxRounds }) });
    if (typeof r === 'string') return r;
    // kvm_run.request_interrupt_window is the VMM's, written into the old mapping: carry it over.
    const wantsWindow = this.vcpu.requestInterruptWindow;
    this.host = target;
    this.vm = r.vm;
    this.vcpu = r.vcpus[0]!;
    this.memory = r.memory[0]!;
    this.vcpu.requestInterruptWindow = wantsWindow;
    this.migrations.push(r.report);
    return r.report;
  }

  destroy(): void {
    this.vm.destroy();
  }

  private end(exit: FinalRow['exit'], extra: Parameters<typeof finalRow>[3] = {}): FinalRow {
    this.final = finalRow(exit, this.vcpu.getRegs(), this.vcpu.getSregs(), extra);
    return this.final;
  }

  private handle(exit: VcpuExit): TraceRow | null {
    switch (exit.kind) {
      case 'io': return this.handleIo(exit);
      case 'mmio':
        if (!exit.isWrite) exit.data.fill(0xff);
        return mmioRow(exit.isWrite, exit.addr, exit.data.subarray(0, exit.len));
      case 'hlt':
        if (this.irqsLeft > 0 && this.vcpu.ifFlag) { this.injectIrq(); return null; }
        return this.end('hlt');
      case 'irq_window_open':
        if (this.irqsLeft > 0) this.injectIrq();
        return null;
      case 'intr': return null;
      case 'shutdown': return this.end('shutdown');
      case 'fail_entry': return this.end('fail_entry', { reason: exit.reason });
      case 'internal_error': return this.end('internal_error', { suberror: exit.suberror });
      case 'errno': return this.end('internal_error', { errno: exit.errno });
      case 'unknown': return this.end('internal_error', { reason: BigInt(exit.reason) });
    }
  }

  private handleIo(exit: Extract<VcpuExit, { kind: 'io' }>): TraceRow | null {
    const { dir, port, size, count, data } = exit;
    if (dir === 'out' && port === DEBUG_EXIT_PORT) return this.end('debug_exit', { code: littleEndian(data.subarray(0, size)) });
    if (this.uart.claims(port)) {
      for (let i = 0; i < count * size; i++) {
        const p = port + (i % size);
        if (dir === 'out') this.uart.out(p, data[i]!);
        else data[i] = this.uart.in(p);
      }
      return null;
    }
    const n = size * count;
    if (dir === 'in') data.fill(0xff, 0, n);
    return ioRow(dir, port, size, count, data.length === n ? data : data.subarray(0, n));
  }

  /** KVM_INTERRUPT when the vCPU can take it now, else ask for an interrupt window first. */
  private injectIrq(): void {
    const vector = this.opts.irqs?.vector ?? 0;
    if (this.vcpu.readyForInterruptInjection && this.vcpu.interrupt(vector) === 0) {
      this.irqsLeft--;
      this.vcpu.requestInterruptWindow = false;
    } else {
      this.vcpu.requestInterruptWindow = true;
    }
  }
}
