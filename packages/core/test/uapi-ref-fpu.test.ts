/**
 * The FPU/XSAVE/XCRS ioctls against the machine's /dev/kvm: the same scripts run there (through
 * @kvmts/kvm-ref's helper) and on our kernel; return values and output bytes must match. Bytes
 * that describe the host CPU rather than KVM are left out: MXCSR_MASK of the init state (the
 * host's mxcsr_feature_mask) and the user xfeatures in sw_reserved (the host's XCR0 features).
 * Scripts stay within x87 and SSE, which both hosts save.
 */
import { describe, expect, it } from 'vitest';
import { kvmRefUnavailable, runIoctlScript } from '@kvmts/kvm-ref';
import type { IoctlStep, StepResult } from '@kvmts/kvm-ref';
import { Host, KVM, KVM_CAP, KVM_CPUID2_STRUCT, KVM_CPUID_ENTRY2_STRUCT, KVM_XCRS_STRUCT, encodeStruct } from '../src/index.js';
import { fakeVendor, testModel } from './fake-vendor.js';

const reason = kvmRefUnavailable();
if (reason !== null) console.log(`FPU/XSAVE/XCRS differential against /dev/kvm skipped: ${reason}`);

const io = (fd: string, request: number, arg: number | { buf: Uint8Array } = 0, name?: string): IoctlStep =>
  ({ op: 'ioctl', fd, request, arg, ...(name === undefined ? {} : { name }) });
const buf = (size: number, fill = 0, init?: (dv: DataView, b: Uint8Array) => void): { buf: Uint8Array } => {
  const b = new Uint8Array(size).fill(fill);
  init?.(new DataView(b.buffer), b);
  return { buf: b };
};

const fpu = (): { buf: Uint8Array } => buf(416, 0, (_, b) => b.forEach((_, i) => { b[i] = (i * 13 + 5) & 0xff; }));
const xsave = (bv: bigint, edit?: (dv: DataView) => void): { buf: Uint8Array } => buf(4096, 0, (dv, b) => {
  dv.setUint16(0, 0x17f, true);
  dv.setUint16(2, 0x4321, true);
  b[4] = 0xf0;
  dv.setUint16(6, 0x66, true);
  dv.setBigUint64(8, 0x1111n, true);
  dv.setBigUint64(16, 0x2222n, true);
  dv.setUint32(24, 0x1f81, true);
  dv.setUint32(28, 0xffff, true);
  for (let i = 0; i < 128; i++) b[32 + i] = 0x40 + i;
  for (let i = 0; i < 256; i++) b[160 + i] = i;
  dv.setBigUint64(512, bv, true);
  edit?.(dv);
});
const xcrs = (nr: number, flags: number, list: readonly (readonly [number, bigint])[]): { buf: Uint8Array } =>
  ({ buf: encodeStruct(KVM_XCRS_STRUCT, { nr_xcrs: nr, flags, xcrs: list.map(([xcr, value]) => ({ xcr, reserved: 0, value })) }) });
/** KVM_SET_CPUID2 with one leaf: 0xD.0 offering x87 and SSE. */
const cpuidLeafD = (): { buf: Uint8Array } => {
  const b = encodeStruct(KVM_CPUID2_STRUCT, { nent: 1 }, new Uint8Array(KVM_CPUID2_STRUCT.size + KVM_CPUID_ENTRY2_STRUCT.size));
  encodeStruct(KVM_CPUID_ENTRY2_STRUCT, { function: 0xd, index: 0, flags: 1, eax: 3, ebx: 0x240, ecx: 0x240, edx: 0 }, b, KVM_CPUID2_STRUCT.size);
  return { buf: b };
};

const getFpu = (): IoctlStep => io('vcpu', KVM.KVM_GET_FPU, buf(416, 0xcc));
const getXsave = (): IoctlStep => io('vcpu', KVM.KVM_GET_XSAVE, buf(4096, 0xcc));
const getXcrs = (): IoctlStep => io('vcpu', KVM.KVM_GET_XCRS, buf(392, 0xcc));
const setXsave = (bv: bigint, edit?: (dv: DataView) => void): IoctlStep => io('vcpu', KVM.KVM_SET_XSAVE, xsave(bv, edit));
const setXcrs = (nr: number, flags: number, list: readonly (readonly [number, bigint])[]): IoctlStep => io('vcpu', KVM.KVM_SET_XCRS, xcrs(nr, flags, list));

const ROWS: Readonly<Record<string, readonly IoctlStep[]>> = {
  'capabilities': [io('kvm', KVM.KVM_CHECK_EXTENSION, KVM_CAP.XSAVE), io('kvm', KVM.KVM_CHECK_EXTENSION, KVM_CAP.XCRS)],
  'reset values': [getFpu(), getXsave(), getXcrs()],
  'SET_FPU round trip; XSTATE_BV untouched': [io('vcpu', KVM.KVM_SET_FPU, fpu()), getFpu(), getXsave()],
  'SET_XSAVE x87+SSE, seen through GET_FPU and GET_XSAVE': [setXsave(3n), getFpu(), getXsave()],
  'SET_XSAVE SSE only': [setXsave(2n), getFpu(), getXsave()],
  'SET_XSAVE x87 only': [setXsave(1n), getFpu(), getXsave()],
  'SET_XSAVE of nothing after SET_FPU': [io('vcpu', KVM.KVM_SET_FPU, fpu()), setXsave(0n), getFpu(), getXsave()],
  'SET_FPU after SET_XSAVE': [setXsave(3n), io('vcpu', KVM.KVM_SET_FPU, fpu()), getFpu(), getXsave()],
  'SET_XSAVE errnos': [
    setXsave(8n), setXsave(1n << 9n), setXsave(1n << 63n),
    setXsave(3n, (dv) => dv.setBigUint64(520, 1n, true)), setXsave(3n, (dv) => dv.setBigUint64(520, 1n << 63n, true)),
    setXsave(3n, (dv) => dv.setUint8(540, 1)),
    setXsave(2n, (dv) => dv.setUint32(24, 0xffff1f80, true)), setXsave(1n, (dv) => dv.setUint32(24, 0x10000, true)),
    setXsave(0n, (dv) => dv.setUint32(24, 0xffff0000, true)),
    setXsave(3n, (dv) => dv.setUint8(600, 1)), setXsave(3n, (dv) => dv.setUint8(470, 1)),
    getXsave(),
  ],
  'bad pointers': [KVM.KVM_GET_FPU, KVM.KVM_SET_FPU, KVM.KVM_GET_XSAVE, KVM.KVM_SET_XSAVE, KVM.KVM_GET_XCRS, KVM.KVM_SET_XCRS].map((r) => io('vcpu', r, 8)),
  'SET_XCRS checks without CPUID.0xD': [
    setXcrs(1, 0, [[0, 3n]]), setXcrs(1, 0, [[0, 1n]]), setXcrs(1, 0, [[0, 0n]]), setXcrs(17, 0, [[0, 1n]]), setXcrs(16, 0, [[0, 1n]]),
    setXcrs(1, 1, [[0, 1n]]), setXcrs(1, 0, [[1, 1n]]), setXcrs(0, 0, []), setXcrs(2, 0, [[1, 5n], [0, 1n]]),
    setXcrs(2, 0, [[1, 5n], [0, 0n]]), setXcrs(2, 0, [[0, 1n], [0, 0n]]), getXcrs(),
  ],
  'SET_XCRS with CPUID.0xD offering x87 and SSE': [
    io('vcpu', KVM.KVM_SET_CPUID2, cpuidLeafD()), setXcrs(1, 0, [[0, 3n]]), getXcrs(), setXcrs(1, 0, [[0, 2n]]), getXcrs(),
  ],
};

const PRELUDE: readonly IoctlStep[] = [{ op: 'open', name: 'kvm' }, io('kvm', KVM.KVM_CREATE_VM, 0, 'vm'), io('vm', KVM.KVM_CREATE_VCPU, 0, 'vcpu')];

/** The script on our kernel (open and ioctl steps only), answered as the helper answers. */
function replayOnCore(steps: readonly IoctlStep[]): StepResult[] {
  const host = new Host({ model: testModel, pcpus: 1, memBytes: 64 << 20 });
  host.modprobe(fakeVendor().initOps);
  const proc = host.spawn();
  const fds = new Map<string, number>();
  return steps.map((s): StepResult => {
    if (s.op === 'open') {
      const r = proc.open('/dev/kvm');
      fds.set(s.name, r);
      return { ret: r };
    }
    if (s.op !== 'ioctl' || typeof s.fd !== 'string') throw new Error(`step ${s.op} not replayed here`);
    const fd = fds.get(s.fd) ?? -1;
    const a = s.arg;
    if (typeof a === 'number' || typeof a === 'bigint') {
      const r = proc.ioctl(fd, s.request, Number(a));
      if (s.name !== undefined && r >= 0) fds.set(s.name, r);
      return { ret: r };
    }
    if (!('buf' in a)) throw new Error('pointer arguments are not replayed here');
    const data = a.buf.slice();
    return { ret: proc.ioctl(fd, s.request, data), data };
  });
}

/** Output bytes with the host-CPU-specific ones cleared (see the header comment). */
function comparable(request: number, data: Uint8Array | undefined): string {
  if (!data) return '';
  const d = data.slice();
  if (request === KVM.KVM_GET_XSAVE) {
    const initMask = d[28] === 0xff && d[29] === 0xff && d[31] === 0; // 0x0000ffff, 0x0002ffff, ...: a host feature mask
    if (initMask) d.fill(0, 28, 32);
    d.fill(0, 464, 472);
  }
  return Buffer.from(d).toString('hex');
}

describe.skipIf(reason !== null)('FPU, XSAVE and XCRS ioctls against /dev/kvm', () => {
  it.each(Object.entries(ROWS))('%s', (_name, steps) => {
    const script = [...PRELUDE, ...steps];
    const host = runIoctlScript(script);
    const ours = replayOnCore(script);
    const diffs = script.flatMap((s, i) => {
      const h = host[i]!;
      const o = ours[i]!;
      const out: string[] = [];
      if (h.ret !== o.ret) out.push(`step ${i}: /dev/kvm ${h.ret}, ours ${o.ret}`);
      if (s.op === 'ioctl' && h.ret === 0 && (s.request & 0x80000000) !== 0) {
        const hb = comparable(s.request, h.data);
        const ob = comparable(s.request, o.data);
        if (hb !== ob) out.push(`step ${i} bytes: /dev/kvm ${hb.replace(/(00)+$/, '…')}, ours ${ob.replace(/(00)+$/, '…')}`);
      }
      return out;
    });
    expect(diffs).toEqual([]);
  });
});
