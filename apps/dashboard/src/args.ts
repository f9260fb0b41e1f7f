/**
 * The `kvmts` command line (DESIGN.md, "`kvmts run` contract", and issue 8):
 *   kvmts run IMAGE|NAME [--vendor intel|amd] [--mem BYTES] [--load GPA] [--entry ADDR] [--mode real|long64] [--json] [--swap-every N]
 *   kvmts list
 *   kvmts bench [--json] [--job ID]
 *   kvmts [--vendor intel|amd] [--guest NAME] [IMAGE] [--once]      (the dashboard)
 */
export type Vendor = 'intel' | 'amd';
export type Mode = 'real' | 'long64';

export type Command =
  | { readonly cmd: 'run'; readonly target: string; readonly vendor: Vendor; readonly json: boolean; readonly mem?: number; readonly load?: number; readonly entry?: number; readonly mode?: Mode; readonly swapEvery?: number }
  | { readonly cmd: 'list' }
  | { readonly cmd: 'bench'; readonly json: boolean; readonly job?: string }
  | { readonly cmd: 'dashboard'; readonly vendor?: Vendor; readonly target?: string; readonly once: boolean }
  | { readonly cmd: 'help' };

export const USAGE = `usage:
  kvmts run IMAGE|NAME [--vendor intel|amd] [--mem BYTES] [--load GPA] [--entry ADDR] [--mode real|long64] [--json] [--swap-every N]
  kvmts list
  kvmts bench [--json] [--job ID]
  kvmts [--vendor intel|amd] [--guest NAME] [IMAGE] [--once]`;

/** A byte count or address: decimal, 0x hex, or with a K/M/G suffix (powers of 1024). */
export function parseNumber(text: string): number | null {
  const m = /^(0x[0-9a-f]+|\d+)([kmg]?)$/i.exec(text.trim());
  if (!m) return null;
  const base = Number(m[1]);
  const scale = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  const v = base * scale;
  return Number.isSafeInteger(v) ? v : null;
}

const VALUE_FLAGS = ['--vendor', '--mem', '--load', '--entry', '--mode', '--guest', '--swap-every', '--job'] as const;
const BOOL_FLAGS = ['--json', '--once', '--batch', '--help', '-h'] as const;

interface Parsed {
  readonly positional: string[];
  readonly values: Map<string, string>;
  readonly bools: Set<string>;
}

function split(argv: readonly string[]): Parsed | string {
  const positional: string[] = [];
  const values = new Map<string, string>();
  const bools = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const name = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    if ((VALUE_FLAGS as readonly string[]).includes(name)) {
      const value = eq > 0 && arg.startsWith('--') ? arg.slice(eq + 1) : argv[++i];
      if (value === undefined) return `${name} needs a value`;
      values.set(name, value);
    } else if ((BOOL_FLAGS as readonly string[]).includes(arg)) {
      bools.add(arg);
    } else if (arg.startsWith('-')) {
      return `unknown option ${arg}`;
    } else {
      positional.push(arg);
    }
  }
  return { positional, values, bools };
}

function vendorOf(p: Parsed): { vendor?: Vendor; error?: string } {
  const v = p.values.get('--vendor');
  if (v === undefined) return {};
  return v === 'intel' || v === 'amd' ? { vendor: v } : { error: `--vendor must be intel or amd, not ${v}` };
}

function numberFlag(p: Parsed, flag: string): number | undefined | string {
  const text = p.values.get(flag);
  if (text === undefined) return undefined;
  return parseNumber(text) ?? `${flag} takes a number (decimal, 0x hex, or K/M/G), not ${text}`;
}

function only(p: Parsed, allowed: readonly string[], cmd: string): string | null {
  for (const k of [...p.values.keys(), ...p.bools]) if (!allowed.includes(k)) return `${k} does not apply to ${cmd}`;
  return null;
}

/** Parses argv (without node and the script); a string is a usage error. */
export function parseArgs(argv: readonly string[]): Command | string {
  const p = split(argv);
  if (typeof p === 'string') return p;
  if (p.bools.has('--help') || p.bools.has('-h') || p.positional[0] === 'help') return { cmd: 'help' };
  const { vendor, error } = vendorOf(p);
  if (error !== undefined) return error;
  const [first, ...rest] = p.positional;

  if (first === 'run') {
    const bad = only(p, ['--vendor', '--mem', '--load', '--entry', '--mode', '--json', '--swap-every'], 'run');
    if (bad) return bad;
    if (rest.length !== 1) return 'kvmts run takes one IMAGE or catalog NAME';
    const mode = p.values.get('--mode');
    if (mode !== undefined && mode !== 'real' && mode !== 'long64') return `--mode must be real or long64, not ${mode}`;
    const nums: Record<string, number> = {};
    for (const flag of ['--mem', '--load', '--entry'] as const) {
      const n = numberFlag(p, flag);
      if (typeof n === 'string') return n;
      if (n !== undefined) nums[flag.slice(2)] = n;
    }
    const swap = p.values.get('--swap-every');
    if (swap !== undefined) {
      // Issue 9: migrate to the other vendor after every N userspace exits.
      if (!/^\d+$/.test(swap) || Number(swap) < 1) return `--swap-every takes a count of exits (1 or more), not ${swap}`;
      nums['swapEvery'] = Number(swap);
    }
    return { cmd: 'run', target: rest[0]!, vendor: vendor ?? 'intel', json: p.bools.has('--json'), ...nums, ...(mode !== undefined && { mode: mode as Mode }) };
  }
  if (first === 'list') {
    const bad = only(p, [], 'list');
    if (bad) return bad;
    if (rest.length) return 'kvmts list takes no arguments';
    return { cmd: 'list' };
  }
  if (first === 'bench') {
    const bad = only(p, ['--json', '--job'], 'bench');
    if (bad) return bad;
    if (rest.length) return 'kvmts bench takes no arguments';
    const job = p.values.get('--job');
    return { cmd: 'bench', json: p.bools.has('--json'), ...(job !== undefined && { job }) };
  }
  const bad = only(p, ['--vendor', '--guest', '--once', '--batch'], 'the dashboard');
  if (bad) return bad;
  if (p.positional.length > 1) return `unknown command ${first}`;
  const guest = p.values.get('--guest');
  if (guest !== undefined && first !== undefined) return 'give either --guest NAME or IMAGE, not both';
  const target = guest ?? first;
  return { cmd: 'dashboard', once: p.bools.has('--once') || p.bools.has('--batch'), ...(vendor !== undefined && { vendor }), ...(target !== undefined && { target }) };
}
