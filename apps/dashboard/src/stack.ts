/**
 * What the `kvmts` command takes from the layers below it: a host per vendor (through the VMM
 * library) and the guest catalog. Commands receive a Stack, so tests can give them a fake one.
 */
import type { HostPort, IrqPlan, GuestMode, KvmRegName } from '@kvmts/vmm';
import type { Vendor } from './args.js';
import type { Figure } from './bench/figure.js';

export interface CatalogGuest {
  readonly name: string;
  /** test, demo or bench. */
  readonly kind: string;
  readonly description: string;
  readonly mode: GuestMode;
  readonly mem: number;
  readonly load: number;
  readonly entry: number;
  readonly regs?: Partial<Record<KvmRegName, number | bigint>>;
  readonly irqs?: IrqPlan;
  /** The image's bytes, read when the guest is run. */
  loadImage(): Uint8Array;
}

export interface Stack {
  /** A host with the vendor's module loaded, or why there is none yet. */
  createHost(vendor: Vendor): Promise<HostPort | string>;
  catalog(): Promise<readonly CatalogGuest[]>;
  /** A benchmark image built from ../shared/bench (`loop64_1000000`, `cpuid64`, `out64`, …), or null. */
  benchImage(name: string): Promise<BenchImage | null>;
  /** The bare-CPU loop (no virtualization) for `cpu.loopNN`, or why it cannot run. */
  cpuLoop(bits: 16 | 32 | 64): Promise<CpuLoopResult | string>;
  /** ns per L2 CPUID that an L1 hypervisor handles (`nested.cpuid.intel`), or why it cannot run. */
  nestedCpuid?(): Promise<number | string>;
  /** Runs one bench job (`kvmts bench --job ID`) in a fresh process: its figures, or why it could not run. */
  runIsolated?(job: string): Promise<Figure[] | string>;
}

export interface BenchImage {
  readonly image: Uint8Array;
  /** Whether a run's COM1 output is what the workload prints when it ran right. */
  serialOk(output: string): boolean;
}

export interface CpuLoopResult {
  readonly instructions: number;
  readonly seconds: number;
}
