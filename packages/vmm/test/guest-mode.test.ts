/** The VMM learns that its vCPU runs L2 as QEMU does: from KVM_GET_NESTED_STATE's GUEST_MODE flag. */
import { describe, expect, it } from 'vitest';
import { findGuest, loadImage } from '@kvmts/guests';
import { createHost } from '../src/host.js';
import { Machine } from '../src/machine.js';

describe('VcpuPort.isGuestMode over /dev/kvm', () => {
  it('is false in L1 and true at the HLT of nested-vmx-irq\'s L2 (a userspace exit while L2 runs)', async () => {
    const host = await createHost('intel');
    if (typeof host === 'string') throw new Error(host);
    const g = findGuest('nested-vmx-irq')!;
    const m = Machine.create(host, { image: loadImage(g.name), mode: g.mode, mem: g.mem, load: g.load, entry: g.entry, ...(g.irqs && { irqs: g.irqs }) });
    if (typeof m === 'string') throw new Error(m);
    expect(m.vcpu.isGuestMode?.()).toBe(false);
    const inL2: string[] = [];
    for (let i = 0; i < 10_000 && !m.done; i++) {
      const { exit } = m.step();
      if (m.vcpu.isGuestMode?.()) inL2.push(exit.kind);
    }
    expect(inL2).toEqual(['hlt']);
    expect(m.final?.exit).toBe('debug_exit');
    m.destroy();
  });
});
