/**
 * migrate.downtime and migrate.total (issue 9): the `demo` guest, given 16 MiB, is live-migrated
 * between kvm_intel and kvm_amd while it runs, as the dashboard's `v` does it. The guest runs
 * between pre-copy rounds, so the figures include its dirtying; the median of a few migrations,
 * alternating the direction, is reported, after warm-up migrations: the bench measures each job in
 * a fresh process, where the first migrations each way run code the JIT has not compiled yet.
 */
import { Machine, type HostPort, type MigrationReport } from '@kvmts/vmm';
import type { Vendor } from '../args.js';
import type { Stack } from '../stack.js';
import { median, round3, unavailable, type Figure } from './figure.js';

const MEM = 16 * 1024 ** 2;
/** Exits the demo runs before the first migration (its banner and first primes), and between rounds. */
const WARM_EXITS = 2_000;
const LIVE_EXITS = 200;
const MIGRATIONS = 5;
/** Migrations before the measured ones: two each way. */
const WARM_UP_MIGRATIONS = 4;

type HostFactory = (v: Vendor) => Promise<HostPort | string>;

/** The reports of MIGRATIONS live migrations of the demo, or why there are none. */
async function migrateDemo(stack: Stack, newHost: HostFactory): Promise<MigrationReport[] | string> {
  const demo = (await stack.catalog()).find((g) => g.name === 'demo');
  if (!demo) return 'the catalog has no demo guest';
  const hosts: HostPort[] = [];
  for (const v of ['intel', 'amd'] as const) {
    const h = await newHost(v);
    if (typeof h === 'string') return `${v}: ${h}`;
    hosts.push(h);
  }
  const [intel, amd] = hosts as [HostPort, HostPort];
  const m = Machine.create(intel, {
    image: demo.loadImage(), mode: demo.mode, mem: MEM, load: demo.load, entry: demo.entry,
    ...(demo.regs && { regs: demo.regs }), ...(demo.irqs && { irqs: demo.irqs }),
  });
  if (typeof m === 'string') return m;
  try {
    const reports: MigrationReport[] = [];
    m.runToEnd(undefined, WARM_EXITS);
    for (let i = 0; i < WARM_UP_MIGRATIONS + MIGRATIONS; i++) {
      const r = m.migrate(m.host === intel ? amd : intel, { liveExits: LIVE_EXITS });
      if (typeof r === 'string') return r;
      if (i >= WARM_UP_MIGRATIONS) reports.push(r);
      m.runToEnd(undefined, LIVE_EXITS);
    }
    // The demo never ends: an end means a migration broke it, and its figures do not count.
    if (m.final) return `the demo ended in ${m.final.exit} after migrating`;
    return reports;
  } finally {
    m.destroy();
  }
}

export async function migrateFigures(stack: Stack, newHost: HostFactory): Promise<Figure[]> {
  const r = await migrateDemo(stack, newHost);
  if (typeof r === 'string') return [unavailable('migrate.downtime', 'µs', r), unavailable('migrate.total', 'ms', r)];
  const note = `demo, 16 MiB, intel ⇄ amd, ${LIVE_EXITS} exits of guest run per pre-copy round; median of ${r.length} after ${WARM_UP_MIGRATIONS} warm-up migrations`;
  const pages = median(r.map((x) => x.pagesSent));
  return [
    { name: 'migrate.downtime', value: round3(median(r.map((x) => x.downtimeUs))), unit: 'µs', note },
    { name: 'migrate.total', value: round3(median(r.map((x) => x.totalMs))), unit: 'ms', note: `${note}; ${pages} pages sent, ${median(r.map((x) => x.rounds))} rounds` },
  ];
}
