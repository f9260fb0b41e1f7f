/**
 * `runner-cli VENDOR NAME...`: runs catalog guests on one fresh host of that vendor, in this
 * process, and prints one JSON line per guest as it finishes: {"name", "run"} or {"name",
 * "error"}. A first line {"unavailable": reason} means the vendor cannot run. run-isolated.ts
 * drives it, so that a guest that spins without exits can be killed (KVM_RUN is synchronous).
 */
import { findGuest } from '@kvmts/guests';
import { createHost, type Vendor } from '@kvmts/vmm';
import { runGuest } from './guest-run.js';

const [vendor, ...names] = process.argv.slice(2);
const host = await createHost(vendor as Vendor);
if (typeof host === 'string') {
  process.stdout.write(`${JSON.stringify({ unavailable: host })}\n`);
} else {
  for (const name of names) {
    const g = findGuest(name);
    let line: object;
    try {
      const run = g ? runGuest(host, g) : `no guest named ${name}`;
      line = typeof run === 'string' ? { name, error: run } : { name, run };
    } catch (e) {
      line = { name, error: `the VMM threw: ${e instanceof Error ? e.message : String(e)}` };
    }
    process.stdout.write(`${JSON.stringify(line)}\n`);
  }
}
