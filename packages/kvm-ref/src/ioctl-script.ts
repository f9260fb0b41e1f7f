/**
 * Ioctl scripts: a sequence of open/ioctl/mmap/close calls on named fds, run by the helper
 * against the real /dev/kvm, each answered with its return value (or -errno) and output bytes.
 * Pointers stay symbolic (a named map plus an offset), so results are the same on every run.
 */
import { fromHex, runHelper, toHex } from './helper.js';

/** A named fd (from `open` or an ioctl's `name`), or a raw fd number, e.g. to provoke EBADF. */
export type FdRef = string | { raw: number };

/** A user pointer into a map the script created: the map's address plus `offset`. */
export interface UserPtr {
  map: string;
  offset?: number;
}

export type IoctlArg =
  | number
  | bigint
  | { ptr: UserPtr }
  /** A struct passed by pointer; `ptrs` patch 8-byte user pointers into it at byte offset `at`. */
  | { buf: Uint8Array; ptrs?: readonly (UserPtr & { at: number })[] };

export type IoctlStep =
  | { op: 'open'; name: string; path?: string }
  | { op: 'close'; fd: FdRef }
  /** Anonymous, zeroed memory (guest RAM for a memslot, or a buffer). */
  | { op: 'mmap'; name: string; size: number }
  /** mmap(MAP_SHARED) of an fd: a vCPU fd gives kvm_run. */
  | { op: 'mmapFd'; name: string; fd: FdRef; size: number; offset?: number }
  | { op: 'read'; map: string; offset: number; length: number }
  | { op: 'write'; map: string; offset: number; data: Uint8Array }
  /** `name` names the fd the call returns (KVM_CREATE_VM, KVM_CREATE_VCPU). */
  | { op: 'ioctl'; fd: FdRef; request: number; arg: IoctlArg; name?: string };

export interface StepResult {
  /** The call's result: a value or fd number (>= 0), or -errno. */
  ret: number;
  /** `read`: the bytes; `ioctl` on a buffer: the buffer after the call (patched pointers restored). */
  data?: Uint8Array;
}

const fdToken = (fd: FdRef): string => (typeof fd === 'string' ? fd : `#${fd.raw}`);
const h = (n: number | bigint): string => BigInt.asUintN(64, BigInt(n)).toString(16);

function checkName(name: string): string {
  if (!/^[A-Za-z_][\w.-]{0,30}$/.test(name)) throw new RangeError(`bad script name: ${name}`);
  return name;
}

function stepRequest(s: IoctlStep): string {
  switch (s.op) {
    case 'open': return `O ${checkName(s.name)} ${s.path ?? '/dev/kvm'}`;
    case 'close': return `C ${fdToken(s.fd)}`;
    case 'mmap': return `M ${checkName(s.name)} ${h(s.size)}`;
    case 'mmapFd': return `F ${checkName(s.name)} ${fdToken(s.fd)} ${h(s.size)} ${h(s.offset ?? 0)}`;
    case 'read': return `X ${s.map} ${h(s.offset)} ${h(s.length)}`;
    case 'write': return `W ${s.map} ${h(s.offset)} ${toHex(s.data)}`;
    case 'ioctl': {
      const head = `Q ${s.name === undefined ? '-' : checkName(s.name)} ${fdToken(s.fd)} ${h(s.request)}`;
      const a = s.arg;
      if (typeof a === 'number' || typeof a === 'bigint') return `${head} i ${h(a)}`;
      if ('ptr' in a) return `${head} p ${a.ptr.map} ${h(a.ptr.offset ?? 0)}`;
      const patches = (a.ptrs ?? []).map((p) => ` ${h(p.at)}:${p.map}:${h(p.offset ?? 0)}`).join('');
      return `${head} b ${toHex(a.buf)}${patches}`;
    }
  }
}

function parseReply(line: string): StepResult {
  const t = line.split(' ');
  if (t[0] !== '=') throw new Error(`kvm-ref: unexpected reply: ${line}`);
  const ret = Number(t[1]);
  return t[2] === undefined ? { ret } : { ret, data: fromHex(t[2]) };
}

/** Runs the script in a fresh helper process (so fds and VMs die with it). */
export function runIoctlScript(steps: readonly IoctlStep[]): StepResult[] {
  if (steps.length === 0) return [];
  const lines = runHelper(`${steps.map(stepRequest).join('\n')}\n`);
  if (lines.length !== steps.length) throw new Error(`kvm-ref: ${lines.length} replies to ${steps.length} steps`);
  return lines.map(parseReply);
}
