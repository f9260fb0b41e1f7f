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

export async function collectFigures(stack: Stack, progress?: (f: Figure) => void): Promise<Figure[]> {
  const figures: Figure[] = [];
  const add = (f: Figure) => { figures.push(f); progress?.(f); };
  const newHost = (v: Vendor) => () => stack.createHost(v).catch((e: unknown) => `failed: ${String(e)}`);
  // One host per vendor is probed up front; measurements build their own (see vm-figures.ts).
  const probes = new Map<Vendor, Awaited<ReturnType<Stack['createHost']>> | string>();
  for (const v of VENDORS) probes.set(v, await newHost(v)());
  const missing = (v: Vendor) => { const p = probes.get(v); return typeof p === 'string' ? p : null; };
  const firstVendor = VENDORS.find((v) => !missing(v));
  const perVendor = async (name: string, unit: string, v: Vendor, f: () => Promise<Figure>) =>
    add(await guarded(name, unit, () => (missing(v) ? unavailable(name, unit, missing(v)!) : f())));

  // The RSS figure goes first, before the other runs have grown the heap.
  add(await guarded('mem.sparse4g', 'MB', async () => {
    if (!firstVendor) return unavailable('mem.sparse4g', 'MB', 'no vendor is available');
    const host = await newHost(firstVendor)();
    return typeof host === 'string' ? unavailable('mem.sparse4g', 'MB', host) : memSparse4g(host);
  }));
  for (const bits of [16, 32, 64] as const) add(await guarded(`cpu.loop${bits}`, 'instr/s', () => cpuLoop(stack, bits)));
  for (const v of VENDORS) await perVendor(`vm.loop64.${v}`, 'instr/s', v, () => vmLoop64(stack, newHost(v), v));
  for (const v of VENDORS) await perVendor(`exit.cpuid.${v}`, 'ns', v, () => exitCpuid(stack, newHost(v), v));
  for (const v of VENDORS) await perVendor(`exit.pio.${v}`, 'ns', v, () => exitPio(stack, newHost(v), v));
  // Beside exit.cpuid.intel: one L2 exit reflected to L1, and L1's VMRESUME emulated by L0.
  await perVendor('nested.cpuid.intel', 'ns', 'intel', async () => {
    const r = stack.nestedCpuid ? await stack.nestedCpuid() : 'this stack has no nested VMX';
    const note = `L2 CPUID exit reflected to L1, L1's VMRESUME emulated; median of ${NESTED_MEASURED_RUNS} runs after ${NESTED_WARM_UP_RUNS} warm-up runs`;
    return typeof r === 'string' ? unavailable('nested.cpuid.intel', 'ns', r) : { name: 'nested.cpuid.intel', value: round3(r), unit: 'ns', note };
  });
  add(await guarded('vm.create', 'µs', async () => {
    if (!firstVendor) return unavailable('vm.create', 'µs', 'no vendor is available');
    const host = await newHost(firstVendor)();
    return typeof host === 'string' ? unavailable('vm.create', 'µs', host) : vmCreate(host, firstVendor);
  }));
  try {
    for (const f of await migrateFigures(stack, (v) => newHost(v)())) add(f);
  } catch (e) {
    const why = `failed: ${e instanceof Error ? e.message : String(e)}`;
    add(unavailable('migrate.downtime', 'µs', why));
    add(unavailable('migrate.total', 'ms', why));
  }
  return figures;
}

export async function benchCommand(json: boolean, io: Io, stack: Stack): Promise<number> {
  const figures = await collectFigures(stack, json ? undefined : (f) => io.stderr.write(`measured ${f.name}\n`));
  io.stdout.write(json ? '[\n' + figures.map((f) => JSON.stringify(f)).join(',\n') + '\n]\n' : formatTable(figures) + '\n');
  return 0;
}
