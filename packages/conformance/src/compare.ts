/**
 * What conformance means: two runs of one guest agree on every userspace exit, in order, on the
 * final exit, on the final registers and control registers, and on the serial output. Where the
 * guest reads the vendor (a catalog row's `vendorDependent`), registers and serial output may
 * differ; the exits and the final exit kind may not.
 */
import { serialMatches, type CatalogEntry } from '@kvmts/guests';
import type { FinalRow } from '@kvmts/vmm';
import type { GuestRun } from './guest-run.js';

export interface Difference {
  readonly what: string;
  readonly a: string;
  readonly b: string;
}

const SREGS = ['cr0', 'cr3', 'cr4', 'efer'] as const;

function finalSummary(f: FinalRow | null): string {
  if (!f) return 'no final exit';
  return f.code !== undefined ? `${f.exit} ${f.code}` : f.exit;
}

export interface CompareOptions {
  /** Compare final registers and serial output too (false where the guest reads the vendor). */
  readonly state: boolean;
  /**
   * Leave RIP out when the run ended at the port-0xf4 OUT. Linux's fast PIO path exits to
   * userspace with RIP still at the OUT (it skips the instruction when userspace re-enters),
   * while its instruction emulator, which the reference uses for CPL0 code, has already
   * advanced RIP. Both are KVM; the guest cannot tell.
   */
  readonly ripAtDebugExit?: 'compare' | 'ignore';
}

export function compareRuns(a: GuestRun, b: GuestRun, opts: CompareOptions): Difference[] {
  const diffs: Difference[] = [];
  const n = Math.max(a.rows.length, b.rows.length);
  for (let i = 0; i < n; i++) {
    const ra = a.rows[i], rb = b.rows[i];
    const ja = ra ? JSON.stringify(ra) : 'nothing';
    const jb = rb ? JSON.stringify(rb) : 'nothing';
    if (ja !== jb) {
      diffs.push({ what: `exit #${i + 1} (of ${a.rows.length} and ${b.rows.length})`, a: ja, b: jb });
      break; // later rows follow from the first divergence
    }
  }
  if (finalSummary(a.final) !== finalSummary(b.final)) diffs.push({ what: 'final exit', a: finalSummary(a.final), b: finalSummary(b.final) });
  if (!opts.state) return diffs;
  if (a.final && b.final) {
    const ignoreRip = opts.ripAtDebugExit === 'ignore' && a.final.exit === 'debug_exit';
    for (const reg of Object.keys(a.final.regs)) {
      if (reg === 'rip' && ignoreRip) continue;
      const va = a.final.regs[reg] ?? 'absent', vb = b.final.regs[reg] ?? 'absent';
      if (va !== vb) diffs.push({ what: reg, a: va, b: vb });
    }
    for (const sreg of SREGS) {
      if (a.final.sregs[sreg] !== b.final.sregs[sreg]) diffs.push({ what: sreg, a: a.final.sregs[sreg], b: b.final.sregs[sreg] });
    }
  }
  if (a.serial !== b.serial) diffs.push({ what: 'serial output', a: JSON.stringify(a.serial), b: JSON.stringify(b.serial) });
  return diffs;
}

/** Where a run falls short of its catalog row's expected result, one sentence per problem. */
export function checkExpectation(g: CatalogEntry, run: GuestRun): string[] {
  const problems: string[] = [];
  const { expect } = g;
  if (expect.exit === undefined) {
    if (run.final) problems.push(`${g.name} should run on, but ended with ${finalSummary(run.final)}`);
  } else if (!run.final) {
    problems.push(`${g.name} did not end (expected ${expect.exit})`);
  } else {
    if (run.final.exit !== expect.exit) problems.push(`final exit ${finalSummary(run.final)}, expected ${expect.exit}`);
    if (expect.code !== undefined && run.final.code !== expect.code) problems.push(`exit code ${run.final.code}, expected ${expect.code}`);
  }
  if (!serialMatches(expect.serial, run.serial)) problems.push(`serial output ${JSON.stringify(run.serial)} does not match ${JSON.stringify(expect.serial)}`);
  if (expect.trace) {
    const got = run.rows.map((r) => JSON.stringify(r));
    const want = expect.trace.map((r) => JSON.stringify(r));
    const i = want.findIndex((w, k) => got[k] !== w);
    if (i >= 0 || got.length !== want.length) {
      const k = i >= 0 ? i : want.length;
      problems.push(`trace row ${k + 1}: ${got[k] ?? 'nothing'}, expected ${want[k] ?? 'nothing'}`);
    }
  }
  return problems;
}

export function formatDifferences(diffs: readonly Difference[], labels: readonly [string, string]): string {
  return diffs.map((d) => `${d.what}: ${labels[0]} ${d.a}, ${labels[1]} ${d.b}`).join('\n');
}
