/**
 * VMCS shadowing: with L0's shadow VMCS linked from vmcs01, L1's VMREADs and VMWRITEs of the
 * shadow fields (vmcs_shadow_fields.h) no longer exit. The same L1 hypervisor run with
 * shadowing off and on must take exactly as many more exits without it as the silicon served
 * VMREAD/VMWRITEs from the shadow VMCS with it.
 */
import { describe, it, expect, afterEach } from 'vitest';
import { vmxX86Ops } from '../src/kvm/ops.js';
import { toVmx } from '../src/kvm/setup.js';
import { nestedParams, toNested } from '../src/kvm/nested.js';
import { shadowAccessCount } from '../src/hw/shadow.js';
import { silicon } from '../src/kvm/setup.js';
import { loadGuest, runGuest, kernelVcpu } from './nested-harness.js';

function run(name: string, shadow: boolean): { exits: number; vmxExits: number; shadowed: number; serial: string; avoided: number } {
  nestedParams.enableShadowVmcs = shadow;
  const vm = loadGuest(name);
  const r = runGuest(vm);
  expect(r.exit).toBe('debug_exit');
  expect(r.code).toBe(0);
  const vcpu = kernelVcpu(vm);
  const n = toNested(toVmx(vcpu));
  return {
    // VM exits the silicon took (L1's and L2's alike).
    exits: silicon(vm.host.pcpus[0]!.cpu).exitCount,
    vmxExits: n.stats.vmxInstructionExits,
    shadowed: shadowAccessCount(silicon(vm.host.pcpus[0]!.cpu)),
    serial: r.serial,
    avoided: vmxX86Ops.inspect(vcpu).counters['vmread_vmwrite_exits_avoided']!,
  };
}

afterEach(() => { nestedParams.enableShadowVmcs = true; });

describe('VMCS shadowing', () => {
  it.each(['nested-vmx-shadow', 'nested-vmx-cpuid', 'nested-vmx-basic', 'nested-vmx-fail'])('%s: exits differ exactly by the shadowed VMREADs/VMWRITEs', (name) => {
    const off = run(name, false);
    const on = run(name, true);
    expect(off.shadowed).toBe(0);
    expect(on.shadowed).toBeGreaterThan(0);
    expect(off.exits - on.exits).toBe(on.shadowed);
    expect(off.vmxExits - on.vmxExits).toBe(on.shadowed);
    expect(on.avoided).toBe(on.shadowed);
    // The guest sees no difference.
    expect(on.serial).toBe(off.serial);
  });

  it('nested-vmx-shadow: 10 of the 15 VMREAD/VMWRITEs of each of its 200 exits are shadowed', () => {
    const off = run('nested-vmx-shadow', false);
    const on = run('nested-vmx-shadow', true);
    // Per exit: 8 shadowed VMREADs and 2 shadowed VMWRITEs; the HLT's reason read; VMWRITEs of shadowed fields while L1 fills the VMCS.
    const setup = on.shadowed - (200 * 10 + 1);
    expect(setup).toBeGreaterThanOrEqual(0);
    expect(setup).toBeLessThan(40);
    // Without shadowing every one of the 15 accesses per exit is an exit of its own.
    expect(off.vmxExits - on.vmxExits).toBe(200 * 10 + 1 + setup);
  });

  it('nested-vmx-cpuid: the four VMREAD/VMWRITEs of each of its 2000 exits are shadowed', () => {
    const on = run('nested-vmx-cpuid', true);
    // VM_EXIT_REASON, GUEST_RIP, VM_EXIT_INSTRUCTION_LEN read, GUEST_RIP written, per L2 CPUID (and the HLT's reason read).
    expect(on.shadowed).toBeGreaterThanOrEqual(2000 * 4);
    expect(on.shadowed).toBeLessThan(2000 * 4 + 100);
  });
});
