/** `kvmts list`: the bundled guests, one per line. */
import type { Io } from './run-command.js';
import type { CatalogGuest } from './stack.js';

export function listCatalog(catalog: readonly CatalogGuest[], io: Io): number {
  if (catalog.length === 0) { io.stdout.write('no guests in the catalog yet\n'); return 0; }
  const width = Math.max(4, ...catalog.map((g) => g.name.length));
  io.stdout.write(`${'NAME'.padEnd(width)}  KIND   MODE    MEM        SHOWS\n`);
  for (const g of catalog) {
    io.stdout.write(`${g.name.padEnd(width)}  ${g.kind.padEnd(5)}  ${g.mode.padEnd(6)}  ${('0x' + g.mem.toString(16)).padEnd(9)}  ${g.description}\n`);
  }
  return 0;
}
