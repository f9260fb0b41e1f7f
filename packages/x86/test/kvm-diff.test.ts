/**
 * CPU differential fuzz against the machine's /dev/kvm (issue 2). Seeded random snippets of
 * 64-bit integer instructions run natively on the host CPU at CPL3 (through @kvmts/kvm-ref) and
 * on our Cpu set up in the same state; every GPR, the scratch page and the flags each snippet
 * defines must agree. KVMTS_DIFF_SEED and KVMTS_DIFF_COUNT pick another slice of the space.
 */
import { describe, expect, it } from 'vitest';
import {
  COMPARED_FLAGS, generateFaultingSnippets, generateSnippets, INSN_CLASSES, kvmRefUnavailable, runSnippets, SNIPPET_LAYOUT,
} from '@kvmts/kvm-ref';
import type { GeneratedSnippet, GenerateOptions, SnippetResult } from '@kvmts/kvm-ref';
import { Bus } from '../src/bus.js';
import { Cpu } from '../src/cpu/cpu.js';
import { PhysMemory } from '../src/mem/phys-memory.js';
import { ACTIVITY, AR, RFLAGS, SEG } from '../src/cpu/state.js';
import { STOP } from '../src/cpu/virt.js';

const reason = kvmRefUnavailable();
if (reason !== null) console.log(`CPU differential tests against /dev/kvm skipped: ${reason}`);

const SEED = Number(process.env['KVMTS_DIFF_SEED'] ?? 1);
const COUNT = Number(process.env['KVMTS_DIFF_COUNT'] ?? 3000);
/** Snippets per instruction class, each class alone (1-3 instructions of it). */
const PER_CLASS = 300;
/** Snippets ending in a faulting instruction (each costs the host a fresh VM, ~8 ms). */
const FAULTING = 200;
const L = SNIPPET_LAYOUT;
const SCRATCH_COMPARED = 0x800;
/** After the closing OUT: `jmp $`, so a CPU that runs on past the stop request goes nowhere. */
const SPIN = [0xeb, 0xfe];

const USER_CODE_AR = 0xb | AR.S | (3 << AR.DPL_SHIFT) | AR.P | AR.L | AR.G;
const USER_DATA_AR = 0x3 | AR.S | (3 << AR.DPL_SHIFT) | AR.P | AR.DB | AR.G;

/** Our CPU in the snippet VM's state: the same page tables, segments and control registers. */
class SnippetMachine {
  readonly mem = new PhysMemory(L.memSize);
  readonly cpu: Cpu;
  private stopped = false;

  constructor() {
    const bus = new Bus(this.mem, {
      mmioRead: () => 0xffffffff,
      mmioWrite: () => {},
      pioIn: () => 0xffffffff,
      pioOut: (port) => {
        if (port === L.endPort) {
          this.stopped = true;
          this.cpu.requestStop();
        }
      },
    });
    this.cpu = new Cpu({ bus });
    // Identity map of the first 1 GiB with 2 MiB user pages, as kvmref.c's map_1g does.
    this.write64(L.pml4, L.pdpt | 7);
    this.write64(L.pdpt, L.pd | 7);
    for (let i = 0; i < 512; i++) this.write64(L.pd + i * 8, i * 0x200000 + 0x87);
  }

  private write64(pa: number, v: number): void {
    this.mem.write32(pa, v % 0x100000000);
    this.mem.write32(pa + 4, Math.floor(v / 0x100000000));
  }

  run(g: GeneratedSnippet): SnippetResult {
    const { code, gpr, rflags, scratch } = g.snippet;
    [...code, ...L.endCode, ...SPIN].forEach((b, i) => this.mem.write8(L.code + i, b));
    for (let i = 0; i < L.scratchSize; i++) this.mem.write8(L.scratch + i, scratch?.[i] ?? 0);
    const c = this.cpu;
    gpr.forEach((v, i) => {
      c.gpr[i] = Number(v & 0xffffffffn) | 0;
      c.gprHi[i] = Number(v >> 32n) | 0;
    });
    c.seg[SEG.CS] = { selector: L.userCs, base: 0, limit: 0xffffffff, ar: USER_CODE_AR };
    for (const s of [SEG.ES, SEG.SS, SEG.DS, SEG.FS, SEG.GS]) c.seg[s] = { selector: L.userDs, base: 0, limit: 0xffffffff, ar: USER_DATA_AR };
    c.seg[SEG.FS]!.base = L.fsBase;
    c.seg[SEG.GS]!.base = L.gsBase;
    c.gdtr = { base: L.gdt, limit: 0x3f };
    // No IDT, as on the host: an exception becomes a triple fault (shutdown).
    c.idtr = { base: 0, limit: 0 };
    c.cr0 = L.cr0;
    c.cr3 = L.pml4;
    c.cr4 = L.cr4;
    c.efer = L.efer;
    c.rip = L.code;
    // IOPL 3 lets the closing OUT through at CPL3, as on the host.
    c.setRflags(Number(rflags) | RFLAGS.IOPL);
    c.activity = ACTIVITY.ACTIVE;
    c.stateChanged();
    c.flushTlb();
    this.stopped = false;
    let stop: number;
    try {
      stop = c.run(100_000);
    } catch (e) {
      return result(`threw: ${String(e)}`, c);
    }
    const exit = this.stopped && stop === STOP.REQUESTED ? 'out'
      : stop === STOP.SHUTDOWN ? 'shutdown' : stop === STOP.INTERNAL ? `internal: ${c.internalError.split('\n')[0]}` : `stop:${stop}`;
    return result(exit, c, this.mem);
  }
}

function result(exit: string, c: Cpu, mem?: PhysMemory): SnippetResult {
  const gpr = Array.from({ length: 16 }, (_, i) => (BigInt(c.gprHi[i]! >>> 0) << 32n) | BigInt(c.gpr[i]! >>> 0));
  const scratch = new Uint8Array(SCRATCH_COMPARED);
  if (mem) for (let i = 0; i < SCRATCH_COMPARED; i++) scratch[i] = mem.read8(L.scratch + i);
  return { exit, rip: BigInt.asUintN(64, BigInt(c.rip)), rflags: BigInt(c.getRflags()), gpr, scratch };
}

const REG = ['rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'];
const FLAG_NAMES = [[0x1, 'CF'], [0x4, 'PF'], [0x10, 'AF'], [0x40, 'ZF'], [0x80, 'SF'], [0x400, 'DF'], [0x800, 'OF']] as const;
const flagText = (f: number): string => FLAG_NAMES.filter(([m]) => f & m).map(([, n]) => n).join(' ') || '-';
const hex = (v: bigint): string => `0x${v.toString(16)}`;

/** The differences between the host's and our results, or [] when they agree. */
function compare(g: GeneratedSnippet, host: SnippetResult, ours: SnippetResult): string[] {
  if (host.exit !== 'out') return [`host did not finish (${host.exit}): the generator made a bad snippet`];
  if (ours.exit !== 'out') return [`ours stopped with ${ours.exit} at rip ${hex(ours.rip)}`];
  const d: string[] = [];
  if (ours.rip !== host.rip) d.push(`rip: host ${hex(host.rip)} ours ${hex(ours.rip)}`);
  host.gpr.forEach((v, i) => {
    if (ours.gpr[i] !== v) d.push(`${REG[i]}: host ${hex(v)} ours ${hex(ours.gpr[i]!)}`);
  });
  const mask = BigInt(COMPARED_FLAGS & ~g.undefinedFlags);
  const diff = Number((host.rflags ^ ours.rflags) & mask);
  if (diff) d.push(`flags ${flagText(diff)}: host ${flagText(Number(host.rflags & mask))} ours ${flagText(Number(ours.rflags & mask))}`);
  for (let i = 0; i < SCRATCH_COMPARED; i++) {
    if (host.scratch[i] !== ours.scratch[i]) {
      d.push(`scratch+${hex(BigInt(i))}: host ${host.scratch[i]!.toString(16)} ours ${ours.scratch[i]!.toString(16)}`);
      break;
    }
  }
  return d;
}

function describeCase(seed: number, i: number, g: GeneratedSnippet, diffs: string[]): string {
  const regs = g.snippet.gpr.map((v, r) => `${REG[r]}=${hex(v)}`).join(' ');
  return [
    `#${i} (seed ${seed})`,
    ...g.asm.map((a) => `    ${a}`),
    `  bytes ${Buffer.from(g.snippet.code).toString('hex')}`,
    `  in: ${regs} flags=${flagText(Number(g.snippet.rflags))}${g.undefinedFlags ? ` (undefined after: ${flagText(g.undefinedFlags)})` : ''}`,
    ...diffs.map((x) => `  ${x}`),
  ].join('\n');
}

/** Runs the snippets on both CPUs; returns a readable account of each that differs. */
/** Runs the snippets on both CPUs; returns a readable account of each that differs. */
function differences(seed: number, count: number, opts: GenerateOptions): string[] {
  const gen = generateSnippets(seed, count, opts);
  const host = runSnippets(gen.map((g) => ({ ...g.snippet, scratch: g.snippet.scratch!.subarray(0, SCRATCH_COMPARED) })));
  const machine = new SnippetMachine();
  const failures: string[] = [];
  gen.forEach((g, i) => {
    const diffs = compare(g, host[i]!, machine.run(g));
    if (diffs.length) failures.push(describeCase(seed, i, g, diffs));
  });
  return failures;
}

function expectNone(failures: string[], count: number): void {
  const shown = failures.slice(0, 12).join('\n\n');
  expect(failures.length, `${failures.length} of ${count} snippets differ; the first ones:\n\n${shown}`).toBe(0);
}

describe.skipIf(reason !== null)('CPU against the host CPU through /dev/kvm', () => {
  it.each(INSN_CLASSES.map((c, i) => [c, i] as const))('agrees on %s', (cls, i) => {
    expectNone(differences(SEED * 1000 + i, PER_CLASS, { classes: [cls], maxInsns: 3 }), PER_CLASS);
  });

  it(`agrees on ${COUNT} mixed random sequences (seed ${SEED})`, () => {
    expectNone(differences(SEED, COUNT, {}), COUNT);
  });

  it('faults where the host faults: same instruction, registers as before it', () => {
    const gen = generateFaultingSnippets(SEED, FAULTING);
    const host = runSnippets(gen.map((g) => g.snippet));
    const machine = new SnippetMachine();
    const failures = gen.flatMap((g, i) => {
      const h = host[i]!;
      const o = machine.run(g);
      const d: string[] = [];
      if (h.exit !== 'shutdown' || h.rip !== BigInt(g.faultRip)) d.push(`host: ${h.exit} at ${hex(h.rip)}, expected a fault at ${hex(BigInt(g.faultRip))}`);
      if (o.exit !== 'shutdown' || o.rip !== h.rip) d.push(`ours: ${o.exit} at ${hex(o.rip)} (#${g.vector} expected at ${hex(BigInt(g.faultRip))})`);
      else h.gpr.forEach((v, r) => { if (o.gpr[r] !== v) d.push(`${REG[r]}: host ${hex(v)} ours ${hex(o.gpr[r]!)}`); });
      return d.length ? [describeCase(SEED, i, g, d)] : [];
    });
    expectNone(failures, FAULTING);
  });
});
