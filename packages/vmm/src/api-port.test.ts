import { describe, expect, it } from 'vitest';
import { createHost } from './host.js';
import { ApiHost, ApiVcpu, vcpuCpuid } from './api-port.js';

async function intel(): Promise<ApiHost> {
  const h = await createHost('intel', { memBytes: 256 << 20 });
  if (!(h instanceof ApiHost)) throw new Error(String(h));
  return h;
}

describe('vcpuCpuid', () => {
  it('puts the vCPU id in CPUID.1:EBX[31:24] and leaves every other bit and leaf', () => {
    const supported = [
      { function: 0, index: 0, flags: 0, eax: 0xd, ebx: 0x756e6547, ecx: 0x6c65746e, edx: 0x49656e69 },
      { function: 1, index: 0, flags: 0, eax: 0x906a0, ebx: 0xff010800, ecx: 0x80000001, edx: 0x178bfbff },
    ];
    const t = vcpuCpuid(supported, 3);
    expect(t[1]!.ebx).toBe(0x03010800);
    expect(t[0]).toEqual(supported[0]);
    expect(supported[1]!.ebx).toBe(0xff010800);
  });
});

describe('the port over the typed façade', () => {
  it('returns -errno where the façade throws: KVM_CREATE_VCPU twice (EEXIST), KVM_INTERRUPT 256 (EINVAL)', async () => {
    const vm = (await intel()).createVm();
    if (typeof vm === 'number') throw new Error(`errno ${-vm}`);
    const vcpu = vm.createVcpu(0);
    if (typeof vcpu === 'number') throw new Error(`errno ${-vcpu}`);
    expect(vm.createVcpu(0)).toBe(-17);
    expect(vcpu.interrupt(256)).toBe(-22);
    expect(vcpu.interrupt(0x20)).toBe(0);
    vm.destroy();
    vm.destroy();
  });

  it('keeps its memslots and reads and writes them by offset', async () => {
    const vm = (await intel()).createVm();
    if (typeof vm === 'number') throw new Error(`errno ${-vm}`);
    const mem = vm.addMemslot(1, 0x100000, 0x10000);
    if (typeof mem === 'number') throw new Error(`errno ${-mem}`);
    mem.write(0x20, Uint8Array.of(1, 2, 3));
    expect(Array.from(mem.read(0x1f, 5))).toEqual([0, 1, 2, 3, 0]);
    expect(vm.memslots()).toEqual([{ slot: 1, gpa: 0x100000, size: 0x10000, flags: 0, hva: mem.hva }]);
    // The same slot number over another range is refused by KVM_SET_USER_MEMORY_REGION (EINVAL).
    expect(vm.addMemslot(1, 0x200000, 0x8000)).toBe(-22);
    vm.destroy();
  });

  it('maps kvm_run exits to the trace words: OUT, then HLT; not in guest mode; stats by fd', async () => {
    const vm = (await intel()).createVm();
    if (typeof vm === 'number') throw new Error(`errno ${-vm}`);
    const mem = vm.addMemslot(0, 0, 0x10000);
    const vcpu = vm.createVcpu(0);
    if (typeof mem === 'number' || !(vcpu instanceof ApiVcpu)) throw new Error('set-up failed');
    mem.write(0x1000, Uint8Array.of(0xb0, 0x5a, 0xe6, 0x80, 0xf4)); // mov al,0x5a; out 0x80,al; hlt
    const s = vcpu.getSregs();
    vcpu.setSregs({ ...s, cs: { ...s.cs, selector: 0, base: 0 } });
    vcpu.setRegs({ ...vcpu.getRegs(), rip: 0x1000n });
    const out = vcpu.run();
    expect(out).toMatchObject({ kind: 'io', dir: 'out', port: 0x80, size: 1, count: 1 });
    expect(out.kind === 'io' && Array.from(out.data)).toEqual([0x5a]);
    expect(vcpu.run()).toEqual({ kind: 'hlt' });
    expect(vcpu.isGuestMode()).toBe(false);
    // Read through KVM_GET_STATS_FD: the exits by reason are there once seen.
    expect(vcpu.stats()).toMatchObject({ io_exits: 1, halt_exits: 1, exit_IO_INSTRUCTION: 1, exit_HLT: 1 });
    expect(vm.stats()).toMatchObject({ io_exits: 1, halt_exits: 1 });
    vm.destroy();
  });
});
