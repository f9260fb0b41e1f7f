/** `npm run bench [-- --json]`. */
// First, so that the JIT tuning is in place before any emulation code is compiled.
import '../v8-tuning.js';
import { main } from '../main.js';
import { realStack } from '../real-stack.js';

process.exitCode = await main(['bench', ...process.argv.slice(2)], { stdout: process.stdout, stderr: process.stderr }, realStack);
