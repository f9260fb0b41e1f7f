/**
 * Runs guests in a child process (runner-cli.ts) with a watchdog. KVM_RUN is synchronous, so
 * a guest that loops without ever exiting to userspace would hang the caller; here it costs
 * `timeoutMs`, is reported as an error, and the remaining guests run in a fresh child.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Vendor } from '@kvmts/vmm';
import type { GuestRun } from './guest-run.js';

export type IsolatedResult = { readonly run: GuestRun } | { readonly error: string };

export interface IsolatedRuns {
  /** Why the vendor cannot run at all, or null. */
  readonly unavailable: string | null;
  readonly results: ReadonlyMap<string, IsolatedResult>;
}

const RUNNER = new URL(import.meta.url.endsWith('.ts') ? './runner-cli.ts' : './runner-cli.js', import.meta.url);

function runnerArgs(): string[] {
  // From sources, the child needs the workspace condition and a TypeScript loader, as vitest has.
  return import.meta.url.endsWith('.ts') ? ['--conditions=@kvmts/source', '--import', 'tsx'] : [];
}

type Line = { unavailable: string } | { name: string; run: GuestRun } | { name: string; error: string };

/** One child over `names`; resolves with what it reported, and whether the watchdog fired. */
function runBatch(runner: URL, vendor: Vendor, names: readonly string[], timeoutMs: number, out: Map<string, IsolatedResult>): Promise<{ unavailable: string | null; timedOut: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...runnerArgs(), fileURLToPath(runner), vendor, ...names], { stdio: ['ignore', 'pipe', 'inherit'] });
    let unavailable: string | null = null;
    let timedOut = false;
    let timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, timeoutMs);
    createInterface({ input: child.stdout }).on('line', (text) => {
      let line: Line;
      try {
        line = JSON.parse(text) as Line;
      } catch {
        return; // not ours: a stray print from the stack
      }
      if ('unavailable' in line) unavailable = line.unavailable;
      else out.set(line.name, 'run' in line ? { run: line.run } : { error: line.error });
      clearTimeout(timer);
      timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, timeoutMs);
    });
    child.on('close', () => {
      clearTimeout(timer);
      resolve({ unavailable, timedOut });
    });
  });
}

/** `runner` speaks runner-cli's protocol; tests substitute a scripted one. */
export async function runIsolated(vendor: Vendor, names: readonly string[], timeoutMs: number, runner: URL = RUNNER): Promise<IsolatedRuns> {
  const results = new Map<string, IsolatedResult>();
  let left = [...names];
  while (left.length > 0) {
    const { unavailable, timedOut } = await runBatch(runner, vendor, left, timeoutMs, results);
    if (unavailable !== null) return { unavailable, results };
    const stuck = left.find((n) => !results.has(n));
    if (stuck === undefined) break;
    results.set(stuck, {
      error: timedOut
        ? `no userspace exit for ${timeoutMs / 1000} s: the guest spins without exits, or runs too slowly`
        : 'the runner process died',
    });
    left = left.filter((n) => !results.has(n));
  }
  return { unavailable: null, results };
}
