/** A vCPU fd: kvm_vcpu_ioctl (virt/kvm/kvm_main.c) and kvm_arch_vcpu_ioctl (x86.c), plus its mmap. */
import { CR0, CR4, EFER, PAGE_SIZE } from '@kvmts/x86';
import type { KFile, IoctlArg } from '../host/file.js';
import type { Process } from '../host/process.js';
import { UserArg } from '../host/uaccess.js';
import { ERRNO } from '../uapi/errno.js';
import { KVM } from '../uapi/ioctls.js';
import { KVM_GUESTDBG, KVM_LIMITS, KVM_MP_STATE, KVM_STATE_NESTED, KVM_VCPUEVENT } from '../uapi/constants.js';
import {
  KVM_FPU_STRUCT, KVM_GUEST_DEBUG_STRUCT, KVM_INTERRUPT_STRUCT, KVM_MP_STATE_STRUCT, KVM_MSRS_STRUCT, KVM_MSR_ENTRY_STRUCT,
  KVM_NESTED_STATE_STRUCT, KVM_REGS_STRUCT, KVM_SREGS_STRUCT, KVM_TRANSLATION_STRUCT, KVM_VCPU_EVENTS_STRUCT,
  KVM_XCRS_STRUCT, KVM_XSAVE_STRUCT, decodeStruct, encodeStruct, offsetOf, type StructValue,
} from '../uapi/structs.js';
import { KVM_REQ, VCPU_SREG, type KvmSegment } from '../x86/kvm-types.js';
import {
  VCPU_REGS, kvmGetCr8, kvmGetRflags, kvmMakeRequest, kvmQueueException, kvmQueueInterrupt, kvmSetCr8,
  kvmSetMsrCommon, kvmSetRflags, kvmUpdateDr7,
} from '../x86/x86.js';
import { kvmArchVcpuIoctlRun } from '../x86/vcpu-run.js';
import { gvaToGpa } from '../x86/paging.js';
import { KVM_MAX_XCRS, XCR_XFEATURE_ENABLED_MASK, guestFpuOf, kvmSetXcr } from '../x86/fpu.js';
import { VEC } from '@kvmts/x86';
import { decodeCpuidEntries, encodeCpuidEntries } from './cpuid-uapi.js';
import type { Vcpu } from './vcpu.js';
import { StatsFile } from './stats-fd.js';

/** kvm_regs order -> GPR number. */
const REGS_ORDER = [
  ['rax', VCPU_REGS.RAX], ['rbx', VCPU_REGS.RBX], ['rcx', VCPU_REGS.RCX], ['rdx', VCPU_REGS.RDX],
  ['rsi', VCPU_REGS.RSI], ['rdi', VCPU_REGS.RDI], ['rsp', VCPU_REGS.RSP], ['rbp', VCPU_REGS.RBP],
  ['r8', 8], ['r9', 9], ['r10', 10], ['r11', 11], ['r12', 12], ['r13', 13], ['r14', 14], ['r15', 15],
] as const;

const REGS_RIP = offsetOf(KVM_REGS_STRUCT, 'rip');
const REGS_RFLAGS = offsetOf(KVM_REGS_STRUCT, 'rflags');

/** kvm_sregs segment fields -> VCPU_SREG. */
const SREGS_SEGS = [
  ['cs', VCPU_SREG.CS], ['ds', VCPU_SREG.DS], ['es', VCPU_SREG.ES], ['fs', VCPU_SREG.FS],
  ['gs', VCPU_SREG.GS], ['ss', VCPU_SREG.SS], ['tr', VCPU_SREG.TR], ['ldt', VCPU_SREG.LDTR],
] as const;


const u64 = (n: number): bigint => BigInt.asUintN(64, BigInt(n));
const s64 = (b: FieldLike): number => Number(BigInt.asIntN(64, b as bigint));
type FieldLike = StructValue[string];

function segToUapi(s: KvmSegment): StructValue {
  return {
    base: u64(s.base), limit: s.limit >>> 0, selector: s.selector, type: s.type, present: s.present, dpl: s.dpl,
    db: s.db, s: s.s, l: s.l, g: s.g, avl: s.avl, unusable: s.unusable, padding: 0,
  };
}

function segFromUapi(v: StructValue): KvmSegment {
  const n = (k: string): number => v[k] as number;
  return {
    base: s64(v['base']!), limit: n('limit'), selector: n('selector'), type: n('type'), present: n('present'), dpl: n('dpl'),
    db: n('db'), s: n('s'), l: n('l'), g: n('g'), avl: n('avl'), unusable: n('unusable'),
  };
}

export class VcpuFile implements KFile {
  readonly kind = 'kvm-vcpu' as const;
  refs = 1;
  /** KVM_RUN has been called (CPUID is frozen after it). */
  private hasRun = false;

  readonly vcpu: Vcpu;

  constructor(vcpu: Vcpu) {
    this.vcpu = vcpu;
  }

  mmap(offset: number, len: number): Uint8Array | number {
    if (offset + len > KVM_LIMITS.VCPU_MMAP_PAGES * PAGE_SIZE) return -ERRNO.EINVAL;
    return this.vcpu.pages.subarray(offset, offset + len);
  }

  ioctl(proc: Process, request: number, arg: IoctlArg): number {
    const v = this.vcpu;
    if (proc !== v.kvm.proc) return -ERRNO.EIO;
    const u = new UserArg(proc, arg);
    switch (request) {
      case KVM.KVM_RUN:
        if (arg) return -ERRNO.EINVAL;
        this.hasRun = true;
        return kvmArchVcpuIoctlRun(v);
      case KVM.KVM_GET_REGS: return u.write(0, this.getRegs()) ? 0 : -ERRNO.EFAULT;
      case KVM.KVM_SET_REGS: return this.withStruct(u, KVM_REGS_STRUCT.size, (b) => this.setRegs(b));
      case KVM.KVM_GET_SREGS: return u.write(0, encodeStruct(KVM_SREGS_STRUCT, this.getSregs())) ? 0 : -ERRNO.EFAULT;
      case KVM.KVM_SET_SREGS: return this.withStruct(u, KVM_SREGS_STRUCT.size, (b) => this.setSregs(decodeStruct(KVM_SREGS_STRUCT, b)));
      case KVM.KVM_GET_MSRS: return this.msrIo(u, false);
      case KVM.KVM_SET_MSRS: return this.msrIo(u, true);
      case KVM.KVM_SET_CPUID2: {
        const entries = decodeCpuidEntries(u);
        if (typeof entries === 'number') return entries;
        // After KVM_RUN only an identical table is accepted (kvm_cpuid_check_equal).
        if (this.hasRun && JSON.stringify(entries) !== JSON.stringify(v.cpuid)) return -ERRNO.EINVAL;
        v.cpuid = entries;
        v.ops.vcpuAfterSetCpuid(v);
        return 0;
      }
      case KVM.KVM_GET_CPUID2: return encodeCpuidEntries(u, v.cpuid, false);
      case KVM.KVM_GET_VCPU_EVENTS: return u.write(0, encodeStruct(KVM_VCPU_EVENTS_STRUCT, this.getEvents())) ? 0 : -ERRNO.EFAULT;
      case KVM.KVM_SET_VCPU_EVENTS: return this.withStruct(u, KVM_VCPU_EVENTS_STRUCT.size, (b) => this.setEvents(decodeStruct(KVM_VCPU_EVENTS_STRUCT, b)));
      case KVM.KVM_GET_MP_STATE: return u.write(0, encodeStruct(KVM_MP_STATE_STRUCT, { mp_state: v.arch.mpState })) ? 0 : -ERRNO.EFAULT;
      case KVM.KVM_SET_MP_STATE: return this.withStruct(u, 4, (b) => {
        // Without an in-kernel LAPIC only RUNNABLE is accepted.
        if (decodeStruct(KVM_MP_STATE_STRUCT, b)['mp_state'] !== KVM_MP_STATE.RUNNABLE) return -ERRNO.EINVAL;
        v.arch.mpState = KVM_MP_STATE.RUNNABLE;
        return 0;
      });
      case KVM.KVM_INTERRUPT: return this.withStruct(u, KVM_INTERRUPT_STRUCT.size, (b) => {
        const irq = decodeStruct(KVM_INTERRUPT_STRUCT, b)['irq'] as number;
        if (irq >= 256) return -ERRNO.EINVAL;
        // kvm_vcpu_ioctl_interrupt without an in-kernel irqchip: queue it, over any queued one.
        kvmQueueInterrupt(v, irq, false);
        kvmMakeRequest(KVM_REQ.EVENT, v);
        return 0;
      });
      case KVM.KVM_NMI:
        v.arch.nmiPending = Math.min(v.arch.nmiPending + 1, 2);
        kvmMakeRequest(KVM_REQ.EVENT, v);
        return 0;
      case KVM.KVM_TRANSLATE: return this.translate(u);
      case KVM.KVM_SET_GUEST_DEBUG: return this.withStruct(u, KVM_GUEST_DEBUG_STRUCT.size, (b) => this.setGuestDebug(decodeStruct(KVM_GUEST_DEBUG_STRUCT, b)));
      case KVM.KVM_GET_NESTED_STATE: return this.getNestedState(u);
      case KVM.KVM_SET_NESTED_STATE: return this.setNestedState(u);
      case KVM.KVM_GET_FPU: return u.write(0, guestFpuOf(v).getFpu()) ? 0 : -ERRNO.EFAULT;
      case KVM.KVM_SET_FPU: return this.withStruct(u, KVM_FPU_STRUCT.size, (b) => {
        guestFpuOf(v).setFpu(b);
        return 0;
      });
      // Without KVM_CAP_XSAVE2 enabled the image is exactly struct kvm_xsave, so GET_XSAVE2 is GET_XSAVE.
      case KVM.KVM_GET_XSAVE: case KVM.KVM_GET_XSAVE2: return u.write(0, guestFpuOf(v).getXsave()) ? 0 : -ERRNO.EFAULT;
      case KVM.KVM_SET_XSAVE: return this.withStruct(u, KVM_XSAVE_STRUCT.size, (b) => guestFpuOf(v).setXsave(b));
      case KVM.KVM_GET_XCRS: return u.write(0, this.getXcrs()) ? 0 : -ERRNO.EFAULT;
      case KVM.KVM_SET_XCRS: return this.withStruct(u, KVM_XCRS_STRUCT.size, (b) => this.setXcrs(b));
      case KVM.KVM_ENABLE_CAP:
        return u.read(0, 104) ? -ERRNO.EINVAL : -ERRNO.EFAULT;
      case KVM.KVM_GET_STATS_FD:
        v.kvm.kvmGetKvm();
        return proc.installFd(new StatsFile(`kvm-${proc.pid}/vcpu-${v.vcpuId}`, () => v.stats(), () => v.kvm.kvmPutKvm()));
      default:
        return -ERRNO.EINVAL;
    }
  }

  private withStruct(u: UserArg, size: number, f: (b: Uint8Array) => number): number {
    const b = u.read(0, size);
    return b ? f(b) : -ERRNO.EFAULT;
  }

  /** kvm_regs straight from the GPR halves: KVM_GET_REGS runs once per exit in many VMMs, so no BigInt here. */
  private getRegs(): Uint8Array {
    const v = this.vcpu;
    const out = new Uint8Array(KVM_REGS_STRUCT.size);
    const dv = new DataView(out.buffer);
    REGS_ORDER.forEach(([, r], i) => {
      dv.setInt32(8 * i, v.arch.regs[r]!, true);
      dv.setInt32(8 * i + 4, v.arch.regsHi[r]!, true);
    });
    const rip = v.arch.rip;
    dv.setUint32(REGS_RIP, rip >>> 0, true);
    dv.setInt32(REGS_RIP + 4, Math.floor(rip / 2 ** 32), true);
    dv.setUint32(REGS_RFLAGS, kvmGetRflags(v) >>> 0, true);
    return out;
  }

  private setRegs(b: Uint8Array): number {
    const v = this.vcpu;
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    REGS_ORDER.forEach(([, r], i) => {
      v.arch.regs[r] = dv.getInt32(8 * i, true);
      v.arch.regsHi[r] = dv.getInt32(8 * i + 4, true);
    });
    // RIP is a signed canonical number: bits 63:32 as a signed high half.
    v.arch.rip = dv.getInt32(REGS_RIP + 4, true) * 2 ** 32 + dv.getUint32(REGS_RIP, true);
    kvmSetRflags(v, dv.getUint32(REGS_RFLAGS, true) | 0x2);
    v.arch.regsDirty = (v.arch.regsDirty ?? 0) | (1 << VCPU_REGS.RIP) | (1 << VCPU_REGS.RSP);
    v.arch.exception.pending = false;
    kvmMakeRequest(KVM_REQ.EVENT, v);
    return 0;
  }

  private getSregs(): StructValue {
    const v = this.vcpu;
    const ops = v.ops;
    for (const r of [VCPU_REGS.EXREG_CR0, VCPU_REGS.EXREG_CR3, VCPU_REGS.EXREG_CR4]) ops.cacheReg(v, r);
    const out: StructValue = {};
    for (const [name, s] of SREGS_SEGS) out[name] = segToUapi(ops.getSegment(v, s));
    const idt = ops.getIdt(v);
    const gdt = ops.getGdt(v);
    out['idt'] = { base: u64(idt.base), limit: idt.limit, padding: [0, 0, 0] };
    out['gdt'] = { base: u64(gdt.base), limit: gdt.limit, padding: [0, 0, 0] };
    out['cr0'] = BigInt(v.arch.cr0 >>> 0);
    out['cr2'] = u64(v.arch.cr2);
    out['cr3'] = u64(v.arch.cr3);
    out['cr4'] = BigInt(v.arch.cr4 >>> 0);
    out['cr8'] = BigInt(kvmGetCr8(v));
    out['efer'] = BigInt(v.arch.efer >>> 0);
    out['apic_base'] = v.apicBase;
    const bitmap = [0n, 0n, 0n, 0n];
    const irq = v.arch.interrupt;
    if (irq.injected && !irq.soft) bitmap[irq.nr >> 6]! |= 1n << BigInt(irq.nr & 63);
    out['interrupt_bitmap'] = bitmap;
    return out;
  }

  /** kvm_is_valid_sregs + __set_sregs. */
  private setSregs(s: StructValue): number {
    const v = this.vcpu;
    const ops = v.ops;
    const cr0b = s['cr0'] as bigint;
    const cr4b = s['cr4'] as bigint;
    const eferb = s['efer'] as bigint;
    if (cr0b >> 32n || cr4b >> 32n || eferb >> 32n) return -ERRNO.EINVAL;
    const cr0 = Number(cr0b) | 0;
    const cr4 = Number(cr4b) | 0;
    const efer = Number(eferb) | 0;
    const cr3 = Number(s['cr3'] as bigint);
    const cs = segFromUapi(s['cs'] as StructValue);
    if (efer & EFER.LME && cr0 & CR0.PG) {
      if (!(cr4 & CR4.PAE) || !(efer & EFER.LMA)) return -ERRNO.EINVAL;
      if (cr3 >= v.kvm.maxGfn() * PAGE_SIZE + PAGE_SIZE) return -ERRNO.EINVAL;
    } else if (efer & EFER.LMA || cs.l) {
      return -ERRNO.EINVAL;
    }
    if (cr0 & CR0.NW && !(cr0 & CR0.CD)) return -ERRNO.EINVAL;
    if (cr0 & CR0.PG && !(cr0 & CR0.PE)) return -ERRNO.EINVAL;
    if (!ops.isValidCr0(v, cr0) || !ops.isValidCr4(v, cr4)) return -ERRNO.EINVAL;
    if (kvmSetMsrCommon(v, { index: 0x1b, data: s['apic_base'] as bigint, hostInitiated: true })) return -ERRNO.EINVAL;
    const dt = (k: string) => {
      const d = s[k] as StructValue;
      return { base: s64(d['base']!), limit: d['limit'] as number };
    };
    ops.setIdt(v, dt('idt'));
    ops.setGdt(v, dt('gdt'));
    v.arch.cr2 = s64(s['cr2']!);
    v.arch.cr3 = cr3;
    v.arch.regsDirty = (v.arch.regsDirty ?? 0) | (1 << VCPU_REGS.EXREG_CR3);
    ops.postSetCr3?.(v, cr3);
    kvmSetCr8(v, Number((s['cr8'] as bigint) & 0xfn));
    ops.setEfer(v, efer);
    v.arch.efer = efer;
    ops.setCr0(v, cr0);
    v.arch.cr0 = cr0;
    ops.setCr4(v, cr4);
    v.arch.cr4 = cr4;
    for (const [name, seg] of SREGS_SEGS) ops.setSegment(v, seg, segFromUapi(s[name] as StructValue));
    const bitmap = s['interrupt_bitmap'] as bigint[];
    for (let w = 0; w < 4; w++) {
      const word = bitmap[w]!;
      if (!word) continue;
      let bit = 0;
      while (!((word >> BigInt(bit)) & 1n)) bit++;
      kvmQueueInterrupt(v, w * 64 + bit, false);
      break;
    }
    kvmMakeRequest(KVM_REQ.EVENT, v);
    return 0;
  }

  /** msr_io: E2BIG at MAX_IO_MSRS; returns how many entries were processed. */
  private msrIo(u: UserArg, write: boolean): number {
    const v = this.vcpu;
    const hdr = u.read(0, KVM_MSRS_STRUCT.size);
    if (!hdr) return -ERRNO.EFAULT;
    const n = decodeStruct(KVM_MSRS_STRUCT, hdr)['nmsrs'] as number;
    if (n >= KVM_LIMITS.MAX_IO_MSRS) return -ERRNO.E2BIG;
    const E = KVM_MSR_ENTRY_STRUCT.size;
    const body = u.read(KVM_MSRS_STRUCT.size, n * E);
    if (!body) return -ERRNO.EFAULT;
    let i = 0;
    for (; i < n; i++) {
      const e = decodeStruct(KVM_MSR_ENTRY_STRUCT, body, i * E);
      const index = e['index'] as number;
      if (write) {
        if (v.ops.setMsr(v, { index, data: e['data'] as bigint, hostInitiated: true })) break;
      } else {
        const msr = { index, data: 0n, hostInitiated: true };
        if (v.ops.getMsr(v, msr)) break;
        encodeStruct(KVM_MSR_ENTRY_STRUCT, { data: msr.data }, body, i * E);
      }
    }
    if (!write && !u.write(KVM_MSRS_STRUCT.size, body)) return -ERRNO.EFAULT;
    return i;
  }

  private getEvents(): StructValue {
    const v = this.vcpu;
    const a = v.arch;
    const ex = a.exception;
    // The uapi has no room for a software exception's instruction length, so an INT3/INTO in
    // flight is left out (kvm_exception_is_soft): RIP is still on it, and it runs again.
    const soft = ex.nr === VEC.BP || ex.nr === VEC.OF;
    return {
      // Without KVM_CAP_EXCEPTION_PAYLOAD a pending exception is reported as injected.
      exception_injected: (ex.injected || ex.pending) && !soft ? 1 : 0, exception_nr: ex.nr, exception_has_error_code: ex.hasErrorCode ? 1 : 0,
      exception_pending: 0, exception_error_code: ex.errorCode,
      interrupt_injected: a.interrupt.injected && !a.interrupt.soft ? 1 : 0, interrupt_nr: a.interrupt.nr, interrupt_soft: 0,
      interrupt_shadow: v.ops.getInterruptShadow(v),
      nmi_injected: a.nmiInjected ? 1 : 0, nmi_pending: a.nmiPending ? 1 : 0, nmi_masked: v.ops.getNmiMask(v) ? 1 : 0,
      sipi_vector: 0, flags: KVM_VCPUEVENT.VALID_NMI_PENDING | KVM_VCPUEVENT.VALID_SHADOW | KVM_VCPUEVENT.VALID_SMM,
    };
  }

  private setEvents(e: StructValue): number {
    const v = this.vcpu;
    const a = v.arch;
    const n = (k: string): number => e[k] as number;
    const valid = KVM_VCPUEVENT.VALID_NMI_PENDING | KVM_VCPUEVENT.VALID_SIPI_VECTOR | KVM_VCPUEVENT.VALID_SHADOW |
      KVM_VCPUEVENT.VALID_SMM | KVM_VCPUEVENT.VALID_PAYLOAD | KVM_VCPUEVENT.VALID_TRIPLE_FAULT;
    const flags = n('flags');
    if (flags & ~valid) return -ERRNO.EINVAL;
    // Payloads and triple-fault events need capabilities this model does not enable.
    if (flags & (KVM_VCPUEVENT.VALID_PAYLOAD | KVM_VCPUEVENT.VALID_TRIPLE_FAULT)) return -ERRNO.EINVAL;
    const pending = 0;
    if ((n('exception_injected') || pending) && (n('exception_nr') > 31 || n('exception_nr') === VEC.NMI)) return -ERRNO.EINVAL;
    a.exception.injected = n('exception_injected') !== 0;
    a.exception.pending = false;
    a.exception.nr = n('exception_nr');
    a.exception.hasErrorCode = n('exception_has_error_code') !== 0;
    a.exception.errorCode = n('exception_error_code');
    a.interrupt.injected = n('interrupt_injected') !== 0;
    a.interrupt.nr = n('interrupt_nr');
    a.interrupt.soft = n('interrupt_soft') !== 0;
    if (flags & KVM_VCPUEVENT.VALID_SHADOW) v.ops.setInterruptShadow(v, n('interrupt_shadow'));
    a.nmiInjected = n('nmi_injected') !== 0;
    if (flags & KVM_VCPUEVENT.VALID_NMI_PENDING) a.nmiPending = n('nmi_pending');
    v.ops.setNmiMask(v, n('nmi_masked') !== 0);
    kvmMakeRequest(KVM_REQ.EVENT, v);
    return 0;
  }

  /** kvm_vcpu_ioctl_x86_get_xcrs: XCR0 alone, in a zeroed struct. */
  private getXcrs(): Uint8Array {
    return encodeStruct(KVM_XCRS_STRUCT, {
      nr_xcrs: 1, flags: 0, xcrs: [{ xcr: XCR_XFEATURE_ENABLED_MASK, reserved: 0, value: guestFpuOf(this.vcpu).xcr0 }],
    });
  }

  /** kvm_vcpu_ioctl_x86_set_xcrs: the first XCR0 entry is set through __kvm_set_xcr; other XCRs are ignored. */
  private setXcrs(b: Uint8Array): number {
    const x = decodeStruct(KVM_XCRS_STRUCT, b);
    const n = x['nr_xcrs'] as number;
    if (n > KVM_MAX_XCRS || x['flags']) return -ERRNO.EINVAL;
    const xcrs = x['xcrs'] as StructValue[];
    for (let i = 0; i < n; i++) {
      const e = xcrs[i]!;
      if (e['xcr'] !== XCR_XFEATURE_ENABLED_MASK) continue;
      return kvmSetXcr(guestFpuOf(this.vcpu), this.vcpu.cpuid, XCR_XFEATURE_ENABLED_MASK, e['value'] as bigint) ? -ERRNO.EINVAL : 0;
    }
    return 0;
  }

  private translate(u: UserArg): number {
    const b = u.read(0, KVM_TRANSLATION_STRUCT.size);
    if (!b) return -ERRNO.EFAULT;
    const v = this.vcpu;
    const ops = v.ops;
    for (const r of [VCPU_REGS.EXREG_CR0, VCPU_REGS.EXREG_CR3, VCPU_REGS.EXREG_CR4]) ops.cacheReg(v, r);
    const la = decodeStruct(KVM_TRANSLATION_STRUCT, b)['linear_address'] as bigint;
    const gva = Number(la & 0xffffffffffffn);
    const t = gvaToGpa(v.kvm, gva, v.arch.cr0, v.arch.cr3, v.arch.cr4, v.arch.efer);
    const out = encodeStruct(KVM_TRANSLATION_STRUCT, {
      linear_address: la, physical_address: t ? BigInt(t.gpa) : 0xffffffffffffffffn, valid: t ? 1 : 0, writeable: 1, usermode: 0,
    });
    return u.write(0, out) ? 0 : -ERRNO.EFAULT;
  }

  private setGuestDebug(d: StructValue): number {
    const v = this.vcpu;
    // x86 does not reject undefined control bits (the machine's /dev/kvm accepts them too).
    let control = d['control'] as number;
    if (v.arch.exception.pending) return -ERRNO.EBUSY;
    if (control & KVM_GUESTDBG.INJECT_DB) kvmQueueException(v, VEC.DB);
    else if (control & KVM_GUESTDBG.INJECT_BP) kvmQueueException(v, VEC.BP);
    if (!(control & KVM_GUESTDBG.ENABLE)) control = 0;
    const rflags = kvmGetRflags(v);
    v.guestDebug = control;
    const debugreg = d['debugreg'] as bigint[];
    for (let i = 0; i < 4; i++) {
      v.effDb[i] = control & KVM_GUESTDBG.USE_HW_BP ? Number(BigInt.asUintN(64, debugreg[i]!)) : v.arch.db[i]!;
    }
    if (control & KVM_GUESTDBG.USE_HW_BP) v.guestDebugDr7 = Number(debugreg[7]! & 0xffffffffn);
    kvmUpdateDr7(v);
    kvmSetRflags(v, rflags);
    v.ops.updateExceptionBitmap(v);
    return 0;
  }

  private getNestedState(u: UserArg): number {
    const v = this.vcpu;
    const hdr = u.read(0, KVM_NESTED_STATE_STRUCT.size);
    if (!hdr) return -ERRNO.EFAULT;
    const get = v.ops.nestedGetState;
    if (!get) return -ERRNO.EINVAL;
    const userSize = decodeStruct(KVM_NESTED_STATE_STRUCT, hdr)['size'] as number;
    const r = get(v, userSize);
    if (typeof r === 'number') {
      if (r < 0) return r;
      // The state needs `r` bytes: tell userspace, as Linux does with put_user(size).
      return u.write(4, encodeStruct(KVM_NESTED_STATE_STRUCT, { size: r }).subarray(4, 8)) ? -ERRNO.E2BIG : -ERRNO.EFAULT;
    }
    if (r.length > userSize) {
      return u.write(4, encodeStruct(KVM_NESTED_STATE_STRUCT, { size: r.length }).subarray(4, 8)) ? -ERRNO.E2BIG : -ERRNO.EFAULT;
    }
    return u.write(0, r) ? 0 : -ERRNO.EFAULT;
  }

  private setNestedState(u: UserArg): number {
    const v = this.vcpu;
    const hdr = u.read(0, KVM_NESTED_STATE_STRUCT.size);
    if (!hdr) return -ERRNO.EFAULT;
    const set = v.ops.nestedSetState;
    if (!set) return -ERRNO.EINVAL;
    const h = decodeStruct(KVM_NESTED_STATE_STRUCT, hdr);
    const size = h['size'] as number;
    const flags = h['flags'] as number;
    if (size < KVM_STATE_NESTED.HEADER_SIZE) return -ERRNO.EINVAL;
    const valid = KVM_STATE_NESTED.RUN_PENDING | KVM_STATE_NESTED.GUEST_MODE | KVM_STATE_NESTED.EVMCS |
      KVM_STATE_NESTED.MTF_PENDING | KVM_STATE_NESTED.GIF_SET;
    if (flags & ~valid) return -ERRNO.EINVAL;
    if (flags & KVM_STATE_NESTED.RUN_PENDING && !(flags & KVM_STATE_NESTED.GUEST_MODE)) return -ERRNO.EINVAL;
    const all = u.read(0, size);
    if (!all) return -ERRNO.EFAULT;
    return set(v, all);
  }

  release(): void {
    this.vcpu.kvm.kvmPutKvm();
  }
}
