/**
 * Issue 9: vendors swapped at runtime. Every catalog test guest that does not read the vendor
 * runs to the same exits, final registers and serial output when its VM is live-migrated to the
 * other vendor after every userspace exit (`kvmts run --swap-every 1`) as when it stays on one
 * host. And a nested VM (an L1 that did VMXON) is refused a cross-vendor move with a clear
 * error, and keeps running to the same result; between two Intel hosts it moves, L2 and all.
 */
import { describe, expect, it } from 'vitest';
import { CATALOG, loadImage, type CatalogEntry } from '@kvmts/guests';
import { createHost, KVM_REGS_FIELDS, Machine, type HostPort, type KvmRegName, type MigrationReport, type Vendor } from '@kvmts/vmm';
import { compareRuns, formatDifferences, MAX_STEPS, type ExitRow, type GuestRun } from '../src/index.js';

/** Fresh hosts per run: nothing left by another guest's VMs. */
async function hosts(): Promise<Record<Vendor, HostPort>> {
  const make = async (v: Vendor) => {
    const h = await createHost(v, { memBytes: 1 << 30 });
    if (typeof h === 'string') throw new Error(h);
    return h;
  };
  return { intel: await make('intel'), amd: await make('amd') };
}

function machine(host: HostPort, g: CatalogEntry): Machine {
  const regs: Partial<Record<KvmRegName, number>> = {};
  for (const name of KVM_REGS_FIELDS) if (g.regs?.[name] !== undefined) regs[name] = g.regs[name];
  const m = Machine.create(host, {
    image: loadImage(g.name), mem: g.mem, load: g.load, entry: g.entry, mode: g.mode, regs,
    ...(g.irqs && { irqs: { vector: g.irqs.vector, ...(g.irqs.count !== undefined && { count: g.irqs.count }) } }),
  });
  if (typeof m === 'string') throw new Error(m);
  return m;
}

interface SwapRun extends GuestRun {
  readonly migrations: readonly MigrationReport[];
  readonly refusals: readonly string[];
}

/**
 * Runs `g` from `start` to its end. After each userspace exit for which `swapAfter` says so, the
 * VM is migrated to the other vendor; the rows the migration's I/O completion produces stay in order.
 */
function run(hs: Record<Vendor, HostPort>, start: Vendor, g: CatalogEntry, swapAfter: (m: Machine) => boolean = () => false, sameVendor?: HostPort): SwapRun {
  const m = machine(hs[start], g);
  const home = hs[start];
  // Cross-vendor by default; with `sameVendor`, back and forth between it and the start host.
  const next = (): HostPort => (sameVendor ? (m.host === home ? sameVendor : home) : m.host === hs.intel ? hs.amd : hs.intel);
  const rows: ExitRow[] = [];
  const refusals: string[] = [];
  const keep = (r: { exit: string }) => { if (r.exit === 'io' || r.exit === 'mmio') rows.push(r as ExitRow); };
  try {
    for (let n = 0; n < MAX_STEPS && !m.final; n++) {
      const { row } = m.step();
      if (row) keep(row);
      if (m.final || !swapAfter(m)) continue;
      const r = m.migrate(next(), { onRow: keep });
      if (typeof r === 'string') refusals.push(r);
    }
    return { rows, final: m.final, serial: m.serialText, migrations: [...m.migrations], refusals };
  } finally {
    m.destroy();
  }
}

const swappable = CATALOG.filter((g) => g.kind === 'test' && g.vendorDependent === undefined && g.requires === undefined);

describe('--swap-every 1', () => {
  it('covers the catalog\'s vendor-neutral test guests', () => {
    expect(swappable.length).toBeGreaterThanOrEqual(20);
  });

  for (const g of swappable) {
    for (const start of ['intel', 'amd'] as const) {
      it(`${g.name} starting on ${start}: same exits, final registers and serial output as without swaps`, async () => {
        const plain = run(await hosts(), start, g);
        expect(plain.final).not.toBeNull();
        const swapped = run(await hosts(), start, g, () => true);
        expect(swapped.refusals).toEqual([]);
        // One migration per userspace exit but the last, each to the other vendor.
        expect(swapped.migrations.length).toBeGreaterThan(0);
        expect(swapped.migrations.every((r, i) => r.from === (i % 2 === 0 ? start : start === 'intel' ? 'amd' : 'intel') && r.to !== r.from)).toBe(true);
        expect(formatDifferences(compareRuns(plain, swapped, { state: true }), ['without swaps', 'with swaps'])).toBe('');
        expect(swapped.final).toEqual(plain.final);
      });
    }
  }
});

const nested = CATALOG.find((g) => g.name === 'nested-vmx-basic');

describe.skipIf(!nested)('a nested VM', () => {
  it('is refused a cross-vendor swap while L1 is in VMX operation, and runs on to the same result', async () => {
    const g = nested!;
    const plain = run(await hosts(), 'intel', g);
    expect(plain.final).toMatchObject({ exit: 'debug_exit', code: 0 });
    // Swaps are asked for after every exit once L2 has run (L1 did VMXON and VMLAUNCH by then).
    let inVmx = false;
    const swapped = run(await hosts(), 'intel', g, (m) => (inVmx ||= m.vcpu.isGuestMode?.() ?? false));
    // Refused while L2 runs, while L1 is in VMX operation, and after its VMXOFF while CR4.VMXE stays set.
    expect(swapped.refusals.length).toBeGreaterThan(5);
    for (const r of swapped.refusals) {
      expect(r).toMatch(/^migration refused: vCPU 0 (is running a nested guest \(L2\)|is in VMX operation \(VMXON at 0x[0-9a-f]+\)|has CR4\.VMXE set): /);
    }
    expect(swapped.refusals[0]).toMatch(/running a nested guest \(L2\): its vmx state cannot move to the other vendor/);
    expect(formatDifferences(compareRuns(plain, swapped, { state: true }), ['without swaps', 'with swaps'])).toBe('');
    expect(swapped.final).toEqual(plain.final);
  });

  it('moves between two Intel hosts after every exit from L2 on, through KVM_GET/SET_NESTED_STATE, to the same result', async () => {
    const g = nested!;
    const hs = await hosts();
    const plain = run(hs, 'intel', g);
    let inL2 = false;
    const other = await hosts();
    const moved = run(await hosts(), 'intel', g, (m) => (inL2 ||= m.vcpu.isGuestMode?.() ?? false), other.intel);
    expect(moved.refusals).toEqual([]);
    expect(moved.migrations.length).toBeGreaterThan(100);
    expect(moved.migrations.every((r) => r.from === 'intel' && r.to === 'intel')).toBe(true);
    expect(formatDifferences(compareRuns(plain, moved, { state: true }), ['without migrations', 'with migrations'])).toBe('');
    expect(moved.final).toEqual(plain.final);
  });
});
