/**
 * Malicious vmcs12 contents: L1 (nested-vmx-basic) has written its VMCS and is about to
 * VMLAUNCH; the test overwrites random vmcs12 fields with random values and lets L0 run
 * nested_vmx_run on it. L0 must never throw, never write L1 memory while doing so (vmcs12 lives
 * in L0's cache until it is released), and the outcome must be one of the SDM's: VMfailValid
 * with an error number, an entry-failure exit to L1 (invalid guest state, or a VM-entry MSR-load
 * list entry that fails), or L2 running (then KVM_RUN goes on
 * without an exception until the guest ends or the budget is spent).
 */
import { describe, it, expect } from 'vitest';
import { KVM_EXIT } from '@kvmts/core';
import { RFLAGS } from '@kvmts/x86';
import { FIELD, VMCS_FIELDS } from '../src/hw/fields.js';
import { toVmx } from '../src/kvm/setup.js';
import { toNested, nestedVmxRun } from '../src/kvm/nested.js';
import { vmxGetRflags } from '../src/kvm/run.js';
import { VMCS12_OFFSET } from '../src/kvm/vmcs12.js';
import { loadGuest, runGuest, kernelVcpu } from './nested-harness.js';

const MEM = 0x200000;
const ROWS = VMCS_FIELDS.flatMap((_, i) => (VMCS12_OFFSET[i]! >= 0 ? [i] : []));

/** xorshift32: reproducible random numbers per seed. */
function rng(seed: number): () => number {
  let x = seed * 2654435761 >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x;
  };
}

describe('nested_vmx_run on random vmcs12 contents', () => {
  it('never crashes, never writes L1 memory, always ends as the SDM allows', () => {
    const outcomes = { failValid: 0, entryFailure: 0, l2Ran: 0 };
    for (let seed = 1; seed <= 24; seed++) {
      const next = rng(seed);
      const vm = loadGuest('nested-vmx-basic');
      const vcpu = kernelVcpu(vm);
      // L1 prints this line right before its VMLAUNCH.
      expect(runGuest(vm, 1000, (_n, serial) => serial.endsWith('PASS: VMREAD GUEST_RIP\n')).exit).toBe('stopped');
      const n = toNested(toVmx(vcpu));
      expect(n.currentVmptr).toBeGreaterThan(0);
      const v = n.cachedVmcs12;
      // A few fields per round: random values, sometimes just one bit flipped.
      const count = 1 + (next() % 12);
      for (let k = 0; k < count; k++) {
        const i = ROWS[next() % ROWS.length]!;
        if (next() & 1) v.set(i, next(), next());
        else v.set(i, v.lo(i) ^ (1 << (next() % 32)), v.hi(i));
      }
      const before = vm.read(0, MEM);
      expect(() => nestedVmxRun(vcpu, true)).not.toThrow();
      const after = vm.read(0, MEM);
      let diff = -1;
      for (let a = 0; a < MEM; a++) if (before[a] !== after[a] && !(a >= n.currentVmptr && a < n.currentVmptr + 4096)) { diff = a; break; }
      expect(diff).toBe(-1);
      const flags = vmxGetRflags(vcpu);
      if (vcpu.arch.guestMode) outcomes.l2Ran++;
      else if (flags & RFLAGS.ZF) {
        outcomes.failValid++;
        expect([4, 5, 7, 8, 26]).toContain(v.lo(FIELD.VM_INSTRUCTION_ERROR));
      } else {
        outcomes.entryFailure++;
        // Invalid guest state (33), or an entry of the VM-entry MSR-load list that failed (34, its 1-based index).
        const reason = v.lo(FIELD.VM_EXIT_REASON) >>> 0;
        expect([0x80000021, 0x80000022]).toContain(reason);
        if (reason === 0x80000022) {
          expect(v.num(FIELD.EXIT_QUALIFICATION)).toBeGreaterThanOrEqual(1);
          expect(v.num(FIELD.EXIT_QUALIFICATION)).toBeLessThanOrEqual(v.lo(FIELD.VM_ENTRY_MSR_LOAD_COUNT));
        }
      }
      // Whatever happened, the VM runs on without an exception out of KVM_RUN.
      for (let e = 0; e < 200; e++) {
        const rc = vm.kvmRun();
        expect(rc).toBeGreaterThanOrEqual(0);
        const reason = vm.run.exitReason;
        if (reason !== KVM_EXIT.IO && reason !== KVM_EXIT.MMIO) break;
        if (reason === KVM_EXIT.IO && vm.run.io.get().port === 0xf4) break;
        if (reason === KVM_EXIT.IO && vm.run.io.get().direction === 0) vm.pages.fill(0xff, vm.run.io.get().dataOffset, vm.run.io.get().dataOffset + 8);
      }
    }
    console.log('fuzz outcomes', outcomes);
    expect(outcomes.failValid + outcomes.entryFailure + outcomes.l2Ran).toBe(24);
    expect(outcomes.failValid).toBeGreaterThan(0);
  });
});
