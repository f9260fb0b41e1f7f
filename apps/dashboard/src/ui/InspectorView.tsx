import { Box, Text } from 'ink';
import type { VendorInspection } from '@kvmts/core';
import { hex } from './format.js';

const NAME_WIDTH = 34;
const COLUMN_WIDTH = NAME_WIDTH + 20;

type Line = { readonly kind: 'structure' | 'group'; readonly text: string } | { readonly kind: 'field'; readonly name: string; readonly value: bigint; readonly changed: boolean };

export interface InspectorViewProps {
  readonly inspection: VendorInspection | null;
  /** Rows and columns the view may fill. */
  readonly height: number;
  readonly width: number;
  /** Which screenful to show (`[` and `]` page). */
  readonly page: number;
}

/**
 * The vendor's structures (VMCS/VMCB …) by the manuals' groups, laid out in columns to fit the
 * screen; fields the last exit changed stand out (inverse, and marked *).
 */
export function InspectorView({ inspection, height, width, page }: InspectorViewProps) {
  if (!inspection) return <Text dimColor>(the vendor module gives no VMCS/VMCB view for this vCPU yet)</Text>;
  const lines: Line[] = [];
  for (const s of inspection.structures) {
    lines.push({ kind: 'structure', text: `${s.name} @ 0x${hex(s.hpa)}` });
    for (const g of s.groups) {
      lines.push({ kind: 'group', text: g.name });
      for (const f of g.fields) lines.push({ kind: 'field', ...f });
    }
  }
  const rows = Math.max(1, height - 1);
  const columns = Math.max(1, Math.floor(width / COLUMN_WIDTH));
  const perPage = rows * columns;
  const pages = Math.max(1, Math.ceil(lines.length / perPage));
  const p = Math.min(Math.max(page, 0), pages - 1);
  const shown = lines.slice(p * perPage, (p + 1) * perPage);
  const cols: Line[][] = [];
  for (let i = 0; i < shown.length; i += rows) cols.push(shown.slice(i, i + rows));
  const changed = lines.filter((l) => l.kind === 'field' && l.changed).length;
  return (
    <Box flexDirection="column">
      <Text dimColor>
        {inspection.vendor === 'intel' ? 'VMCS' : 'VMCB'} · page {p + 1}/{pages} ([ ]) · {changed} fields changed at the last exit (*)
      </Text>
      <Box flexDirection="row">
        {cols.map((col, i) => (
          <Box key={i} flexDirection="column" width={COLUMN_WIDTH}>
            {col.map((l, j) =>
              l.kind === 'field' ? (
                <Text key={j} inverse={l.changed}>{(l.changed ? '*' : ' ') + l.name.slice(0, NAME_WIDTH - 2).padEnd(NAME_WIDTH - 1)}0x{hex(l.value)}</Text>
              ) : (
                <Text key={j} bold={l.kind === 'structure'} underline={l.kind === 'group'}>{l.text}</Text>
              ),
            )}
          </Box>
        ))}
      </Box>
    </Box>
  );
}
