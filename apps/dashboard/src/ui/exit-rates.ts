/** kvm_stat's arithmetic: totals since a reset baseline, and rates over the last second or so. */
const WINDOW_MS = 1000;

interface Sample {
  readonly t: number;
  readonly totals: Readonly<Record<string, number>>;
}

export class ExitRates {
  private baseline: Record<string, number> = {};
  private samples: Sample[] = [];

  /** Records the counters at time `t` (ms) and returns [name, total since reset, rate/s]. */
  sample(t: number, totals: Readonly<Record<string, number>>): [string, number, number][] {
    this.samples.push({ t, totals: { ...totals } });
    while (this.samples.length > 2 && t - this.samples[1]!.t >= WINDOW_MS) this.samples.shift();
    const oldest = this.samples[0]!;
    const dt = (t - oldest.t) / 1000;
    return Object.entries(totals).map(([name, total]) => {
      const rate = dt > 0 ? (total - (oldest.totals[name] ?? 0)) / dt : 0;
      return [name, total - (this.baseline[name] ?? 0), Math.max(0, rate)];
    });
  }

  /** `r`: totals count from now. */
  reset(totals: Readonly<Record<string, number>>): void {
    this.baseline = { ...totals };
  }
}
