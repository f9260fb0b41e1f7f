/** The guest FPU (XSAVE image, the legacy fields, XCR0) moves with the VM, within and across vendors. */
import { describe, expect, test } from 'vitest';
import { Host, type VcpuFd } from '@kvmts/core';
import { intelCpuModel, vmxInitOps } from '@kvmts/vmx';
import { amdCpuModel, svmInitOps } from '@kvmts/svm';
import { createVmHandle, destroyVmHandle, migrateVm, type VmHandle } from '../src/index.js';

type Vendor = 'intel' | 'amd';

function newHost(vendor: Vendor): Host {
  const host = new Host({ model: vendor === 'intel' ? intelCpuModel() : amdCpuModel(), pcpus: 1, memBytes: 1 << 30 });
  expect(host.modprobe(vendor === 'intel' ? vmxInitOps : svmInitOps)).toBe(0);
  return host;
}

/** A two-vCPU VM whose CPUID offers XSAVE of x87 and SSE (leaf 0xD), so XCR0 = 3 is valid. */
function newVm(host: Host): VmHandle {
  const h = createVmHandle(host, [{ slot: 0, guestPhysAddr: 0, memorySize: 0x10000 }], 2);
  const cpuid = [
    ...h.kvm.getSupportedCpuid().filter((e) => e.function !== 0xd),
    { function: 0xd, index: 0, flags: 1, eax: 3, ebx: 0x240, ecx: 0x240, edx: 0 },
  ];
  for (const v of h.vcpus) v.setCpuid2(cpuid);
  return h;
}

/** An XSAVE image with x87 and SSE in use: every register byte distinct, MXCSR with flags raised. */
function xsaveImage(): Uint8Array {
  const b = new Uint8Array(4096);
  const dv = new DataView(b.buffer);
  dv.setUint16(0, 0x027f, true); // fcw: 53-bit precision
  dv.setUint16(2, 0x3800, true); // fsw: TOP = 7
  b[4] = 0x80; // ftw: ST7 in use
  dv.setBigUint64(8, 0xffffffff81001234n, true);
  dv.setUint32(24, 0x1fa1, true); // mxcsr: IE and PE raised
  for (let i = 0; i < 128; i++) b[32 + i] = (i * 3 + 1) & 0xff;
  for (let i = 0; i < 256; i++) b[160 + i] = (i * 5 + 7) & 0xff;
  dv.setBigUint64(512, 3n, true);
  return b;
}

interface FpuView { xsave: Uint8Array; fpu: ReturnType<VcpuFd['getFpu']>; xcrs: ReturnType<VcpuFd['getXcrs']> }
const view = (v: VcpuFd): FpuView => ({ xsave: v.getXsave(), fpu: v.getFpu(), xcrs: v.getXcrs() });

describe('FPU state in live migration', () => {
  test.each([['intel', 'intel'], ['intel', 'amd'], ['amd', 'intel'], ['amd', 'amd']] as const)('%s to %s', (from, to) => {
    const src = newVm(newHost(from));
    const [v0, v1] = src.vcpus as [VcpuFd, VcpuFd];
    // vCPU 0: x87 and SSE in use, XCR0 = x87|SSE.
    v0.setXsave(xsaveImage());
    v0.setXcrs([{ xcr: 0, value: 3n }]);
    // vCPU 1: only KVM_SET_FPU, so XSTATE_BV stays 0 and the XSAVE image shows the init state.
    v1.setFpu({ ...v1.getFpu(), fcw: 0x7f, fpr: new Uint8Array(128).fill(0x5a), lastOpcode: 0x123, xmm: new Uint8Array(256).fill(0xa5) });
    const before = src.vcpus.map(view);
    expect(before[0]!.fpu.fcw).toBe(0x027f);
    expect(before[0]!.xsave.subarray(24, 28)).toEqual(new Uint8Array([0xa1, 0x1f, 0, 0]));
    expect(before[1]!.fpu.fcw).toBe(0x7f);

    const { vm } = migrateVm(src, newHost(to));
    const after = vm.vcpus.map(view);
    expect(after).toEqual(before);
    expect(after[0]!.xcrs).toEqual([{ xcr: 0, value: 3n }]);
    expect(after[0]!.xsave.subarray(0, 416)).toEqual(xsaveImage().subarray(0, 416));
    expect(after[1]!.fpu.lastOpcode).toBe(0x123);
    destroyVmHandle(vm);
  });
});
