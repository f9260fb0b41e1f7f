/** Placeholder until the Ink dashboard lands. */
import type { Command } from '../args.js';
import type { Io } from '../run-command.js';
import type { Stack } from '../stack.js';

export async function dashboardCommand(_cmd: Extract<Command, { cmd: 'dashboard' }>, io: Io, _stack: Stack): Promise<number> {
  io.stderr.write('kvmts: the dashboard is not built yet\n');
  return 1;
}
