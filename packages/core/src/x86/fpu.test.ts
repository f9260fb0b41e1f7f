import { describe, expect, it } from 'vitest';
import { KVM_FPU_STRUCT, KVM_XSAVE_STRUCT, offsetOf } from '../uapi/structs.js';
import { ERRNO } from '../uapi/errno.js';
import {
  FXREGS_STATE, GuestFpu, KVM_SUPPORTED_XCR0, MXCSR_FEATURE_MASK, XFEATURE_MASK, XSAVE_HDR_OFFSET, guestSupportedXcr0, kvmSetXcr,
} from './fpu.js';
import type { CpuidEntry } from './cpuid.js';

const FPU = (name: string): number => offsetOf(KVM_FPU_STRUCT, name);

/** An XSAVE image: legacy fields set to recognisable values, XSTATE_BV = bv. */
function image(bv: bigint, edit?: (dv: DataView, b: Uint8Array) => void): Uint8Array {
  const b = new Uint8Array(KVM_XSAVE_STRUCT.size);
  const dv = new DataView(b.buffer);
  dv.setUint16(FXREGS_STATE.cwd, 0x17f, true);
  dv.setUint16(FXREGS_STATE.swd, 0x4321, true);
  dv.setUint32(FXREGS_STATE.mxcsr, 0x1f81, true);
  dv.setUint32(FXREGS_STATE.mxcsr_mask, 0xffff, true);
  for (let i = 0; i < 128; i++) b[FXREGS_STATE.st_space + i] = 0x40 + i;
  for (let i = 0; i < 256; i++) b[FXREGS_STATE.xmm_space + i] = i;
  dv.setBigUint64(XSAVE_HDR_OFFSET, bv, true);
  edit?.(dv, b);
  return b;
}

const u16 = (b: Uint8Array, off: number): number => b[off]! | (b[off + 1]! << 8);
const u32 = (b: Uint8Array, off: number): number => new DataView(b.buffer, b.byteOffset).getUint32(off, true);
const xstateBv = (b: Uint8Array): bigint => new DataView(b.buffer, b.byteOffset).getBigUint64(XSAVE_HDR_OFFSET, true);

describe('GuestFpu', () => {
  it('resets as fpstate_init_fxstate: fcw 0x37f, every component in its init state, XCR0 = x87', () => {
    const f = new GuestFpu();
    const fpu = f.getFpu();
    expect(u16(fpu, FPU('fcw'))).toBe(0x37f);
    // kvm_arch_vcpu_ioctl_get_fpu does not copy MXCSR: the ioctl's zeroed struct keeps 0 there.
    expect(u32(fpu, FPU('mxcsr'))).toBe(0);
    expect(fpu.filter((x) => x !== 0)).toEqual(new Uint8Array([0x7f, 0x03]));
    const x = f.getXsave();
    expect(u16(x, FXREGS_STATE.cwd)).toBe(0x37f);
    expect(u32(x, FXREGS_STATE.mxcsr)).toBe(0x1f80);
    expect(u32(x, FXREGS_STATE.mxcsr_mask)).toBe(MXCSR_FEATURE_MASK);
    expect(new DataView(x.buffer).getBigUint64(FXREGS_STATE.sw_reserved, true)).toBe(KVM_SUPPORTED_XCR0);
    expect(xstateBv(x)).toBe(0n);
    expect(f.xcr0).toBe(1n);
  });

  it('SET_FPU then GET_FPU gives every field back but mxcsr; ftwx is a byte of the 16-bit twd', () => {
    const f = new GuestFpu();
    const b = new Uint8Array(KVM_FPU_STRUCT.size).map((_, i) => (i * 7 + 3) & 0xff);
    f.setFpu(b);
    const got = f.getFpu();
    const want = b.slice();
    want[FPU('pad1')] = 0;
    want.fill(0, FPU('mxcsr'), KVM_FPU_STRUCT.size);
    expect(got).toEqual(want);
    expect(u16(f.regs, FXREGS_STATE.twd)).toBe(b[FPU('ftwx')]);
    expect(u32(f.regs, FXREGS_STATE.mxcsr)).toBe(0x1f80);
  });

  it('SET_XSAVE of x87+SSE shows through GET_FPU (fcw, fpr, xmm) and GET_XSAVE (mxcsr too)', () => {
    const f = new GuestFpu();
    expect(f.setXsave(image(3n))).toBe(0);
    const fpu = f.getFpu();
    expect(u16(fpu, FPU('fcw'))).toBe(0x17f);
    expect(u16(fpu, FPU('fsw'))).toBe(0x4321);
    expect(fpu.subarray(FPU('fpr'), FPU('fpr') + 128)).toEqual(image(3n).subarray(32, 160));
    expect(fpu.subarray(FPU('xmm'), FPU('xmm') + 256)).toEqual(image(3n).subarray(160, 416));
    const x = f.getXsave();
    expect(u32(x, FXREGS_STATE.mxcsr)).toBe(0x1f81);
    expect(x.subarray(0, 416)).toEqual(image(3n).subarray(0, 416));
    expect(xstateBv(x)).toBe(3n);
  });

  it('SET_XSAVE copies only the components XSTATE_BV names; the others read as init', () => {
    const sse = new GuestFpu();
    expect(sse.setXsave(image(2n))).toBe(0);
    const x = sse.getXsave();
    expect(u16(x, FXREGS_STATE.cwd)).toBe(0x37f); // x87 in its init state
    expect(u32(x, FXREGS_STATE.mxcsr)).toBe(0x1f81); // SSE carries MXCSR without x87
    expect(x.subarray(FXREGS_STATE.st_space, FXREGS_STATE.xmm_space).every((b) => b === 0)).toBe(true);
    expect(x.subarray(FXREGS_STATE.xmm_space, FXREGS_STATE.padding)).toEqual(image(2n).subarray(160, 416));
    // GET_FPU reads the buffer as it is: x87 fields untouched since reset.
    expect(u16(sse.getFpu(), FPU('fcw'))).toBe(0x37f);

    const none = new GuestFpu();
    expect(none.setXsave(image(0n))).toBe(0);
    expect(none.getXsave()).toEqual(new GuestFpu().getXsave());
  });

  it('refuses what copy_uabi_to_xstate refuses, leaving the state as it was', () => {
    const f = new GuestFpu();
    const before = f.getXsave();
    expect(f.setXsave(image(XFEATURE_MASK.YMM))).toBe(-ERRNO.EINVAL); // not offered by this host
    expect(f.setXsave(image(XFEATURE_MASK.PKRU | 3n))).toBe(-ERRNO.EINVAL);
    expect(f.setXsave(image(1n << 63n))).toBe(-ERRNO.EINVAL);
    expect(f.setXsave(image(3n, (dv) => dv.setBigUint64(XSAVE_HDR_OFFSET + 8, 1n << 63n, true)))).toBe(-ERRNO.EINVAL); // compacted
    expect(f.setXsave(image(3n, (_, b) => { b[XSAVE_HDR_OFFSET + 40] = 1; }))).toBe(-ERRNO.EINVAL); // header reserved
    expect(f.setXsave(image(2n, (dv) => dv.setUint32(FXREGS_STATE.mxcsr, 0x10000, true)))).toBe(-ERRNO.EINVAL);
    expect(f.setXsave(image(1n, (dv) => dv.setUint32(FXREGS_STATE.mxcsr, 0xffff1f80, true)))).toBe(-ERRNO.EINVAL);
    expect(f.getXsave()).toEqual(before);
    // MXCSR is not looked at when no component carries it; bytes past the header are ignored.
    expect(f.setXsave(image(0n, (dv) => dv.setUint32(FXREGS_STATE.mxcsr, 0xffff0000, true)))).toBe(0);
    expect(f.setXsave(image(3n, (_, b) => { b[600] = 1; b[FXREGS_STATE.sw_reserved + 6] = 1; }))).toBe(0);
    expect(f.getXsave()[600]).toBe(0);
  });
});

describe('__kvm_set_xcr', () => {
  const leafD = (eax: number): CpuidEntry[] => [{ function: 0xd, index: 0, flags: 1, eax, ebx: 0, ecx: 0, edx: 0 }];

  it('allows x87 alone without an XSAVE CPUID leaf, and what CPUID.0xD and the host both offer', () => {
    const f = new GuestFpu();
    expect(guestSupportedXcr0([])).toBe(0n);
    expect(kvmSetXcr(f, [], 0, 3n)).toBe(1);
    expect(kvmSetXcr(f, [], 0, 1n)).toBe(0);
    expect(guestSupportedXcr0(leafD(0xe7))).toBe(3n);
    expect(kvmSetXcr(f, leafD(0xe7), 0, 3n)).toBe(0);
    expect(f.xcr0).toBe(3n);
    expect(kvmSetXcr(f, leafD(0xe7), 0, 7n)).toBe(1); // YMM: the host does not save it
    expect(f.xcr0).toBe(3n);
  });

  it('refuses XCR0 without x87, YMM without SSE, other XCRs, and features the host does not save (MPX, AVX-512)', () => {
    const f = new GuestFpu();
    const all = leafD(-1);
    expect(kvmSetXcr(f, all, 0, 2n)).toBe(1);
    expect(kvmSetXcr(f, all, 0, 5n)).toBe(1);
    expect(kvmSetXcr(f, all, 1, 1n)).toBe(1);
    expect(kvmSetXcr(f, all, 0, 1n | XFEATURE_MASK.BNDREGS)).toBe(1);
    expect(kvmSetXcr(f, all, 0, 7n | (XFEATURE_MASK.AVX512 & 0x20n))).toBe(1);
    expect(f.xcr0).toBe(1n);
  });
});
