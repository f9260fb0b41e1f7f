/** struct kvm: one VM's memslots, vCPUs, TDP MMU, stats and lifetime (kvm_get_kvm / kvm_put_kvm). */
import { PAGE_SIZE } from '@kvmts/x86';
import type { Kvm } from '../x86/kvm-types.js';
import { KVM_REQ } from '../x86/kvm-types.js';
import { KVM_LIMITS } from '../uapi/constants.js';
import { TdpMmu } from '../mmu/tdp-mmu.js';
import type { Host } from '../host/host.js';
import type { Process } from '../host/process.js';
import { Memslots, KVM_MR, type Memslot, type UserspaceMemoryRegion } from './memslots.js';
import type { KvmModule } from './kvm-module.js';
import type { Vcpu } from './vcpu.js';

export const VM_STAT_NAMES = ['remote_tlb_flush', 'mmu_pte_write', 'mmu_cache_miss', 'pages_4k', 'memslot_changes'] as const;

export class Vm implements Kvm {
  readonly host: Host;
  readonly module: KvmModule;
  /** The process that created the VM (kvm->mm): memslot HVAs are its addresses. */
  readonly proc: Process;
  vendor: unknown = null;
  readonly stat: Record<string, number> = Object.fromEntries(VM_STAT_NAMES.map((n) => [n, 0]));
  readonly memslots = new Memslots();
  readonly vcpus: Vcpu[] = [];
  createdVcpus = 0;
  maxVcpus: number = KVM_LIMITS.MAX_VCPUS;
  /** kvm->arch.max_vcpu_ids (KVM_CAP_MAX_VCPU_ID), 0 = the default limit. */
  maxVcpuIds = 0;
  tssAddr = 0;
  identityMapAddr = 0;
  /** kvm->users_count. */
  users = 1;
  mmu: TdpMmu;
  readonly id: number;
  destroyed = false;
  /** KVM_CAP_X86_USER_SPACE_MSR mask for vCPUs created later. */
  userSpaceMsrMask = 0;

  constructor(module: KvmModule, proc: Process, id: number) {
    this.host = module.host;
    this.module = module;
    this.proc = proc;
    this.id = id;
    this.mmu = new TdpMmu(this.host, module.ops.tdpFormat());
  }

  get onlineVcpus(): number {
    return this.vcpus.length;
  }

  getVcpuById(id: number): Vcpu | undefined {
    return this.vcpus.find((v) => v.vcpuId === id);
  }

  kvmGetKvm(): void {
    this.users++;
  }

  kvmPutKvm(): void {
    if (--this.users === 0) this.destroy();
  }

  /** kvm_destroy_vm: free every vCPU, the MMU, and the vendor's part. */
  private destroy(): void {
    this.destroyed = true;
    for (const v of this.vcpus) this.module.ops.vcpuFree(v);
    this.vcpus.length = 0;
    this.module.ops.vmDestroy?.(this);
    this.mmu.destroy();
    this.module.vms.delete(this);
  }

  gpaToHpa(gpa: number): number {
    const gfn = Math.floor(gpa / PAGE_SIZE);
    const slot = this.memslots.find(gfn);
    if (!slot) return -1;
    const hpa = this.proc.hvaToHpa(slot.userspaceAddr + (gfn - slot.baseGfn) * PAGE_SIZE);
    return hpa < 0 ? -1 : hpa + (gpa % PAGE_SIZE);
  }

  /** kvm_make_all_cpus_request. */
  makeAllCpusRequest(req: number): void {
    for (const v of this.vcpus) v.requests |= req;
  }

  /** kvm_set_memory_region plus kvm_arch_commit_memory_region's MMU work. Returns 0 or -errno. */
  setMemoryRegion(r: UserspaceMemoryRegion): number {
    const res = this.memslots.set(r, this.maxGfn());
    if (res === 'none') return 0;
    if (typeof res === 'number') return res;
    this.stat['memslot_changes']!++;
    const { change, old, slot } = res;
    const zap = (s: Memslot): void => {
      if (this.mmu.zapRange(s.baseGfn, s.npages)) this.flushRemoteTlbs();
    };
    if (change === KVM_MR.DELETE || change === KVM_MR.MOVE) zap(old!);
    // A new range may hide MMIO SPTEs installed while it had no slot.
    if (change === KVM_MR.CREATE || change === KVM_MR.MOVE) zap(slot!);
    if (change === KVM_MR.FLAGS_ONLY && slot!.dirtyBitmap && !old!.dirtyBitmap) {
      // Dirty logging starts: write-protect so the first write to each page is seen.
      if (this.mmu.writeProtect(slot!.baseGfn, slot!.npages)) this.flushRemoteTlbs();
    }
    return 0;
  }

  /** kvm_flush_remote_tlbs. */
  flushRemoteTlbs(): void {
    this.stat['remote_tlb_flush']!++;
    this.makeAllCpusRequest(KVM_REQ.TLB_FLUSH);
  }

  /** kvm_mmu_max_gfn: what the host's MAXPHYADDR lets the TDP tables reach. */
  maxGfn(): number {
    const [eax] = this.host.model.cpuid(0x80000008, 0);
    const bits = eax & 0xff || 36;
    return 2 ** (bits - 12) - 1;
  }

  /** The dashboard's view: slots, MMU pages, dirty pages, stats. */
  snapshot() {
    const slots = this.memslots.all().map((s) => ({
      slot: s.slot, guestPhysAddr: s.baseGfn * 4096, memorySize: s.npages * 4096, userspaceAddr: s.userspaceAddr,
      flags: s.flags, dirtyPages: s.dirtyBitmap ? s.dirtyBitmap.reduce((n, b) => n + popcount8(b), 0) : 0,
    }));
    return {
      id: this.id, vcpus: this.vcpus.map((v) => v.vcpuId), memslots: slots,
      tdpPagesMapped: this.mmu.pagesMapped, tdpTablePages: this.mmu.tablePages, stat: this.stats(),
    };
  }

  /** VM stats plus the sum of every vCPU's, as the binary stats fd reports them. */
  stats(): Record<string, number> {
    const out: Record<string, number> = { ...this.stat, pages_4k: this.mmu.pagesMapped };
    for (const v of this.vcpus) for (const [k, n] of Object.entries(v.stats())) out[k] = (out[k] ?? 0) + n;
    return out;
  }
}

function popcount8(b: number): number {
  let n = 0;
  for (let x = b; x; x &= x - 1) n++;
  return n;
}
