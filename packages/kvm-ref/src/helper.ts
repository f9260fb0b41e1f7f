/**
 * The native helper (`native/kvmref.c`): built with the machine's gcc on first use into a cache
 * directory keyed by the source's hash, then driven over stdin/stdout, one process per batch.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SOURCE = fileURLToPath(new URL('../native/kvmref.c', import.meta.url));
const KVM_DEV = '/dev/kvm';
/** Set to any value to treat the reference as absent (e.g. to time the rest of a suite). */
const DISABLE_ENV = 'KVMTS_NO_KVM_REF';
const KVM_GET_API_VERSION = 0xae00;
const KVM_API_VERSION = 12;

let binary: string | undefined;
let unavailable: string | null | undefined;

function buildHelper(): { path: string } | { error: string } {
  const source = readFileSync(SOURCE);
  const hash = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const dir = join(tmpdir(), 'kvmts-kvm-ref');
  const path = join(dir, `kvmref-${hash}`);
  if (existsSync(path)) return { path };
  mkdirSync(dir, { recursive: true });
  // Build under a private name, then rename: test files in parallel workers may race here.
  const tmp = `${path}.${process.pid}.tmp`;
  const cc = spawnSync('gcc', ['-O2', '-Wall', '-o', tmp, SOURCE], { encoding: 'utf8' });
  if (cc.error) return { error: `no gcc (${cc.error.message})` };
  if (cc.status !== 0) return { error: `helper build failed: ${cc.stderr.trim().split('\n')[0] ?? ''}` };
  renameSync(tmp, path);
  return { path };
}

/** Why the reference cannot be used here, or null when it can. Computed once per process. */
export function kvmRefUnavailable(): string | null {
  if (unavailable !== undefined) return unavailable;
  unavailable = probe();
  return unavailable;
}

function probe(): string | null {
  if (process.env[DISABLE_ENV]) return `${DISABLE_ENV} is set`;
  if (!existsSync(KVM_DEV)) return `no ${KVM_DEV} on this machine`;
  try {
    accessSync(KVM_DEV, constants.R_OK | constants.W_OK);
  } catch {
    return `no permission to open ${KVM_DEV}`;
  }
  const built = buildHelper();
  if ('error' in built) return built.error;
  binary = built.path;
  const out = runHelper(`O kvm ${KVM_DEV}\nQ - kvm ${KVM_GET_API_VERSION.toString(16)} i 0\n`);
  const version = Number(out[1]?.split(' ')[1]);
  if (version !== KVM_API_VERSION) return `KVM_GET_API_VERSION answered ${out.join(' | ')}`;
  return null;
}

/** Runs the helper on a whole request script and returns its reply lines. */
export function runHelper(input: string): string[] {
  if (binary === undefined) {
    const reason = kvmRefUnavailable();
    if (reason !== null || binary === undefined) throw new Error(`kvm-ref unavailable: ${reason ?? 'not built'}`);
  }
  const r = spawnSync(binary, [], { input, encoding: 'utf8', maxBuffer: 1 << 30 });
  if (r.error) throw r.error;
  const lines = r.stdout.split('\n').filter((l) => l.length > 0);
  const bad = lines.find((l) => l.startsWith('!'));
  if (bad !== undefined || r.status !== 0) {
    throw new Error(`kvm-ref helper failed (status ${r.status}): ${bad ?? r.stderr.trim()}`);
  }
  return lines;
}

export function toHex(bytes: Uint8Array): string {
  return bytes.length === 0 ? '-' : Buffer.from(bytes).toString('hex');
}

export function fromHex(hex: string): Uint8Array {
  return hex === '-' ? new Uint8Array(0) : new Uint8Array(Buffer.from(hex, 'hex'));
}
