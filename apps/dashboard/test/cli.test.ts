import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main, STATUS_USAGE } from '../src/main.js';
import { STATUS_SETUP_ERROR } from '../src/run-command.js';
import { captureIo, HELLO_SCRIPT, scriptedStack, type ScriptStep } from './fake-stack.js';

function imageFile(): string {
  const path = join(mkdtempSync(join(tmpdir(), 'kvmts-cli-')), 'guest.bin');
  writeFileSync(path, Uint8Array.of(0xf4));
  return path;
}

describe('kvmts run', () => {
  it('runs a catalog guest by name: JSON final row on stdout, COM1 on stderr, status 0', async () => {
    const io = captureIo();
    const stack = scriptedStack(HELLO_SCRIPT);
    expect(await main(['run', 'hello', '--json'], io, stack)).toBe(0);
    const lines = io.stdoutText.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    const final = JSON.parse(lines[0]!);
    expect(final).toMatchObject({ exit: 'hlt', regs: { rax: '0xa', rbx: '0x2', rip: '0x1001' } });
    expect(io.stderrText).toBe('4\n');
    // The catalog's settings reached the vCPU: RAX=RBX=2 at entry, real mode.
    expect(stack.hosts[0]!.vcpus[0]!.sregs.cs.selector).toBe(0);
  });

  it('exits with the code written to port 0xf4', async () => {
    const io = captureIo();
    const script: ScriptStep[] = [(v) => v.out(0x80, 0x12), (v) => v.out(0xf4, 5)];
    expect(await main(['run', imageFile(), '--json'], io, scriptedStack(script))).toBe(5);
    const rows = io.stdoutText.trimEnd().split('\n').map((l) => JSON.parse(l));
    expect(rows[0]).toEqual({ exit: 'io', dir: 'out', port: 128, size: 1, count: 1, data: '12' });
    expect(rows[1]).toMatchObject({ exit: 'debug_exit', code: 5 });
  });

  it('gives status 0 for a 0 written to port 0xf4, and prints rows for people without --json', async () => {
    const io = captureIo();
    expect(await main(['run', imageFile()], io, scriptedStack([(v) => v.out(0xf4, 0)]))).toBe(0);
    expect(io.stdoutText).toMatch(/^debug_exit code 0\n {2}rax=0x0 rbx=0x0/);
  });

  it('gives status 1 when the guest ends in a shutdown', async () => {
    const io = captureIo();
    expect(await main(['run', imageFile(), '--json'], io, scriptedStack([() => ({ kind: 'shutdown' })]))).toBe(1);
    expect(JSON.parse(io.stdoutText).exit).toBe('shutdown');
  });

  it('says why it cannot start: unknown image, unavailable vendor, bad arguments', async () => {
    let io = captureIo();
    expect(await main(['run', 'no-such-guest'], io, scriptedStack([]))).toBe(STATUS_SETUP_ERROR);
    expect(io.stderrText).toMatch(/no-such-guest: no such file, and no catalog guest/);
    io = captureIo();
    expect(await main(['run', 'hello', '--vendor', 'amd'], io, scriptedStack([]))).toBe(STATUS_SETUP_ERROR);
    expect(io.stderrText).toBe('kvmts: amd: kvm_amd is not available yet\n');
    io = captureIo();
    expect(await main(['run', 'hello', '--mode', 'v86'], io, scriptedStack([]))).toBe(STATUS_USAGE);
    expect(io.stderrText).toMatch(/^kvmts: --mode must be real or long64, not v86\nusage:/);
  });

  it('refuses an image that does not fit in --mem', async () => {
    const io = captureIo();
    expect(await main(['run', imageFile(), '--mem', '0x1000'], io, scriptedStack([]))).toBe(STATUS_SETUP_ERROR);
    expect(io.stderrText).toMatch(/does not fit in 4096 bytes/);
  });
});

describe('kvmts list', () => {
  it('prints the catalog', async () => {
    const io = captureIo();
    expect(await main(['list'], io, scriptedStack([]))).toBe(0);
    expect(io.stdoutText).toBe('NAME   KIND   MODE    MEM        SHOWS\nhello  test   real    0x200000   the LWN "Using the KVM API" guest\n');
  });
});

describe('kvmts bench', () => {
  it('reports every figure, null with a note where the stack cannot run it', async () => {
    const io = captureIo();
    expect(await main(['bench', '--json'], io, scriptedStack([() => ({ kind: 'hlt' })]))).toBe(0);
    const figures = JSON.parse(io.stdoutText) as { name: string; value: number | null; unit: string; note?: string }[];
    expect(figures.map((f) => f.name).sort()).toEqual([
      'cpu.loop16', 'cpu.loop32', 'cpu.loop64', 'exit.cpuid.amd', 'exit.cpuid.intel', 'exit.pio.amd', 'exit.pio.intel',
      'mem.sparse4g', 'migrate.downtime', 'migrate.total', 'nested.cpuid.intel', 'vm.create', 'vm.loop64.amd', 'vm.loop64.intel',
    ]);
    const byName = new Map(figures.map((f) => [f.name, f]));
    // The fake stack has no demo guest (and no AMD host): the migration figures say so.
    expect(byName.get('migrate.downtime')).toEqual({ name: 'migrate.downtime', value: null, unit: 'µs', note: 'the catalog has no demo guest' });
    expect(byName.get('vm.loop64.amd')).toEqual({ name: 'vm.loop64.amd', value: null, unit: 'instr/s', note: 'kvm_amd is not available yet' });
    expect(byName.get('vm.loop64.intel')).toMatchObject({ value: null, note: 'bench image loop64_1000000 is not built' });
    expect(byName.get('nested.cpuid.intel')).toEqual({ name: 'nested.cpuid.intel', value: null, unit: 'ns', note: 'this stack has no nested VMX' });
    // The scripted intel host halts at once: vm.create measures that.
    expect(byName.get('vm.create')).toMatchObject({ unit: 'µs', note: expect.stringMatching(/^intel, mean of \d+ after 1000 warm-up creates$/) });
    expect(byName.get('vm.create')!.value).toBeGreaterThan(0);
  });

  it('--job measures that job alone; an unknown job is a usage error', async () => {
    const io = captureIo();
    expect(await main(['bench', '--json', '--job', 'exit.cpuid.amd'], io, scriptedStack([() => ({ kind: 'hlt' })]))).toBe(0);
    expect(JSON.parse(io.stdoutText)).toEqual([{ name: 'exit.cpuid.amd', value: null, unit: 'ns', note: 'kvm_amd is not available yet' }]);
    const bad = captureIo();
    expect(await main(['bench', '--job', 'exit.cpuid.arm'], bad, scriptedStack([]))).toBe(STATUS_USAGE);
    expect(bad.stderrText).toMatch(/no job exit\.cpuid\.arm \(jobs: mem\.sparse4g, cpu\.loop16, /);
  });

  it('with a stack that can fork, each job runs isolated; a job that fails reports its figures as null', async () => {
    const asked: string[] = [];
    const stack = {
      ...scriptedStack([]),
      runIsolated: async (job: string) => {
        asked.push(job);
        if (job === 'migrate') return 'the migrate job failed: out of memory';
        // A child that measured something else is not taken at its word.
        if (job === 'vm.create') return [{ name: 'vm.loop64.intel', value: 1, unit: 'instr/s' }];
        return [{ name: job, value: 42, unit: 'x' }];
      },
    };
    const io = captureIo();
    expect(await main(['bench', '--json'], io, stack)).toBe(0);
    expect(asked).toEqual(['mem.sparse4g', 'cpu.loop16', 'cpu.loop32', 'cpu.loop64', 'vm.loop64.intel', 'vm.loop64.amd',
      'exit.cpuid.intel', 'exit.cpuid.amd', 'exit.pio.intel', 'exit.pio.amd', 'nested.cpuid.intel', 'vm.create', 'migrate']);
    const byName = new Map((JSON.parse(io.stdoutText) as { name: string }[]).map((f) => [f.name, f]));
    expect(byName.get('exit.cpuid.intel')).toEqual({ name: 'exit.cpuid.intel', value: 42, unit: 'x' });
    expect(byName.get('migrate.total')).toEqual({ name: 'migrate.total', value: null, unit: 'ms', note: 'the migrate job failed: out of memory' });
    expect(byName.get('vm.create')).toEqual({ name: 'vm.create', value: null, unit: 'µs', note: 'the isolated run gave vm.loop64.intel' });
  });
});
