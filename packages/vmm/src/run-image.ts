/** `kvmts run` as a library call: one image, one VM, run to its final exit. */
import type { HostPort, MigrationReport } from './kvm-port.js';
import { Machine, type MachineOptions } from './machine.js';
import type { FinalRow, TraceRow } from './trace.js';

export interface RunResult {
  readonly rows: readonly TraceRow[];
  readonly final: FinalRow;
  /** The process exit status `kvmts run` gives for this run. */
  readonly status: number;
  readonly serial: string;
  /** The migrations `swap` made, in order. */
  readonly migrations: readonly MigrationReport[];
}

/** `--swap-every N`: after every `every` userspace exits, migrate to the other host, alternating. */
export interface SwapPlan {
  readonly every: number;
  /** The other vendor's host (the run starts on the `host` given to runImage). */
  readonly to: HostPort;
  /** Each migration's report, or why it was refused (the VM then keeps running where it is). */
  readonly onSwap?: (result: MigrationReport | string) => void;
}

export interface RunOptions extends MachineOptions {
  /** Each trace row as it happens (the CLI streams them). */
  readonly onRow?: (row: TraceRow) => void;
  /** Give up after this many userspace exits (a guest that never ends), ending with internal_error. */
  readonly maxExits?: number;
  readonly swap?: SwapPlan;
}

/**
 * The exit status rules of DESIGN.md: a HLT ends with 0, the port-0xf4 test exit with the value
 * written (as a process status, its low 8 bits), anything else (shutdown, failed entry, internal
 * error) with 1.
 */
export function exitStatus(final: FinalRow): number {
  if (final.exit === 'hlt') return 0;
  if (final.exit === 'debug_exit') return (final.code ?? 0) & 0xff;
  return 1;
}

export function runImage(host: HostPort, opts: RunOptions): RunResult | string {
  const machine = Machine.create(host, opts);
  if (typeof machine === 'string') return machine;
  try {
    const rows = opts.swap ? runSwapping(machine, host, opts.swap, opts) : machine.runToEnd(opts.onRow, opts.maxExits);
    const final = machine.final;
    if (!final) return `the guest did not end within ${opts.maxExits} exits`;
    return { rows, final, status: exitStatus(final), serial: machine.serialText, migrations: machine.migrations };
  } finally {
    machine.destroy();
  }
}

/** runToEnd, migrating between `home` and `swap.to` after every `swap.every` exits. */
function runSwapping(machine: Machine, home: HostPort, swap: SwapPlan, opts: RunOptions): TraceRow[] {
  const rows: TraceRow[] = [];
  const maxSteps = opts.maxExits ?? Infinity;
  for (let n = 1; n <= maxSteps && !machine.final; n++) {
    const { row } = machine.step();
    if (row) { rows.push(row); opts.onRow?.(row); }
    if (n % swap.every !== 0 || machine.final) continue;
    // Rows of the I/O the migration completes come out here, in order.
    const onRow = (r: TraceRow) => { rows.push(r); opts.onRow?.(r); };
    swap.onSwap?.(machine.migrate(machine.host === home ? swap.to : home, { onRow }));
  }
  return rows;
}
