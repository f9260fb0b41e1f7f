/**
 * A stack for command tests: hosts whose vCPUs replay a script of exits, as the VMM's port
 * defines them, and a catalog with the LWN guest.
 */
import { KVM_REGS_FIELDS, type GuestMemory, type HostPort, type KvmRegs, type KvmSregs, type VcpuExit, type VcpuPort, type VmPort } from '@kvmts/vmm';
import type { KvmSegment } from '@kvmts/core';
import type { CatalogGuest, Stack } from '../src/stack.js';

export type ScriptStep = (vcpu: ScriptedVcpu) => VcpuExit;

const seg = (selector: number, base: number, type: number, s = 1): KvmSegment =>
  ({ base, limit: 0xffff, selector, type, present: 1, dpl: 0, db: 0, s, l: 0, g: 0, avl: 0, unusable: 0 });

export function resetSregs(): KvmSregs {
  return new ScriptedVcpu([]).getSregs();
}

export class ScriptedVcpu implements VcpuPort {
  regs = Object.fromEntries(KVM_REGS_FIELDS.map((n) => [n, 0n])) as KvmRegs;
  sregs: KvmSregs = {
    cs: seg(0xf000, 0xffff0000, 0xb), ds: seg(0, 0, 3), es: seg(0, 0, 3), fs: seg(0, 0, 3), gs: seg(0, 0, 3), ss: seg(0, 0, 3),
    tr: seg(0, 0, 0xb, 0), ldt: seg(0, 0, 2, 0), gdt: { base: 0, limit: 0xffff }, idt: { base: 0, limit: 0xffff },
    cr0: 0x60000010, cr2: 0, cr3: 0, cr4: 0, cr8: 0, efer: 0, apicBase: 0xfee00900n,
  };
  readyForInterruptInjection = true;
  requestInterruptWindow = false;
  ifFlag = false;
  readonly pio = new Uint8Array(4096);
  runs = 0;
  private readonly script: readonly ScriptStep[];
  constructor(script: readonly ScriptStep[]) { this.script = script; }
  getRegs(): KvmRegs { return { ...this.regs }; }
  setRegs(regs: KvmRegs): void { this.regs = { ...regs }; }
  getSregs(): KvmSregs { return structuredClone(this.sregs); }
  setSregs(sregs: KvmSregs): void { this.sregs = structuredClone(sregs); }
  run(): VcpuExit {
    const step = this.script[Math.min(this.runs++, this.script.length - 1)];
    return step ? step(this) : { kind: 'hlt' };
  }
  interrupt(): number { return 0; }
  /** No kernel stats: the dashboard counts the userspace exits itself. */
  stats(): Record<string, number> { return {}; }
  inspect(): null { return null; }
  out(port: number, byte: number): VcpuExit {
    this.pio[0] = byte;
    return { kind: 'io', dir: 'out', port, size: 1, count: 1, data: this.pio.subarray(0, 1) };
  }
}

class Memory implements GuestMemory {
  readonly hva = 0x7f0000000000;
  readonly size: number;
  readonly bytes: Uint8Array;
  constructor(size: number) { this.size = size; this.bytes = new Uint8Array(Math.min(size, 1 << 24)); }
  write(offset: number, bytes: Uint8Array): void { if (offset + bytes.length <= this.bytes.length) this.bytes.set(bytes, offset); }
  read(offset: number, len: number): Uint8Array { return this.bytes.slice(offset, offset + len); }
}

export class ScriptedHost implements HostPort {
  readonly info;
  vcpus: ScriptedVcpu[] = [];
  private readonly script: readonly ScriptStep[];
  constructor(vendor: 'intel' | 'amd', script: readonly ScriptStep[]) {
    this.info = { vendor, cpuModel: `scripted ${vendor}`, module: `kvm_${vendor}`, apiVersion: 12, pcpus: 2 };
    this.script = script;
  }
  createVm(): VmPort {
    let memory: Memory | null = null;
    return {
      addMemslot: (_slot, _gpa, size) => (memory = new Memory(size)),
      createVcpu: () => { const v = new ScriptedVcpu(this.script); this.vcpus.push(v); return v; },
      memslots: () => (memory ? [{ slot: 0, gpa: 0, size: memory.size, flags: 0, hva: memory.hva }] : []),
      mmuStats: () => ({ tdpPages: 3, dirtyPages: 0 }),
      stats: () => ({}),
      destroy: () => {},
    };
  }
  residentBytes(): null { return null; }
}

/** The LWN guest: '4' and '\n' on COM1, then HLT with AL = '\n'. */
export const HELLO_SCRIPT: ScriptStep[] = [
  (v) => v.out(0x3f8, 0x34),
  (v) => { v.regs.rax = 0x0an; return v.out(0x3f8, 0x0a); },
  (v) => { v.regs.rip += 1n; return { kind: 'hlt' }; },
];

export const HELLO_GUEST: CatalogGuest = {
  name: 'hello', kind: 'test', description: 'the LWN "Using the KVM API" guest', mode: 'real', mem: 0x200000, load: 0x1000, entry: 0x1000,
  regs: { rax: 2, rbx: 2 }, loadImage: () => Uint8Array.of(0xba, 0xf8, 0x03, 0x00, 0xd8, 0x04, 0x30, 0xee, 0xb0, 0x0a, 0xee, 0xf4),
};

export function scriptedStack(script: readonly ScriptStep[], opts: { amd?: boolean } = {}): Stack & { hosts: ScriptedHost[] } {
  const hosts: ScriptedHost[] = [];
  return {
    hosts,
    createHost: async (vendor) => {
      if (vendor === 'amd' && !opts.amd) return 'kvm_amd is not available yet';
      const h = new ScriptedHost(vendor, script);
      hosts.push(h);
      return h;
    },
    catalog: async () => [HELLO_GUEST],
    benchImage: async () => null,
    cpuLoop: async () => 'no bare CPU in the fake stack',
  };
}

/** Collects what a command writes. */
export function captureIo() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out, err,
    stdout: { write: (t: string) => out.push(t) },
    stderr: { write: (t: string | Uint8Array) => err.push(typeof t === 'string' ? t : Buffer.from(t).toString('latin1')) },
    get stdoutText() { return out.join(''); },
    get stderrText() { return err.join(''); },
  };
}
