/**
 * The guest from LWN's "Using the KVM API" (2015), written against @kvmts/core's typed façade
 * exactly as the article's C program drives /dev/kvm: CREATE_VM, one memslot, CREATE_VCPU,
 * real-mode SREGS, RAX = RBX = 2, then RUN until HLT. It prints "4\n". Run on each vendor.
 */
import { describe, expect, it } from 'vitest';
import { Host, KVM_CAP, type KvmX86InitOps } from '@kvmts/core';
import { Kvm } from '@kvmts/core/api';
import type { CpuModel } from '@kvmts/x86';
import { intelCpuModel, vmxInitOps } from '@kvmts/vmx';
import { amdCpuModel, svmInitOps } from '@kvmts/svm';

// mov $0x3f8,%dx; add %bl,%al; add $'0',%al; out %al,(%dx); mov $'\n',%al; out %al,(%dx); hlt
const CODE = [0xba, 0xf8, 0x03, 0x00, 0xd8, 0x04, 0x30, 0xee, 0xb0, 0x0a, 0xee, 0xf4];

const VENDORS: readonly [string, () => CpuModel, KvmX86InitOps][] = [
  ['intel', intelCpuModel, vmxInitOps],
  ['amd', amdCpuModel, svmInitOps],
];

describe.each(VENDORS)('LWN "Using the KVM API" on %s', (_name, model, initOps) => {
  it('prints 4 and ends in KVM_EXIT_HLT', () => {
    const host = new Host({ model: model(), pcpus: 1, memBytes: 256 << 20 });
    expect(host.modprobe(initOps)).toBe(0);
    const kvm = Kvm.open(host.spawn());
    expect(kvm.apiVersion()).toBe(12);
    expect(kvm.checkExtension(KVM_CAP.USER_MEMORY)).toBe(1);
    const vm = kvm.createVm();
    vm.allocGuestMemory(0, 0x1000, 0x1000);
    vm.memory.write(0x1000, Uint8Array.from(CODE));
    const vcpu = vm.createVcpu(0);
    const sregs = vcpu.getSregs();
    vcpu.setSregs({ ...sregs, cs: { ...sregs.cs, base: 0, selector: 0 } });
    vcpu.setRegs({ ...vcpu.getRegs(), rip: 0x1000n, rax: 2n, rbx: 2n, rflags: 0x2n });
    let out = '';
    for (let i = 0; i < 10; i++) {
      const exit = vcpu.run();
      if (exit.kind === 'IoOut' && exit.port === 0x3f8 && exit.size === 1 && exit.count === 1) {
        out += String.fromCharCode(exit.data[0]!);
        continue;
      }
      expect(exit).toEqual({ kind: 'Hlt' });
      break;
    }
    expect(out).toBe('4\n');
    expect(vcpu.stats()['halt_exits']).toBe(1);
    expect(vcpu.stats()['io_exits']).toBe(2);
  });
});
