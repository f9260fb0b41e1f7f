import { Box, Text } from 'ink';
import { siRate } from './format.js';
import type { ExitRow } from './snapshot.js';

export type ExitSort = 'total' | 'rate';

export interface ExitsViewProps {
  readonly rows: readonly ExitRow[];
  readonly sort: ExitSort;
  /** A regular expression on the event name (kvm_stat's `f`), or '' for all. */
  readonly filter: string;
  /** Child events (one line per exit reason under "exits"), kvm_stat's `x`. */
  readonly children: boolean;
  readonly maxRows?: number;
}

function matcher(filter: string): (name: string) => boolean {
  try {
    const re = new RegExp(filter);
    return (name) => re.test(name);
  } catch {
    return (name) => name.includes(filter);
  }
}

/** kvm_stat's main view: Event, Total, %Total, CurAvg/s. */
export function ExitsView({ rows, sort, filter, children, maxRows = 20 }: ExitsViewProps) {
  // kvm_stat leaves out events that never happened.
  const match = (name: string, r: ExitRow) => (r.total !== 0 || r.rate !== 0) && matchName(name);
  const matchName = matcher(filter);
  const order = (a: ExitRow, b: ExitRow) => (sort === 'total' ? b.total - a.total : b.rate - a.rate) || a.name.localeCompare(b.name);
  const childRows = children ? rows.filter((r) => r.child && match(r.name, r)).sort(order) : [];
  // Child events sit under "exits", as kvm_stat's drill-down shows them; without a parent, at the end.
  const shown: ExitRow[] = [];
  for (const r of rows.filter((r) => !r.child && match(r.name, r)).sort(order)) {
    shown.push(r);
    if (r.name === 'exits') shown.push(...childRows.splice(0));
  }
  shown.push(...childRows);
  shown.splice(maxRows);
  const sum = shown.filter((r) => !r.child).reduce((s, r) => s + r.total, 0);
  return (
    <Box flexDirection="column">
      <Text dimColor>sort by {sort}{filter ? ` · filter /${filter}/` : ''}{children ? ' · child events shown' : ''}</Text>
      <Text bold>{'Event'.padEnd(34)}{'Total'.padStart(12)}{'%Total'.padStart(8)}{'CurAvg/s'.padStart(10)}</Text>
      {/* One Text for the whole table: Ink lays out and measures each node, and this view redraws 10 times a second. */}
      <Text>
        {shown.length === 0
          ? '(no events)'
          : shown.map((r) =>
              ((r.child ? '  ' : '') + r.name).padEnd(34).slice(0, 34) +
              String(r.total).padStart(12) +
              (r.child || sum === 0 ? '' : ((r.total * 100) / sum).toFixed(1)).padStart(8) +
              siRate(r.rate).padStart(10)).join('\n')}
      </Text>
    </Box>
  );
}
