/** `kvmts` with no command: the Ink dashboard, or with --once a single kvm_stat-style table. */
import { render } from 'ink';
import type { HostPort } from '@kvmts/vmm';
import type { Command, Vendor } from '../args.js';
import type { Io } from '../run-command.js';
import { STATUS_SETUP_ERROR } from '../run-command.js';
import type { Stack } from '../stack.js';
import { App } from './App.js';
import { DashboardModel } from './dashboard-model.js';
import { formatOnce } from './once.js';
import { buildScene } from './scene.js';

/** How long `--once` lets the guests run before it samples the counters. */
const ONCE_MS = 1000;

export async function dashboardCommand(cmd: Extract<Command, { cmd: 'dashboard' }>, io: Io, stack: Stack): Promise<number> {
  const scene = await buildScene(stack, { ...(cmd.vendor && { vendor: cmd.vendor }), ...(cmd.target !== undefined && { target: cmd.target }) });
  if (scene.vms.length === 0) {
    io.stderr.write(`kvmts: nothing to show:\n${scene.notes.map((n) => `  ${n}\n`).join('')}`);
    return STATUS_SETUP_ERROR;
  }
  // `v` migrates to the scene's host of the other vendor, or to one made for it.
  const hosts = new Map<Vendor, Promise<HostPort | string>>(scene.vms.map((vm) => [vm.host.info.vendor, Promise.resolve(vm.host)]));
  const hostFor = (v: Vendor) => hosts.get(v) ?? (hosts.set(v, stack.createHost(v)), hosts.get(v)!);
  const model = new DashboardModel(scene.vms, undefined, hostFor);
  if (cmd.once) {
    model.snapshot();
    model.start();
    await new Promise((r) => setTimeout(r, ONCE_MS));
    model.stop();
    io.stdout.write(formatOnce(model.snapshot()));
    for (const vm of scene.vms) vm.machine.destroy();
    return 0;
  }
  if (scene.notes.length) model.setMessage(scene.notes.join(' · '));
  model.start();
  // Only changed lines are redrawn; Ink's own frame cap sits just above the model's 10 refreshes/s.
  const app = render(<App model={model} />, { exitOnCtrlC: true, maxFps: 15, onRender: ({ renderTime }) => model.noteRender(renderTime) });
  await app.waitUntilExit();
  model.stop();
  for (const vm of scene.vms) vm.machine.destroy();
  return 0;
}
