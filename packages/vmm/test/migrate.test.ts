/** Machine.migrate and `--swap-every` over the real stack: a VM moves between kvm_intel and kvm_amd mid-run. */
import { describe, expect, it } from 'vitest';
import { findGuest, loadImage } from '@kvmts/guests';
import { createHost } from '../src/host.js';
import { runImage } from '../src/run-image.js';
import { formatRow } from '../src/trace.js';
import type { HostPort, MigrationReport } from '../src/kvm-port.js';
import { Machine } from '../src/machine.js';

const MAX_EXITS = 200_000;

async function host(vendor: 'intel' | 'amd'): Promise<HostPort> {
  const h = await createHost(vendor, { memBytes: 1 << 30 });
  if (typeof h === 'string') throw new Error(h);
  return h;
}

function guestOptions(name: string) {
  const g = findGuest(name)!;
  return { image: loadImage(name), mode: g.mode, mem: g.mem, load: g.load, entry: g.entry, maxExits: MAX_EXITS };
}
/** Without its timer the demo halts after its first prime: a paging guest that ends. */
const demoOptions = () => guestOptions('demo');

describe('--swap-every', () => {
  it('gives the pio guest the same trace, serial output and final row as a run without swaps', async () => {
    const [intel, amd] = [await host('intel'), await host('amd')];
    const plain = runImage(intel, guestOptions('pio'));
    if (typeof plain === 'string') throw new Error(plain);
    expect(plain.rows.length).toBeGreaterThan(5);
    const swaps: (MigrationReport | string)[] = [];
    const swapped = runImage(intel, { ...guestOptions('pio'), swap: { every: 1, to: amd, onSwap: (r) => swaps.push(r) } });
    if (typeof swapped === 'string') throw new Error(swapped);
    expect(swaps.filter((s) => typeof s === 'string')).toEqual([]);
    expect(swaps.length).toBeGreaterThan(3);
    // Alternating: intel → amd, amd → intel, …
    expect(swaps.slice(0, 2).map((s) => (s as MigrationReport).to)).toEqual(['amd', 'intel']);
    expect(swapped.migrations).toHaveLength(swaps.length);
    expect(swapped.rows.map(formatRow)).toEqual(plain.rows.map(formatRow));
    expect(formatRow(swapped.final)).toBe(formatRow(plain.final));
    expect(swapped.serial).toBe(plain.serial);
    expect(swapped.status).toBe(plain.status);
  });
});

describe('Machine.migrate', () => {
  it('moves a running VM to the other vendor and back, keeping serial, exit counts and registers', async () => {
    const [intel, amd] = [await host('intel'), await host('amd')];
    const m = Machine.create(intel, demoOptions());
    if (typeof m === 'string') throw new Error(m);
    m.runToEnd(undefined, 5);
    const before = { regs: m.regs(), serial: m.serialText, counts: { ...m.exitCounts } };
    // The stop-and-copy completes the last OUT (KVM_RUN with immediate_exit), which moves RIP past it.
    const expected = { ...before.regs, rip: before.regs.rip + 1n };
    const r = m.migrate(amd);
    if (typeof r === 'string') throw new Error(r);
    expect(r).toMatchObject({ from: 'intel', to: 'amd', rounds: 0 });
    expect(r.pagesSent).toBeGreaterThan(0);
    expect(m.host).toBe(amd);
    expect(m.regs()).toEqual(expected);
    expect(m.serialText).toBe(before.serial);
    expect(m.exitCounts).toEqual(before.counts);
    const back = m.migrate(intel, { liveExits: 2, maxRounds: 3 });
    if (typeof back === 'string') throw new Error(back);
    expect(back).toMatchObject({ from: 'amd', to: 'intel' });
    expect(back.rounds).toBeGreaterThan(0);
    expect(m.migrations).toEqual([r, back]);
    m.runToEnd(undefined, MAX_EXITS);
    const plain = runImage(intel, demoOptions());
    if (typeof plain === 'string') throw new Error(plain);
    expect(m.final && formatRow(m.final)).toBe(formatRow(plain.final));
    expect(m.serialText).toBe(plain.serial);
    m.destroy();
  });

  it('leaves the source VM gone (its process exited) and refuses a target that is not /dev/kvm', async () => {
    const [intel, amd] = [await host('intel'), await host('amd')];
    const m = Machine.create(intel, demoOptions());
    if (typeof m === 'string') throw new Error(m);
    m.runToEnd(undefined, 3);
    const source = m.vm;
    const stranger = { info: amd.info, createVm: () => -1, residentBytes: () => null };
    expect(m.migrate(stranger)).toBe('migration needs a /dev/kvm host on both ends');
    expect(m.vm).toBe(source);
    const r = m.migrate(amd);
    if (typeof r === 'string') throw new Error(r);
    expect(m.vm).not.toBe(source);
    expect(source.memslots()).toHaveLength(1);
    expect(() => source.destroy()).not.toThrow();
    m.runToEnd(undefined, MAX_EXITS);
    expect(m.final?.exit).toBe('hlt');
    m.destroy();
  });
});
