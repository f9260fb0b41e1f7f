/**
 * The guest FPU, as KVM keeps it: vcpu->arch.guest_fpu (struct fpu_guest, arch/x86/kernel/fpu/core.c)
 * holds one fpstate, an XSAVE buffer in the standard format (the FXSAVE legacy area at 0, the XSAVE
 * header at 512), and vcpu->arch.xcr0 the guest's XCR0. The ioctls see that buffer three ways:
 * - KVM_GET_FPU/KVM_SET_FPU copy fields of the legacy area as they are (kvm_arch_vcpu_ioctl_get_fpu);
 * - KVM_GET_XSAVE converts it to the uabi image (__copy_xstate_to_uabi_buf): a component whose
 *   XSTATE_BV bit is clear reads as its init state, whatever the buffer holds;
 * - KVM_SET_XSAVE validates and copies the components the image's XSTATE_BV names
 *   (fpu_copy_uabi_to_guest_fpstate, copy_uabi_to_xstate).
 *
 * The model's CPU runs no x87/SSE code and has no XSETBV, so this state only travels through the
 * uapi (and migration). The host kernel offers x87 and SSE state: supported_xcr0 = FP | SSE.
 */
import { ERRNO } from '../uapi/errno.js';
import { KVM_FPU_STRUCT, KVM_XSAVE_STRUCT, offsetOf } from '../uapi/structs.js';
import { findCpuidEntry, type CpuidEntry } from './cpuid.js';
import type { ExitResult, KvmVcpu } from './kvm-types.js';
import { VCPU_REGS, kvmInjectGp, kvmRegisterReadLo, kvmSkipEmulatedInstruction, toVcpu } from './x86.js';

/** XFEATURE_* bit numbers (arch/x86/include/asm/fpu/types.h); masks are 1 << bit. */
export const XFEATURE = {
  FP: 0, SSE: 1, YMM: 2, BNDREGS: 3, BNDCSR: 4, OPMASK: 5, ZMM_Hi256: 6, Hi16_ZMM: 7, PT_UNIMPLEMENTED_SO_FAR: 8,
  PKRU: 9, PASID: 10, CET_USER: 11, CET_KERNEL_UNUSED: 12, RSRVD_COMP_13: 13, RSRVD_COMP_14: 14, LBR: 15,
  RSRVD_COMP_16: 16, XTILE_CFG: 17, XTILE_DATA: 18,
} as const;
const mask = (bit: number): bigint => 1n << BigInt(bit);
export const XFEATURE_MASK = {
  FP: mask(XFEATURE.FP), SSE: mask(XFEATURE.SSE), YMM: mask(XFEATURE.YMM),
  BNDREGS: mask(XFEATURE.BNDREGS), BNDCSR: mask(XFEATURE.BNDCSR),
  AVX512: mask(XFEATURE.OPMASK) | mask(XFEATURE.ZMM_Hi256) | mask(XFEATURE.Hi16_ZMM),
  PKRU: mask(XFEATURE.PKRU),
  XTILE: mask(XFEATURE.XTILE_CFG) | mask(XFEATURE.XTILE_DATA),
} as const;

/** XCR_XFEATURE_ENABLED_MASK: XCR0, the only XCR KVM supports. */
export const XCR_XFEATURE_ENABLED_MASK = 0;
/** KVM_MAX_XCRS. */
export const KVM_MAX_XCRS = 16;

/** struct fxregs_state (the FXSAVE area, SDM Vol. 1, Table 10-2), by field: byte offsets. */
export const FXREGS_STATE = {
  cwd: 0, swd: 2, twd: 4, fop: 6, rip: 8, rdp: 16, mxcsr: 24, mxcsr_mask: 28, st_space: 32, xmm_space: 160,
  padding: 416, sw_reserved: 464,
} as const;
export const FXSAVE_SIZE = 512;
/** struct xstate_header at XSAVE_HDR_OFFSET: xfeatures (XSTATE_BV), xcomp_bv, then 48 reserved bytes. */
export const XSAVE_HDR_OFFSET = 512;
export const XSAVE_HDR_SIZE = 64;
const HDR_XFEATURES = XSAVE_HDR_OFFSET;
const HDR_XCOMP_BV = XSAVE_HDR_OFFSET + 8;
const HDR_RESERVED = XSAVE_HDR_OFFSET + 16;

/**
 * The user xstate components this host offers: [feature, offset, size] in the standard format
 * (xstate_offsets/xstate_sizes; FP and SSE are the legacy area's st_space and xmm_space halves).
 */
const XSTATE_COMPONENTS = [
  [XFEATURE.FP, 0, FXREGS_STATE.xmm_space],
  [XFEATURE.SSE, FXREGS_STATE.xmm_space, FXREGS_STATE.padding - FXREGS_STATE.xmm_space],
] as const;

/** kvm_caps.supported_xcr0: KVM_SUPPORTED_XCR0 & the host's XCR0, here the components above. */
export const KVM_SUPPORTED_XCR0 = XSTATE_COMPONENTS.reduce((m, [f]) => m | mask(f), 0n);
/** The fpstate buffer: legacy area, header, and the (empty) extended area of the components above. */
const FPSTATE_SIZE = XSAVE_HDR_OFFSET + XSAVE_HDR_SIZE;

/** Reset values (fpstate_init_fxstate, MXCSR_DEFAULT). */
export const FPU_INIT = { cwd: 0x37f, mxcsr: 0x1f80 } as const;
/**
 * mxcsr_feature_mask: the MXCSR bits the host's FXSAVE reports writable (a CPU with DAZ: 0xffff).
 * Reserved bits set in a KVM_SET_XSAVE image are refused with EINVAL.
 */
export const MXCSR_FEATURE_MASK = 0x0000ffff;

/** struct kvm_fpu fields and the fxregs_state fields KVM copies them to and from, with their widths. */
const FPU_FXSAVE_FIELDS = [
  // kvm_fpu      fxregs_state             bytes
  ['fpr', FXREGS_STATE.st_space, 128],
  ['fcw', FXREGS_STATE.cwd, 2],
  ['fsw', FXREGS_STATE.swd, 2],
  ['ftwx', FXREGS_STATE.twd, 1], // u8 in kvm_fpu, u16 twd: SET zero-extends
  ['last_opcode', FXREGS_STATE.fop, 2],
  ['last_ip', FXREGS_STATE.rip, 8],
  ['last_dp', FXREGS_STATE.rdp, 8],
  ['xmm', FXREGS_STATE.xmm_space, 256],
] as const;
const FPU_FIELDS = FPU_FXSAVE_FIELDS.map(([name, fx, n]) => [offsetOf(KVM_FPU_STRUCT, name), fx, n] as const);

/** The init state (init_fpstate) a component reads as when its XSTATE_BV bit is clear. */
const INIT_FPSTATE = (() => {
  const b = new Uint8Array(FXSAVE_SIZE);
  const dv = new DataView(b.buffer);
  dv.setUint16(FXREGS_STATE.cwd, FPU_INIT.cwd, true);
  dv.setUint32(FXREGS_STATE.mxcsr, FPU_INIT.mxcsr, true);
  dv.setUint32(FXREGS_STATE.mxcsr_mask, MXCSR_FEATURE_MASK, true);
  return b;
})();

/** One vCPU's guest_fpu and XCR0. */
export class GuestFpu {
  /** fpstate->regs: the XSAVE buffer, standard format. */
  readonly regs = new Uint8Array(FPSTATE_SIZE);
  private readonly dv = new DataView(this.regs.buffer);
  /** vcpu->arch.xcr0: x87 is always enabled (kvm_vcpu_reset sets XFEATURE_MASK_FP). */
  xcr0 = XFEATURE_MASK.FP;

  constructor() {
    // fpstate_init_user: fcw and MXCSR at their defaults, XSTATE_BV 0 (every component in its init state).
    this.dv.setUint16(FXREGS_STATE.cwd, FPU_INIT.cwd, true);
    this.dv.setUint32(FXREGS_STATE.mxcsr, FPU_INIT.mxcsr, true);
  }

  /** header.xfeatures (XSTATE_BV) of the buffer. */
  get xfeatures(): bigint {
    return this.dv.getBigUint64(HDR_XFEATURES, true);
  }

  /** kvm_arch_vcpu_ioctl_get_fpu: the legacy fields as they are. MXCSR is not among them (Linux leaves kvm_fpu.mxcsr 0). */
  getFpu(): Uint8Array {
    const out = new Uint8Array(KVM_FPU_STRUCT.size);
    for (const [fpu, fx, n] of FPU_FIELDS) out.set(this.regs.subarray(fx, fx + n), fpu);
    return out;
  }

  /** kvm_arch_vcpu_ioctl_set_fpu: the legacy fields, XSTATE_BV and MXCSR untouched. */
  setFpu(b: Uint8Array): void {
    for (const [fpu, fx, n] of FPU_FIELDS) this.regs.set(b.subarray(fpu, fpu + n), fx);
    this.regs[FXREGS_STATE.twd + 1] = 0;
  }

  /**
   * KVM_GET_XSAVE (fpu_copy_guest_fpstate_to_uabi, XSTATE_COPY_XSAVE): components whose
   * XSTATE_BV bit is clear read as init_fpstate; sw_reserved carries the user xfeatures, as
   * xstate_fx_sw_bytes does; everything past the offered components is zero.
   */
  getXsave(): Uint8Array {
    const out = new Uint8Array(KVM_XSAVE_STRUCT.size);
    const xfeatures = this.xfeatures & KVM_SUPPORTED_XCR0;
    const from = (on: bigint): Uint8Array => (xfeatures & on ? this.regs : INIT_FPSTATE);
    const copy = (src: Uint8Array, start: number, end: number): void => out.set(src.subarray(start, end), start);
    copy(from(XFEATURE_MASK.FP), 0, FXREGS_STATE.mxcsr);
    copy(from(XFEATURE_MASK.SSE | XFEATURE_MASK.YMM), FXREGS_STATE.mxcsr, FXREGS_STATE.st_space);
    copy(from(XFEATURE_MASK.FP), FXREGS_STATE.st_space, FXREGS_STATE.xmm_space);
    copy(from(XFEATURE_MASK.SSE), FXREGS_STATE.xmm_space, FXREGS_STATE.padding);
    const dv = new DataView(out.buffer);
    dv.setBigUint64(FXREGS_STATE.sw_reserved, KVM_SUPPORTED_XCR0, true);
    dv.setBigUint64(HDR_XFEATURES, xfeatures, true);
    return out;
  }

  /** KVM_SET_XSAVE (fpu_copy_uabi_to_guest_fpstate, validate_user_xstate_header, copy_uabi_to_xstate): 0 or -errno. */
  setXsave(img: Uint8Array): number {
    const dv = new DataView(img.buffer, img.byteOffset, img.byteLength);
    const xfeatures = dv.getBigUint64(HDR_XFEATURES, true);
    if (xfeatures & ~KVM_SUPPORTED_XCR0) return -ERRNO.EINVAL;
    // The uncompacted format only, and no reserved header bytes.
    if (dv.getBigUint64(HDR_XCOMP_BV, true)) return -ERRNO.EINVAL;
    if (img.subarray(HDR_RESERVED, XSAVE_HDR_OFFSET + XSAVE_HDR_SIZE).some((x) => x !== 0)) return -ERRNO.EINVAL;
    if (xfeatures & (XFEATURE_MASK.FP | XFEATURE_MASK.SSE | XFEATURE_MASK.YMM)) {
      if (dv.getUint32(FXREGS_STATE.mxcsr, true) & ~MXCSR_FEATURE_MASK) return -ERRNO.EINVAL;
      // SSE and YMM carry MXCSR even when FP is not in use.
      if (!(xfeatures & XFEATURE_MASK.FP)) this.regs.set(img.subarray(FXREGS_STATE.mxcsr, FXREGS_STATE.st_space), FXREGS_STATE.mxcsr);
    }
    for (const [f, off, size] of XSTATE_COMPONENTS) {
      if (xfeatures & mask(f)) this.regs.set(img.subarray(off, off + size), off);
    }
    this.dv.setBigUint64(HDR_XFEATURES, xfeatures, true);
    return 0;
  }
}

/** vcpu->arch.guest_supported_xcr0: CPUID.(EAX=0DH,ECX=0):EDX:EAX as far as KVM supports it. */
export function guestSupportedXcr0(cpuid: readonly CpuidEntry[]): bigint {
  const e = findCpuidEntry(cpuid, 0xd, 0);
  if (!e) return 0n;
  return ((BigInt(e.edx >>> 0) << 32n) | BigInt(e.eax >>> 0)) & KVM_SUPPORTED_XCR0;
}

/** __kvm_set_xcr: 0, or 1 when the value would #GP the guest. */
export function kvmSetXcr(fpu: GuestFpu, cpuid: readonly CpuidEntry[], index: number, xcr: bigint): 0 | 1 {
  if (index !== XCR_XFEATURE_ENABLED_MASK) return 1;
  if (!(xcr & XFEATURE_MASK.FP)) return 1;
  if (xcr & XFEATURE_MASK.YMM && !(xcr & XFEATURE_MASK.SSE)) return 1;
  // x87 is always allowed, even when the guest's CPUID has no XSAVE leaf.
  if (xcr & ~(guestSupportedXcr0(cpuid) | XFEATURE_MASK.FP)) return 1;
  if (!(xcr & XFEATURE_MASK.BNDREGS) !== !(xcr & XFEATURE_MASK.BNDCSR)) return 1;
  if (xcr & XFEATURE_MASK.AVX512) {
    if (!(xcr & XFEATURE_MASK.YMM)) return 1;
    if ((xcr & XFEATURE_MASK.AVX512) !== XFEATURE_MASK.AVX512) return 1;
  }
  if (xcr & XFEATURE_MASK.XTILE && (xcr & XFEATURE_MASK.XTILE) !== XFEATURE_MASK.XTILE) return 1;
  fpu.xcr0 = xcr;
  return 0;
}

/** vcpu->arch.guest_fpu and xcr0 (Vcpu allocates it with the vCPU, as fpu_alloc_guest_fpstate). */
export function guestFpuOf(vcpu: KvmVcpu): GuestFpu {
  return toVcpu(vcpu).guestFpu;
}

/**
 * kvm_emulate_xsetbv, for a vendor's XSETBV exit: XCR[ECX] = EDX:EAX at CPL0 when __kvm_set_xcr
 * accepts it, else #GP(0). (The model's CPU decodes XSETBV as #UD today, so no guest reaches it yet.)
 */
export function kvmEmulateXsetbv(vcpu: KvmVcpu): ExitResult {
  const v = toVcpu(vcpu);
  const xcr = (BigInt(kvmRegisterReadLo(vcpu, VCPU_REGS.RDX)) << 32n) | BigInt(kvmRegisterReadLo(vcpu, VCPU_REGS.RAX));
  if (v.ops.getCpl(vcpu) !== 0 || kvmSetXcr(guestFpuOf(v), v.cpuid, kvmRegisterReadLo(vcpu, VCPU_REGS.RCX), xcr)) {
    kvmInjectGp(vcpu, 0);
    return 'resume';
  }
  kvmSkipEmulatedInstruction(vcpu);
  return 'resume';
}
