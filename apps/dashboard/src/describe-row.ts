/** Trace rows for people (`kvmts run` without --json). */
import type { TraceRow } from '@kvmts/vmm';

export function describeRow(row: TraceRow): string {
  switch (row.exit) {
    case 'io': return `io   ${row.dir.padEnd(5)} port 0x${row.port.toString(16)} size ${row.size} count ${row.count} data ${row.data}`;
    case 'mmio': return `mmio ${row.dir.padEnd(5)} addr ${row.addr} len ${row.len} data ${row.data}`;
    default: {
      const extra = row.code !== undefined ? ` code ${row.code}` : row.reason !== undefined ? ` reason ${row.reason}` : row.suberror !== undefined ? ` suberror ${row.suberror}` : '';
      const regs = Object.entries(row.regs).map(([k, v]) => `${k}=${v}`).join(' ');
      const sregs = Object.entries(row.sregs).map(([k, v]) => `${k}=${v}`).join(' ');
      return `${row.exit}${extra}\n  ${regs}\n  ${sregs}`;
    }
  }
}
