import { describe, expect, it } from 'vitest';
import { createHost, Machine, type HostPort } from '@kvmts/vmm';
import { findGuest, loadImage } from '@kvmts/guests';
import { DashboardModel } from './dashboard-model.js';
import { ScriptedHost, type ScriptedVcpu, type ScriptStep } from '../../test/fake-stack.js';

/** OUTs to port 0x80 forever. */
const LOOP: ScriptStep[] = [(v) => v.out(0x80, 1)];

function scene(names: string[], script = LOOP) {
  let clock = 0;
  const vms = names.map((name) => {
    const host = new ScriptedHost('intel', script);
    const machine = Machine.create(host, { image: Uint8Array.of(0xf4) }) as Machine;
    return { name, host, machine };
  });
  // A clock that moves 1 ms per reading, so a slice is a known number of steps.
  const model = new DashboardModel(vms, () => clock++);
  return { model, vms, vcpu: (i: number) => vms[i]!.host.vcpus[0]! as ScriptedVcpu };
}

const total = (model: DashboardModel, vm: number, name: string) => model.snapshot().vms[vm]!.exits.find((e) => e.name === name)?.total ?? 0;

describe('DashboardModel', () => {
  it('runs every VM for a slice and counts their exits', () => {
    const { model } = scene(['a', 'b']);
    model.runSlice();
    expect(total(model, 0, 'exits')).toBeGreaterThan(0);
    expect(total(model, 1, 'exits')).toBeGreaterThan(0);
    expect(total(model, 0, 'exit.io')).toBe(total(model, 0, 'exits'));
  });

  it('runs nothing while paused, and exactly one exit for n', () => {
    const { model, vms } = scene(['a']);
    model.togglePause();
    model.runSlice();
    expect(vms[0]!.machine.exitCounts.io).toBeUndefined();
    model.nextExit();
    model.runSlice();
    expect(vms[0]!.machine.exitCounts.io).toBe(1);
    const snap = model.snapshot();
    expect(snap.message).toBe('stopped at exit: io');
    expect(snap.vms[0]!.lastExit).toEqual({ kind: 'io', fields: [['dir', 'out'], ['port', '128'], ['size', '1'], ['count', '1'], ['data', '01']] });
    expect(snap.vms[0]!.state).toBe('paused');
  });

  it('r counts totals from the reset', () => {
    const { model } = scene(['a']);
    model.runSlice();
    model.resetStats();
    expect(total(model, 0, 'exits')).toBe(0);
  });

  it('g picks the next VM, and only the selected VM in focus gets its vCPU read', () => {
    const { model } = scene(['a', 'b']);
    model.setFocus('vcpu');
    expect(model.snapshot().vms.map((v) => v.vcpu !== null)).toEqual([true, false]);
    model.selectNextVm();
    const snap = model.snapshot();
    expect(snap.selected).toBe(1);
    expect(snap.vms.map((v) => v.vcpu !== null)).toEqual([false, true]);
    expect(snap.vms[1]!.vcpu!.mode).toBe('real');
  });

  it('says a vCPU in a nested guest is in L2', () => {
    const { model, vcpu } = scene(['a']);
    model.runSlice();
    Object.assign(vcpu(0), { isGuestMode: () => true });
    expect(model.snapshot().vms[0]!.state).toBe('in L2');
  });

  it('v says why a VM cannot move when there is no other host, or its port cannot migrate', async () => {
    const { model } = scene(['a']);
    await model.swapVendor();
    expect(model.snapshot().message).toBe('cannot migrate to amd: this dashboard has no other host');
    const other = new DashboardModel(scene(['b']).vms, undefined, async (v) => new ScriptedHost(v, LOOP));
    await other.swapVendor();
    expect(other.snapshot().message).toBe("VM 0 stays on intel: this VM's port cannot migrate");
    expect(other.snapshot().vms[0]).toMatchObject({ vendor: 'intel', migrations: 0, lastMigration: null });
  });

  it('v live-migrates the selected VM to the other vendor: header vendor, rounds, pages, downtime', async () => {
    const hosts = { intel: await createHost('intel', { memBytes: 1 << 30 }), amd: await createHost('amd', { memBytes: 1 << 30 }) };
    if (typeof hosts.intel === 'string' || typeof hosts.amd === 'string') throw new Error('no hosts');
    const { intel, amd } = hosts as { intel: HostPort; amd: HostPort };
    const g = findGuest('demo')!;
    const machine = Machine.create(intel, { image: loadImage('demo'), mode: g.mode, mem: g.mem, load: g.load, entry: g.entry, irqs: { vector: 0x20 } }) as Machine;
    const model = new DashboardModel([{ name: 'demo', host: intel, machine }], undefined, async (v) => (v === 'amd' ? amd : intel));
    machine.runToEnd(undefined, 500);
    const serial = machine.serialText;
    await model.swapVendor();
    const snap = model.snapshot();
    expect(snap.host.vendor).toBe('amd');
    expect(snap.vms[0]).toMatchObject({ vendor: 'amd', migrations: 1, lastMigration: { from: 'intel', to: 'amd' } });
    const r = snap.vms[0]!.lastMigration!;
    expect(r.rounds).toBeGreaterThan(0);
    expect(r.pagesSent).toBeGreaterThan(0);
    expect(snap.message).toBe(`VM 0 migrated intel → amd: ${r.rounds} pre-copy rounds, ${r.pagesSent} pages sent, downtime ${Math.round(r.downtimeUs)} µs, total ${r.totalMs.toFixed(1)} ms`);
    // The guest goes on printing primes on AMD, after what it printed on Intel.
    machine.runToEnd(undefined, 2000);
    expect(machine.serialText.startsWith(serial)).toBe(true);
    expect(machine.serialText.length).toBeGreaterThan(serial.length);
    expect(machine.final).toBeNull();
    machine.destroy();
  });

  it('shows how a guest ended', () => {
    const { model } = scene(['a'], [(v) => v.out(0xf4, 7)]);
    model.runSlice();
    expect(model.snapshot().vms[0]).toMatchObject({ state: 'ended', ended: 'debug_exit (code 7)' });
  });
});
