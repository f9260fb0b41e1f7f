/**
 * A scripted stand-in for KVM behind the VMM's port: each KVM_RUN plays the next step of a
 * script, which may look at and change the vCPU's registers and memory as a guest would.
 */
import { KVM_REGS_FIELDS, type GuestMemory, type HostPort, type KvmRegs, type KvmSregs, type MemslotInfo, type VcpuExit, type VcpuPort, type VmPort } from '../src/kvm-port.js';
import type { KvmSegment } from '@kvmts/core';

export type ScriptStep = (vcpu: FakeVcpu) => VcpuExit;

function seg(selector: number, base: number, type: number, s = 1): KvmSegment {
  return { base, limit: 0xffff, selector, type, present: 1, dpl: 0, db: 0, s, l: 0, g: 0, avl: 0, unusable: 0 };
}

/** kvm_vcpu_reset's state (SDM Table 10-1), as KVM_GET_SREGS returns it on a new vCPU. */
export function resetSregs(): KvmSregs {
  return {
    cs: seg(0xf000, 0xffff0000, 0xb), ds: seg(0, 0, 3), es: seg(0, 0, 3), fs: seg(0, 0, 3), gs: seg(0, 0, 3), ss: seg(0, 0, 3),
    tr: seg(0, 0, 0xb, 0), ldt: seg(0, 0, 2, 0),
    gdt: { base: 0, limit: 0xffff }, idt: { base: 0, limit: 0xffff },
    cr0: 0x60000010, cr2: 0, cr3: 0, cr4: 0, cr8: 0, efer: 0, apicBase: 0xfee00900n,
  };
}

export class FakeMemory implements GuestMemory {
  readonly bytes: Uint8Array;
  readonly hva: number;
  readonly size: number;
  constructor(hva: number, size: number) { this.hva = hva; this.size = size; this.bytes = new Uint8Array(size); }
  write(offset: number, bytes: Uint8Array): void { this.bytes.set(bytes, offset); }
  read(offset: number, len: number): Uint8Array { return this.bytes.slice(offset, offset + len); }
}

export class FakeVcpu implements VcpuPort {
  regs = Object.fromEntries(KVM_REGS_FIELDS.map((n) => [n, 0n])) as KvmRegs;
  sregs = resetSregs();
  readyForInterruptInjection = true;
  requestInterruptWindow = false;
  ifFlag = true;
  readonly injected: number[] = [];
  /** The PIO data page and kvm_run.mmio.data. */
  readonly pio = new Uint8Array(4096);
  readonly mmio = new Uint8Array(8);
  private pc = 0;
  private readonly script: readonly ScriptStep[];

  constructor(script: readonly ScriptStep[]) { this.script = script; }

  getRegs(): KvmRegs { return { ...this.regs }; }
  setRegs(regs: KvmRegs): void { this.regs = { ...regs }; }
  getSregs(): KvmSregs { return structuredClone(this.sregs); }
  setSregs(sregs: KvmSregs): void { this.sregs = structuredClone(sregs); }
  run(): VcpuExit {
    const step = this.script[this.pc++];
    return step ? step(this) : { kind: 'internal_error', suberror: 99 };
  }
  interrupt(vector: number): number { this.injected.push(vector); return 0; }
  stats(): Record<string, number> { return { exits: this.pc }; }
  inspect(): null { return null; }

  out(port: number, bytes: readonly number[], size = 1): VcpuExit {
    this.pio.set(bytes);
    return { kind: 'io', dir: 'out', port, size, count: bytes.length / size, data: this.pio.subarray(0, bytes.length) };
  }
}

export class FakeVm implements VmPort {
  memory: FakeMemory | null = null;
  vcpu: FakeVcpu | null = null;
  destroyed = false;
  private readonly script: readonly ScriptStep[];
  constructor(script: readonly ScriptStep[]) { this.script = script; }
  addMemslot(_slot: number, _gpa: number, size: number): FakeMemory { this.memory = new FakeMemory(0x7f0000000000, size); return this.memory; }
  createVcpu(): FakeVcpu { this.vcpu = new FakeVcpu(this.script); return this.vcpu; }
  memslots(): MemslotInfo[] { return this.memory ? [{ slot: 0, gpa: 0, size: this.memory.size, flags: 0, hva: this.memory.hva }] : []; }
  mmuStats(): null { return null; }
  stats(): Record<string, number> { return {}; }
  destroy(): void { this.destroyed = true; }
}

export class FakeHost implements HostPort {
  readonly info = { vendor: 'intel', cpuModel: 'fake CPU', module: 'kvm_intel', apiVersion: 12, pcpus: 1 } as const;
  lastVm: FakeVm | null = null;
  private readonly script: readonly ScriptStep[];
  constructor(script: readonly ScriptStep[]) { this.script = script; }
  createVm(): FakeVm { this.lastVm = new FakeVm(this.script); return this.lastVm; }
  residentBytes(): null { return null; }
}

/** The LWN guest's exits: '4' and '\n' to COM1, then HLT with AL = '\n'. */
export function helloScript(): ScriptStep[] {
  return [
    (v) => v.out(0x3f8, [0x34]),
    (v) => { v.regs.rax = 0x0an; return v.out(0x3f8, [0x0a]); },
    (v) => { v.regs.rip += 1n; return { kind: 'hlt' }; },
  ];
}
