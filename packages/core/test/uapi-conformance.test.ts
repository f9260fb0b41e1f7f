import { describe, expect, it } from 'vitest';
import {
  Host, KVM, ERRNO, MAP, PROT, UAPI_STRUCTS, encodeStruct, type Process, type StructDef,
} from '../src/index.js';
import { UAPI_CONFORMANCE_ROWS, type IoctlRowArg, type RowExpect, type RowValue } from '../src/uapi/conformance-rows.js';
import { fakeVendor, testModel } from './fake-vendor.js';

const STRUCTS = new Map<string, StructDef>(UAPI_STRUCTS.map((s) => [s.name, s]));

function resolve(v: RowValue, maps: Map<string, number>): number {
  if (typeof v === 'number') return v;
  const m = /^\$(\w+)(?:\+(0x[0-9a-f]+|\d+))?$/.exec(v);
  if (!m) throw new Error(`bad row value ${v}`);
  return maps.get(m[1]!)! + (m[2] ? Number(m[2]) : 0);
}

function argFor(proc: Process, a: IoctlRowArg | undefined, maps: Map<string, number>): number {
  if (a === undefined) return 0;
  if (typeof a === 'number') return a;
  if ('badPointer' in a) return 8;
  const s = STRUCTS.get(a.struct);
  if (!s) throw new Error(`no struct ${a.struct}`);
  const value = Object.fromEntries(Object.entries(a.value).map(([k, v]) => [k, Array.isArray(v) ? v.map((x) => resolve(x, maps)) : resolve(v, maps)]));
  const bytes = new Uint8Array(s.size + (a.extra ?? 0));
  encodeStruct(s, value, bytes);
  const hva = proc.mmap(bytes.length, PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.ANONYMOUS);
  proc.writeUser(hva, bytes);
  return hva;
}

function check(got: number, want: RowExpect, what: string): void {
  if (want === 'fd') expect(got, what).toBeGreaterThanOrEqual(0);
  else if (typeof want === 'number') expect(got, what).toBe(want);
  else if (typeof want === 'object') expect(got, what).toBeGreaterThanOrEqual(want.atLeast);
  else expect(got, what).toBe(-ERRNO[want]);
}

describe('uapi conformance rows (model)', () => {
  for (const row of UAPI_CONFORMANCE_ROWS) {
    it(row.name, () => {
      const host = new Host({ model: testModel, pcpus: 1, memBytes: 64 << 20 });
      expect(host.modprobe(fakeVendor().initOps)).toBe(0);
      const proc = host.spawn();
      const fds = new Map<string, number>([['kvm', proc.open('/dev/kvm')]]);
      const maps = new Map<string, number>();
      row.steps.forEach((step, i) => {
        const what = `${row.name}, step ${i}`;
        if (step.op === 'mmap') {
          maps.set(step.as, proc.mmap(step.len, PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.ANONYMOUS));
        } else if (step.op === 'close') {
          check(proc.close(fds.get(step.fd)!), step.expect, what);
        } else {
          const r = proc.ioctl(fds.get(step.fd)!, KVM[step.ioctl], argFor(proc, step.arg, maps));
          check(r, step.expect, `${what} (${step.ioctl})`);
          if (step.as) fds.set(step.as, r);
        }
      });
    });
  }
});
