/**
 * The figures measured through the whole stack: a VM set up as `kvmts run` sets it up, with
 * the anchors' workloads (../shared/bench/guest64.S) loaded at 0x7c00 in long64 mode.
 */
import { Machine, type HostPort, type MachineOptions } from '@kvmts/vmm';
import type { Vendor } from '../args.js';
import type { Stack } from '../stack.js';
import { round3, unavailable, type Figure } from './figure.js';

const BENCH_LOAD = 0x7c00;
/** Instructions in one iteration of the loop workload. */
const LOOP_BODY = 7;
/** ITERS the guests package builds cpuid64 and out64 with. */
const EXIT_ITERS = 100_000;
/** A bench guest that has not ended by then is reported as failed, not waited for. */
const TIME_LIMIT_MS = 30_000;

function bench64(image: Uint8Array): MachineOptions {
  return { image, mode: 'long64', mem: 0x200000, load: BENCH_LOAD, entry: BENCH_LOAD };
}

/** Runs a machine to its end; returns elapsed ms or why it failed. */
function runTimed(machine: Machine): number | string {
  const t0 = performance.now();
  while (!machine.done) {
    machine.step();
    if (performance.now() - t0 > TIME_LIMIT_MS) return `did not finish within ${TIME_LIMIT_MS / 1000} s`;
  }
  const ms = performance.now() - t0;
  return machine.final!.exit === 'hlt' ? ms : `ended in ${machine.final!.exit}, not hlt`;
}

async function withMachine(stack: Stack, host: HostPort, imageName: string, f: (m: Machine) => number | string): Promise<number | string> {
  const image = await stack.benchImage(imageName);
  if (!image) return `bench image ${imageName} is not built`;
  const m = Machine.create(host, bench64(image));
  if (typeof m === 'string') return m;
  try { return f(m); } finally { m.destroy(); }
}

export async function vmLoop64(stack: Stack, host: HostPort | string, vendor: Vendor): Promise<Figure> {
  const name = `vm.loop64.${vendor}`;
  if (typeof host === 'string') return unavailable(name, 'instr/s', host);
  // A short run first warms the decoder caches and tells how long the long run will take.
  const iters = 1_000_000;
  const warm = await withMachine(stack, host, `loop64_${iters}`, runTimed);
  if (typeof warm === 'string') return unavailable(name, 'instr/s', warm);
  const big = 10_000_000;
  const useBig = warm * 10 < 15_000;
  const ms = useBig ? await withMachine(stack, host, `loop64_${big}`, runTimed) : warm;
  if (typeof ms === 'string') return unavailable(name, 'instr/s', ms);
  return { name, value: round3(((useBig ? big : iters) * LOOP_BODY) / (ms / 1000)), unit: 'instr/s' };
}

export async function exitCpuid(stack: Stack, host: HostPort | string, vendor: Vendor): Promise<Figure> {
  const name = `exit.cpuid.${vendor}`;
  if (typeof host === 'string') return unavailable(name, 'ns', host);
  const ms = await withMachine(stack, host, 'cpuid64', runTimed);
  if (typeof ms === 'string') return unavailable(name, 'ns', ms);
  return { name, value: round3((ms * 1e6) / EXIT_ITERS), unit: 'ns', note: 'whole cpuid64 run / CPUIDs, loop included' };
}

/** The OUT round trip: KVM_RUN returns KVM_EXIT_IO to this loop, which runs the vCPU again at once. */
export async function exitPio(stack: Stack, host: HostPort | string, vendor: Vendor): Promise<Figure> {
  const name = `exit.pio.${vendor}`;
  if (typeof host === 'string') return unavailable(name, 'ns', host);
  const result = await withMachine(stack, host, 'out64', (m) => {
    let outs = 0;
    const t0 = performance.now();
    for (;;) {
      const exit = m.vcpu.run();
      if (exit.kind === 'io' && exit.port === 0x510) outs++;
      else if (exit.kind === 'hlt') break;
      else if (exit.kind !== 'io' && exit.kind !== 'intr') return `unexpected ${exit.kind} exit`;
      if (performance.now() - t0 > TIME_LIMIT_MS) return `did not finish within ${TIME_LIMIT_MS / 1000} s`;
    }
    const ms = performance.now() - t0;
    return outs === EXIT_ITERS ? (ms * 1e6) / outs : `saw ${outs} OUTs to 0x510, expected ${EXIT_ITERS}`;
  });
  if (typeof result === 'string') return unavailable(name, 'ns', result);
  return { name, value: round3(result), unit: 'ns' };
}

/** Create a VM with one memslot and one vCPU, run a one-byte HLT guest, destroy it. */
export function vmCreate(host: HostPort | string, vendor: Vendor): Figure {
  const name = 'vm.create';
  if (typeof host === 'string') return unavailable(name, 'µs', host);
  const once = (): string | null => {
    const m = Machine.create(host, { image: Uint8Array.of(0xf4), mem: 0x200000 });
    if (typeof m === 'string') return m;
    m.runToEnd(undefined, 100);
    m.destroy();
    return m.final?.exit === 'hlt' ? null : `the HLT guest ended in ${m.final?.exit ?? 'nothing'}`;
  };
  const first = once();
  if (first) return unavailable(name, 'µs', first);
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < 2000 && n < 2000) { once(); n++; }
  return { name, value: round3(((performance.now() - t0) * 1000) / n), unit: 'µs', note: `${vendor}, mean of ${n}` };
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

export function memSparse4g(host: HostPort | string): Figure {
  const name = 'mem.sparse4g';
  if (typeof host === 'string') return unavailable(name, 'MB', host);
  const before = process.memoryUsage().rss;
  const m = Machine.create(host, { image: TOUCH_16M, mode: 'long64', mem: 4 * 1024 ** 3 });
  if (typeof m === 'string') return unavailable(name, 'MB', m);
  const ms = runTimed(m);
  const rss = process.memoryUsage().rss - before;
  m.destroy();
  if (typeof ms === 'string') return unavailable(name, 'MB', ms);
  return { name, value: round3(rss / 1024 ** 2), unit: 'MB', note: 'growth of process RSS while the VM ran' };
}
