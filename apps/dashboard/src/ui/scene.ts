/** The default scene (issue 8): the `demo` guest on an Intel host, and on an AMD one when kvm_amd runs. */
import { Machine } from '@kvmts/vmm';
import type { Vendor } from '../args.js';
import { resolveGuest } from '../resolve-guest.js';
import type { Stack } from '../stack.js';
import type { SceneVm } from './dashboard-model.js';

export const DEFAULT_GUEST = 'demo';

export interface Scene {
  readonly vms: SceneVm[];
  /** Why a vendor or guest is missing from the scene. */
  readonly notes: string[];
}

export async function buildScene(stack: Stack, opts: { vendor?: Vendor; target?: string }, onSerial?: (vm: number, byte: number) => void): Promise<Scene> {
  const notes: string[] = [];
  const guest = resolveGuest(opts.target ?? DEFAULT_GUEST, await stack.catalog(), {});
  if (typeof guest === 'string') return { vms: [], notes: [guest] };
  const vms: SceneVm[] = [];
  for (const vendor of opts.vendor ? [opts.vendor] : (['intel', 'amd'] as const)) {
    const host = await stack.createHost(vendor);
    if (typeof host === 'string') { notes.push(`${vendor}: ${host}`); continue; }
    const id = vms.length;
    const machine = Machine.create(host, { ...guest.options, ...(onSerial && { onSerial: (b: number) => onSerial(id, b) }) });
    if (typeof machine === 'string') { notes.push(`${vendor}: ${machine}`); continue; }
    vms.push({ name: guest.name, host, machine });
  }
  return { vms, notes };
}
