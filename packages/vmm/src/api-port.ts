/**
 * The VMM's port over the core's typed façade (`KvmApi`, `VmFd`, `VcpuFd`, as rust-vmm's
 * kvm-ioctls): each VM gets its own VMM process, with /dev/kvm, the VM fd, its memslots and
 * vCPU fds held as the `@kvmts/migrate` VmHandle they are, so a migration moves this very VM.
 */
import {
  KVM_STATE_NESTED, KvmApi, KvmError, type CpuidEntry, type Host, type Process, type StatsFd, type VcpuExit as KvmExit, type VcpuFd, type VendorInspection,
  type VmFd,
} from '@kvmts/core';
import { destroyVmHandle, migrateVm, MigrationRefused, parseNestedState, type SlotInfo, type VmHandle } from '@kvmts/migrate';
import type {
  GuestMemory, HostInfo, HostPort, KvmRegs, KvmSregs, MemslotInfo, MigratedVm, MigrateOptions, MigrationReport, VcpuExit,
  VcpuPort, VmPort,
} from './kvm-port.js';
import { sregsFromKvm, sregsToKvm } from './sregs.js';

/** The port's value-or-(-errno): what a façade call returns, or the -errno of the KvmError it threw. */
function orErrno<T>(call: () => T): T | number {
  try {
    return call();
  } catch (e) {
    if (e instanceof KvmError) return -e.errno;
    throw e;
  }
}

/** The trace's words for the façade's exits. */
function portExit(e: KvmExit, exitReason: number): VcpuExit {
  switch (e.kind) {
    case 'IoOut': case 'IoIn':
      return { kind: 'io', dir: e.kind === 'IoOut' ? 'out' : 'in', port: e.port, size: e.size, count: e.count, data: e.data };
    case 'MmioRead': case 'MmioWrite':
      return { kind: 'mmio', isWrite: e.kind === 'MmioWrite', addr: e.addr, len: e.data.length, data: e.data };
    case 'Hlt': return { kind: 'hlt' };
    case 'Shutdown': return { kind: 'shutdown' };
    case 'FailEntry': return { kind: 'fail_entry', reason: e.reason, cpu: e.cpu };
    case 'InternalError': return { kind: 'internal_error', suberror: e.suberror };
    case 'IrqWindowOpen': return { kind: 'irq_window_open' };
    case 'Intr': return { kind: 'intr' };
    default: return { kind: 'unknown', reason: exitReason };
  }
}

/**
 * The binary stats through KVM_GET_STATS_FD, opened for each read: the descriptors are fixed at
 * open, and a vCPU's exits by reason gain a counter the first time a reason is seen.
 */
function readStats(open: () => StatsFd): Record<string, number> {
  const stats = orErrno(() => {
    const fd = open();
    try {
      return fd.read().stats;
    } finally {
      fd.close();
    }
  });
  return typeof stats === 'number' ? {} : Object.fromEntries(Object.entries(stats).map(([k, v]) => [k, Number(v)]));
}

/** CPUID.1:EBX[31:24], the initial APIC ID. */
const CPUID1_EBX_APIC_ID_SHIFT = 24;

/**
 * The CPUID a vCPU gets before its first KVM_RUN, as QEMU and Firecracker give it: what
 * KVM_GET_SUPPORTED_CPUID offers, with the vCPU's own initial APIC ID in leaf 1.
 */
export function vcpuCpuid(supported: readonly CpuidEntry[], vcpuId: number): CpuidEntry[] {
  return supported.map((e) => (e.function === 1
    ? { ...e, ebx: ((e.ebx & 0x00ffffff) | (vcpuId << CPUID1_EBX_APIC_ID_SHIFT)) >>> 0 }
    : { ...e }));
}

export class ApiVcpu implements VcpuPort {
  readonly fd: VcpuFd;

  constructor(fd: VcpuFd) {
    this.fd = fd;
  }

  getRegs(): KvmRegs { return this.fd.getRegs(); }
  setRegs(regs: KvmRegs): void { this.fd.setRegs(regs); }
  getSregs(): KvmSregs { return sregsFromKvm(this.fd.getSregs()); }
  setSregs(sregs: KvmSregs): void { this.fd.setSregs(sregsToKvm(sregs)); }

  run(): VcpuExit {
    // orErrno inlined: KVM_RUN is the one call made per exit, and a closure per call shows.
    try {
      return portExit(this.fd.run(), this.fd.runData.exitReason);
    } catch (e) {
      if (e instanceof KvmError) return { kind: 'errno', errno: e.errno };
      throw e;
    }
  }

  interrupt(vector: number): number {
    return orErrno(() => { this.fd.interrupt(vector); return 0; });
  }

  get readyForInterruptInjection(): boolean { return this.fd.readyForInterruptInjection; }
  get ifFlag(): boolean { return this.fd.ifFlag; }
  get requestInterruptWindow(): boolean { return this.fd.requestInterruptWindow; }
  set requestInterruptWindow(v: boolean) { this.fd.requestInterruptWindow = v; }
  get immediateExit(): boolean { return this.fd.immediateExit; }
  set immediateExit(v: boolean) { this.fd.immediateExit = v; }

  translate(gva: bigint): number | null {
    const t = orErrno(() => this.fd.translate(gva));
    return typeof t === 'number' || !t.valid ? null : Number(t.physicalAddress);
  }

  /** is_guest_mode(), as QEMU learns it: the GUEST_MODE flag of KVM_GET_NESTED_STATE (false without nested support). */
  isGuestMode(): boolean {
    const state = orErrno(() => this.fd.getNestedState());
    return typeof state !== 'number' && (parseNestedState(state).flags & KVM_STATE_NESTED.GUEST_MODE) !== 0;
  }

  stats(): Readonly<Record<string, number>> { return readStats(() => this.fd.getStatsFd()); }
  inspect(): VendorInspection { return this.fd.inspect(); }
}

function memslotInfo(s: SlotInfo): MemslotInfo {
  return { slot: s.slot, gpa: s.guestPhysAddr, size: s.memorySize, flags: s.flags, hva: s.userspaceAddr };
}

/** The port's view of one slot's backing: offsets within the slot, through the VM's guest memory. */
function slotMemory(vm: VmFd, s: SlotInfo): GuestMemory {
  return {
    hva: s.userspaceAddr, size: s.memorySize,
    write: (offset, bytes) => vm.memory.write(s.guestPhysAddr + offset, bytes),
    read: (offset, len) => vm.memory.read(s.guestPhysAddr + offset, len),
  };
}

export class ApiVm implements VmPort {
  private readonly owner: ApiHost;
  private readonly proc: Process;
  private readonly kvm: KvmApi;
  private readonly vm: VmFd;
  private readonly vcpus: ApiVcpu[];
  private readonly slots: SlotInfo[];
  private destroyed = false;

  /** Takes over a VM built elsewhere: the one a migration restored on `owner`, or a new empty one. */
  constructor(owner: ApiHost, h: Omit<VmHandle, 'host'>) {
    this.owner = owner;
    this.proc = h.proc;
    this.kvm = h.kvm;
    this.vm = h.vm;
    this.vcpus = h.vcpus.map((v) => new ApiVcpu(v));
    this.slots = [...h.slots];
  }

  private handle(): VmHandle {
    return { host: this.owner.host, proc: this.proc, kvm: this.kvm, vm: this.vm, vcpus: this.vcpus.map((v) => v.fd), slots: this.slots };
  }

  addMemslot(slot: number, gpa: number, size: number): GuestMemory | number {
    const hva = orErrno(() => this.vm.allocGuestMemory(slot, gpa, size));
    if (hva < 0) return hva;
    const info: SlotInfo = { slot, guestPhysAddr: gpa, memorySize: size, flags: 0, userspaceAddr: hva };
    this.slots.push(info);
    return slotMemory(this.vm, info);
  }

  /** KVM_CREATE_VCPU, then KVM_SET_CPUID2 before anything runs it. */
  createVcpu(id: number): VcpuPort | number {
    const fd = orErrno(() => this.vm.createVcpu(id));
    if (typeof fd === 'number') return fd;
    const set = orErrno(() => fd.setCpuid2(vcpuCpuid(this.owner.supportedCpuid(this.kvm), id)));
    if (typeof set === 'number') return set;
    const v = new ApiVcpu(fd);
    this.vcpus.push(v);
    return v;
  }

  /** Live migration through `@kvmts/migrate`: on success this VM's process is gone. */
  migrate(vcpus: readonly VcpuPort[], target: HostPort, opts: MigrateOptions = {}): MigratedVm | string {
    if (!(target instanceof ApiHost)) return 'migration needs a /dev/kvm host on both ends';
    if (vcpus.length !== this.vcpus.length || !vcpus.every((v, i) => v === this.vcpus[i])) return 'migration needs all of this VM\'s own vCPUs';
    let moved: ReturnType<typeof migrateVm>;
    try {
      moved = migrateVm(this.handle(), target.host, opts);
    } catch (e) {
      if (e instanceof MigrationRefused) return `migration refused: ${e.message}`;
      return `migration failed: ${e instanceof Error ? e.message : String(e)}`;
    }
    // migrateVm destroyed the source: this object is only a husk now.
    this.destroyed = true;
    const vm = new ApiVm(target, moved.vm);
    const { stats } = moved;
    const report: MigrationReport = {
      from: vendorName(stats.from), to: vendorName(stats.to), rounds: stats.rounds, pagesSent: stats.pagesSent,
      downtimeUs: stats.downtimeUs, totalMs: stats.totalMs,
    };
    return { vm, vcpus: vm.vcpus, memory: vm.slots.map((s) => slotMemory(vm.vm, s)), report };
  }

  memslots(): readonly MemslotInfo[] {
    return this.slots.map(memslotInfo);
  }

  mmuStats(): { tdpPages: number; dirtyPages: number } {
    const s = this.vm.snapshot();
    return { tdpPages: s.tdpPagesMapped, dirtyPages: s.memslots.reduce((n, m) => n + m.dirtyPages, 0) };
  }

  stats(): Readonly<Record<string, number>> {
    return readStats(() => this.vm.getStatsFd());
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    destroyVmHandle(this.handle());
  }
}

function vendorName(v: string): 'intel' | 'amd' {
  return v === 'amd' ? 'amd' : 'intel';
}

/** A host with its vendor module loaded, driven through /dev/kvm. */
export class ApiHost implements HostPort {
  readonly info: HostInfo;
  /** The machine behind /dev/kvm: a migration's target process is spawned on it. */
  readonly host: Host;
  /** KVM_GET_SUPPORTED_CPUID does not change while the module is loaded: asked once, as QEMU caches it. */
  private cpuid: CpuidEntry[] | null = null;

  constructor(host: Host, info: HostInfo) {
    this.host = host;
    this.info = info;
  }

  supportedCpuid(kvm: KvmApi): readonly CpuidEntry[] {
    this.cpuid ??= kvm.getSupportedCpuid();
    return this.cpuid;
  }

  createVm(): VmPort | number {
    const proc = this.host.spawn();
    const vm = orErrno(() => {
      const kvm = KvmApi.open(proc);
      return new ApiVm(this, { proc, kvm, vm: kvm.createVm(), vcpus: [], slots: [] });
    });
    if (typeof vm === 'number') proc.exit();
    return vm;
  }

  residentBytes(): number {
    return this.host.mem.residentBytes;
  }
}
