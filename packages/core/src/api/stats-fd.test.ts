import { describe, expect, it } from 'vitest';
import { Host } from '../host/host.js';
import { fakeVendor, testModel } from '../../test/fake-vendor.js';
import { Kvm } from './kvm.js';
import { errnoOf } from './kvm-error.js';
import { StatsFd } from './stats-fd.js';
import { StatsFile } from '../kvm/stats-fd.js';

function setup() {
  const host = new Host({ model: testModel, pcpus: 1, memBytes: 64 << 20 });
  host.modprobe(fakeVendor().initOps);
  const vm = Kvm.open(host.spawn()).createVm();
  vm.allocGuestMemory(0, 0, 0x10000);
  const vcpu = vm.createVcpu(0);
  // Real mode at 0:0x1000: out 0x80, al; hlt
  vm.memory.write(0x1000, Uint8Array.of(0xe6, 0x80, 0xf4));
  const s = vcpu.getSregs();
  vcpu.setSregs({ ...s, cs: { ...s.cs, selector: 0, base: 0 } });
  vcpu.setRegs({ ...vcpu.getRegs(), rip: 0x1000n });
  return { vm, vcpu };
}

describe('KVM_GET_STATS_FD through the façade', () => {
  it('lays the file out as kvm_stats_header, id, 64-byte kvm_stats_desc, u64 data', () => {
    const { vcpu } = setup();
    const stats = vcpu.getStatsFd();
    const n = Object.keys(stats.read().stats).length;
    const hdr = vcpu.proc.pread(stats.fd, 24, 0) as Uint8Array;
    const u32 = (b: Uint8Array, off: number): number => new DataView(b.buffer, b.byteOffset).getUint32(off, true);
    // flags, name_size (KVM_STATS_NAME_SIZE), num_desc, id_offset, desc_offset, data_offset
    expect([0, 4, 8, 12, 16, 20].map((o) => u32(hdr, o))).toEqual([0, 48, n, 24, 24 + 48, 24 + 48 + n * 64]);
    const desc = vcpu.proc.pread(stats.fd, 64, 72) as Uint8Array;
    // The first counter: cumulative, unit none, exponent 0, one u64 at data offset 0, named "exits".
    expect([u32(desc, 0), new DataView(desc.buffer).getUint16(6, true), u32(desc, 8)]).toEqual([0, 1, 0]);
    expect(new TextDecoder().decode(desc.subarray(16, 21))).toBe('exits');
    stats.close();
  });

  it('reads live counters: a vCPU after an OUT and a HLT, and its VM', () => {
    const { vm, vcpu } = setup();
    const vcpuStats = vcpu.getStatsFd();
    expect(vcpu.run()).toMatchObject({ kind: 'IoOut', port: 0x80 });
    expect(vcpu.run()).toEqual({ kind: 'Hlt' });
    const r = vcpuStats.read();
    expect(r.id).toBe(`kvm-${vm.proc.pid}/vcpu-0`);
    expect([r.stats['io_exits'], r.stats['halt_exits']]).toEqual([1n, 1n]);
    const v = vm.getStatsFd().read();
    expect(v.id).toBe(`kvm-${vm.proc.pid}`);
    expect(v.stats['io_exits']).toBe(1n);
    vcpuStats.close();
  });

  it('gives EBADF once closed, and the stats fd answers no ioctl (ENOTTY)', () => {
    const { vcpu } = setup();
    const stats = vcpu.getStatsFd();
    expect(vcpu.proc.ioctl(stats.fd, 0xae80)).toBe(-25);
    stats.close();
    expect(errnoOf(() => stats.read())).toBe(9);
    expect(errnoOf(() => stats.close())).toBe(9);
  });

  it('reads a file larger than its first read whole', () => {
    const { vm } = setup();
    const counters = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`counter_${i}`, i * 3]));
    const fd = vm.proc.installFd(new StatsFile('big', () => counters, () => {}));
    const r = new StatsFd(vm.proc, fd).read();
    expect(Object.keys(r.stats)).toHaveLength(200);
    expect([r.stats['counter_0'], r.stats['counter_199']]).toEqual([0n, 597n]);
  });
});
