/** `npm run bench [-- --json]`. */
// First, so that the JIT tuning is in place before any emulation code is compiled.
import '../v8-tuning.js';
import { main } from '../main.js';
import { realStack } from '../real-stack.js';

// `bench` may be given, as a child measuring one job is started with it (real-stack.ts).
const args = process.argv.slice(2);
process.exitCode = await main(args[0] === 'bench' ? args : ['bench', ...args], { stdout: process.stdout, stderr: process.stderr }, realStack);
