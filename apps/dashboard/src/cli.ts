/** The `kvmts` bin. */
import { main } from './main.js';
import { realStack } from './real-stack.js';

process.exitCode = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr }, realStack);
