/** KVM_GET_SUPPORTED_CPUID, then KVM_SET_CPUID2 on each vCPU before its first KVM_RUN, as QEMU and Firecracker do. */
import { describe, expect, it } from 'vitest';
import { KvmApi, findCpuidEntry, type CpuidEntry } from '@kvmts/core';
import { ApiHost, ApiVcpu, vcpuCpuid } from '../src/api-port.js';
import { createHost } from '../src/host.js';
import { Machine } from '../src/machine.js';

const MAX_EXITS = 10_000;
const VENDOR_EBX = { intel: 0x756e6547, amd: 0x68747541 } as const; // "Genu", "Auth"
const CPUID1_ECX_OSXSAVE = 1 << 27;
const CPUID1_ECX_HYPERVISOR = 1 << 31;

async function host(vendor: 'intel' | 'amd'): Promise<ApiHost> {
  const h = await createHost(vendor, { memBytes: 1 << 30 });
  if (!(h instanceof ApiHost)) throw new Error(String(h));
  return h;
}

/** Real mode: OUT 0x80 (a userspace exit to stop at), then CPUID(EAX=leaf, ECX=0), then HLT. */
function cpuidGuest(leaf: number): Uint8Array {
  const l = [leaf & 0xff, (leaf >>> 8) & 0xff, (leaf >>> 16) & 0xff, leaf >>> 24];
  return Uint8Array.of(0xe6, 0x80, 0x66, 0xb8, ...l, 0x66, 0x31, 0xc9, 0x0f, 0xa2, 0xf4);
}

function boot(h: ApiHost, leaf: number): { m: Machine; vcpu: ApiVcpu } {
  const m = Machine.create(h, { image: cpuidGuest(leaf) });
  if (typeof m === 'string') throw new Error(m);
  if (!(m.vcpu instanceof ApiVcpu)) throw new Error('not a /dev/kvm vCPU');
  return { m, vcpu: m.vcpu };
}

/** The four registers the guest's CPUID left, from the final row. */
function guestSaw(m: Machine): number[] {
  m.runToEnd(undefined, MAX_EXITS);
  if (m.final?.exit !== 'hlt') throw new Error(`ended with ${m.final?.exit}`);
  const r = m.final.regs;
  return [r['rax']!, r['rbx']!, r['rcx']!, r['rdx']!].map((v) => Number(BigInt(v)));
}

function entry(table: readonly CpuidEntry[], fn: number): CpuidEntry {
  const e = findCpuidEntry(table, fn, 0);
  if (!e) throw new Error(`no CPUID leaf 0x${fn.toString(16)}`);
  return e;
}

describe.each(['intel', 'amd'] as const)('on %s', (vendor) => {
  it('sets what KVM_GET_SUPPORTED_CPUID offers on the vCPU before it runs', async () => {
    const h = await host(vendor);
    const supported = KvmApi.open(h.host.spawn()).getSupportedCpuid();
    const { m, vcpu } = boot(h, 0);
    const set = vcpu.fd.getCpuid2();
    expect(set).toEqual(vcpuCpuid(supported, 0));
    expect(set.length).toBeGreaterThan(10);
    m.destroy();
  });

  it('gives the guest the leaves it was set: vendor (leaf 0) and features (leaf 1)', async () => {
    const h = await host(vendor);
    const leaf0 = boot(h, 0);
    const set = leaf0.vcpu.fd.getCpuid2();
    const e0 = entry(set, 0);
    expect(guestSaw(leaf0.m)).toEqual([e0.eax, e0.ebx, e0.ecx, e0.edx]);
    expect(e0.ebx).toBe(VENDOR_EBX[vendor]);
    leaf0.m.destroy();

    const leaf1 = boot(h, 1);
    const e1 = entry(set, 1);
    // CR4.OSXSAVE is clear in real mode, so KVM clears CPUID.1:ECX.OSXSAVE (kvm_update_cpuid_runtime).
    expect(guestSaw(leaf1.m)).toEqual([e1.eax, e1.ebx, (e1.ecx & ~CPUID1_ECX_OSXSAVE) >>> 0, e1.edx]);
    expect(e1.ecx & CPUID1_ECX_HYPERVISOR).not.toBe(0);
    leaf1.m.destroy();
  });
});

describe('across a migration', () => {
  it('the guest keeps the CPUID it booted with on the other vendor (issue 9)', async () => {
    const [intel, amd] = [await host('intel'), await host('amd')];
    const { m, vcpu } = boot(intel, 0);
    const booted = vcpu.fd.getCpuid2();
    expect(m.step().exit).toMatchObject({ kind: 'io', port: 0x80 });
    const r = m.migrate(amd);
    if (typeof r === 'string') throw new Error(r);
    expect(m.host).toBe(amd);
    expect((m.vcpu as ApiVcpu).fd.getCpuid2()).toEqual(booted);
    expect(guestSaw(m)[1]).toBe(VENDOR_EBX.intel);
    m.destroy();
  });
});
