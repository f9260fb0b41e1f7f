/**
 * The default scene (issue 8): the `demo` guest on an Intel host and on an AMD one, and an L1
 * hypervisor running its L2 (`nested-vmx-basic`) on another Intel host, so the inspector has
 * vmcs01, vmcs02 and vmcs12 to show.
 */
import { Machine } from '@kvmts/vmm';
import type { Vendor } from '../args.js';
import { resolveGuest } from '../resolve-guest.js';
import type { Stack } from '../stack.js';
import type { SceneVm } from './dashboard-model.js';

export const DEFAULT_GUEST = 'demo';
export const NESTED_GUEST = 'nested-vmx-basic';

export interface Scene {
  readonly vms: SceneVm[];
  /** Why a vendor or guest is missing from the scene. */
  readonly notes: string[];
}

type Guest = Exclude<ReturnType<typeof resolveGuest>, string>;
type OnSerial = (vm: number, byte: number) => void;

export async function buildScene(stack: Stack, opts: { vendor?: Vendor; target?: string }, onSerial?: OnSerial): Promise<Scene> {
  const notes: string[] = [];
  const guest = resolveGuest(opts.target ?? DEFAULT_GUEST, await stack.catalog(), {});
  if (typeof guest === 'string') return { vms: [], notes: [guest] };
  const vms: SceneVm[] = [];
  for (const vendor of opts.vendor ? [opts.vendor] : (['intel', 'amd'] as const)) await addVm(stack, vendor, guest, vms, notes, onSerial);
  if (opts.target === undefined && opts.vendor !== 'amd') {
    const nested = resolveGuest(NESTED_GUEST, await stack.catalog(), {});
    if (typeof nested !== 'string') await addVm(stack, 'intel', nested, vms, notes, onSerial);
  }
  return { vms, notes };
}

/** One VM of the scene on a host of its own, or a note saying why it is missing. */
async function addVm(stack: Stack, vendor: Vendor, guest: Guest, vms: SceneVm[], notes: string[], onSerial?: OnSerial): Promise<void> {
  const host = await stack.createHost(vendor);
  if (typeof host === 'string') { notes.push(`${vendor}: ${host}`); return; }
  const id = vms.length;
  const machine = Machine.create(host, { ...guest.options, ...(onSerial && { onSerial: (b: number) => onSerial(id, b) }) });
  if (typeof machine === 'string') { notes.push(`${vendor}: ${machine}`); return; }
  vms.push({ name: guest.name, host, machine });
}
