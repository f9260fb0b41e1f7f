import { describe, expect, it } from 'vitest';
import { runIsolated } from './run-isolated.js';

const SCRIPTED = new URL('../test/fixtures/scripted-runner.mjs', import.meta.url);

describe('runIsolated', () => {
  it('collects each guest, kills a spinning one and runs the rest in a fresh child', async () => {
    const { unavailable, results } = await runIsolated('intel', ['a', 'spin', 'b', 'broken', 'die', 'c'], 1500, SCRIPTED);
    expect(unavailable).toBeNull();
    expect(results.get('a')).toEqual({ run: { rows: [], final: { exit: 'hlt', regs: {}, sregs: {} }, serial: 'a' } });
    expect(results.get('spin')).toEqual({ error: 'no userspace exit for 1.5 s: the guest spins without exits, or runs too slowly' });
    expect(results.get('b')).toMatchObject({ run: { serial: 'b' } });
    expect(results.get('broken')).toEqual({ error: 'KVM_CREATE_VM failed' });
    expect(results.get('die')).toEqual({ error: 'the runner process died' });
    expect(results.get('c')).toMatchObject({ run: { serial: 'c' } });
  }, 30_000);

  it('reports a vendor that cannot run', async () => {
    expect(await runIsolated('none' as 'intel', ['a'], 5000, SCRIPTED)).toEqual({ unavailable: 'no such vendor here', results: new Map() });
  }, 30_000);
});
