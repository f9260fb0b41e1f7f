import { describe, expect, it } from 'vitest';
import { Machine } from '@kvmts/vmm';
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

  it('v says the vendor swap is not there yet', () => {
    const { model } = scene(['a']);
    model.swapVendor();
    expect(model.snapshot().message).toMatch(/vendor swap .* not available yet/);
  });

  it('shows how a guest ended', () => {
    const { model } = scene(['a'], [(v) => v.out(0xf4, 7)]);
    model.runSlice();
    expect(model.snapshot().vms[0]).toMatchObject({ state: 'ended', ended: 'debug_exit (code 7)' });
  });
});
