/**
 * A catalog guest on the machine's /dev/kvm, through @kvmts/kvm-ref's helper, which sets up
 * long64 mode exactly as `kvmts run` does. The helper reports COM1's OUTs as exits too; the VMM
 * claims them, so they are dropped here and kept as serial output.
 */
import { runImage, type TraceRow as RefRow } from '@kvmts/kvm-ref';
import { loadImage, type CatalogEntry } from '@kvmts/guests';
import type { FinalRow } from '@kvmts/vmm';
import { MAX_STEPS, type ExitRow, type GuestRun } from './guest-run.js';

const COM1_FIRST = 0x3f8;
const COM1_LAST = 0x3ff;
const FINAL_EXITS: ReadonlySet<string> = new Set(['hlt', 'shutdown', 'fail_entry', 'internal_error', 'debug_exit']);
/** The reference emulates CPL0 code: out64's 100000 exits take seconds there. */
const REFERENCE_TIMEOUT_MS = 60_000;

function isCom1(row: RefRow): boolean {
  return row.exit === 'io' && typeof row.port === 'number' && row.port >= COM1_FIRST && row.port <= COM1_LAST;
}

/** Why `g` cannot run on the reference, or null when it can. */
export function referenceUnsuitable(g: CatalogEntry): string | null {
  if (!g.reference) return `${g.name} is not marked as runnable on the reference (it sets up its own descriptor tables or paging, or is not 64-bit)`;
  if (g.mode !== 'long64') return `${g.name} is not entered in long64 mode`;
  if (g.irqs) return `${g.name} needs injected interrupts`;
  if (g.requires) return `${g.name} needs ${g.requires.toUpperCase()}, which the machine's CPU lacks`;
  return null;
}

export function runOnReference(g: CatalogEntry): GuestRun {
  const result = runImage(loadImage(g.name), { mem: g.mem, load: g.load, entry: g.entry, maxExits: MAX_STEPS, timeoutMs: REFERENCE_TIMEOUT_MS });
  const last = result.rows[result.rows.length - 1];
  const ended = last !== undefined && FINAL_EXITS.has(last.exit);
  const rows = result.rows.slice(0, ended ? -1 : undefined).filter((r) => !isCom1(r)) as unknown as ExitRow[];
  return {
    rows,
    final: ended ? (last as unknown as FinalRow) : null,
    serial: new TextDecoder('latin1').decode(result.serial),
  };
}
