/**
 * Harness for the system-architecture unit tests (paging, segments, events, system
 * instructions): a Cpu whose fault() and stop() throw readable values, so a test can call one
 * operation directly and assert the exception it raised.
 */
import { Cpu } from '../src/cpu/cpu.js';
import type { InterceptKind, StopReason, VirtExtension } from '../src/cpu/virt.js';
import { makeMachine, type Machine } from './helpers.js';

export class Fault extends Error {
  readonly vector: number;
  readonly code: number;
  constructor(vector: number, code: number) {
    super(`fault ${vector} (${code})`);
    this.vector = vector;
    this.code = code;
  }
}

export class Stopped extends Error {
  readonly reason: StopReason;
  constructor(reason: StopReason) {
    super(`stop ${reason}`);
    this.reason = reason;
  }
}

/** A machine whose CPU reports faults and stops as exceptions, with every TLB flush logged. */
export function sysMachine(memSize = 0x400000): Machine & { flushes: [number | undefined, number | undefined][] } {
  const m = makeMachine(memSize);
  const flushes: [number | undefined, number | undefined][] = [];
  const cpu: Cpu = m.cpu;
  cpu.fault = (vector: number, code = -1): never => { throw new Fault(vector, code); };
  cpu.stop = (reason: StopReason): never => { throw new Stopped(reason); };
  const flush = cpu.flushTlb.bind(cpu);
  cpu.flushTlb = (tag?: number, la?: number) => { flushes.push([tag, la]); flush(tag, la); };
  return { ...m, flushes };
}

/** Runs `f` and returns the Fault it raised (fails the test if it raised none). */
export function faultOf(f: () => unknown): Fault {
  try {
    f();
  } catch (e) {
    if (e instanceof Fault) return e;
    throw e;
  }
  throw new Error('expected a fault, none was raised');
}

export interface InterceptRecord { kind: InterceptKind; a: number; b: number }

/**
 * A guest-mode extension that intercepts nothing, logs every hook call, and maps guest-physical
 * to host-physical by adding `gpaOffset` (a stand-in for EPT/NPT).
 */
export function fakeGuestExt(gpaOffset = 0) {
  const log: InterceptRecord[] = [];
  const translations: [number, number, number][] = [];
  const events: [number, number][] = [];
  const ext: VirtExtension = {
    guest: true,
    execute: () => {},
    intercept: (kind, a, b) => { log.push({ kind, a, b }); return false; },
    event: (info, code) => { events.push([info, code]); },
    crRead: (_cr, v) => v,
    crWrite: (_cr, v) => v,
    translate: (gpa, access, la) => { translations.push([gpa, access, la]); return gpa + gpaOffset; },
    checkEvents: () => {},
    rdmsr: () => undefined,
    wrmsr: () => false,
    tscOffset: () => 1000n,
  };
  return { ext, log, translations, events };
}
