/** One benchmark result, as `npm run bench -- --json` prints it (DESIGN.md, "Benchmarks"). */
export interface Figure {
  readonly name: string;
  readonly value: number | null;
  readonly unit: string;
  /** Why the value is null, or how it was measured when that matters. */
  readonly note?: string;
}

export function unavailable(name: string, unit: string, note: string): Figure {
  return { name, value: null, unit, note };
}

/** Three significant digits are all a benchmark on a shared machine can claim. */
/** The middle value (the upper one of an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export function round3(v: number): number {
  return Number(v.toPrecision(3));
}

export function formatTable(figures: readonly Figure[]): string {
  const nameWidth = Math.max(...figures.map((f) => f.name.length));
  return figures
    .map((f) => {
      const value = f.value === null ? '—' : formatValue(f.value, f.unit);
      return `${f.name.padEnd(nameWidth)}  ${value.padStart(14)}${f.note ? `  (${f.note})` : ''}`;
    })
    .join('\n');
}

function formatValue(v: number, unit: string): string {
  if (unit === 'instr/s') {
    if (v >= 1e9) return `${(v / 1e9).toFixed(2)} G ${unit}`;
    if (v >= 1e6) return `${(v / 1e6).toFixed(1)} M ${unit}`;
    return `${(v / 1e3).toFixed(1)} k ${unit}`;
  }
  return `${v} ${unit}`;
}
