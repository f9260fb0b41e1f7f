/** `kvmts run` as a library call: one image, one VM, run to its final exit. */
import type { HostPort } from './kvm-port.js';
import { Machine, type MachineOptions } from './machine.js';
import type { FinalRow, TraceRow } from './trace.js';

export interface RunResult {
  readonly rows: readonly TraceRow[];
  readonly final: FinalRow;
  /** The process exit status `kvmts run` gives for this run. */
  readonly status: number;
  readonly serial: string;
}

export interface RunOptions extends MachineOptions {
  /** Each trace row as it happens (the CLI streams them). */
  readonly onRow?: (row: TraceRow) => void;
  /** Give up after this many userspace exits (a guest that never ends), ending with internal_error. */
  readonly maxExits?: number;
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
    const rows = machine.runToEnd(opts.onRow, opts.maxExits);
    const final = machine.final;
    if (!final) return `the guest did not end within ${opts.maxExits} exits`;
    return { rows, final, status: exitStatus(final), serial: machine.serialText };
  } finally {
    machine.destroy();
  }
}
