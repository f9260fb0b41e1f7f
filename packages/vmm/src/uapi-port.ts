/**
 * The VMM's port over the core's /dev/kvm, through the same calls a Linux VMM makes: open,
 * ioctl with Linux's request numbers and struct bytes, and mmap (anonymous memory for the
 * memslot, the vCPU fd for kvm_run and the PIO data page). Each VM gets its own VMM process.
 */
import {
  decodeStruct, encodeStruct, ERRNO, Host, KVM, KVM_EXIT, KVM_EXIT_IO, KVM_INTERRUPT_STRUCT, KVM_REGS_STRUCT, KVM_SREGS_STRUCT,
  KVM_TRANSLATION_STRUCT, KVM_USERSPACE_MEMORY_REGION_STRUCT, KvmRun, MAP, PROT, Vcpu, Vm,
  type KvmSegment, type Process, type StructValue, type VendorInspection,
} from '@kvmts/core';
import {
  KVM_REGS_FIELDS, type GuestMemory, type HostInfo, type HostPort, type KvmRegs, type KvmSregs, type MemslotInfo, type MigratedVm, type MigrateOptions,
  type VcpuExit, type VcpuPort, type VmPort,
} from './kvm-port.js';
import { migrateFds } from './uapi-migrate.js';

const SEGMENTS = ['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'tr', 'ldt'] as const;

function toSegment(v: StructValue): KvmSegment {
  const n = (k: string) => Number(v[k]);
  // Bases are 64-bit; the core keeps them as signed canonical numbers.
  return {
    base: Number(BigInt.asIntN(64, v['base'] as bigint)), limit: n('limit'), selector: n('selector'), type: n('type'),
    present: n('present'), dpl: n('dpl'), db: n('db'), s: n('s'), l: n('l'), g: n('g'), avl: n('avl'), unusable: n('unusable'),
  };
}

function fromSegment(s: KvmSegment): StructValue {
  return { ...s, base: BigInt.asUintN(64, BigInt(s.base)) };
}

function decodeSregs(b: Uint8Array): KvmSregs {
  const v = decodeStruct(KVM_SREGS_STRUCT, b);
  const dt = (k: string) => { const d = v[k] as StructValue; return { base: Number(BigInt.asIntN(64, d['base'] as bigint)), limit: Number(d['limit']) }; };
  const u = (k: string) => Number(v[k] as bigint);
  const segs = Object.fromEntries(SEGMENTS.map((k) => [k, toSegment(v[k] as StructValue)])) as Record<(typeof SEGMENTS)[number], KvmSegment>;
  return { ...segs, gdt: dt('gdt'), idt: dt('idt'), cr0: u('cr0'), cr2: u('cr2'), cr3: u('cr3'), cr4: u('cr4'), cr8: u('cr8'), efer: u('efer'), apicBase: v['apic_base'] as bigint };
}

function encodeSregs(s: KvmSregs): Uint8Array {
  const segs = Object.fromEntries(SEGMENTS.map((k) => [k, fromSegment(s[k])]));
  const dt = (d: { base: number; limit: number }) => ({ base: BigInt.asUintN(64, BigInt(d.base)), limit: d.limit });
  const u = (n: number) => BigInt.asUintN(64, BigInt(n));
  return encodeStruct(KVM_SREGS_STRUCT, {
    ...segs, gdt: dt(s.gdt), idt: dt(s.idt), cr0: u(s.cr0), cr2: u(s.cr2), cr3: u(s.cr3), cr4: u(s.cr4), cr8: u(s.cr8), efer: u(s.efer), apic_base: s.apicBase,
  });
}

class UapiVcpu implements VcpuPort {
  private readonly run_: KvmRun;
  /** The vCPU fd's mmap: kvm_run, then the PIO data page. */
  readonly pages: Uint8Array;
  private readonly regsBuf = new Uint8Array(KVM_REGS_STRUCT.size);
  private readonly sregsBuf = new Uint8Array(KVM_SREGS_STRUCT.size);
  readonly proc: Process;
  readonly fd: number;

  constructor(proc: Process, fd: number, pages: Uint8Array) {
    this.proc = proc;
    this.fd = fd;
    this.pages = pages;
    this.run_ = new KvmRun(pages);
  }

  private ioctl(request: number, arg?: number | Uint8Array): number {
    const r = this.proc.ioctl(this.fd, request, arg);
    if (r < 0 && request !== KVM.KVM_RUN) throw new Error(`vCPU ioctl 0x${request.toString(16)} failed: errno ${-r}`);
    return r;
  }

  getRegs(): KvmRegs {
    this.ioctl(KVM.KVM_GET_REGS, this.regsBuf);
    const v = decodeStruct(KVM_REGS_STRUCT, this.regsBuf);
    return Object.fromEntries(KVM_REGS_FIELDS.map((n) => [n, v[n] as bigint])) as KvmRegs;
  }

  setRegs(regs: KvmRegs): void {
    this.ioctl(KVM.KVM_SET_REGS, encodeStruct(KVM_REGS_STRUCT, { ...regs }));
  }

  getSregs(): KvmSregs {
    this.ioctl(KVM.KVM_GET_SREGS, this.sregsBuf);
    return decodeSregs(this.sregsBuf);
  }

  setSregs(sregs: KvmSregs): void {
    this.ioctl(KVM.KVM_SET_SREGS, encodeSregs(sregs));
  }

  run(): VcpuExit {
    const r = this.proc.ioctl(this.fd, KVM.KVM_RUN);
    if (r === -ERRNO.EINTR) return { kind: 'intr' };
    if (r < 0) return { kind: 'errno', errno: -r };
    const run = this.run_;
    switch (run.exitReason) {
      case KVM_EXIT.IO: {
        const io = run.io.get();
        return {
          kind: 'io', dir: io.direction === KVM_EXIT_IO.OUT ? 'out' : 'in', port: io.port, size: io.size, count: io.count,
          data: this.pages.subarray(io.dataOffset, io.dataOffset + io.size * io.count),
        };
      }
      case KVM_EXIT.MMIO: {
        const m = run.mmio.get();
        return { kind: 'mmio', isWrite: m.isWrite !== 0, addr: m.physAddr, len: m.len, data: run.mmio.data().subarray(0, m.len) };
      }
      case KVM_EXIT.HLT: return { kind: 'hlt' };
      case KVM_EXIT.SHUTDOWN: return { kind: 'shutdown' };
      case KVM_EXIT.FAIL_ENTRY: {
        const f = run.failEntry.get();
        return { kind: 'fail_entry', reason: f.hardwareEntryFailureReason, cpu: f.cpu };
      }
      case KVM_EXIT.INTERNAL_ERROR: return { kind: 'internal_error', suberror: run.internal.get().suberror };
      case KVM_EXIT.IRQ_WINDOW_OPEN: return { kind: 'irq_window_open' };
      case KVM_EXIT.INTR: return { kind: 'intr' };
      default: return { kind: 'unknown', reason: run.exitReason };
    }
  }

  interrupt(vector: number): number {
    return this.proc.ioctl(this.fd, KVM.KVM_INTERRUPT, encodeStruct(KVM_INTERRUPT_STRUCT, { irq: vector }));
  }

  get readyForInterruptInjection(): boolean {
    return this.run_.readyForInterruptInjection !== 0;
  }

  get ifFlag(): boolean {
    return this.run_.ifFlag !== 0;
  }

  get requestInterruptWindow(): boolean {
    return this.run_.requestInterruptWindow !== 0;
  }

  set requestInterruptWindow(v: boolean) {
    this.run_.requestInterruptWindow = v ? 1 : 0;
  }

  get immediateExit(): boolean {
    return this.run_.immediateExit !== 0;
  }

  set immediateExit(v: boolean) {
    this.run_.immediateExit = v ? 1 : 0;
  }

  translate(gva: bigint): number | null {
    const b = encodeStruct(KVM_TRANSLATION_STRUCT, { linear_address: gva });
    if (this.proc.ioctl(this.fd, KVM.KVM_TRANSLATE, b) < 0) return null;
    const t = decodeStruct(KVM_TRANSLATION_STRUCT, b);
    return t['valid'] ? Number(t['physical_address'] as bigint) : null;
  }

  /** The kernel's struct kvm_vcpu behind the fd, as the binary stats and debugfs would show it. */
  private kernelVcpu(): Vcpu | null {
    const f = this.proc.file(this.fd);
    return f && 'vcpu' in f && f.vcpu instanceof Vcpu ? f.vcpu : null;
  }

  isGuestMode(): boolean {
    return this.kernelVcpu()?.arch.guestMode ?? false;
  }

  stats(): Readonly<Record<string, number>> {
    return this.kernelVcpu()?.stat ?? {};
  }

  inspect(): VendorInspection | null {
    const v = this.kernelVcpu();
    return v ? v.ops.inspect(v) : null;
  }
}

/** mmap of a vCPU fd (kvm_run and the PIO page), as the VMM's port wraps it. */
function mapVcpu(proc: Process, kvmFd: number, fd: number): UapiVcpu | number {
  const size = proc.ioctl(kvmFd, KVM.KVM_GET_VCPU_MMAP_SIZE);
  if (size < 0) return size;
  const hva = proc.mmap(size, PROT.READ | PROT.WRITE, MAP.SHARED, fd, 0);
  if (hva < 0) return hva;
  const pages = proc.mappedBytes(hva, size);
  return pages ? new UapiVcpu(proc, fd, pages) : -ERRNO.EFAULT;
}

function memoryAt(proc: Process, hva: number, size: number): GuestMemory {
  return {
    hva, size,
    write: (offset, bytes) => { proc.writeUser(hva + offset, bytes); },
    read: (offset, len) => proc.readUser(hva + offset, len) ?? new Uint8Array(len),
  };
}

class UapiVm implements VmPort {
  private readonly slots: MemslotInfo[];
  private readonly proc: Process;
  private readonly kvmFd: number;
  private readonly vmFd: number;
  private readonly host: Host;

  constructor(host: Host, proc: Process, kvmFd: number, vmFd: number, slots: MemslotInfo[] = []) {
    this.host = host;
    this.proc = proc;
    this.kvmFd = kvmFd;
    this.vmFd = vmFd;
    this.slots = slots;
  }

  addMemslot(slot: number, gpa: number, size: number): GuestMemory | number {
    const hva = this.proc.mmap(size, PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.ANONYMOUS);
    if (hva < 0) return hva;
    const region = encodeStruct(KVM_USERSPACE_MEMORY_REGION_STRUCT, {
      slot, flags: 0, guest_phys_addr: BigInt(gpa), memory_size: BigInt(size), userspace_addr: BigInt(hva),
    });
    const r = this.proc.ioctl(this.vmFd, KVM.KVM_SET_USER_MEMORY_REGION, region);
    if (r < 0) return r;
    this.slots.push({ slot, gpa, size, flags: 0, hva });
    return memoryAt(this.proc, hva, size);
  }

  createVcpu(id: number): VcpuPort | number {
    const fd = this.proc.ioctl(this.vmFd, KVM.KVM_CREATE_VCPU, id);
    if (fd < 0) return fd;
    return mapVcpu(this.proc, this.kvmFd, fd);
  }

  migrate(vcpus: readonly VcpuPort[], target: HostPort, opts: MigrateOptions = {}): MigratedVm | string {
    if (!(target instanceof UapiHost)) return 'migration needs a /dev/kvm host on both ends';
    if (!vcpus.every((v): v is UapiVcpu => v instanceof UapiVcpu && v.proc === this.proc)) return 'migration needs this VM\'s own vCPUs';
    const r = migrateFds({ host: this.host, proc: this.proc, vmFd: this.vmFd, vcpus, slots: this.slots }, target.host, opts);
    if (typeof r === 'string') return r;
    const h = r.handle;
    const slots = h.slots.map((s): MemslotInfo => ({ slot: s.slot, gpa: s.guestPhysAddr, size: s.memorySize, flags: s.flags, hva: s.userspaceAddr }));
    const vm = new UapiVm(target.host, h.proc, h.kvm.fd, h.vm.fd, slots);
    const mapped = h.vcpus.map((v) => mapVcpu(h.proc, h.kvm.fd, v.fd));
    const bad = mapped.find((v): v is number => typeof v === 'number');
    if (bad !== undefined) { vm.destroy(); return `migration failed: the target's vCPU could not be mapped (errno ${-bad})`; }
    return { vm, vcpus: mapped as UapiVcpu[], memory: slots.map((s) => memoryAt(h.proc, s.hva, s.size)), report: r.report };
  }

  memslots(): readonly MemslotInfo[] {
    return this.slots;
  }

  private kernelVm(): Vm | null {
    const f = this.proc.file(this.vmFd);
    return f && 'vm' in f && f.vm instanceof Vm ? f.vm : null;
  }

  mmuStats(): { tdpPages: number; dirtyPages: number } | null {
    const vm = this.kernelVm();
    if (!vm) return null;
    const s = vm.snapshot();
    return { tdpPages: s.tdpPagesMapped, dirtyPages: s.memslots.reduce((n, m) => n + m.dirtyPages, 0) };
  }

  stats(): Readonly<Record<string, number>> {
    return this.kernelVm()?.stats() ?? {};
  }

  destroy(): void {
    // exit() closes every fd and unmaps everything: the VM goes with its last reference.
    this.proc.exit();
  }
}

/** A host with its vendor module loaded, driven through /dev/kvm. */
export class UapiHost implements HostPort {
  readonly info: HostInfo;
  /** The machine behind /dev/kvm: a migration's target process is spawned on it. */
  readonly host: Host;

  constructor(host: Host, info: HostInfo) {
    this.host = host;
    this.info = info;
  }

  createVm(): VmPort | number {
    const proc = this.host.spawn();
    const kvmFd = proc.open('/dev/kvm');
    if (kvmFd < 0) return kvmFd;
    const vmFd = proc.ioctl(kvmFd, KVM.KVM_CREATE_VM, 0);
    if (vmFd < 0) { proc.exit(); return vmFd; }
    return new UapiVm(this.host, proc, kvmFd, vmFd);
  }

  residentBytes(): number {
    return this.host.mem.residentBytes;
  }
}
