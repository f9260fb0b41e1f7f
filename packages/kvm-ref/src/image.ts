/**
 * Images: a flat guest entered in long64 mode exactly as `kvmts run --mode long64 --json` sets it
 * up (DESIGN.md), run on the real /dev/kvm at CPL0 (through KVM's emulator: a weaker reference),
 * with the same trace rows `kvmts run --json` prints.
 */
import { fromHex, runHelper, toHex } from './helper.js';

export interface ImageOptions {
  /** Memslot size at GPA 0; default 0x200000. */
  mem?: number;
  /** Load address; default 0x1000. */
  load?: number;
  /** Entry RIP; default 0x1000. */
  entry?: number;
  /** Stop after this many userspace exits (final row `max_exits`); default 100000. */
  maxExits?: number;
  /** Wall-clock limit (final row `timeout`); default 10 s. */
  timeoutMs?: number;
  /** Registers the VMM sets before the first KVM_RUN, by kvm_regs name (rax … r15, rip, rflags). */
  regs?: Readonly<Record<string, number | bigint>>;
}

/** One `--json` row: `exit` plus the fields DESIGN.md gives it. */
export type TraceRow = { exit: string } & Record<string, unknown>;

export interface ImageResult {
  /** Every userspace exit, in order; the last is the final one and carries `regs` and `sregs`. */
  rows: TraceRow[];
  /** The same rows as the helper printed them (DESIGN.md's key order and number format). */
  lines: string[];
  /** Bytes written to port 0x3f8. */
  serial: Uint8Array;
}

export function runImage(image: Uint8Array, opts: ImageOptions = {}): ImageResult {
  const mem = opts.mem ?? 0x200000;
  const args = [mem, opts.load ?? 0x1000, opts.entry ?? 0x1000, opts.maxExits ?? 100000, opts.timeoutMs ?? 10000];
  const regs = Object.entries(opts.regs ?? {}).map(([name, v]) => ` ${name}=${BigInt.asUintN(64, BigInt(v)).toString(16)}`);
  const out = runHelper(`I ${toHex(image)} ${args.map((n) => n.toString(16)).join(' ')}${regs.join('')}\n`);
  const lines = out.filter((l) => l.startsWith('J ')).map((l) => l.slice(2));
  const end = out.find((l) => l.startsWith('E '));
  if (end === undefined || lines.length === 0) throw new Error(`kvm-ref: bad image reply: ${out.join(' | ')}`);
  return { rows: lines.map((l) => JSON.parse(l) as TraceRow), lines, serial: fromHex(end.slice(2)) };
}
