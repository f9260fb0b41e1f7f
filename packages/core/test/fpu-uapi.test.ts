/**
 * KVM_GET/SET_FPU, KVM_GET/SET_XSAVE and KVM_GET/SET_XCRS through the vCPU fd: byte-exact
 * round trips, the two views of one state, Linux's errnos. The expected values are the ones the
 * machine's /dev/kvm gives (test/uapi-ref-fpu.test.ts replays the same calls there).
 */
import { describe, expect, it } from 'vitest';
import {
  ERRNO, Host, KVM, KVM_CAP, KVM_FPU_STRUCT, KVM_XCRS_STRUCT, KVM_XSAVE_STRUCT, KvmApi, encodeStruct, offsetOf,
} from '../src/index.js';
import type { VcpuFd } from '../src/index.js';
import { errnoOf } from '../src/api/index.js';
import { kvmEmulateXsetbv } from '../src/x86/fpu.js';
import type { VcpuFile } from '../src/kvm/vcpu-ioctl.js';
import { fakeVendor, testModel } from './fake-vendor.js';

const XSTATE_BV = 512;

function setup() {
  const host = new Host({ model: testModel, pcpus: 1, memBytes: 64 << 20 });
  host.modprobe(fakeVendor().initOps);
  const kvm = KvmApi.open(host.spawn());
  const vm = kvm.createVm();
  return { kvm, vm, vcpu: vm.createVcpu(0) };
}

const raw = (v: VcpuFd, request: number, arg: Uint8Array | number): number => v.proc.ioctl(v.fd, request, arg);

/** A kvm_fpu with every byte distinct. */
function fpuBytes(): Uint8Array {
  return new Uint8Array(KVM_FPU_STRUCT.size).map((_, i) => (i * 13 + 5) & 0xff);
}

function xsaveImage(bv: bigint, edit?: (dv: DataView) => void): Uint8Array {
  const b = new Uint8Array(KVM_XSAVE_STRUCT.size);
  const dv = new DataView(b.buffer);
  dv.setUint16(0, 0x17f, true);
  dv.setUint16(2, 0x4321, true);
  b[4] = 0xf0;
  dv.setUint32(24, 0x1f81, true);
  dv.setUint32(28, 0xffff, true);
  for (let i = 0; i < 128; i++) b[32 + i] = 0x40 + i;
  for (let i = 0; i < 256; i++) b[160 + i] = i;
  dv.setBigUint64(XSTATE_BV, bv, true);
  edit?.(dv);
  return b;
}

function xcrs(nr: number, flags: number, list: readonly (readonly [number, bigint])[]): Uint8Array {
  return encodeStruct(KVM_XCRS_STRUCT, { nr_xcrs: nr, flags, xcrs: list.map(([xcr, value]) => ({ xcr, reserved: 0, value })) });
}

describe('KVM_CAP_XSAVE, KVM_CAP_XCRS, KVM_CAP_XSAVE2', () => {
  it('are offered, XSAVE2 with the size of struct kvm_xsave', () => {
    const { kvm, vm } = setup();
    expect(kvm.checkExtension(KVM_CAP.XSAVE)).toBe(1);
    expect(kvm.checkExtension(KVM_CAP.XCRS)).toBe(1);
    expect(vm.checkExtension(KVM_CAP.XSAVE2)).toBe(4096);
  });

  it('ioctl numbers are kvm.h\'s', () => {
    expect(KVM.KVM_SET_FPU).toBe(0x41a0ae8d);
    expect(KVM.KVM_GET_XSAVE).toBe(0x9000aea4);
    expect(KVM.KVM_SET_XSAVE).toBe(0x5000aea5);
    expect(KVM.KVM_GET_XCRS).toBe(0x8188aea6);
    expect(KVM.KVM_SET_XCRS).toBe(0x4188aea7);
    expect(KVM.KVM_GET_XSAVE2).toBe(0x9000aecf);
    expect(offsetOf(KVM_XCRS_STRUCT, 'padding')).toBe(264);
  });
});

describe('KVM_GET_FPU / KVM_SET_FPU', () => {
  it('a new vCPU: fcw 0x37f and nothing else (mxcsr reads 0, as Linux never copies it out)', () => {
    const { vcpu } = setup();
    const b = new Uint8Array(KVM_FPU_STRUCT.size).fill(0xcc);
    expect(raw(vcpu, KVM.KVM_GET_FPU, b)).toBe(0);
    const want = new Uint8Array(KVM_FPU_STRUCT.size);
    want[128] = 0x7f;
    want[129] = 0x03;
    expect(b).toEqual(want);
  });

  it('SET then GET round-trips every field but pad1, mxcsr and pad2', () => {
    const { vcpu } = setup();
    const b = fpuBytes();
    expect(raw(vcpu, KVM.KVM_SET_FPU, b)).toBe(0);
    const got = new Uint8Array(KVM_FPU_STRUCT.size);
    expect(raw(vcpu, KVM.KVM_GET_FPU, got)).toBe(0);
    const want = b.slice();
    want[133] = 0;
    want.fill(0, 408);
    expect(got).toEqual(want);
    const f = vcpu.getFpu();
    expect(f.fcw).toBe(b[128]! | (b[129]! << 8));
    expect(f.lastIp).toBe(new DataView(b.buffer).getBigUint64(136, true));
    expect(f.xmm).toEqual(b.subarray(152, 408));
  });

  it('the façade round-trips a kvm_fpu', () => {
    const { vcpu } = setup();
    const f = {
      fpr: new Uint8Array(128).map((_, i) => i), fcw: 0x27f, fsw: 0x3800, ftwx: 0x81, lastOpcode: 0x7ff,
      lastIp: 0xffffffff81000000n, lastDp: 0x7fff0000n, xmm: new Uint8Array(256).map((_, i) => 255 - i), mxcsr: 0,
    };
    vcpu.setFpu(f);
    expect(vcpu.getFpu()).toEqual(f);
  });

  it('EFAULT on bad pointers', () => {
    const { vcpu } = setup();
    for (const r of [KVM.KVM_GET_FPU, KVM.KVM_SET_FPU, KVM.KVM_GET_XSAVE, KVM.KVM_SET_XSAVE, KVM.KVM_GET_XCRS, KVM.KVM_SET_XCRS]) {
      expect(raw(vcpu, r, 8), `0x${r.toString(16)}`).toBe(-ERRNO.EFAULT);
      expect(raw(vcpu, r, new Uint8Array(16)), `0x${r.toString(16)} short`).toBe(-ERRNO.EFAULT);
    }
  });
});

describe('KVM_GET_XSAVE / KVM_SET_XSAVE', () => {
  it('a new vCPU: the init state, XSTATE_BV 0, the offered features in sw_reserved', () => {
    const { vcpu } = setup();
    const x = vcpu.getXsave();
    const want = new Uint8Array(4096);
    const dv = new DataView(want.buffer);
    dv.setUint16(0, 0x37f, true);
    dv.setUint32(24, 0x1f80, true);
    dv.setUint32(28, 0xffff, true);
    dv.setBigUint64(464, 3n, true);
    expect(x).toEqual(want);
  });

  it('SET then GET is exact for x87+SSE (sw_reserved and past the header excepted); GET_FPU shows the same fcw and registers', () => {
    const { vcpu } = setup();
    const img = xsaveImage(3n);
    vcpu.setXsave(img);
    const x = vcpu.getXsave();
    const x2 = new Uint8Array(4096);
    expect(raw(vcpu, KVM.KVM_GET_XSAVE2, x2)).toBe(0); // without extended features, the same 4096 bytes
    expect(x2).toEqual(x);
    expect(x.subarray(0, 464)).toEqual(img.subarray(0, 464));
    expect(x.subarray(512, 576)).toEqual(img.subarray(512, 576));
    const f = vcpu.getFpu();
    expect(f.fcw).toBe(0x17f);
    expect(f.fsw).toBe(0x4321);
    expect(f.ftwx).toBe(0xf0);
    expect(f.fpr).toEqual(img.subarray(32, 160));
    expect(f.xmm).toEqual(img.subarray(160, 416));
  });

  it('SET_FPU after SET_XSAVE changes the x87/SSE registers GET_XSAVE shows, not MXCSR', () => {
    const { vcpu } = setup();
    vcpu.setXsave(xsaveImage(3n));
    const b = fpuBytes();
    expect(raw(vcpu, KVM.KVM_SET_FPU, b)).toBe(0);
    const x = vcpu.getXsave();
    expect(x.subarray(32, 160)).toEqual(b.subarray(0, 128));
    expect(x.subarray(160, 416)).toEqual(b.subarray(152, 408));
    expect(new DataView(x.buffer).getUint32(24, true)).toBe(0x1f81);
  });

  it('a component whose XSTATE_BV bit is clear reads as its init state', () => {
    const { vcpu } = setup();
    expect(raw(vcpu, KVM.KVM_SET_FPU, fpuBytes())).toBe(0);
    // SET_FPU writes the buffer, not XSTATE_BV: the image still says "init" for x87 and SSE.
    expect(vcpu.getXsave()).toEqual(setup().vcpu.getXsave());
  });

  it('EINVAL for unsupported XSTATE_BV bits, XCOMP_BV, reserved header bytes and reserved MXCSR bits', () => {
    const { vcpu } = setup();
    const set = (img: Uint8Array): number => raw(vcpu, KVM.KVM_SET_XSAVE, img);
    expect(set(xsaveImage(8n))).toBe(-ERRNO.EINVAL);
    expect(set(xsaveImage(1n << 9n))).toBe(-ERRNO.EINVAL);
    expect(set(xsaveImage(3n, (dv) => dv.setBigUint64(520, 1n, true)))).toBe(-ERRNO.EINVAL);
    expect(set(xsaveImage(3n, (dv) => dv.setUint8(540, 1)))).toBe(-ERRNO.EINVAL);
    expect(set(xsaveImage(2n, (dv) => dv.setUint32(24, 0xffff1f80, true)))).toBe(-ERRNO.EINVAL);
    expect(set(xsaveImage(1n, (dv) => dv.setUint32(24, 0x10000, true)))).toBe(-ERRNO.EINVAL);
    expect(set(xsaveImage(0n, (dv) => dv.setUint32(24, 0xffff0000, true)))).toBe(0);
    expect(errnoOf(() => vcpu.setXsave(xsaveImage(1n << 63n)))).toBe(ERRNO.EINVAL);
  });
});

describe('KVM_GET_XCRS / KVM_SET_XCRS', () => {
  it('a new vCPU reports XCR0 = 1 alone, in a zeroed struct', () => {
    const { vcpu } = setup();
    const b = new Uint8Array(KVM_XCRS_STRUCT.size).fill(0xcc);
    expect(raw(vcpu, KVM.KVM_GET_XCRS, b)).toBe(0);
    expect(b).toEqual(xcrs(1, 0, [[0, 1n]]));
    expect(vcpu.getXcrs()).toEqual([{ xcr: 0, value: 1n }]);
  });

  it("__kvm_set_xcr's checks, against the guest's CPUID leaf 0xD", () => {
    const { vcpu } = setup();
    const set = (b: Uint8Array): number => raw(vcpu, KVM.KVM_SET_XCRS, b);
    expect(set(xcrs(1, 0, [[0, 3n]]))).toBe(-ERRNO.EINVAL); // no CPUID.0xD: x87 only
    expect(set(xcrs(1, 0, [[0, 0n]]))).toBe(-ERRNO.EINVAL);
    expect(set(xcrs(17, 0, [[0, 1n]]))).toBe(-ERRNO.EINVAL);
    expect(set(xcrs(1, 1, [[0, 1n]]))).toBe(-ERRNO.EINVAL);
    expect(set(xcrs(16, 0, [[0, 1n]]))).toBe(0);
    expect(set(xcrs(1, 0, [[1, 1n]]))).toBe(0); // only XCR0 is looked at
    expect(set(xcrs(0, 0, []))).toBe(0);
    expect(set(xcrs(2, 0, [[1, 5n], [0, 0n]]))).toBe(-ERRNO.EINVAL);
    expect(set(xcrs(2, 0, [[0, 1n], [0, 0n]]))).toBe(0); // the first XCR0 entry only
    vcpu.setCpuid2([{ function: 0xd, index: 0, flags: 1, eax: 0x7, ebx: 0x240, ecx: 0x340, edx: 0 }]);
    vcpu.setXcrs([{ xcr: 0, value: 3n }]);
    expect(vcpu.getXcrs()).toEqual([{ xcr: 0, value: 3n }]);
    expect(set(xcrs(1, 0, [[0, 7n]]))).toBe(-ERRNO.EINVAL); // YMM: not saved by this host
    expect(vcpu.getXcrs()).toEqual([{ xcr: 0, value: 3n }]);
  });
});

describe('kvm_emulate_xsetbv', () => {
  it('sets XCR0 from EDX:EAX when __kvm_set_xcr accepts it, else queues #GP(0) and leaves XCR0', () => {
    const { vcpu } = setup();
    vcpu.setCpuid2([{ function: 0xd, index: 0, flags: 1, eax: 0x3, ebx: 0x240, ecx: 0x240, edx: 0 }]);
    const v = (vcpu.proc.file(vcpu.fd) as VcpuFile).vcpu;
    vcpu.setRegs({ ...vcpu.getRegs(), rcx: 0n, rdx: 0n, rax: 3n });
    expect(kvmEmulateXsetbv(v)).toBe('resume');
    expect(v.arch.exception.pending).toBe(false);
    expect(vcpu.getXcrs()).toEqual([{ xcr: 0, value: 3n }]);
    vcpu.setRegs({ ...vcpu.getRegs(), rax: 2n });
    expect(kvmEmulateXsetbv(v)).toBe('resume');
    expect(v.arch.exception).toMatchObject({ pending: true, nr: 13, hasErrorCode: true, errorCode: 0 });
    expect(vcpu.getXcrs()).toEqual([{ xcr: 0, value: 3n }]);
  });
});
