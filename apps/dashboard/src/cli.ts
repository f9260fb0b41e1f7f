/** The `kvmts` bin. */
// First, so that the JIT tuning is in place before any emulation code is compiled.
import './v8-tuning.js';
import { main } from './main.js';
import { realStack } from './real-stack.js';

/** EX_SOFTWARE (sysexits.h): a bug in kvmts itself, reported rather than thrown at the user. */
const STATUS_INTERNAL = 70;

try {
  process.exitCode = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr }, realStack);
} catch (e) {
  process.stderr.write(`kvmts: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = STATUS_INTERNAL;
}
