/**
 * A binary stats fd (KVM_GET_STATS_FD, api.rst 4.133), read with pread as QEMU's query-stats
 * and kvm_stat read it: struct kvm_stats_header, the id string, one kvm_stats_desc per counter,
 * then the u64 data. The descriptors are fixed when the fd is opened; the values are live.
 */
import type { Process } from '../host/process.js';
import { parseStats } from '../kvm/stats-fd.js';
import { check } from './kvm-error.js';

/** A first read large enough for any stats file here; a larger file is read again whole. */
const FIRST_READ = 8192;

export interface KvmStats {
  /** "kvm-<pid>" for a VM, "kvm-<pid>/vcpu-<id>" for a vCPU. */
  readonly id: string;
  readonly stats: Readonly<Record<string, bigint>>;
}

export class StatsFd {
  readonly proc: Process;
  readonly fd: number;

  constructor(proc: Process, fd: number) {
    this.proc = proc;
    this.fd = fd;
  }

  /** The whole file, header to data, then decoded: pread stops short at its end, as read(2) does. */
  read(): KvmStats {
    for (let len = FIRST_READ; ; len *= 2) {
      const r = this.proc.pread(this.fd, len, 0);
      if (typeof r === 'number') check('pread(stats)', r);
      const bytes = r as Uint8Array;
      if (bytes.length < len) return parseStats(bytes);
    }
  }

  close(): void {
    check('close', this.proc.close(this.fd));
  }
}
