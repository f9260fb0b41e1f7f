import { describe, expect, it } from 'vitest';
import { findGuest } from '@kvmts/guests';
import type { FinalRow } from '@kvmts/vmm';
import { checkExpectation, compareRuns, formatDifferences } from './compare.js';
import type { ExitRow, GuestRun } from './guest-run.js';

const SREGS = { cr0: '0x80000033', cr3: '0x1fd000', cr4: '0x20', efer: '0x500' };

function final(exit: FinalRow['exit'], rax: string, code?: number): FinalRow {
  return { exit, ...(code !== undefined && { code }), regs: { rax, rip: '0x100c' }, sregs: SREGS };
}

const out = (data: string): ExitRow => ({ exit: 'io', dir: 'out', port: 0x510, size: 1, count: 1, data });

function run(rows: ExitRow[], f: FinalRow | null, serial = ''): GuestRun {
  return { rows, final: f, serial };
}

describe('compareRuns', () => {
  it('finds nothing between identical runs', () => {
    const a = run([out('11')], final('hlt', '0x4'), '4\n');
    expect(compareRuns(a, structuredClone(a), { state: true })).toEqual([]);
  });

  it('reports the first diverging exit only, then the final exit', () => {
    const a = run([out('11'), out('22'), out('33')], final('hlt', '0x4'));
    const b = run([out('11'), out('99')], final('shutdown', '0x4'));
    expect(compareRuns(a, b, { state: true })).toEqual([
      { what: 'exit #2 (of 3 and 2)', a: JSON.stringify(out('22')), b: JSON.stringify(out('99')) },
      { what: 'final exit', a: 'hlt', b: 'shutdown' },
    ]);
  });

  it('compares registers, control registers and serial output only when asked', () => {
    const a = run([], final('debug_exit', '0x1c', 0), 'S0000001C\n');
    const b = run([], { ...final('debug_exit', '0xd', 0), sregs: { ...SREGS, cr4: '0x0' } }, 'S0000000D\n');
    expect(compareRuns(a, b, { state: false })).toEqual([]);
    const diffs = compareRuns(a, b, { state: true });
    expect(diffs.map((d) => d.what)).toEqual(['rax', 'cr4', 'serial output']);
    expect(formatDifferences(diffs, ['intel', 'amd']).split('\n')[0]).toBe('rax: intel 0x1c, amd 0xd');
  });

  it('can leave out RIP at a debug exit, where the fast PIO path and the emulator differ', () => {
    const a = run([], { ...final('debug_exit', '0x0', 0), regs: { rax: '0x0', rip: '0x1071' } });
    const b = run([], { ...final('debug_exit', '0x0', 0), regs: { rax: '0x0', rip: '0x1073' } });
    expect(compareRuns(a, b, { state: true }).map((d) => d.what)).toEqual(['rip']);
    expect(compareRuns(a, b, { state: true, ripAtDebugExit: 'ignore' })).toEqual([]);
  });

  it('tells a debug exit code apart', () => {
    expect(compareRuns(run([], final('debug_exit', '0x0', 0)), run([], final('debug_exit', '0x0', 1)), { state: false }))
      .toEqual([{ what: 'final exit', a: 'debug_exit 0', b: 'debug_exit 1' }]);
  });
});

describe('checkExpectation', () => {
  const hello = findGuest('hello')!;
  const pio = findGuest('pio')!;
  const demo = findGuest('demo')!;

  it('accepts the LWN guest printing 4 and halting', () => {
    expect(checkExpectation(hello, run([], final('hlt', '0xa'), '4\n'))).toEqual([]);
  });

  it('names a wrong final exit, a missing end and wrong serial output', () => {
    expect(checkExpectation(hello, run([], final('shutdown', '0x0'), '5\n'))).toEqual([
      'final exit shutdown, expected hlt',
      'serial output "5\\n" does not match {"exact":"4\\n"}',
    ]);
    expect(checkExpectation(hello, run([], null, '4\n'))).toEqual(['hello did not end (expected hlt)']);
  });

  it('checks the exit code and the trace rows in order', () => {
    const rows = pio.expect.trace!.map((r) => ({ ...r })) as ExitRow[];
    expect(checkExpectation(pio, run(rows, final('debug_exit', '0x0', 0), 'pio: ok\n'))).toEqual([]);
    const swapped = [rows[1]!, rows[0]!, ...rows.slice(2)];
    expect(checkExpectation(pio, run(swapped, final('debug_exit', '0x0', 1), 'pio: ok\n'))).toEqual([
      'exit code 1, expected 0',
      `trace row 1: ${JSON.stringify(rows[1])}, expected ${JSON.stringify(rows[0])}`,
    ]);
    expect(checkExpectation(pio, run(rows.slice(0, 3), final('debug_exit', '0x0', 0), 'pio: ok\n'))[0]).toMatch(/^trace row 4: nothing/);
  });

  it('expects the demo to run on', () => {
    const start = 'kvmts demo: primes by trial division, a timer tick at every HLT\n/ prime #50 = 229   ticks 0\n- prime #100 = 541   ticks 1\n';
    expect(checkExpectation(demo, run([], null, start))).toEqual([]);
    expect(checkExpectation(demo, run([], final('hlt', '0x0'), start))).toEqual(['demo should run on, but ended with hlt']);
  });
});
