/**
 * The typed façade over the raw ioctls, as rust-vmm's kvm-ioctls: one type per fd level
 * (Kvm, VmFd, VcpuFd). Errors become thrown KvmError here, and only here.
 */
import { PAGE_SIZE } from '@kvmts/x86';
import type { Process } from '../host/process.js';
import { MAP, PROT } from '../host/process.js';
import { KVM } from '../uapi/ioctls.js';
import { KVM_EXIT, KVM_EXIT_IO, KVM_LIMITS } from '../uapi/constants.js';
import {
  KVM_CPUID2_STRUCT, KVM_CPUID_ENTRY2_STRUCT, KVM_DIRTY_LOG_STRUCT, KVM_ENABLE_CAP_STRUCT, KVM_GUEST_DEBUG_STRUCT,
  KVM_INTERRUPT_STRUCT, KVM_MP_STATE_STRUCT, KVM_MSRS_STRUCT, KVM_MSR_ENTRY_STRUCT, KVM_MSR_LIST_STRUCT,
  KVM_NESTED_STATE_STRUCT, KVM_REGS_STRUCT, KVM_SREGS_STRUCT, KVM_TRANSLATION_STRUCT, KVM_USERSPACE_MEMORY_REGION_STRUCT,
  KVM_VCPU_EVENTS_STRUCT, KVM_FPU_STRUCT, KVM_XCRS_STRUCT, KVM_XSAVE_STRUCT, decodeStruct, encodeStruct, type StructValue,
} from '../uapi/structs.js';
import type { KvmSegment, KvmDtable } from '../x86/kvm-types.js';
import type { VendorInspection } from '../x86/kvm-x86-ops.js';
import { KvmRun } from '../x86/kvm-run.js';
import type { CpuidEntry } from '../x86/cpuid.js';
import type { VmFile } from '../kvm/vm-ioctl.js';
import type { VcpuFile } from '../kvm/vcpu-ioctl.js';
import { check } from './kvm-error.js';
import { GuestMemory } from './guest-memory.js';
import { StatsFd } from './stats-fd.js';
import {
  KVM_REGS_NAMES, gpa as toGpa, hva as toHva,
  type KvmFpu, type KvmRegs, type KvmSregs, type KvmVcpuEvents, type KvmXcr, type UserspaceMemoryRegion, type VcpuExit,
} from './types.js';

const SEGS = ['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'tr', 'ldt'] as const;

function segIn(v: StructValue): KvmSegment {
  const n = (k: string): number => v[k] as number;
  return {
    base: Number(BigInt.asIntN(64, v['base'] as bigint)), limit: n('limit'), selector: n('selector'), type: n('type'),
    present: n('present'), dpl: n('dpl'), db: n('db'), s: n('s'), l: n('l'), g: n('g'), avl: n('avl'), unusable: n('unusable'),
  };
}

function segOut(s: KvmSegment): StructValue {
  return { ...s, base: BigInt.asUintN(64, BigInt(s.base)), padding: 0 };
}

function dtIn(v: StructValue): KvmDtable {
  return { base: Number(BigInt.asIntN(64, v['base'] as bigint)), limit: v['limit'] as number };
}

/** /dev/kvm. */
export class Kvm {
  readonly proc: Process;
  readonly fd: number;

  private constructor(proc: Process, fd: number) {
    this.proc = proc;
    this.fd = fd;
  }

  static open(proc: Process): Kvm {
    return new Kvm(proc, check('open(/dev/kvm)', proc.open('/dev/kvm')));
  }

  private ioctl(name: keyof typeof KVM, arg?: number | Uint8Array): number {
    return check(name, this.proc.ioctl(this.fd, KVM[name], arg));
  }

  apiVersion(): number { return this.ioctl('KVM_GET_API_VERSION'); }
  checkExtension(cap: number): number { return this.ioctl('KVM_CHECK_EXTENSION', cap); }
  vcpuMmapSize(): number { return this.ioctl('KVM_GET_VCPU_MMAP_SIZE'); }

  getSupportedCpuid(max: number = KVM_LIMITS.MAX_CPUID_ENTRIES): CpuidEntry[] {
    const buf = encodeStruct(KVM_CPUID2_STRUCT, { nent: max }, new Uint8Array(KVM_CPUID2_STRUCT.size + max * KVM_CPUID_ENTRY2_STRUCT.size));
    this.ioctl('KVM_GET_SUPPORTED_CPUID', buf);
    return decodeCpuid(buf);
  }

  getMsrIndexList(): number[] {
    const probe = new Uint8Array(4);
    const r = this.proc.ioctl(this.fd, KVM.KVM_GET_MSR_INDEX_LIST, probe);
    const n = new DataView(probe.buffer).getUint32(0, true);
    if (r < 0 && n === 0) check('KVM_GET_MSR_INDEX_LIST', r);
    const buf = encodeStruct(KVM_MSR_LIST_STRUCT, { nmsrs: n }, new Uint8Array(4 + 4 * n));
    this.ioctl('KVM_GET_MSR_INDEX_LIST', buf);
    const dv = new DataView(buf.buffer);
    return Array.from({ length: n }, (_, i) => dv.getUint32(4 + 4 * i, true));
  }

  /** KVM_CREATE_VM; the VM's vCPUs are mapped with the size KVM_GET_VCPU_MMAP_SIZE gives (as kvm-ioctls keeps run_size). */
  createVm(type = 0): VmFd {
    return new VmFd(this.proc, this.ioctl('KVM_CREATE_VM', type), this.vcpuMmapSize());
  }

  close(): void {
    check('close', this.proc.close(this.fd));
  }
}

function decodeCpuid(buf: Uint8Array): CpuidEntry[] {
  const n = decodeStruct(KVM_CPUID2_STRUCT, buf)['nent'] as number;
  return Array.from({ length: n }, (_, i) => {
    const e = decodeStruct(KVM_CPUID_ENTRY2_STRUCT, buf, KVM_CPUID2_STRUCT.size + i * KVM_CPUID_ENTRY2_STRUCT.size);
    return { function: e['function'] as number, index: e['index'] as number, flags: e['flags'] as number,
      eax: e['eax'] as number, ebx: e['ebx'] as number, ecx: e['ecx'] as number, edx: e['edx'] as number };
  });
}

/** A VM fd. */
export class VmFd {
  readonly proc: Process;
  readonly fd: number;
  /** Guest RAM the VMM allocated through this façade (allocGuestMemory). */
  readonly memory: GuestMemory;
  /** Bytes of a vCPU fd's mapping: kvm_run, the PIO data page, the coalesced MMIO ring. */
  readonly vcpuMmapSize: number;

  constructor(proc: Process, fd: number, vcpuMmapSize = KVM_LIMITS.VCPU_MMAP_PAGES * PAGE_SIZE) {
    this.proc = proc;
    this.fd = fd;
    this.memory = new GuestMemory(proc);
    this.vcpuMmapSize = vcpuMmapSize;
  }

  private ioctl(name: keyof typeof KVM, arg?: number | Uint8Array): number {
    return check(name, this.proc.ioctl(this.fd, KVM[name], arg));
  }

  setUserMemoryRegion(r: UserspaceMemoryRegion): void {
    this.ioctl('KVM_SET_USER_MEMORY_REGION', encodeStruct(KVM_USERSPACE_MEMORY_REGION_STRUCT, {
      slot: r.slot, flags: r.flags, guest_phys_addr: r.guestPhysAddr, memory_size: r.memorySize, userspace_addr: r.userspaceAddr,
    }));
  }

  /** mmap anonymous memory and register it as slot `slot` at `guestPhysAddr` (the usual VMM sequence). */
  allocGuestMemory(slot: number, guestPhysAddr: number, size: number, flags = 0): number {
    const hva = check('mmap', this.proc.mmap(size, PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.ANONYMOUS | 0x4000 /* MAP_NORESERVE */));
    this.setUserMemoryRegion({ slot, flags, guestPhysAddr, memorySize: size, userspaceAddr: hva });
    this.memory.addRegion({ gpa: toGpa(guestPhysAddr), size, hva: toHva(hva) });
    return hva;
  }

  createVcpu(id: number): VcpuFd {
    const fd = this.ioctl('KVM_CREATE_VCPU', id);
    const addr = check('mmap(vcpu)', this.proc.mmap(this.vcpuMmapSize, PROT.READ | PROT.WRITE, MAP.SHARED, fd, 0));
    const pages = this.proc.mappedBytes(addr, this.vcpuMmapSize);
    if (!pages) throw new Error('vcpu mmap is not a shared mapping');
    return new VcpuFd(this.proc, fd, pages);
  }

  /** KVM_GET_DIRTY_LOG: one bit per page of the slot, cleared by the call. */
  getDirtyLog(slot: number, memorySize: number): Uint8Array {
    const bytes = Math.ceil(memorySize / PAGE_SIZE / 64) * 8;
    const hva = check('mmap', this.proc.mmap(Math.max(bytes, 1), PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.ANONYMOUS));
    try {
      this.ioctl('KVM_GET_DIRTY_LOG', encodeStruct(KVM_DIRTY_LOG_STRUCT, { slot, dirty_bitmap: hva }));
      return this.proc.readUser(hva, bytes)!;
    } finally {
      this.proc.munmap(hva, Math.max(bytes, 1));
    }
  }

  setTssAddr(addr: number): void { this.ioctl('KVM_SET_TSS_ADDR', addr); }

  setIdentityMapAddr(addr: number): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(addr), true);
    this.ioctl('KVM_SET_IDENTITY_MAP_ADDR', b);
  }

  checkExtension(cap: number): number { return this.ioctl('KVM_CHECK_EXTENSION', cap); }

  enableCap(cap: number, args: readonly bigint[] = []): void {
    this.ioctl('KVM_ENABLE_CAP', encodeStruct(KVM_ENABLE_CAP_STRUCT, { cap, flags: 0, args: [...args] }));
  }

  /** KVM_GET_STATS_FD: the VM's binary stats (its own counters and the sum of its vCPUs'). */
  getStatsFd(): StatsFd {
    return new StatsFd(this.proc, this.ioctl('KVM_GET_STATS_FD'));
  }

  private file(): VmFile {
    return this.proc.file(this.fd) as VmFile;
  }

  /** For the dashboard: memslots, TDP pages mapped, dirty pages and stats. */
  snapshot() {
    return this.file().vm.snapshot();
  }

  stats(): Record<string, number> {
    return this.file().vm.stats();
  }

  close(): void {
    check('close', this.proc.close(this.fd));
  }
}

/** A vCPU fd, with its kvm_run page mapped. */
export class VcpuFd {
  readonly proc: Process;
  readonly fd: number;
  /** kvm_run, as the VMM's mmap shows it. */
  readonly runData: KvmRun;
  private readonly pages: Uint8Array;

  constructor(proc: Process, fd: number, pages: Uint8Array) {
    this.proc = proc;
    this.fd = fd;
    this.pages = pages;
    this.runData = new KvmRun(pages.subarray(0, PAGE_SIZE));
  }

  private ioctl(name: keyof typeof KVM, arg?: number | Uint8Array): number {
    return check(name, this.proc.ioctl(this.fd, KVM[name], arg));
  }

  private get(name: keyof typeof KVM, size: number): Uint8Array {
    const b = new Uint8Array(size);
    this.ioctl(name, b);
    return b;
  }

  /** KVM_RUN, decoded. -EINTR comes back as Intr; other errors throw. */
  run(): VcpuExit {
    const r = this.proc.ioctl(this.fd, KVM.KVM_RUN, 0);
    if (r === -4) return { kind: 'Intr' };
    check('KVM_RUN', r);
    const run = this.runData;
    switch (run.exitReason) {
      case KVM_EXIT.IO: {
        const size = run.ioSize;
        const count = run.ioCount;
        const at = run.ioDataOffset;
        const data = this.ioData(at, size * count);
        return run.ioDirection === KVM_EXIT_IO.OUT
          ? { kind: 'IoOut', port: run.ioPort, size, count, data }
          : { kind: 'IoIn', port: run.ioPort, size, count, data };
      }
      case KVM_EXIT.MMIO: {
        const m = run.mmio.get();
        const data = run.mmio.data().subarray(0, m.len);
        return m.isWrite ? { kind: 'MmioWrite', addr: m.physAddr, data } : { kind: 'MmioRead', addr: m.physAddr, data };
      }
      case KVM_EXIT.HLT: return { kind: 'Hlt' };
      case KVM_EXIT.SHUTDOWN: return { kind: 'Shutdown' };
      case KVM_EXIT.FAIL_ENTRY: {
        const f = run.failEntry.get();
        return { kind: 'FailEntry', reason: f.hardwareEntryFailureReason, cpu: f.cpu };
      }
      case KVM_EXIT.INTERNAL_ERROR: return { kind: 'InternalError', ...run.internal.get() };
      case KVM_EXIT.DEBUG: return { kind: 'Debug', ...run.debug.get() };
      case KVM_EXIT.IRQ_WINDOW_OPEN: return { kind: 'IrqWindowOpen' };
      case KVM_EXIT.INTR: return { kind: 'Intr' };
      case KVM_EXIT.SYSTEM_EVENT: return { kind: 'SystemEvent', ...run.systemEvent.get() };
      case KVM_EXIT.X86_RDMSR: case KVM_EXIT.X86_WRMSR: {
        const m = run.msr.get();
        return { kind: run.exitReason === KVM_EXIT.X86_RDMSR ? 'X86Rdmsr' : 'X86Wrmsr', index: m.index, data: m.data };
      }
      default: return { kind: 'Unsupported', reason: run.exitReason };
    }
  }

  /** kvm_run.immediate_exit: the next KVM_RUN only completes pending I/O and returns -EINTR. */
  /** The io exit's data bytes in the mapping: one view, made again only when they move or grow (PIO exits repeat them). */
  private ioView: Uint8Array | null = null;
  private ioAt = -1;
  private ioData(at: number, len: number): Uint8Array {
    if (this.ioView === null || at !== this.ioAt || len !== this.ioView.length) {
      this.ioView = this.pages.subarray(at, at + len);
      this.ioAt = at;
    }
    return this.ioView;
  }

  get immediateExit(): boolean { return this.runData.immediateExit !== 0; }
  set immediateExit(v: boolean) { this.runData.immediateExit = v ? 1 : 0; }
  /** kvm_run.request_interrupt_window: the VMM's, so it stays in this mapping across runs. */
  get requestInterruptWindow(): boolean { return this.runData.requestInterruptWindow !== 0; }
  set requestInterruptWindow(v: boolean) { this.runData.requestInterruptWindow = v ? 1 : 0; }
  get readyForInterruptInjection(): boolean { return this.runData.readyForInterruptInjection !== 0; }
  get ifFlag(): boolean { return this.runData.ifFlag !== 0; }

  getRegs(): KvmRegs {
    const d = decodeStruct(KVM_REGS_STRUCT, this.get('KVM_GET_REGS', KVM_REGS_STRUCT.size));
    return Object.fromEntries(KVM_REGS_NAMES.map((n) => [n, d[n] as bigint])) as KvmRegs;
  }

  setRegs(regs: KvmRegs): void {
    this.ioctl('KVM_SET_REGS', encodeStruct(KVM_REGS_STRUCT, { ...regs }));
  }

  getSregs(): KvmSregs {
    const d = decodeStruct(KVM_SREGS_STRUCT, this.get('KVM_GET_SREGS', KVM_SREGS_STRUCT.size));
    const s = Object.fromEntries(SEGS.map((k) => [k, segIn(d[k] as StructValue)])) as Record<(typeof SEGS)[number], KvmSegment>;
    const b = (k: string): bigint => d[k] as bigint;
    return {
      ...s, gdt: dtIn(d['gdt'] as StructValue), idt: dtIn(d['idt'] as StructValue),
      cr0: b('cr0'), cr2: b('cr2'), cr3: b('cr3'), cr4: b('cr4'), cr8: b('cr8'), efer: b('efer'), apicBase: b('apic_base'),
      interruptBitmap: d['interrupt_bitmap'] as [bigint, bigint, bigint, bigint],
    };
  }

  setSregs(s: KvmSregs): void {
    const v: StructValue = Object.fromEntries(SEGS.map((k) => [k, segOut(s[k])]));
    v['gdt'] = { base: BigInt.asUintN(64, BigInt(s.gdt.base)), limit: s.gdt.limit, padding: [0, 0, 0] };
    v['idt'] = { base: BigInt.asUintN(64, BigInt(s.idt.base)), limit: s.idt.limit, padding: [0, 0, 0] };
    Object.assign(v, { cr0: s.cr0, cr2: s.cr2, cr3: s.cr3, cr4: s.cr4, cr8: s.cr8, efer: s.efer, apic_base: s.apicBase, interrupt_bitmap: s.interruptBitmap });
    this.ioctl('KVM_SET_SREGS', encodeStruct(KVM_SREGS_STRUCT, v));
  }

  /** KVM_GET_MSRS: the values of the MSRs read before the first one KVM refused. */
  getMsrs(indices: readonly number[]): Map<number, bigint> {
    const E = KVM_MSR_ENTRY_STRUCT.size;
    const buf = encodeStruct(KVM_MSRS_STRUCT, { nmsrs: indices.length }, new Uint8Array(8 + E * indices.length));
    indices.forEach((index, i) => encodeStruct(KVM_MSR_ENTRY_STRUCT, { index }, buf, 8 + i * E));
    const n = this.ioctl('KVM_GET_MSRS', buf);
    const out = new Map<number, bigint>();
    for (let i = 0; i < n; i++) out.set(indices[i]!, decodeStruct(KVM_MSR_ENTRY_STRUCT, buf, 8 + i * E)['data'] as bigint);
    return out;
  }

  /** KVM_SET_MSRS: how many were written (stops at the first refused). */
  setMsrs(entries: readonly { index: number; data: bigint }[]): number {
    const E = KVM_MSR_ENTRY_STRUCT.size;
    const buf = encodeStruct(KVM_MSRS_STRUCT, { nmsrs: entries.length }, new Uint8Array(8 + E * entries.length));
    entries.forEach((e, i) => encodeStruct(KVM_MSR_ENTRY_STRUCT, { index: e.index, data: e.data }, buf, 8 + i * E));
    return this.ioctl('KVM_SET_MSRS', buf);
  }

  setCpuid2(entries: readonly CpuidEntry[]): void {
    const E = KVM_CPUID_ENTRY2_STRUCT.size;
    const buf = encodeStruct(KVM_CPUID2_STRUCT, { nent: entries.length }, new Uint8Array(8 + E * entries.length));
    entries.forEach((e, i) => encodeStruct(KVM_CPUID_ENTRY2_STRUCT, { ...e }, buf, 8 + i * E));
    this.ioctl('KVM_SET_CPUID2', buf);
  }

  getCpuid2(max: number = KVM_LIMITS.MAX_CPUID_ENTRIES): CpuidEntry[] {
    const buf = encodeStruct(KVM_CPUID2_STRUCT, { nent: max }, new Uint8Array(8 + max * KVM_CPUID_ENTRY2_STRUCT.size));
    this.ioctl('KVM_GET_CPUID2', buf);
    return decodeCpuid(buf);
  }

  getVcpuEvents(): KvmVcpuEvents {
    const d = decodeStruct(KVM_VCPU_EVENTS_STRUCT, this.get('KVM_GET_VCPU_EVENTS', KVM_VCPU_EVENTS_STRUCT.size));
    const n = (k: string): number => d[k] as number;
    return {
      exception: { injected: n('exception_injected'), nr: n('exception_nr'), hasErrorCode: n('exception_has_error_code'), pending: n('exception_pending'), errorCode: n('exception_error_code') },
      interrupt: { injected: n('interrupt_injected'), nr: n('interrupt_nr'), soft: n('interrupt_soft'), shadow: n('interrupt_shadow') },
      nmi: { injected: n('nmi_injected'), pending: n('nmi_pending'), masked: n('nmi_masked') },
      sipiVector: n('sipi_vector'), flags: n('flags'),
    };
  }

  setVcpuEvents(e: KvmVcpuEvents): void {
    this.ioctl('KVM_SET_VCPU_EVENTS', encodeStruct(KVM_VCPU_EVENTS_STRUCT, {
      exception_injected: e.exception.injected, exception_nr: e.exception.nr, exception_has_error_code: e.exception.hasErrorCode,
      exception_pending: e.exception.pending, exception_error_code: e.exception.errorCode,
      interrupt_injected: e.interrupt.injected, interrupt_nr: e.interrupt.nr, interrupt_soft: e.interrupt.soft, interrupt_shadow: e.interrupt.shadow,
      nmi_injected: e.nmi.injected, nmi_pending: e.nmi.pending, nmi_masked: e.nmi.masked, sipi_vector: e.sipiVector, flags: e.flags,
    }));
  }

  getMpState(): number {
    return decodeStruct(KVM_MP_STATE_STRUCT, this.get('KVM_GET_MP_STATE', 4))['mp_state'] as number;
  }

  setMpState(mpState: number): void {
    this.ioctl('KVM_SET_MP_STATE', encodeStruct(KVM_MP_STATE_STRUCT, { mp_state: mpState }));
  }

  interrupt(irq: number): void {
    this.ioctl('KVM_INTERRUPT', encodeStruct(KVM_INTERRUPT_STRUCT, { irq }));
  }

  nmi(): void { this.ioctl('KVM_NMI', 0); }

  translate(gva: bigint): { physicalAddress: bigint; valid: boolean; writeable: boolean; usermode: boolean } {
    const b = encodeStruct(KVM_TRANSLATION_STRUCT, { linear_address: gva });
    this.ioctl('KVM_TRANSLATE', b);
    const d = decodeStruct(KVM_TRANSLATION_STRUCT, b);
    return { physicalAddress: d['physical_address'] as bigint, valid: d['valid'] === 1, writeable: d['writeable'] === 1, usermode: d['usermode'] === 1 };
  }

  setGuestDebug(control: number, debugreg: readonly bigint[] = []): void {
    this.ioctl('KVM_SET_GUEST_DEBUG', encodeStruct(KVM_GUEST_DEBUG_STRUCT, { control, debugreg: [...debugreg] }));
  }

  /** KVM_GET_NESTED_STATE: the whole kvm_nested_state (header and data). */
  getNestedState(maxSize = 0x4000 + KVM_NESTED_STATE_STRUCT.size): Uint8Array {
    const buf = encodeStruct(KVM_NESTED_STATE_STRUCT, { size: maxSize }, new Uint8Array(maxSize));
    this.ioctl('KVM_GET_NESTED_STATE', buf);
    const size = decodeStruct(KVM_NESTED_STATE_STRUCT, buf)['size'] as number;
    return buf.slice(0, Math.max(size, KVM_NESTED_STATE_STRUCT.size));
  }

  setNestedState(state: Uint8Array): void {
    this.ioctl('KVM_SET_NESTED_STATE', state);
  }

  /** KVM_GET_FPU: the legacy x87/SSE fields (Linux reports mxcsr as 0 here: KVM_GET_XSAVE has it). */
  getFpu(): KvmFpu {
    const d = decodeStruct(KVM_FPU_STRUCT, this.get('KVM_GET_FPU', KVM_FPU_STRUCT.size));
    const n = (k: string): number => d[k] as number;
    return {
      fpr: Uint8Array.from(d['fpr'] as number[]), fcw: n('fcw'), fsw: n('fsw'), ftwx: n('ftwx'), lastOpcode: n('last_opcode'),
      lastIp: d['last_ip'] as bigint, lastDp: d['last_dp'] as bigint, xmm: Uint8Array.from(d['xmm'] as number[]), mxcsr: n('mxcsr'),
    };
  }

  /** KVM_SET_FPU (Linux ignores mxcsr here: KVM_SET_XSAVE sets it). */
  setFpu(f: KvmFpu): void {
    this.ioctl('KVM_SET_FPU', encodeStruct(KVM_FPU_STRUCT, {
      fpr: [...f.fpr], fcw: f.fcw, fsw: f.fsw, ftwx: f.ftwx, last_opcode: f.lastOpcode, last_ip: f.lastIp, last_dp: f.lastDp,
      xmm: [...f.xmm], mxcsr: f.mxcsr,
    }));
  }

  /** KVM_GET_XSAVE: the 4096-byte XSAVE image (legacy area at 0, XSTATE_BV at 512). */
  getXsave(): Uint8Array {
    return this.get('KVM_GET_XSAVE', KVM_XSAVE_STRUCT.size);
  }

  setXsave(image: Uint8Array): void {
    if (image.length !== KVM_XSAVE_STRUCT.size) throw new RangeError(`kvm_xsave is ${KVM_XSAVE_STRUCT.size} bytes, not ${image.length}`);
    this.ioctl('KVM_SET_XSAVE', image);
  }

  /** KVM_GET_XCRS: the XCRs KVM reports (XCR0). */
  getXcrs(): KvmXcr[] {
    const d = decodeStruct(KVM_XCRS_STRUCT, this.get('KVM_GET_XCRS', KVM_XCRS_STRUCT.size));
    return (d['xcrs'] as StructValue[]).slice(0, d['nr_xcrs'] as number).map((x) => ({ xcr: x['xcr'] as number, value: x['value'] as bigint }));
  }

  setXcrs(xcrs: readonly KvmXcr[]): void {
    this.ioctl('KVM_SET_XCRS', encodeStruct(KVM_XCRS_STRUCT, {
      nr_xcrs: xcrs.length, flags: 0, xcrs: xcrs.map((x) => ({ xcr: x.xcr, reserved: 0, value: x.value })),
    }));
  }

  /** KVM_GET_STATS_FD: this vCPU's binary stats, exits by reason included. */
  getStatsFd(): StatsFd {
    return new StatsFd(this.proc, this.ioctl('KVM_GET_STATS_FD'));
  }

  private file(): VcpuFile {
    return this.proc.file(this.fd) as VcpuFile;
  }

  /** Per-vCPU stats (exits, io_exits, exit_<REASON> …). */
  stats(): Readonly<Record<string, number>> {
    return this.file().vcpu.stats();
  }

  /** The vendor's VMCS/VMCB view (ops.inspect). */
  inspect(): VendorInspection {
    const v = this.file().vcpu;
    return v.ops.inspect(v);
  }

  close(): void {
    check('close', this.proc.close(this.fd));
  }
}
