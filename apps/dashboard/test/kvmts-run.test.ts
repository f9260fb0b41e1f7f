/** The real `kvmts run` process over the whole stack, as CI and the conformance suite call it. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const APP_DIR = resolve(import.meta.dirname, '..');
const TSX = resolve(APP_DIR, '../../node_modules/.bin/tsx');

function kvmts(...args: string[]) {
  const r = spawnSync(TSX, ['--conditions=@kvmts/source', 'src/cli.ts', ...args], { cwd: APP_DIR, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.split('\n').filter((l) => !l.startsWith('npm warn')).join('\n') };
}

describe.each(['intel', 'amd'])('kvmts run on %s', (vendor) => {
  it('hello --json: HLT with RAX = 0xa as the final row, "4\\n" on stderr, status 0', () => {
    const r = kvmts('run', 'hello', '--json', '--vendor', vendor);
    expect(r.stderr).toBe('4\n');
    const rows = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l));
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ exit: 'hlt', regs: { rax: '0xa' } });
    expect(r.status).toBe(0);
  });

  it('an image that writes 3 to port 0xf4 exits with status 3', () => {
    const image = join(mkdtempSync(join(tmpdir(), 'kvmts-run-')), 'exit3.bin');
    writeFileSync(image, Uint8Array.of(0xb0, 0x03, 0xe6, 0xf4)); // mov al, 3; out 0xf4, al
    const r = kvmts('run', image, '--vendor', vendor, '--json');
    // KVM completes an OUT on the next KVM_RUN (complete_fast_pio_out): RIP is still at it.
    expect(JSON.parse(r.stdout)).toMatchObject({ exit: 'debug_exit', code: 3, regs: { rax: '0x3', rip: '0x1002' } });
    expect(r.status).toBe(3);
  });
});

describe('kvmts run --swap-every', () => {
  it.each(['intel', 'amd'])('pio starting on %s: the JSON trace is the one of a run without swaps', (vendor) => {
    const plain = kvmts('run', 'pio', '--json', '--vendor', vendor);
    const swapped = kvmts('run', 'pio', '--json', '--vendor', vendor, '--swap-every', '1');
    expect(plain.stdout.split('\n').length).toBeGreaterThan(5);
    expect(swapped.stdout).toBe(plain.stdout);
    expect(swapped.stderr).toBe(plain.stderr);
    expect(swapped.status).toBe(plain.status);
  });
});

describe('kvmts list', () => {
  it('prints the catalog', () => {
    const r = kvmts('list');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^hello\s+test\s+real\s+0x200000\s+the LWN/m);
    expect(r.stdout).toMatch(/^demo\s+demo\s+real/m);
  });
});
