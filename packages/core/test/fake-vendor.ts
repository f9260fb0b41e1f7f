/**
 * A stand-in vendor module for the core's own tests: no VMX or SVM silicon. Its "guest mode"
 * is the core's instruction emulator: each entry decodes the instruction at RIP and exits on
 * HLT and IN/OUT (as intercepts would), and emulates anything else one instruction at a time.
 */
import type { CpuModel } from '@kvmts/x86';
import {
  KVM_X86_OPS, kvmEmulateHalt, kvmEmulateInstruction, kvmFastPio, kvmHandleTripleFault, toVcpu,
  type KvmSegment, type KvmVcpu, type KvmX86InitOps, type KvmX86Ops, type TdpFormat, EMULTYPE,
} from '../src/index.js';

export const testModel: CpuModel = {
  vendor: 'intel',
  name: 'kvmts test CPU',
  cpuid: (leaf) => {
    if (leaf === 0) return [0xd, 0x756e6547, 0x6c65746e, 0x49656e69];
    if (leaf === 1) return [0x906ea, 0, 0x80000000 | (1 << 5), 0x078bfbff];
    if (leaf === 0x80000000) return [0x80000008, 0, 0, 0];
    if (leaf === 0x80000008) return [0x3027, 0, 0, 0];
    return [0, 0, 0, 0];
  },
  createExtension: () => null,
};

interface FakeVcpu {
  seg: KvmSegment[];
  gdt: { base: number; limit: number };
  idt: { base: number; limit: number };
  rflags: number;
  shadow: number;
  nmiMasked: boolean;
  exit: { kind: 'hlt' | 'io' | 'insn'; len: number; port: number; size: number; isIn: boolean };
}

const realSeg = (selector: number, type: number): KvmSegment => ({
  base: selector * 16, limit: 0xffff, selector, type, present: 1, dpl: 0, db: 0, s: 1, l: 0, g: 0, avl: 0, unusable: 0,
});

const fv = (v: KvmVcpu): FakeVcpu => v.vendor as FakeVcpu;

const EPT_LIKE: TdpFormat = { kind: 'ept', read: 1, write: 2, exec: 4, nonLeaf: 0, leafExtra: 6 << 3, mmioSpte: { lo: 0x6, hi: 0 } };

function peek(v: KvmVcpu, off: number): number {
  const vc = toVcpu(v);
  const lin = fv(v).seg[1]!.base + v.arch.rip + off;
  const slot = vc.kvm.memslots.find(Math.floor(lin / 4096));
  if (!slot) return 0;
  const hpa = vc.kvm.proc.hvaToHpa(slot.userspaceAddr + (lin - slot.baseGfn * 4096));
  return hpa < 0 ? 0 : vc.kvm.host.mem.read8(hpa);
}

export interface FakeVendor {
  initOps: KvmX86InitOps;
  calls: string[];
}

export function fakeVendor(overrides: Partial<Record<string, unknown>> = {}): FakeVendor {
  const calls: string[] = [];
  const ops: Record<string, unknown> = {
    name: 'kvm_fake',
    checkProcessorCompatibility: () => 0,
    hardwareEnable: (id: number) => { calls.push(`enable${id}`); return 0; },
    hardwareDisable: (id: number) => { calls.push(`disable${id}`); },
    hardwareUnsetup: () => { calls.push('unsetup'); },
    hasEmulatedMsr: () => true,
    vcpuAfterSetCpuid: () => {},
    vmInit: () => 0,
    vmDestroy: () => { calls.push('vmDestroy'); },
    vcpuCreate: (v: KvmVcpu) => {
      v.vendor = {
        seg: [realSeg(0, 3), realSeg(0, 11), realSeg(0, 3), realSeg(0, 3), realSeg(0, 3), realSeg(0, 3),
          { ...realSeg(0, 11), s: 0 }, { ...realSeg(0, 2), s: 0 }],
        gdt: { base: 0, limit: 0xffff }, idt: { base: 0, limit: 0xffff }, rflags: 2, shadow: 0, nmiMasked: false,
        exit: { kind: 'insn', len: 0, port: 0, size: 0, isIn: false },
      } satisfies FakeVcpu;
      return 0;
    },
    vcpuFree: () => { calls.push('vcpuFree'); },
    vcpuReset: () => {},
    prepareSwitchToGuest: () => {},
    vcpuLoad: () => {},
    vcpuPut: () => {},
    updateExceptionBitmap: () => {},
    getMsrFeature: () => undefined,
    getMsr: () => 1,
    setMsr: () => 1,
    getSegmentBase: (v: KvmVcpu, s: number) => fv(v).seg[s]!.base,
    getSegment: (v: KvmVcpu, s: number) => ({ ...fv(v).seg[s]! }),
    getCpl: () => 0,
    setSegment: (v: KvmVcpu, s: number, value: KvmSegment) => { fv(v).seg[s] = { ...value }; },
    getCsDbLBits: (v: KvmVcpu) => ({ db: fv(v).seg[1]!.db, l: fv(v).seg[1]!.l }),
    isValidCr0: () => true,
    setCr0: (v: KvmVcpu, cr0: number) => { v.arch.cr0 = cr0; },
    isValidCr4: () => true,
    setCr4: (v: KvmVcpu, cr4: number) => { v.arch.cr4 = cr4; },
    setEfer: (v: KvmVcpu, efer: number) => { v.arch.efer = efer; return 0; },
    getIdt: (v: KvmVcpu) => ({ ...fv(v).idt }),
    setIdt: (v: KvmVcpu, dt: { base: number; limit: number }) => { fv(v).idt = { ...dt }; },
    getGdt: (v: KvmVcpu) => ({ ...fv(v).gdt }),
    setGdt: (v: KvmVcpu, dt: { base: number; limit: number }) => { fv(v).gdt = { ...dt }; },
    syncDirtyDebugRegs: () => {},
    setDr7: () => {},
    cacheReg: () => {},
    getRflags: (v: KvmVcpu) => fv(v).rflags,
    setRflags: (v: KvmVcpu, r: number) => { fv(v).rflags = r; },
    getIfFlag: (v: KvmVcpu) => (fv(v).rflags & 0x200) !== 0,
    flushTlbAll: () => {},
    flushTlbCurrent: () => {},
    flushTlbGva: () => {},
    flushTlbGuest: () => {},
    vcpuPreRun: () => 1,
    vcpuRun: (v: KvmVcpu) => {
      const f = fv(v);
      const op = peek(v, 0);
      if (op === 0xf4) f.exit = { kind: 'hlt', len: 1, port: 0, size: 0, isIn: false };
      else if (op === 0xe6 || op === 0xe4) f.exit = { kind: 'io', len: 2, port: peek(v, 1), size: 1, isIn: op === 0xe4 };
      else if (op === 0xee || op === 0xec) f.exit = { kind: 'io', len: 1, port: v.arch.regs[2]! & 0xffff, size: 1, isIn: op === 0xec };
      else f.exit = { kind: 'insn', len: 0, port: 0, size: 0, isIn: false };
      return 0;
    },
    handleExit: (v: KvmVcpu) => {
      const e = fv(v).exit;
      if (e.kind === 'hlt') return kvmEmulateHalt(v);
      if (e.kind === 'io') return kvmFastPio(v, e.size, e.port, e.isIn);
      const r = kvmEmulateInstruction(v, EMULTYPE.PF);
      // The emulator left RIP on an instruction it could not finish in real mode: stop the test.
      return toVcpu(v).stat['insn_emulation']! > 10_000 ? kvmHandleTripleFault(v) : r;
    },
    skipEmulatedInstruction: (v: KvmVcpu) => { v.arch.rip += fv(v).exit.len; return 1; },
    setInterruptShadow: (v: KvmVcpu, m: number) => { fv(v).shadow = m; },
    getInterruptShadow: (v: KvmVcpu) => fv(v).shadow,
    injectIrq: (v: KvmVcpu) => { calls.push('injectIrq'); v.stat['irq_injections']!++; v.arch.interrupt.injected = false; },
    injectNmi: () => {},
    injectException: () => {},
    cancelInjection: () => {},
    interruptAllowed: (v: KvmVcpu) => ((fv(v).rflags & 0x200) !== 0 ? 1 : 0),
    nmiAllowed: () => 1,
    getNmiMask: (v: KvmVcpu) => fv(v).nmiMasked,
    setNmiMask: (v: KvmVcpu, m: boolean) => { fv(v).nmiMasked = m; },
    enableNmiWindow: () => {},
    enableIrqWindow: () => { calls.push('enableIrqWindow'); },
    loadMmuPgd: () => {},
    getExitInfo: (v: KvmVcpu) => ({ reason: fv(v).exit.kind === 'hlt' ? 12 : fv(v).exit.kind === 'io' ? 30 : 48, info1: 0n, info2: 0n, intrInfo: 0, errorCode: 0 }),
    exitReasonName: (r: number) => ({ 12: 'HLT', 30: 'IO_INSTRUCTION', 48: 'EPT_VIOLATION' } as Record<number, string>)[r] ?? `R${r}`,
    writeTscOffset: () => {},
    tdpFormat: () => EPT_LIKE,
    inspect: () => ({ vendor: 'intel', structures: [], counters: {} }),
    ...overrides,
  };
  for (const [k, v] of Object.entries(overrides)) if (v === undefined) delete ops[k];
  return { calls, initOps: { hardwareSetup: () => 0, runtimeOps: ops as unknown as KvmX86Ops } };
}

export const ALL_HOOKS = KVM_X86_OPS.map(([n]) => n);
