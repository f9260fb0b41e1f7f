/**
 * The VMM's fds seen as a `@kvmts/migrate` VmHandle, so that the migration engine drives the
 * very VM, vCPUs and memslots the VMM created (and not copies of them).
 */
import { KvmApi, VcpuFd, VmFd, type Host, type Process } from '@kvmts/core';
import { migrateVm, MigrationRefused, type MigrationOptions, type VmHandle } from '@kvmts/migrate';
import type { MemslotInfo, MigrationReport } from './kvm-port.js';

/** One of the VMM's vCPU fds with its kvm_run mapping. */
export interface VcpuMapping {
  readonly fd: number;
  readonly pages: Uint8Array;
}

export interface MigrationSource {
  readonly host: Host;
  readonly proc: Process;
  readonly vmFd: number;
  readonly vcpus: readonly VcpuMapping[];
  readonly slots: readonly MemslotInfo[];
}

/**
 * Migrates to `target`. On success the source process has exited and the target's handle is
 * returned; a refusal or failure is a sentence, and the source keeps running as it was.
 */
export function migrateFds(src: MigrationSource, target: Host, opts: MigrationOptions): { handle: VmHandle; report: MigrationReport } | string {
  // A second /dev/kvm fd in the VMM's process, for KVM_GET_MSR_INDEX_LIST (closed with the source).
  let kvm: KvmApi;
  try {
    kvm = KvmApi.open(src.proc);
  } catch (e) {
    return `migration failed: ${e instanceof Error ? e.message : String(e)}`;
  }
  const handle: VmHandle = {
    host: src.host, proc: src.proc, kvm,
    vm: new VmFd(src.proc, src.vmFd),
    vcpus: src.vcpus.map((v) => new VcpuFd(src.proc, v.fd, v.pages)),
    slots: src.slots.map((s) => ({ slot: s.slot, guestPhysAddr: s.gpa, memorySize: s.size, flags: s.flags, userspaceAddr: s.hva })),
  };
  try {
    const { vm, stats } = migrateVm(handle, target, opts);
    const vendor = (v: string) => (v === 'amd' ? 'amd' : 'intel');
    return {
      handle: vm,
      report: { from: vendor(stats.from), to: vendor(stats.to), rounds: stats.rounds, pagesSent: stats.pagesSent, downtimeUs: stats.downtimeUs, totalMs: stats.totalMs },
    };
  } catch (e) {
    src.proc.close(kvm.fd);
    if (e instanceof MigrationRefused) return `migration refused: ${e.message}`;
    return `migration failed: ${e instanceof Error ? e.message : String(e)}`;
  }
}
