import { describe, expect, it } from 'vitest';
import { ExitRates } from './exit-rates.js';

describe('ExitRates', () => {
  it('gives rates over the last second and totals since reset', () => {
    const r = new ExitRates();
    expect(r.sample(0, { exits: 100 })).toEqual([['exits', 100, 0]]);
    expect(r.sample(500, { exits: 150 })).toEqual([['exits', 150, 100]]);
    r.reset({ exits: 150 });
    expect(r.sample(1000, { exits: 300 })).toEqual([['exits', 150, 200]]);
    // The 0 ms sample has left the window: the rate is over 500..1600.
    const [[, total, rate]] = r.sample(1600, { exits: 300 }) as [[string, number, number]];
    expect(total).toBe(150);
    expect(rate).toBeCloseTo(150 / 1.1);
    // Nothing new for a second: the rate falls to 0.
    expect(r.sample(2600, { exits: 300 })).toEqual([['exits', 150, 0]]);
  });
});
