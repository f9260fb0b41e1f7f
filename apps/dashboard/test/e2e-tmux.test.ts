/**
 * The dashboard as a person uses it: the real `kvmts` (the `npm start` command line) in a tmux
 * pseudo-terminal, driven by keys, read back from the screen.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const PAUSE = 'p';
const NEXT_EXIT = 'n';
const QUIT = 'q';

const APP_DIR = resolve(import.meta.dirname, '..');
const TSX = resolve(APP_DIR, '../../node_modules/.bin/tsx');
// A person's terminal has no CI variable; with one, Ink renders only the last frame (is-in-ci).
const AS_A_PERSON = 'env -u CI';
const hasTmux = spawnSync('tmux', ['-V']).status === 0;
if (!hasTmux) console.log('e2e-tmux: skipped, tmux is not installed');

const session = `kvmts-e2e-${process.pid}`;
const exitFile = join(mkdtempSync(join(tmpdir(), 'kvmts-e2e-')), 'status');

function tmux(...args: string[]): string {
  return execFileSync('tmux', args, { encoding: 'utf8' });
}

const screen = (): string => tmux('capture-pane', '-t', session, '-p');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitForScreen(what: string, pred: (s: string) => boolean, timeoutMs = 30_000, read = screen): Promise<string> {
  const t0 = Date.now();
  for (;;) {
    const s = read();
    if (pred(s)) return s;
    if (Date.now() - t0 > timeoutMs) throw new Error(`screen never showed ${what}:\n${s}`);
    await sleep(200);
  }
}

/** The Total of the `exits` counter in the kvm_stat view, or -1 when it is not on screen. */
function exitsTotal(s: string): number {
  const m = /^exits\s+(\d+)/m.exec(s);
  return m ? Number(m[1]) : -1;
}

async function sendKeyAndWaitForScreen(key: string, what: string, pred: (s: string) => boolean): Promise<string> {
  tmux('send-keys', '-t', session, key);
  return waitForScreen(what, pred);
}

describe.skipIf(!hasTmux)('kvmts in a terminal', () => {
  afterAll(() => { spawnSync('tmux', ['kill-session', '-t', session]); });

  it('counts exits live, pauses with p, stops at the next exit with n, and quits with q', async () => {
    const cmd = `cd ${APP_DIR} && ${AS_A_PERSON} ${TSX} --conditions=@kvmts/source src/cli.ts; echo $? > ${exitFile}`;
    tmux('new-session', '-d', '-s', session, '-x', '120', '-y', '40', cmd);

    const first = exitsTotal(await waitForScreen('exit counters', (s) => exitsTotal(s) > 0, 60_000));
    const running = await waitForScreen('the counters increasing', (s) => exitsTotal(s) > first);
    expect(running).toMatch(/0 demo \[intel\] (running|halted)/);
    expect(running).toContain('module kvm_intel');
    expect(running).toMatch(/exit_IO_INSTRUCTION\s+\d+/);

    await sendKeyAndWaitForScreen(PAUSE, 'PAUSED', (s) => s.includes('PAUSED'));
    await sleep(500);
    // A capture can land mid-redraw, so read the counter from a screen that shows it.
    const counterShown = (s: string) => exitsTotal(s) >= 0;
    const frozen = exitsTotal(await waitForScreen('the exit counter', counterShown));
    await sleep(1500);
    expect(exitsTotal(await waitForScreen('the exit counter', counterShown))).toBe(frozen);

    const stopped = await sendKeyAndWaitForScreen(NEXT_EXIT, 'the exit n stopped at', (s) => /stopped at exit: \w+/.test(s));
    const reason = /stopped at exit: (\w+)/.exec(stopped)![1]!;
    expect(stopped).toContain(`last exit: ${reason}`);
    expect(stopped).toMatch(/vCPU 0 · mode \S+/);

    await sendKeyAndWaitForScreen(PAUSE, 'the guest running again', (s) => !s.includes('PAUSED'));
    tmux('send-keys', '-t', session, QUIT);
    const t0 = Date.now();
    while (!existsSync(exitFile) && Date.now() - t0 < 30_000) await sleep(100);
    expect(readFileSync(exitFile, 'utf8').trim()).toBe('0');
  }, 120_000);
});

describe.skipIf(!hasTmux)('kvmts in a terminal, v', () => {
  const vSession = `${session}-v`;
  const vExitFile = join(mkdtempSync(join(tmpdir(), 'kvmts-e2e-')), 'status');
  const vScreen = (): string => tmux('capture-pane', '-t', vSession, '-p');
  afterAll(() => { spawnSync('tmux', ['kill-session', '-t', vSession]); });

  const waitFor = (what: string, pred: (s: string) => boolean) => waitForScreen(what, pred, 60_000, vScreen);

  it('live-migrates the Intel VM to AMD and back: the header shows the new vendor and the migration', async () => {
    const cmd = `cd ${APP_DIR} && ${AS_A_PERSON} ${TSX} --conditions=@kvmts/source src/cli.ts --vendor intel; echo $? > ${vExitFile}`;
    tmux('new-session', '-d', '-s', vSession, '-x', '120', '-y', '40', cmd);
    await waitFor('exit counters', (s) => exitsTotal(s) > 0);
    tmux('send-keys', '-t', vSession, 'v');
    const moved = await waitFor('the migration to AMD', (s) => s.includes('migrated 1×'));
    expect(moved).toMatch(/^kvmts amd · .* · module kvm_amd/m);
    expect(moved).toMatch(/0 demo \[amd\] (running|halted)/);
    expect(moved).toMatch(/migrated 1× · last intel → amd · pre-copy \d+ rounds · \d+ pages sent · downtime \d+ µs/);
    tmux('send-keys', '-t', vSession, 'v');
    const back = await waitFor('the migration back to Intel', (s) => s.includes('migrated 2×'));
    expect(back).toMatch(/^kvmts intel · .* · module kvm_intel/m);
    expect(back).toContain('last amd → intel');
    tmux('send-keys', '-t', vSession, QUIT);
    const t0 = Date.now();
    while (!existsSync(vExitFile) && Date.now() - t0 < 30_000) await sleep(100);
    expect(readFileSync(vExitFile, 'utf8').trim()).toBe('0');
  }, 120_000);
});
