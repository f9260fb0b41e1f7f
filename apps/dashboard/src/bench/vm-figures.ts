/**
 * The figures measured through the whole stack: a VM set up as `kvmts run` sets it up, with
 * the anchors' workloads (../shared/bench/guest64.S) loaded at 0x7c00 in long64 mode. Each
 * measurement gets a fresh host, so one VM's leftovers cannot speed up or break the next, and
 * each run's COM1 output is checked: a workload that computed the wrong thing gives no figure.
 */
import { Machine, type HostPort, type MachineOptions } from '@kvmts/vmm';
import type { Vendor } from '../args.js';
import type { Stack } from '../stack.js';
import { median, round3, unavailable, type Figure } from './figure.js';

const BENCH_LOAD = 0x7c00;
/** Instructions in one iteration of the loop workload. */
const LOOP_BODY = 7;
/** ITERS the guests package builds cpuid64 and out64 with. */
const EXIT_ITERS = 100_000;
/** The port out64 writes (guest64.S's PORT_OUT). */
const PORT_OUT = 0x510;
/**
 * Runs of an exit workload: WARM_UP_RUNS warm-ups, then the median of MEASURED_RUNS (see `steady`).
 * A run takes about 0.1 s; the machine's other load comes in bursts of up to half a second, which
 * the median of 9 rides out (of 5 it did not, now and then).
 */
const WARM_UP_RUNS = 4;
const MEASURED_RUNS = 9;
const STEADY_NOTE = `median of ${MEASURED_RUNS} runs after ${WARM_UP_RUNS} warm-up runs`;
/** Creates before vm.create's timed ones. */
const VM_CREATE_WARM_UP = 1000;
/** A bench guest that has not ended by then is reported as failed, not waited for. */
const TIME_LIMIT_MS = 30_000;

type HostFactory = () => Promise<HostPort | string>;

function bench64(image: Uint8Array): MachineOptions {
  return { image, mode: 'long64', mem: 0x200000, load: BENCH_LOAD, entry: BENCH_LOAD };
}

/** Runs a machine to its end, calling `onStep` for each exit; returns elapsed ms or why it failed. */
function runTimed(machine: Machine, onStep?: (s: ReturnType<Machine['step']>) => void): number | string {
  const t0 = performance.now();
  for (let n = 1; !machine.done; n++) {
    const s = machine.step();
    onStep?.(s);
    // The clock is read every 1024 exits: reading it per exit would be part of the figure.
    if ((n & 1023) === 0 && performance.now() - t0 > TIME_LIMIT_MS) return `did not finish within ${TIME_LIMIT_MS / 1000} s`;
  }
  const ms = performance.now() - t0;
  return machine.final!.exit === 'hlt' ? ms : `ended in ${machine.final!.exit}, not hlt`;
}

/** Runs bench image `name` on a fresh host of the vendor; `f` measures, the serial output is checked after. */
async function withMachine<T>(stack: Stack, newHost: HostFactory, name: string, f: (m: Machine) => T | string): Promise<T | string> {
  const bench = await stack.benchImage(name);
  if (!bench) return `bench image ${name} is not built`;
  const host = await newHost();
  if (typeof host === 'string') return host;
  const m = Machine.create(host, bench64(bench.image));
  if (typeof m === 'string') return m;
  try {
    const result = f(m);
    if (typeof result === 'string') return result;
    if (!bench.serialOk(m.serialText)) return `${name} printed ${JSON.stringify(m.serialText)}: the workload did not run right`;
    return result;
  } finally {
    m.destroy();
  }
}

export async function vmLoop64(stack: Stack, newHost: HostFactory, vendor: Vendor): Promise<Figure> {
  const name = `vm.loop64.${vendor}`;
  // A short run first warms up the JIT and tells how long the long run would take.
  const small = 1_000_000;
  const warm = await withMachine(stack, newHost, `loop64_${small}`, (m) => runTimed(m));
  if (typeof warm === 'string') return unavailable(name, 'instr/s', warm);
  const big = 10_000_000;
  const iters = warm * 10 < 15_000 ? big : small;
  const ms = iters === big ? await withMachine(stack, newHost, `loop64_${big}`, (m) => runTimed(m)) : warm;
  if (typeof ms === 'string') return unavailable(name, 'instr/s', ms);
  return { name, value: round3((iters * LOOP_BODY) / (ms / 1000)), unit: 'instr/s' };
}

/**
 * Runs `measure` WARM_UP_RUNS + MEASURED_RUNS times and returns the median of the measured runs.
 * The warm-ups are the JIT's: on a fresh process the first two runs of an exit workload take about
 * twice as long as the third and later ones, as vm.loop64's short run warms its long one, and
 * with the kvmts command's inlining budget (src/v8-tuning.ts) the compiles finish a run or two
 * later still.
 */
async function steady(measure: () => Promise<number | string>): Promise<number | string> {
  const runs: number[] = [];
  for (let i = 0; i < WARM_UP_RUNS + MEASURED_RUNS; i++) {
    const r = await measure();
    if (typeof r === 'string') return r;
    if (i >= WARM_UP_RUNS) runs.push(r);
  }
  return median(runs);
}

export async function exitCpuid(stack: Stack, newHost: HostFactory, vendor: Vendor): Promise<Figure> {
  const name = `exit.cpuid.${vendor}`;
  const ms = await steady(() => withMachine(stack, newHost, 'cpuid64', (m) => runTimed(m)));
  if (typeof ms === 'string') return unavailable(name, 'ns', ms);
  return { name, value: round3((ms * 1e6) / EXIT_ITERS), unit: 'ns', note: `whole cpuid64 run / CPUIDs, loop included; ${STEADY_NOTE}` };
}

/** The OUT round trip: KVM_RUN returns KVM_EXIT_IO to the VMM, which runs the vCPU again at once. */
export async function exitPio(stack: Stack, newHost: HostFactory, vendor: Vendor): Promise<Figure> {
  const name = `exit.pio.${vendor}`;
  const result = await steady(() => withMachine(stack, newHost, 'out64', (m) => {
    let outs = 0;
    const ms = runTimed(m, (s) => { if (s.exit.kind === 'io' && s.exit.port === PORT_OUT) outs++; });
    if (typeof ms === 'string') return ms;
    return outs === EXIT_ITERS ? (ms * 1e6) / outs : `saw ${outs} OUTs to 0x${PORT_OUT.toString(16)}, expected ${EXIT_ITERS}`;
  }));
  if (typeof result === 'string') return unavailable(name, 'ns', result);
  return { name, value: round3(result), unit: 'ns', note: `whole out64 run / OUTs, trace rows included; ${STEADY_NOTE}` };
}

/** Create a VM with one memslot and one vCPU, run a one-byte HLT guest, destroy it. */
export function vmCreate(host: HostPort, vendor: Vendor): Figure {
  const name = 'vm.create';
  const once = (): string | null => {
    const m = Machine.create(host, { image: Uint8Array.of(0xf4), mem: 0x200000 });
    if (typeof m === 'string') return m;
    m.runToEnd(undefined, 100);
    m.destroy();
    return m.final?.exit === 'hlt' ? null : `the HLT guest ended in ${m.final?.exit ?? 'nothing'}`;
  };
  const first = once();
  if (first) return unavailable(name, 'µs', first);
  // Warm-up creates: in a fresh process the JIT is still compiling the create path for the first
  // several hundred (after 300 the mean is still about twice the steady one), as the exit
  // figures' warm-up runs let it compile theirs.
  for (let i = 0; i < VM_CREATE_WARM_UP; i++) {
    const err = once();
    if (err) return unavailable(name, 'µs', `warm-up ${i + 2}: ${err}`);
  }
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < 2000 && n < 2000) {
    const err = once();
    if (err) return unavailable(name, 'µs', `run ${n + 2}: ${err}`);
    n++;
  }
  return { name, value: round3(((performance.now() - t0) * 1000) / n), unit: 'µs', note: `${vendor}, mean of ${n} after ${VM_CREATE_WARM_UP} warm-up creates` };
}

/** A long64 guest that writes one byte in each 4 KiB page of [1 MiB, 17 MiB), then halts. */
export const TOUCH_16M = Uint8Array.of(
  0xbf, 0x00, 0x00, 0x10, 0x00, // mov edi, 0x100000
  0xb9, 0x00, 0x10, 0x00, 0x00, // mov ecx, 4096
  0xc6, 0x07, 0x01, //             1: mov byte [rdi], 1
  0x81, 0xc7, 0x00, 0x10, 0x00, 0x00, // add edi, 0x1000
  0xff, 0xc9, //                   dec ecx
  0x75, 0xf3, //                   jnz 1b
  0xf4, //                         hlt
);

export function memSparse4g(host: HostPort): Figure {
  const name = 'mem.sparse4g';
  const before = process.memoryUsage().rss;
  const m = Machine.create(host, { image: TOUCH_16M, mode: 'long64', mem: 4 * 1024 ** 3 });
  if (typeof m === 'string') return unavailable(name, 'MB', m);
  const ms = runTimed(m);
  const rss = process.memoryUsage().rss - before;
  m.destroy();
  if (typeof ms === 'string') return unavailable(name, 'MB', ms);
  return { name, value: round3(rss / 1024 ** 2), unit: 'MB', note: 'growth of process RSS while the VM ran' };
}
