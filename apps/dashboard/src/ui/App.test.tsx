import { render } from 'ink-testing-library';
import { afterEach, describe, expect, it } from 'vitest';
import { Machine } from '@kvmts/vmm';
import { App } from './App.js';
import { DashboardModel } from './dashboard-model.js';
import { ScriptedHost, type ScriptStep } from '../../test/fake-stack.js';

const PAUSE = 'p';
const NEXT_EXIT = 'n';
const HELP = 'h';
const QUIT = 'q';
const FILTER = 'f';
const ENTER = '\r';
const VCPU_VIEW = '2';

/** A guest that prints "hi" and then OUTs to port 0x510 forever. */
const LOOP: ScriptStep[] = [
  (v) => v.out(0x3f8, 0x68),
  (v) => v.out(0x3f8, 0x69),
  (v) => v.out(0x3f8, 0x0a),
  (v) => { v.regs.rip += 1n; return v.out(0x510, 0x2a); },
];

let models: DashboardModel[] = [];
afterEach(() => { for (const m of models) m.stop(); models = []; });

function startDashboard() {
  const host = new ScriptedHost('intel', LOOP);
  const machine = Machine.create(host, { image: Uint8Array.of(0xe6, 0x80) }) as Machine;
  const model = new DashboardModel([{ name: 'demo', host, machine }]);
  models.push(model);
  model.start();
  return { ...render(<App model={model} />), machine, model };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitForFrame(lastFrame: () => string | undefined, pred: (frame: string) => boolean, timeoutMs = 3000): Promise<string> {
  const t0 = Date.now();
  for (;;) {
    const f = lastFrame() ?? '';
    if (pred(f)) return f;
    if (Date.now() - t0 > timeoutMs) throw new Error(`frame never matched:\n${f}`);
    await sleep(20);
  }
}

function exitsTotal(frame: string): number {
  const m = /^exits\s+(\d+)/m.exec(frame);
  return m ? Number(m[1]) : -1;
}

async function sendKeyAndWaitForFrame(stdin: { write(s: string): void }, lastFrame: () => string | undefined, key: string, pred: (f: string) => boolean) {
  stdin.write(key);
  return waitForFrame(lastFrame, pred);
}

describe('App', () => {
  it('shows the exits counting up and the guest serial output', async () => {
    const { lastFrame } = startDashboard();
    const first = exitsTotal(await waitForFrame(lastFrame, (f) => exitsTotal(f) > 0));
    const later = await waitForFrame(lastFrame, (f) => exitsTotal(f) > first);
    expect(later).toContain('exit.io');
    expect(later).toMatch(/COM1 · demo\s*│\n│ hi/);
    expect(later).toContain('kvm_intel');
  });

  it('p freezes the counters, and p again resumes them', async () => {
    const { lastFrame, stdin } = startDashboard();
    await waitForFrame(lastFrame, (f) => exitsTotal(f) > 0);
    const paused = await sendKeyAndWaitForFrame(stdin, lastFrame, PAUSE, (f) => f.includes('PAUSED'));
    await sleep(300);
    const frozen = exitsTotal(lastFrame()!);
    await sleep(600);
    expect(exitsTotal(lastFrame()!)).toBe(frozen);
    expect(frozen).toBeGreaterThanOrEqual(exitsTotal(paused));
    await sendKeyAndWaitForFrame(stdin, lastFrame, PAUSE, (f) => !f.includes('PAUSED') && exitsTotal(f) > frozen);
  });

  it('n runs to the next exit and stops there, showing its fields', async () => {
    const { lastFrame, stdin, machine } = startDashboard();
    await waitForFrame(lastFrame, (f) => exitsTotal(f) > 0);
    const frame = await sendKeyAndWaitForFrame(stdin, lastFrame, NEXT_EXIT, (f) => f.includes('stopped at exit: io') && f.includes('last exit:'));
    expect(frame).toMatch(/last exit: io dir=out port=(1296|1016) size=1 count=1 data=/);
    const before = machine.exitCounts.io;
    await sleep(300);
    expect(machine.exitCounts.io).toBe(before);
    stdin.write(NEXT_EXIT);
    await waitForFrame(lastFrame, () => machine.exitCounts.io === before! + 1);
  });

  it('switches views and opens the help', async () => {
    const { lastFrame, stdin } = startDashboard();
    await sendKeyAndWaitForFrame(stdin, lastFrame, VCPU_VIEW, (f) => f.includes('vCPU 0 · mode real · CPL 0'));
    await sendKeyAndWaitForFrame(stdin, lastFrame, HELP, (f) => f.includes('run to the next exit and stop there'));
  });

  it('f filters the exits by a regular expression', async () => {
    const { lastFrame, stdin } = startDashboard();
    await waitForFrame(lastFrame, (f) => exitsTotal(f) > 0);
    stdin.write(FILTER);
    for (const ch of 'exit\\.') stdin.write(ch);
    const f = await sendKeyAndWaitForFrame(stdin, lastFrame, ENTER, (fr) => fr.includes('filter /exit\\./'));
    expect(exitsTotal(f)).toBe(-1);
    expect(f).toContain('exit.io');
  });

  it('q quits and stops running the guest', async () => {
    const { lastFrame, stdin, machine } = startDashboard();
    await waitForFrame(lastFrame, (f) => exitsTotal(f) > 0);
    stdin.write(QUIT);
    await sleep(100);
    const n = machine.exitCounts.io;
    await sleep(300);
    expect(machine.exitCounts.io).toBe(n);
  });
});
