/**
 * Typed accessors over the kvm_run bytes (the page a VMM mmaps from a vCPU fd). Offsets come
 * from the KVM_RUN_STRUCT table; 64-bit fields are BigInt (API edge), the rest numbers.
 */
import { KVM_RUN_STRUCT, offsetOf } from '../uapi/structs.js';

const O = (path: string): number => offsetOf(KVM_RUN_STRUCT, path);
const OFF = {
  requestInterruptWindow: O('request_interrupt_window'),
  immediateExit: O('immediate_exit'),
  exitReason: O('exit_reason'),
  readyForInterruptInjection: O('ready_for_interrupt_injection'),
  ifFlag: O('if_flag'),
  flags: O('flags'),
  cr8: O('cr8'),
  apicBase: O('apic_base'),
  ioDirection: O('io.direction'),
  ioSize: O('io.size'),
  ioPort: O('io.port'),
  ioCount: O('io.count'),
  ioDataOffset: O('io.data_offset'),
  mmioPhysAddr: O('mmio.phys_addr'),
  mmioData: O('mmio.data'),
  mmioLen: O('mmio.len'),
  mmioIsWrite: O('mmio.is_write'),
  failReason: O('fail_entry.hardware_entry_failure_reason'),
  failCpu: O('fail_entry.cpu'),
  hwExitReason: O('hw.hardware_exit_reason'),
  internalSuberror: O('internal.suberror'),
  internalNdata: O('internal.ndata'),
  internalData: O('internal.data'),
  debugException: O('debug.exception'),
  debugPc: O('debug.pc'),
  debugDr6: O('debug.dr6'),
  debugDr7: O('debug.dr7'),
  systemEventType: O('system_event.type'),
  systemEventNdata: O('system_event.ndata'),
  systemEventData: O('system_event.data'),
  msrError: O('msr.error'),
  msrReason: O('msr.reason'),
  msrIndex: O('msr.index'),
  msrData: O('msr.data'),
  unionStart: O('padding'),
} as const;

export class KvmRun {
  readonly bytes: Uint8Array;
  private readonly dv: DataView;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  // Bytes by index: the run loop reads request_interrupt_window and immediate_exit on every exit.
  private u8(o: number): number { return this.bytes[o]!; }
  private setU8(o: number, v: number): void { this.bytes[o] = v; }
  private u32(o: number): number { return this.dv.getUint32(o, true); }
  private setU32(o: number, v: number): void { this.dv.setUint32(o, v >>> 0, true); }
  private u64(o: number): bigint { return this.dv.getBigUint64(o, true); }
  // setBigUint64 reduces v modulo 2^64 itself (ToBigUint64): no asUintN copy on every store.
  private setU64(o: number, v: bigint): void { this.dv.setBigUint64(o, v, true); }

  get requestInterruptWindow(): number { return this.u8(OFF.requestInterruptWindow); }
  set requestInterruptWindow(v: number) { this.setU8(OFF.requestInterruptWindow, v); }
  get immediateExit(): number { return this.u8(OFF.immediateExit); }
  set immediateExit(v: number) { this.setU8(OFF.immediateExit, v); }
  get exitReason(): number { return this.u32(OFF.exitReason); }
  set exitReason(v: number) { this.setU32(OFF.exitReason, v); }
  get readyForInterruptInjection(): number { return this.u8(OFF.readyForInterruptInjection); }
  set readyForInterruptInjection(v: number) { this.setU8(OFF.readyForInterruptInjection, v); }
  get ifFlag(): number { return this.u8(OFF.ifFlag); }
  set ifFlag(v: number) { this.setU8(OFF.ifFlag, v); }
  get flags(): number { return this.dv.getUint16(OFF.flags, true); }
  set flags(v: number) { this.dv.setUint16(OFF.flags, v, true); }
  get cr8(): bigint { return this.u64(OFF.cr8); }
  set cr8(v: bigint) { this.setU64(OFF.cr8, v); }
  /** cr8 from a number (0-15), without a BigInt: post_kvm_run_save writes it after every KVM_RUN. */
  setCr8(v: number): void { this.dv.setUint32(OFF.cr8, v, true); this.dv.setUint32(OFF.cr8 + 4, 0, true); }
  get apicBase(): bigint { return this.u64(OFF.apicBase); }
  set apicBase(v: bigint) { this.setU64(OFF.apicBase, v); }

  /** Clears the exit union, as a new exit overwrites it. */
  clearExit(): void { this.bytes.fill(0, OFF.unionStart, OFF.unionStart + 256); }

  /** The io exit's fields one by one: the VMM reads them after every PIO exit, without an object. */
  get ioDirection(): number { return this.u8(OFF.ioDirection); }
  get ioSize(): number { return this.u8(OFF.ioSize); }
  get ioPort(): number { return this.dv.getUint16(OFF.ioPort, true); }
  get ioCount(): number { return this.u32(OFF.ioCount); }
  get ioDataOffset(): number { return this.u32(OFF.ioDataOffset) + this.u32(OFF.ioDataOffset + 4) * 2 ** 32; }

  readonly io = {
    get: () => ({ direction: this.ioDirection, size: this.ioSize, port: this.ioPort, count: this.ioCount, dataOffset: this.ioDataOffset }),
    set: (io: { direction: number; size: number; port: number; count: number; dataOffset: number }) => {
      this.setU8(OFF.ioDirection, io.direction); this.setU8(OFF.ioSize, io.size);
      this.dv.setUint16(OFF.ioPort, io.port, true); this.setU32(OFF.ioCount, io.count);
      this.setU32(OFF.ioDataOffset, io.dataOffset);
      this.setU32(OFF.ioDataOffset + 4, Math.floor(io.dataOffset / 2 ** 32));
    },
  };

  readonly mmio = {
    get: () => ({
      physAddr: this.u64(OFF.mmioPhysAddr), data: this.bytes.slice(OFF.mmioData, OFF.mmioData + 8),
      len: this.u32(OFF.mmioLen), isWrite: this.u8(OFF.mmioIsWrite),
    }),
    set: (m: { physAddr: bigint; data: Uint8Array; len: number; isWrite: number }) => {
      this.setU64(OFF.mmioPhysAddr, m.physAddr);
      this.bytes.fill(0, OFF.mmioData, OFF.mmioData + 8);
      this.bytes.set(m.data.subarray(0, 8), OFF.mmioData);
      this.setU32(OFF.mmioLen, m.len); this.setU8(OFF.mmioIsWrite, m.isWrite);
    },
    /** The 8 data bytes in place (the VMM fills them for a read). */
    data: (): Uint8Array => this.bytes.subarray(OFF.mmioData, OFF.mmioData + 8),
  };

  readonly failEntry = {
    get: () => ({ hardwareEntryFailureReason: this.u64(OFF.failReason), cpu: this.u32(OFF.failCpu) }),
    set: (reason: bigint, cpu: number) => { this.setU64(OFF.failReason, reason); this.setU32(OFF.failCpu, cpu); },
  };

  readonly hw = {
    get: () => this.u64(OFF.hwExitReason),
    set: (reason: bigint) => this.setU64(OFF.hwExitReason, reason),
  };

  readonly internal = {
    get: () => {
      const ndata = Math.min(this.u32(OFF.internalNdata), 16);
      return { suberror: this.u32(OFF.internalSuberror), data: Array.from({ length: ndata }, (_, i) => this.u64(OFF.internalData + 8 * i)) };
    },
    set: (suberror: number, data: readonly bigint[]) => {
      const n = Math.min(data.length, 16);
      this.setU32(OFF.internalSuberror, suberror); this.setU32(OFF.internalNdata, n);
      for (let i = 0; i < n; i++) this.setU64(OFF.internalData + 8 * i, data[i]!);
    },
  };

  readonly debug = {
    get: () => ({ exception: this.u32(OFF.debugException), pc: this.u64(OFF.debugPc), dr6: this.u64(OFF.debugDr6), dr7: this.u64(OFF.debugDr7) }),
    set: (d: { exception: number; pc: bigint; dr6: bigint; dr7: bigint }) => {
      this.setU32(OFF.debugException, d.exception); this.setU64(OFF.debugPc, d.pc);
      this.setU64(OFF.debugDr6, d.dr6); this.setU64(OFF.debugDr7, d.dr7);
    },
  };

  readonly systemEvent = {
    get: () => {
      const ndata = Math.min(this.u32(OFF.systemEventNdata), 16);
      return { type: this.u32(OFF.systemEventType), data: Array.from({ length: ndata }, (_, i) => this.u64(OFF.systemEventData + 8 * i)) };
    },
    set: (type: number, data: readonly bigint[]) => {
      this.setU32(OFF.systemEventType, type); this.setU32(OFF.systemEventNdata, data.length);
      data.slice(0, 16).forEach((d, i) => this.setU64(OFF.systemEventData + 8 * i, d));
    },
  };

  readonly msr = {
    get: () => ({ error: this.u8(OFF.msrError), reason: this.u32(OFF.msrReason), index: this.u32(OFF.msrIndex), data: this.u64(OFF.msrData) }),
    set: (m: { error: number; reason: number; index: number; data: bigint }) => {
      this.setU8(OFF.msrError, m.error); this.setU32(OFF.msrReason, m.reason);
      this.setU32(OFF.msrIndex, m.index); this.setU64(OFF.msrData, m.data);
    },
  };
}
