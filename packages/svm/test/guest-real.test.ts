import { describe, expect, it } from 'vitest';
import { createVm, getRegs, kvmRun, load, realMode, setRegs, KVM_EXIT } from './vm.js';

describe('kvm_amd runs a real-mode guest (NPT, no paging)', () => {
  it('OUT to the serial port exits to userspace, CPUID is handled in the kernel, HLT ends the run', () => {
    const vm = createVm();
    load(vm, 0x1000, [
      0xb0, 0x41, // mov al, 'A'
      0xba, 0xf8, 0x03, // mov dx, 0x3f8
      0xee, // out dx, al
      0x66, 0x31, 0xc0, // xor eax, eax
      0x0f, 0xa2, // cpuid
      0xf4, // hlt
    ]);
    realMode(vm);
    setRegs(vm, { rbx: 0x1234n });
    expect(kvmRun(vm)).toBe(KVM_EXIT.IO);
    const io = vm.run.io.get();
    expect(io).toMatchObject({ direction: 1, size: 1, port: 0x3f8, count: 1 });
    expect(vm.runBytes[io.dataOffset]).toBe(0x41);
    expect(kvmRun(vm)).toBe(KVM_EXIT.HLT);
    const regs = getRegs(vm);
    expect(regs['rip']).toBe(0x100cn);
    // CPUID went through kvm_emulate_cpuid: with no KVM_SET_CPUID2 table every leaf reads as zero.
    expect(regs['rbx']).toBe(0n);
    expect(regs['rax']).toBe(0n);
  });
});
