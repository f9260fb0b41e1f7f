/**
 * KVM_GET_STATS_FD: the binary stats file of a VM or vCPU (virt/kvm/binary_stats.c,
 * api.rst "KVM_GET_STATS_FD"): a header, the id string, one descriptor per counter, then the
 * u64 values, read with read()/pread(). Values are read live; the layout is fixed at open.
 */
import type { KFile } from '../host/file.js';
import { ERRNO } from '../uapi/errno.js';

/** KVM_STATS_NAME_SIZE. */
export const KVM_STATS_NAME_SIZE = 48;
export const KVM_STATS_TYPE = { CUMULATIVE: 0, INSTANT: 1, PEAK: 2 } as const;
export const KVM_STATS_UNIT = { NONE: 0 << 4, BYTES: 1 << 4 } as const;
const HEADER_SIZE = 24;
const DESC_SIZE = 16 + KVM_STATS_NAME_SIZE;

/** Counters that are levels rather than running totals. */
const INSTANT = new Set(['pages_4k']);

export class StatsFile implements KFile {
  readonly kind = 'kvm-stats' as const;
  refs = 1;
  private readonly names: string[];
  private readonly id: string;
  private readonly values: () => Record<string, number>;
  private readonly onRelease: () => void;

  constructor(id: string, values: () => Record<string, number>, onRelease: () => void) {
    this.id = id;
    this.values = values;
    this.names = Object.keys(values());
    this.onRelease = onRelease;
  }

  ioctl(): number {
    return -ERRNO.ENOTTY;
  }

  /** The whole file as it reads now. */
  contents(): Uint8Array {
    const n = this.names.length;
    const descOffset = HEADER_SIZE + KVM_STATS_NAME_SIZE;
    const dataOffset = descOffset + n * DESC_SIZE;
    const out = new Uint8Array(dataOffset + 8 * n);
    const dv = new DataView(out.buffer);
    [0, KVM_STATS_NAME_SIZE, n, HEADER_SIZE, descOffset, dataOffset].forEach((v, i) => dv.setUint32(4 * i, v, true));
    const enc = new TextEncoder();
    out.set(enc.encode(this.id).subarray(0, KVM_STATS_NAME_SIZE - 1), HEADER_SIZE);
    const values = this.values();
    this.names.forEach((name, i) => {
      const d = descOffset + i * DESC_SIZE;
      dv.setUint32(d, (INSTANT.has(name) ? KVM_STATS_TYPE.INSTANT : KVM_STATS_TYPE.CUMULATIVE) | KVM_STATS_UNIT.NONE, true);
      dv.setInt16(d + 4, 0, true);
      dv.setUint16(d + 6, 1, true); // size in u64s
      dv.setUint32(d + 8, 8 * i, true);
      dv.setUint32(d + 12, 0, true);
      out.set(enc.encode(name).subarray(0, KVM_STATS_NAME_SIZE - 1), d + 16);
      dv.setBigUint64(dataOffset + 8 * i, BigInt(Math.max(0, Math.floor(values[name] ?? 0))), true);
    });
    return out;
  }

  read(offset: number, len: number): Uint8Array | number {
    if (offset < 0 || len < 0) return -ERRNO.EINVAL;
    return this.contents().slice(offset, offset + len);
  }

  release(): void {
    this.onRelease();
  }
}

/** Decodes a stats file: the id and every counter by name (for tests and the dashboard). */
export function parseStats(bytes: Uint8Array): { id: string; stats: Record<string, bigint> } {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const nameSize = dv.getUint32(4, true);
  const n = dv.getUint32(8, true);
  const idOff = dv.getUint32(12, true);
  const descOff = dv.getUint32(16, true);
  const dataOff = dv.getUint32(20, true);
  const dec = new TextDecoder();
  const str = (o: number): string => dec.decode(bytes.subarray(o, o + nameSize)).replace(/\0.*$/s, '');
  const stats: Record<string, bigint> = {};
  for (let i = 0; i < n; i++) {
    const d = descOff + i * (16 + nameSize);
    stats[str(d + 16)] = dv.getBigUint64(dataOff + dv.getUint32(d + 8, true), true);
  }
  return { id: str(idOff), stats };
}
