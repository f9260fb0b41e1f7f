/**
 * The JSON trace of `kvmts run --json`: one row per userspace exit the VMM does not claim,
 * then a final row with the registers. Key order is fixed, so traces compare as text.
 */
import { hex, hexBytes } from './hex.js';
import { KVM_REGS_FIELDS, type KvmRegs, type KvmSregs } from './kvm-port.js';

export type FinalExit = 'hlt' | 'shutdown' | 'fail_entry' | 'internal_error' | 'debug_exit';

export type TraceRow =
  | { exit: 'io'; dir: 'in' | 'out'; port: number; size: number; count: number; data: string }
  | { exit: 'mmio'; dir: 'read' | 'write'; addr: string; len: number; data: string }
  | FinalRow;

export interface FinalRow {
  exit: FinalExit;
  /** debug_exit: the value written to port 0xf4. */
  code?: number;
  /** fail_entry: hardware_entry_failure_reason. */
  reason?: string;
  /** internal_error: the suberror. */
  suberror?: number;
  /** internal_error when KVM_RUN itself failed: its errno. */
  errno?: number;
  regs: Record<string, string>;
  sregs: { cr0: string; cr3: string; cr4: string; efer: string };
}

export function ioRow(dir: 'in' | 'out', port: number, size: number, count: number, data: Uint8Array): TraceRow {
  return { exit: 'io', dir, port, size, count, data: hexBytes(data) };
}

export function mmioRow(isWrite: boolean, addr: bigint, data: Uint8Array): TraceRow {
  return { exit: 'mmio', dir: isWrite ? 'write' : 'read', addr: hex(addr), len: data.length, data: hexBytes(data) };
}

export function finalRow(exit: FinalExit, regs: KvmRegs, sregs: KvmSregs, extra: { code?: number; reason?: bigint; suberror?: number; errno?: number } = {}): FinalRow {
  const r: Record<string, string> = {};
  for (const name of KVM_REGS_FIELDS) r[name] = hex(regs[name]);
  const sr = { cr0: hex(sregs.cr0), cr3: hex(sregs.cr3), cr4: hex(sregs.cr4), efer: hex(sregs.efer) };
  // Extra fields go between "exit" and "regs", as DESIGN.md shows `{"exit":"debug_exit","code":N,…}`.
  return {
    exit,
    ...(extra.code !== undefined && { code: extra.code }),
    ...(extra.reason !== undefined && { reason: hex(extra.reason) }),
    ...(extra.suberror !== undefined && { suberror: extra.suberror }),
    ...(extra.errno !== undefined && { errno: extra.errno }),
    regs: r,
    sregs: sr,
  };
}

export function formatRow(row: TraceRow): string {
  return JSON.stringify(row);
}

export function isFinal(row: TraceRow): row is FinalRow {
  return row.exit !== 'io' && row.exit !== 'mmio';
}
