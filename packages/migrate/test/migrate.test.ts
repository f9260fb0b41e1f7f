import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { Host, KVM_STATE_NESTED, type VcpuFd } from '@kvmts/core';
import { intelCpuModel, vmxInitOps } from '@kvmts/vmx';
import { amdCpuModel, svmInitOps } from '@kvmts/svm';
import { createVmHandle, destroyVmHandle, migrateVm, MigrationRefused, parseNestedState, type VmHandle } from '../src/index.js';

const HERE = new URL('.', import.meta.url).pathname;
const WRITER = readFileSync(join(HERE, 'guests/dirty-writer.bin'));
const MEM = 0x40000;
const LOAD = 0x1000;
const DATA = 0x20000;
const PORT_STEP = 0x500;
const PORT_SUM = 0x501;
const PORT_EXIT = 0xf4;

type Vendor = 'intel' | 'amd';

function newHost(vendor: Vendor): Host {
  const host = new Host({ model: vendor === 'intel' ? intelCpuModel() : amdCpuModel(), pcpus: 1, memBytes: 1 << 30 });
  expect(host.modprobe(vendor === 'intel' ? vmxInitOps : svmInitOps)).toBe(0);
  return host;
}

/** A VM in real mode with the writer at 0x1000, as `kvmts run --mode real` sets it up. */
function bootWriter(host: Host): VmHandle {
  const h = createVmHandle(host, [{ slot: 0, guestPhysAddr: 0, memorySize: MEM }], 1);
  h.vm.memory.write(LOAD, WRITER);
  const v = h.vcpus[0]!;
  const s = v.getSregs();
  for (const seg of [s.cs, s.ds, s.es, s.fs, s.gs, s.ss]) { seg.selector = 0; seg.base = 0; }
  v.setSregs(s);
  const r = v.getRegs();
  for (const k of Object.keys(r) as (keyof typeof r)[]) r[k] = 0n;
  r.rip = BigInt(LOAD);
  r.rflags = 2n;
  v.setRegs(r);
  return h;
}

interface Outcome { trace: string[]; sum: string; rip: bigint; data: Uint8Array }

/** Runs the writer to its end, one KVM_RUN per exit; `between(n)` may migrate after the n-th exit. */
function runWriter(start: VmHandle, between?: (exits: number, h: VmHandle) => VmHandle): Outcome {
  let h = start;
  const trace: string[] = [];
  let sum = '';
  for (let exits = 1; ; exits++) {
    const e = h.vcpus[0]!.run();
    if (e.kind === 'Intr') continue;
    if (e.kind !== 'IoOut') throw new Error(`unexpected exit ${e.kind}`);
    const value = Buffer.from(e.data).toString('hex');
    trace.push(`${e.port.toString(16)}:${value}`);
    if (e.port === PORT_SUM) sum = value;
    if (e.port === PORT_EXIT) break;
    if (between) h = between(exits, h);
  }
  const out = { trace, sum, rip: h.vcpus[0]!.getRegs().rip, data: h.vm.memory.read(DATA, 0x10000) };
  destroyVmHandle(h);
  return out;
}

/** Lets the guest run `n` exits between pre-copy rounds, recording them in `trace` as the VMM would. */
function slice(v: () => VcpuFd, n: number, record: (port: number, data: Uint8Array) => void) {
  return () => {
    for (let i = 0; i < n; i++) {
      const e = v().run();
      if (e.kind === 'IoOut') record(e.port, e.data);
    }
  };
}

const baseline = runWriter(bootWriter(newHost('intel')));

describe('the writer guest', () => {
  test('runs 2000 steps and reports a checksum over its 16 pages', () => {
    expect(baseline.trace).toHaveLength(2002);
    expect(baseline.trace[0]).toBe('500:0000');
    expect(baseline.trace.at(-1)).toBe('f4:00');
    expect(baseline.sum).not.toBe('0000');
  });

  test('gives the same trace on AMD as on Intel', () => {
    const amd = runWriter(bootWriter(newHost('amd')));
    expect(amd.trace).toEqual(baseline.trace);
    expect(amd.data).toEqual(baseline.data);
  });
});

describe('live migration', () => {
  test('alternating Intel and AMD every 97 exits loses nothing: same trace, memory and registers', () => {
    const hosts = { intel: newHost('intel'), amd: newHost('amd') };
    let migrations = 0;
    const out = runWriter(bootWriter(hosts.intel), (exits, h) => {
      if (exits % 97 !== 0) return h;
      const to: Vendor = h.host === hosts.intel ? 'amd' : 'intel';
      const { vm, stats } = migrateVm(h, hosts[to]);
      expect(stats.from).not.toBe(stats.to);
      expect(stats.pagesSent).toBeGreaterThan(0);
      migrations++;
      return vm;
    });
    expect(migrations).toBe(20);
    expect(out.trace).toEqual(baseline.trace);
    expect(out.sum).toBe(baseline.sum);
    expect(out.rip).toBe(baseline.rip);
    expect(out.data).toEqual(baseline.data);
  });

  test('pre-copy re-sends every page the running guest dirtied, round after round', () => {
    const hosts = { intel: newHost('intel'), amd: newHost('amd') };
    const recorded: string[] = [];
    const record = (port: number, data: Uint8Array) => recorded.push(`${port.toString(16)}:${Buffer.from(data).toString('hex')}`);
    let stats: ReturnType<typeof migrateVm>['stats'] | null = null;
    const out = runWriter(bootWriter(hosts.intel), (exits, h) => {
      if (exits !== 500) return h;
      const r = migrateVm(h, hosts.amd, { maxRounds: 5, dirtyThreshold: 0, runSlice: slice(() => h.vcpus[0]!, 40, record) });
      stats = r.stats;
      return r.vm;
    });
    // The guest ran 5 slices of 40 steps during pre-copy; each step dirties one of 16 pages.
    expect(stats!.rounds).toBe(5);
    expect(stats!.pagesPerPass.slice(1, 6)).toEqual([16, 16, 16, 16, 16]);
    const merged = [...out.trace.slice(0, 500), ...recorded, ...out.trace.slice(500)];
    expect(merged).toEqual(baseline.trace);
    expect(out.data).toEqual(baseline.data);
  });

  test('the guest keeps the CPUID it booted with', () => {
    const hosts = { intel: newHost('intel'), amd: newHost('amd') };
    const h = bootWriter(hosts.intel);
    const supported = h.kvm.getSupportedCpuid();
    h.vcpus[0]!.setCpuid2(supported);
    const { vm } = migrateVm(h, hosts.amd);
    const leaf0 = vm.vcpus[0]!.getCpuid2().find((e) => e.function === 0)!;
    // "GenuineIntel" in EBX, EDX, ECX.
    expect([leaf0.ebx, leaf0.edx, leaf0.ecx]).toEqual([0x756e6547, 0x49656e69, 0x6c65746e]);
    destroyVmHandle(vm);
  });
});

describe('vCPU events', () => {
  test('an injected external interrupt moves; an injected INT3 #BP does not (Linux leaves soft exceptions out)', () => {
    const hosts = { intel: newHost('intel'), amd: newHost('amd') };
    const h = bootWriter(hosts.intel);
    const v = h.vcpus[0]!;
    const e = v.getVcpuEvents();
    v.setVcpuEvents({ ...e, interrupt: { ...e.interrupt, injected: 1, nr: 0x20 } });
    const { vm } = migrateVm(h, hosts.amd);
    expect(vm.vcpus[0]!.getVcpuEvents().interrupt).toMatchObject({ injected: 1, nr: 0x20 });
    destroyVmHandle(vm);

    const h2 = bootWriter(hosts.intel);
    const v2 = h2.vcpus[0]!;
    const e2 = v2.getVcpuEvents();
    v2.setVcpuEvents({ ...e2, exception: { ...e2.exception, injected: 1, nr: 3 } });
    // KVM_GET_VCPU_EVENTS itself leaves the #BP out, as Linux does (kvm_exception_is_soft).
    expect(v2.getVcpuEvents().exception.injected).toBe(0);
    const moved = migrateVm(h2, hosts.amd).vm;
    expect(moved.vcpus[0]!.getVcpuEvents().exception.injected).toBe(0);
    destroyVmHandle(moved);
  });
});

describe('nested state', () => {
  function nestedBytes(flags: number, format: number, vmxonPa: bigint): Uint8Array {
    const b = new Uint8Array(KVM_STATE_NESTED.HEADER_SIZE);
    const dv = new DataView(b.buffer);
    dv.setUint16(0, flags, true);
    dv.setUint16(2, format, true);
    dv.setUint32(4, b.length, true);
    dv.setBigUint64(8, BigInt.asUintN(64, vmxonPa), true);
    dv.setBigUint64(16, (1n << 64n) - 1n, true);
    return b;
  }

  test('parses the VMX header', () => {
    const s = parseNestedState(nestedBytes(KVM_STATE_NESTED.GUEST_MODE, KVM_STATE_NESTED.FORMAT_VMX, 0x5000n));
    expect(s).toMatchObject({ format: 'vmx', flags: 1, vmxonPa: 0x5000n, vmcsPa: -1n });
  });

  test('a VM with no nested state crosses vendors', () => {
    const h = bootWriter(newHost('intel'));
    const { vm, stats } = migrateVm(h, newHost('amd'));
    expect(stats).toMatchObject({ from: 'intel', to: 'amd' });
    destroyVmHandle(vm);
  });

  test('refusal is a MigrationRefused error', () => {
    expect(new MigrationRefused('x').name).toBe('MigrationRefused');
  });

  test('a VM with CR4.VMXE set stays on Intel, untouched, and runs on', () => {
    const intel = newHost('intel');
    const h = bootWriter(intel);
    const v = h.vcpus[0]!;
    v.setCpuid2(h.kvm.getSupportedCpuid());
    const s = v.getSregs();
    s.cr4 |= 1n << 13n;
    v.setSregs(s);
    const before = { regs: v.getRegs(), sregs: v.getSregs() };
    expect(() => migrateVm(h, newHost('amd'))).toThrow(/vCPU 0 has CR4.VMXE set: it uses Intel VMX, which an AMD vCPU does not have/);
    expect(v.getRegs()).toEqual(before.regs);
    expect(v.getSregs()).toEqual(before.sregs);
    expect(v.run()).toMatchObject({ kind: 'IoOut', port: PORT_STEP });
    destroyVmHandle(h);
  });
});

describe('the writer image', () => {
  const gcc = (() => { try { execFileSync('gcc', ['--version']); execFileSync('ld', ['--version']); return true; } catch { return false; } })();
  test.skipIf(!gcc)('matches its source (rebuilt with gcc and ld)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kvmts-migrate-'));
    execFileSync('gcc', ['-c', '-o', join(dir, 'w.o'), join(HERE, 'guests/dirty-writer.S')]);
    execFileSync('ld', ['-Ttext=0x1000', '--oformat=binary', '-o', join(dir, 'w.bin'), join(dir, 'w.o')]);
    expect(readFileSync(join(dir, 'w.bin'))).toEqual(WRITER);
  });
  if (!gcc) console.log('skipping the writer rebuild check: gcc or ld is missing');
});
