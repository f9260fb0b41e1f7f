import { describe, it, expect } from 'vitest';
import { makeVm, runToEnd } from './vm.js';

/** The guest of LWN's "Using the KVM API": prints AL+BL as a digit and a newline on port 0x3f8, then HLT. */
const LWN_GUEST = [0xba, 0xf8, 0x03, 0x00, 0xd8, 0x04, 0x30, 0xee, 0xb0, 0x0a, 0xee, 0xf4];

describe('the LWN "Using the KVM API" guest on kvm_intel', () => {
  it('prints 4 and a newline on port 0x3f8, then halts', () => {
    const vm = makeVm(0x200000);
    vm.write(0x1000, LWN_GUEST);
    vm.setSregs((s) => {
      const cs = s['cs'] as Record<string, unknown>;
      cs['base'] = 0n;
      cs['selector'] = 0;
    });
    vm.setRegs({ rip: 0x1000n, rax: 2n, rbx: 2n, rflags: 2n });
    const rows = runToEnd(vm);
    expect(rows).toEqual([
      { exit: 'io', dir: 'out', port: 0x3f8, size: 1, count: 1, data: [0x34] },
      { exit: 'io', dir: 'out', port: 0x3f8, size: 1, count: 1, data: [0x0a] },
      { exit: 'hlt', reason: 5 },
    ]);
    expect(vm.getRegs()['rip']).toBe(0x100cn);
  });
});

describe('a failed VM entry through KVM', () => {
  it('an invalid CS from KVM_SET_SREGS gives KVM_EXIT_FAIL_ENTRY with reason 0x80000021', () => {
    const vm = makeVm(0x200000);
    vm.write(0x1000, LWN_GUEST);
    vm.setSregs((s) => {
      const cs = s['cs'] as Record<string, unknown>;
      cs['base'] = 0n;
      cs['selector'] = 0;
      cs['type'] = 1; // a read-only data segment in CS
    });
    vm.setRegs({ rip: 0x1000n, rflags: 2n });
    const rows = runToEnd(vm);
    expect(rows).toEqual([{ exit: 'fail_entry', reason: 9, detail: 0x80000021n }]);
  });
});
