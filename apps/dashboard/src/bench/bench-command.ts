/** `kvmts bench` / `npm run bench`: every figure of DESIGN.md's list, as a JSON array or a table. */
import type { Vendor } from '../args.js';
import type { Io } from '../run-command.js';
import type { Stack } from '../stack.js';
import { formatTable, round3, unavailable, type Figure } from './figure.js';
import { exitCpuid, exitPio, memSparse4g, vmCreate, vmLoop64 } from './vm-figures.js';
import { migrateFigures } from './migrate-figures.js';
import { NESTED_MEASURED_RUNS, NESTED_WARM_UP_RUNS } from '@kvmts/vmx';

const VENDORS: readonly Vendor[] = ['intel', 'amd'];

async function cpuLoop(stack: Stack, bits: 16 | 32 | 64): Promise<Figure> {
  const name = `cpu.loop${bits}`;
  const r = await stack.cpuLoop(bits);
  if (typeof r === 'string') return unavailable(name, 'instr/s', r);
  return { name, value: round3(r.instructions / r.seconds), unit: 'instr/s' };
}

/** A figure whose measurement throws is reported, not fatal: the other figures still count. */
async function guarded(name: string, unit: string, f: () => Figure | Promise<Figure>): Promise<Figure> {
  try {
    return await f();
  } catch (e) {
    return unavailable(name, unit, `failed: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/**
 * A unit of measurement: one figure or a pair measured together. `names` are its figures, for
 * reporting a job that could not run at all.
 */
export interface BenchJob {
  readonly id: string;
  readonly names: readonly (readonly [name: string, unit: string])[];
  run(): Promise<Figure[]>;
}

function benchJobs(stack: Stack): BenchJob[] {
  const newHost = (v: Vendor) => () => stack.createHost(v).catch((e: unknown) => `failed: ${String(e)}`);
  // Each job probes the vendors itself: measurements build their own hosts (see vm-figures.ts).
  let probes: Promise<Map<Vendor, string | null>> | null = null;
  const probe = () => (probes ??= (async () => {
    const m = new Map<Vendor, string | null>();
    for (const v of VENDORS) { const h = await newHost(v)(); m.set(v, typeof h === 'string' ? h : null); }
    return m;
  })());
  const firstVendor = async () => { const m = await probe(); return VENDORS.find((v) => m.get(v) === null); };
  const one = (name: string, unit: string, f: () => Figure | Promise<Figure>): BenchJob =>
    ({ id: name, names: [[name, unit]], run: async () => [await guarded(name, unit, f)] });
  const perVendor = (name: string, unit: string, v: Vendor, f: () => Promise<Figure>): BenchJob =>
    one(name, unit, async () => { const why = (await probe()).get(v); return why ? unavailable(name, unit, why) : f(); });

  return [
    one('mem.sparse4g', 'MB', async () => {
      const v = await firstVendor();
      if (!v) return unavailable('mem.sparse4g', 'MB', 'no vendor is available');
      const host = await newHost(v)();
      return typeof host === 'string' ? unavailable('mem.sparse4g', 'MB', host) : memSparse4g(host);
    }),
    ...([16, 32, 64] as const).map((bits) => one(`cpu.loop${bits}`, 'instr/s', () => cpuLoop(stack, bits))),
    ...VENDORS.map((v) => perVendor(`vm.loop64.${v}`, 'instr/s', v, () => vmLoop64(stack, newHost(v), v))),
    ...VENDORS.map((v) => perVendor(`exit.cpuid.${v}`, 'ns', v, () => exitCpuid(stack, newHost(v), v))),
    ...VENDORS.map((v) => perVendor(`exit.pio.${v}`, 'ns', v, () => exitPio(stack, newHost(v), v))),
    // Beside exit.cpuid.intel: one L2 exit reflected to L1, and L1's VMRESUME emulated by L0.
    perVendor('nested.cpuid.intel', 'ns', 'intel', async () => {
      const r = stack.nestedCpuid ? await stack.nestedCpuid() : 'this stack has no nested VMX';
      const note = `L2 CPUID exit reflected to L1, L1's VMRESUME emulated; median of ${NESTED_MEASURED_RUNS} runs after ${NESTED_WARM_UP_RUNS} warm-up runs`;
      return typeof r === 'string' ? unavailable('nested.cpuid.intel', 'ns', r) : { name: 'nested.cpuid.intel', value: round3(r), unit: 'ns', note };
    }),
    one('vm.create', 'µs', async () => {
      const v = await firstVendor();
      if (!v) return unavailable('vm.create', 'µs', 'no vendor is available');
      const host = await newHost(v)();
      return typeof host === 'string' ? unavailable('vm.create', 'µs', host) : vmCreate(host, v);
    }),
    {
      id: 'migrate',
      names: [['migrate.downtime', 'µs'], ['migrate.total', 'ms']],
      run: async () => {
        try {
          return await migrateFigures(stack, (v) => newHost(v)());
        } catch (e) {
          const why = `failed: ${e instanceof Error ? e.message : String(e)}`;
          return [unavailable('migrate.downtime', 'µs', why), unavailable('migrate.total', 'ms', why)];
        }
      },
    },
  ];
}

/**
 * Every figure, job by job. With `only`, just that job (what an isolated child measures). When
 * the stack can run a job in a process of its own (`runIsolated`), each job gets a fresh one: a
 * workload measured after others would run on code V8 compiled for all of them (the CPU loops'
 * three modes, the other vendor's exit path), about 10% slower than it runs alone.
 */
export async function collectFigures(stack: Stack, progress?: (f: Figure) => void, only?: string): Promise<Figure[]> {
  const figures: Figure[] = [];
  const add = (f: Figure) => { figures.push(f); progress?.(f); };
  for (const job of benchJobs(stack)) {
    if (only !== undefined && job.id !== only) continue;
    let got: Figure[] | string = only === undefined && stack.runIsolated ? await stack.runIsolated(job.id) : await job.run();
    if (typeof got !== 'string' && !sameNames(got, job)) got = `the isolated run gave ${got.map((f) => f.name).join(', ') || 'no figures'}`;
    if (typeof got === 'string') for (const [name, unit] of job.names) add(unavailable(name, unit, got));
    else for (const f of got) add(f);
  }
  return figures;
}

function sameNames(figures: readonly Figure[], job: BenchJob): boolean {
  return figures.length === job.names.length && figures.every((f, i) => f.name === job.names[i]![0]);
}

export async function benchCommand(json: boolean, io: Io, stack: Stack, job?: string): Promise<number> {
  if (job !== undefined) {
    const ids = benchJobs(stack).map((j) => j.id);
    if (!ids.includes(job)) { io.stderr.write(`kvmts bench: no job ${job} (jobs: ${ids.join(', ')})\n`); return 64; }
  }
  const figures = await collectFigures(stack, json ? undefined : (f) => io.stderr.write(`measured ${f.name}\n`), job);
  io.stdout.write(json ? '[\n' + figures.map((f) => JSON.stringify(f)).join(',\n') + '\n]\n' : formatTable(figures) + '\n');
  return 0;
}
