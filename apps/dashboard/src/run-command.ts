/** `kvmts run`: the contract of DESIGN.md. Trace rows on stdout, COM1 on stderr, the exit status from the final exit. */
import { formatRow, runImage, type MigrationReport } from '@kvmts/vmm';
import type { Command } from './args.js';
import { describeRow } from './describe-row.js';
import { resolveGuest } from './resolve-guest.js';
import type { Stack } from './stack.js';

export interface Io {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string | Uint8Array): unknown };
}

/** Exit status for a command that could not start (bad image, vendor not available). */
export const STATUS_SETUP_ERROR = 2;

export async function runCommand(cmd: Extract<Command, { cmd: 'run' }>, io: Io, stack: Stack): Promise<number> {
  const guest = resolveGuest(cmd.target, await stack.catalog(), cmd);
  if (typeof guest === 'string') { io.stderr.write(`kvmts: ${guest}\n`); return STATUS_SETUP_ERROR; }
  const host = await stack.createHost(cmd.vendor);
  if (typeof host === 'string') { io.stderr.write(`kvmts: ${cmd.vendor}: ${host}\n`); return STATUS_SETUP_ERROR; }
  const other = cmd.vendor === 'intel' ? 'amd' : 'intel';
  const swapHost = cmd.swapEvery === undefined ? null : await stack.createHost(other);
  if (typeof swapHost === 'string') { io.stderr.write(`kvmts: --swap-every needs ${other}: ${swapHost}\n`); return STATUS_SETUP_ERROR; }

  // COM1 output is line-buffered, so a chatty guest does not cost one write per byte.
  let line: number[] = [];
  const flush = () => { if (line.length) { io.stderr.write(Uint8Array.from(line)); line = []; } };
  const refusals = new Set<string>();
  const result = runImage(host, {
    ...guest.options,
    onSerial: (b) => { line.push(b); if (b === 0x0a || line.length >= 4096) flush(); },
    onRow: (row) => io.stdout.write((cmd.json ? formatRow(row) : describeRow(row)) + '\n'),
    // A refused swap (a nested VM cannot cross vendors) is said on stderr, once per reason; the VM runs on where it is.
    ...(swapHost && cmd.swapEvery !== undefined && {
      swap: {
        every: cmd.swapEvery, to: swapHost,
        onSwap: (r: MigrationReport | string) => {
          if (typeof r !== 'string' || refusals.has(r)) return;
          refusals.add(r);
          // Ahead of a COM1 line still being buffered, not in the middle of it.
          io.stderr.write(`kvmts: ${r}\n`);
        },
      },
    }),
  });
  flush();
  if (typeof result === 'string') { io.stderr.write(`kvmts: ${result}\n`); return STATUS_SETUP_ERROR; }
  return result.status;
}
