/** The `kvmts` command, as a function of argv, the output streams and the stack (so tests can drive it). */
import { parseArgs, USAGE } from './args.js';
import { listCatalog } from './list-command.js';
import { runCommand, STATUS_SETUP_ERROR, type Io } from './run-command.js';
import type { Stack } from './stack.js';

export const STATUS_USAGE = 64; // EX_USAGE (sysexits.h)

export async function main(argv: readonly string[], io: Io, stack: Stack): Promise<number> {
  const cmd = parseArgs(argv);
  if (typeof cmd === 'string') { io.stderr.write(`kvmts: ${cmd}\n${USAGE}\n`); return STATUS_USAGE; }
  switch (cmd.cmd) {
    case 'help': io.stdout.write(USAGE + '\n'); return 0;
    case 'run': return runCommand(cmd, io, stack);
    case 'list': return listCatalog(await stack.catalog(), io);
    case 'bench': {
      const { benchCommand } = await import('./bench/bench-command.js');
      return benchCommand(cmd.json, io, stack, cmd.job);
    }
    case 'dashboard': {
      // React's development build checks every render; a user's dashboard runs the production one.
      process.env['NODE_ENV'] ??= 'production';
      const { dashboardCommand } = await import('./ui/dashboard-command.js');
      return dashboardCommand(cmd, io, stack);
    }
  }
}

export { STATUS_SETUP_ERROR };
