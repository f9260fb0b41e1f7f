/**
 * One catalog guest, run to its end through the minimal VMM (`kvmts run NAME`), or through the
 * machine's /dev/kvm. Both give the same shape: the userspace exits the VMM did not claim, the
 * final row with registers, and the serial output.
 */
import { KVM_REGS_FIELDS, Machine, type FinalRow, type HostPort, type KvmRegName, type TraceRow } from '@kvmts/vmm';
import { loadImage, type CatalogEntry } from '@kvmts/guests';

/** The exits before the final one; JSON rows in `kvmts run --json`'s key order. */
export type ExitRow = Exclude<TraceRow, FinalRow>;

export interface GuestRun {
  readonly rows: readonly ExitRow[];
  /** null when the guest had not ended (a demo, or a runaway guest) when the run stopped. */
  readonly final: FinalRow | null;
  readonly serial: string;
}

/** Userspace exits (claimed ones too) a guest that should end may take: out16 takes 100000. */
export const MAX_STEPS = 1_000_000;
/** How far an endless guest (the demo) is run before the comparison. */
export const ENDLESS_STEPS = 3_000;

function initialRegs(g: CatalogEntry): Partial<Record<KvmRegName, number>> {
  const regs: Partial<Record<KvmRegName, number>> = {};
  for (const name of KVM_REGS_FIELDS) {
    const v = g.regs?.[name];
    if (v !== undefined) regs[name] = v;
  }
  return regs;
}

/** Runs `g` as `kvmts run NAME` would, on one host; or says why it could not start. */
export function runGuest(host: HostPort, g: CatalogEntry): GuestRun | string {
  const machine = Machine.create(host, {
    image: loadImage(g.name),
    mem: g.mem,
    load: g.load,
    entry: g.entry,
    mode: g.mode,
    regs: initialRegs(g),
    ...(g.irqs && { irqs: { vector: g.irqs.vector, ...(g.irqs.count !== undefined && { count: g.irqs.count }) } }),
  });
  if (typeof machine === 'string') return machine;
  try {
    const all = machine.runToEnd(undefined, g.expect.exit ? MAX_STEPS : ENDLESS_STEPS);
    const rows = all.filter((r): r is ExitRow => r.exit === 'io' || r.exit === 'mmio');
    return { rows, final: machine.final, serial: machine.serialText };
  } finally {
    machine.destroy();
  }
}
