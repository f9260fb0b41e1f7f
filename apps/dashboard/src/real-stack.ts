/** The stack as built: hosts through @kvmts/vmm, guests and bench images from @kvmts/guests, the bare CPU from @kvmts/x86. */
import { CATALOG, findGuest, hasImage, loadImage, serialMatches, type CatalogEntry } from '@kvmts/guests';
import { createHost, KVM_REGS_FIELDS, type KvmRegName } from '@kvmts/vmm';
import { runCpuLoop } from '@kvmts/x86';
import { benchNestedCpuid } from '@kvmts/vmx';
import { execFile } from 'node:child_process';
import type { CatalogGuest, CpuLoopResult, Stack } from './stack.js';
import type { Figure } from './bench/figure.js';

/** As vm.loop64 measures it: a 1 M-iteration run to warm the JIT, then the 10 M-iteration run that counts. */
const CPU_LOOP_WARM_ITERS = 1_000_000;
const CPU_LOOP_ITERS = 10_000_000;
/** A bench job that has not printed its figures by then is reported as failed, not waited for. */
const JOB_TIME_LIMIT_MS = 5 * 60_000;

/**
 * `kvmts bench --job ID --json` in a child: this process's node, its flags (tsx's loader and the
 * source condition under `npm run bench`) and its entry script, which takes the command as the
 * first argument either way.
 */
function runIsolated(job: string): Promise<Figure[] | string> {
  // A debugger's port is the parent's: a child that asked for it too would fail to start.
  const flags = process.execArgv.filter((f) => !f.startsWith('--inspect'));
  const argv = [...flags, process.argv[1]!, 'bench', '--json', '--job', job];
  return new Promise((resolve) => {
    execFile(process.execPath, argv, { timeout: JOB_TIME_LIMIT_MS, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) { resolve(`the ${job} job failed: ${(stderr || err.message).trim().split('\n')[0]}`); return; }
      try {
        resolve(JSON.parse(stdout) as Figure[]);
      } catch {
        resolve(`the ${job} job printed no figures`);
      }
    });
  });
}

function regsOf(entry: CatalogEntry): Partial<Record<KvmRegName, number>> | undefined {
  if (!entry.regs) return undefined;
  const regs: Partial<Record<KvmRegName, number>> = {};
  for (const name of KVM_REGS_FIELDS) if (entry.regs[name] !== undefined) regs[name] = entry.regs[name];
  return regs;
}

function toGuest(entry: CatalogEntry): CatalogGuest {
  const regs = regsOf(entry);
  return {
    name: entry.name,
    kind: entry.kind,
    description: entry.shows,
    mode: entry.mode,
    mem: entry.mem,
    load: entry.load,
    entry: entry.entry,
    ...(regs && { regs }),
    ...(entry.irqs && { irqs: entry.irqs }),
    loadImage: () => loadImage(entry.name),
  };
}

export const realStack: Stack = {
  createHost: (vendor) => createHost(vendor),
  catalog: async () => CATALOG.map(toGuest),
  benchImage: async (name) => {
    const entry = findGuest(name);
    if (!entry || !hasImage(name)) return null;
    return { image: loadImage(name), serialOk: (out) => serialMatches(entry.expect.serial, out) };
  },
  runIsolated,
  nestedCpuid: async () => (hasImage('nested-vmx-cpuid') ? benchNestedCpuid(loadImage('nested-vmx-cpuid')) : 'the nested-vmx-cpuid guest is not built'),
  cpuLoop: async (bits) => {
    const mode = bits === 64 ? 'long64' : 'real';
    let result: CpuLoopResult | string = '';
    for (const iters of [CPU_LOOP_WARM_ITERS, CPU_LOOP_ITERS]) {
      const image = `loop${bits}_${iters}`;
      if (!hasImage(image)) return `bench image ${image} is not built`;
      result = runCpuLoop(loadImage(image), mode, iters);
    }
    return result;
  },
};
