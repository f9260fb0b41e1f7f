import { describe, expect, it } from 'vitest';
import { createVm, load, realMode, kvmRun } from '../../test/vm.js';
import { svmInspect } from './inspect.js';

describe('inspect()', () => {
  it('shows the VMCB and the host save area as field groups, marking what the last run changed', () => {
    const vm = createVm();
    load(vm, 0x1000, [0xb0, 0x01, 0xe6, 0x80, 0xb0, 0x02, 0xe6, 0x80, 0xf4]); // mov al,1; out 0x80; mov al,2; out 0x80; hlt
    realMode(vm);
    kvmRun(vm);
    const vcpu = vm.host.module!.vms.values().next().value!.vcpus[0]!;
    const first = svmInspect(vcpu);
    expect(first.vendor).toBe('amd');
    expect(first.structures.map((s) => s.name)).toEqual(['vmcb', 'host save area']);
    const vmcb = first.structures[0]!;
    expect(vmcb.groups.map((g) => g.name)).toEqual(['intercepts', 'control', 'interrupts', 'exit', 'segments', 'registers', 'msrs']);
    const field = (name: string) => svmInspect(vcpu).structures[0]!.groups.flatMap((g) => g.fields).find((f) => f.name === name)!;
    expect(field('exit_code').value).toBe(0x7bn);
    kvmRun(vm);
    expect(field('rip')).toMatchObject({ value: 0x1006n, changed: true }); // the OUT itself; next_rip is after it
    expect(field('exit_code')).toMatchObject({ value: 0x7bn, changed: false });
    expect(field('exit_info_2')).toMatchObject({ value: 0x1008n, changed: true });
    const hsave = svmInspect(vcpu).structures[1]!.groups.flatMap((g) => g.fields);
    expect(hsave.find((f) => f.name === 'cs_selector')!.value).toBe(0x10n); // __KERNEL_CS
    expect(hsave.find((f) => f.name === 'efer')!.value & 0x1000n).toBe(0x1000n);
  });
});
