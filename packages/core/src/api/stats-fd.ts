/**
 * A binary stats fd (KVM_GET_STATS_FD, api.rst 4.133), read with pread as QEMU's query-stats
 * and kvm_stat read it: struct kvm_stats_header, the id string, one kvm_stats_desc per counter,
 * then the u64 data. The descriptors are fixed when the fd is opened; the values are live.
 */
import type { Process } from '../host/process.js';
import { parseStats } from '../kvm/stats-fd.js';
import { check } from './kvm-error.js';

/** struct kvm_stats_header: flags, name_size, num_desc, id_offset, desc_offset, data_offset (u32 each). */
const HEADER = { size: 24, nameSize: 4, numDesc: 8, descOffset: 16, dataOffset: 20 } as const;
/** struct kvm_stats_desc before its name: flags u32, exponent s16, size u16 (in u64s), offset u32, bucket_size u32. */
const DESC = { size: 16, valueWords: 6, valueOffset: 8 } as const;

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

  private pread(len: number, offset: number): Uint8Array {
    const r = this.proc.pread(this.fd, len, offset);
    if (typeof r === 'number') check('pread(stats)', r);
    return r as Uint8Array;
  }

  private preadView(len: number, offset: number): DataView {
    const b = this.pread(len, offset);
    return new DataView(b.buffer, b.byteOffset, b.byteLength);
  }

  /** The header and descriptors, then the data they describe: every counter by name. */
  read(): KvmStats {
    const hdr = this.preadView(HEADER.size, 0);
    const descSize = DESC.size + hdr.getUint32(HEADER.nameSize, true);
    const numDesc = hdr.getUint32(HEADER.numDesc, true);
    const descOffset = hdr.getUint32(HEADER.descOffset, true);
    const dataOffset = hdr.getUint32(HEADER.dataOffset, true);
    const head = this.pread(dataOffset, 0);
    const dv = new DataView(head.buffer, head.byteOffset, head.byteLength);
    let dataSize = 0;
    for (let i = 0; i < numDesc; i++) {
      const d = descOffset + i * descSize;
      dataSize = Math.max(dataSize, dv.getUint32(d + DESC.valueOffset, true) + 8 * dv.getUint16(d + DESC.valueWords, true));
    }
    const file = new Uint8Array(dataOffset + dataSize);
    file.set(head);
    file.set(this.pread(dataSize, dataOffset), dataOffset);
    return parseStats(file);
  }

  close(): void {
    check('close', this.proc.close(this.fd));
  }
}
