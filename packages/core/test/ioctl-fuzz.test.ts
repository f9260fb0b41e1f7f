/** Nothing a VMM passes may throw or hit a model bug: random requests and arguments on every fd type. */
import { describe, expect, it } from 'vitest';
import { ERRNO, Host, KVM, KVM_IOCTLS, MAP, PROT } from '../src/index.js';
import { fakeVendor, testModel } from './fake-vendor.js';

/** A small deterministic PRNG (xorshift32), so a failure can be replayed. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x;
  };
}

describe('ioctl fuzz', () => {
  it('returns a number, never -EIO, for 10000 random calls', () => {
    const host = new Host({ model: testModel, pcpus: 1, memBytes: 64 << 20 });
    host.modprobe(fakeVendor().initOps);
    const proc = host.spawn();
    const kvm = proc.open('/dev/kvm');
    const vm = proc.ioctl(kvm, KVM.KVM_CREATE_VM, 0);
    const vcpu = proc.ioctl(vm, KVM.KVM_CREATE_VCPU, 0);
    const mem = proc.mmap(0x10000, PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.ANONYMOUS);
    const fds = [kvm, vm, vcpu, 999];
    const requests = KVM_IOCTLS.map(([name]) => KVM[name]).filter((r) => r !== KVM.KVM_RUN);
    const next = rng(0x5eed);
    const interesting = [0, 1, 8, 0x1000, mem, mem + 0xff8, 0xffffffff, -1, 2 ** 53 - 1];
    for (let i = 0; i < 10000; i++) {
      const fd = fds[next() % fds.length]!;
      const request = next() % 8 === 0 ? next() : requests[next() % requests.length]!;
      let arg: number | Uint8Array;
      const kind = next() % 3;
      if (kind === 0) arg = interesting[next() % interesting.length]!;
      else if (kind === 1) {
        const b = new Uint8Array(next() % 400);
        for (let j = 0; j < b.length; j += 4) b[j] = next() & 0xff;
        arg = b;
      }
      else {
        // Mostly-zero structs in user memory, with a few random bytes (counts, flags, sizes).
        const bytes = new Uint8Array(0x200);
        for (let j = 0; j < 24; j++) bytes[next() % bytes.length] = next() & 0xff;
        proc.writeUser(mem, bytes);
        arg = mem;
      }
      const r = proc.ioctl(fd, request, arg);
      expect(Number.isInteger(r), `call ${i}`).toBe(true);
      expect(r, `call ${i}: request 0x${(request >>> 0).toString(16)} on fd ${fd}: ${host.dmesg.at(-1) ?? ''}`).not.toBe(-ERRNO.EIO);
    }
  });
});
