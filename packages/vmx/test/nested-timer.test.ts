/**
 * L1's VMX-preemption timer for L2 (emulated by L0, as vmx_start_preemption_timer does): the
 * catalog guest nested-vmx-timer checks exit reason 52, the saved value and the capability from
 * inside; here the kernel's view of the same run: vmcs12 as L1 left it, and vmcs02 without the
 * silicon's timer.
 */
import { describe, it, expect } from 'vitest';
import { PIN_BASED } from '../src/hw/caps.js';
import { FIELD } from '../src/hw/fields.js';
import { EXIT_REASON } from '../src/hw/exit.js';
import { toVmx } from '../src/kvm/setup.js';
import { toNested } from '../src/kvm/nested.js';
import { loadGuest, runGuest, kernelVcpu } from './nested-harness.js';

describe('VMX-preemption timer for L1', () => {
  it('nested-vmx-timer: reason 52 reflected to L1, the saved value, and no timer left armed in L1', () => {
    const vm = loadGuest('nested-vmx-timer');
    const vcpu = kernelVcpu(vm);
    const n = toNested(toVmx(vcpu));
    let sawTimerExit = false;
    let vmcs02Pins = 0;
    const r = runGuest(vm, 100000, () => {
      if (!vcpu.arch.guestMode && n.cachedVmcs12.lo(FIELD.VM_EXIT_REASON) === EXIT_REASON.PREEMPTION_TIMER) sawTimerExit = true;
      // vmcs02's pin-based controls as L0 left them (their shadow while L1 runs).
      if (n.vmcs02 && n.ctls02.pin >= 0) vmcs02Pins |= n.ctls02.pin;
      return false;
    });
    expect(r.exit).toBe('debug_exit');
    expect(r.code).toBe(0);
    expect(r.serial).toContain('SUMMARY: 16 tests, 0 failures\n');
    expect(sawTimerExit).toBe(true);
    // L0 emulates L1's timer: vmcs02 never runs with the silicon's own.
    expect(vmcs02Pins & PIN_BASED.EXT_INTR_MASK).toBe(PIN_BASED.EXT_INTR_MASK);
    expect(vmcs02Pins & PIN_BASED.VMX_PREEMPTION_TIMER).toBe(0);
    const v = n.cachedVmcs12;
    expect(v.lo(FIELD.PIN_BASED_VM_EXEC_CONTROL) & PIN_BASED.VMX_PREEMPTION_TIMER).toBe(PIN_BASED.VMX_PREEMPTION_TIMER);
    expect(v.lo(FIELD.VMX_PREEMPTION_TIMER_VALUE)).toBe(777);
    expect(n.preemptionTimerDeadline).toBe(Infinity);
  });

  it('the emulated timer is an hrtimer: L0 arms the host timer on the deadline before each entry to L2', () => {
    const vm = loadGuest('nested-vmx-timer');
    const vcpu = kernelVcpu(vm);
    const n = toNested(toVmx(vcpu));
    const host = vm.host;
    const armed: number[] = [];
    const hrtimerStart = host.hrtimerStart.bind(host);
    host.hrtimerStart = (pcpu, expires) => {
      armed.push(expires);
      // L0 arms exactly L1's deadline, while L2 is about to run with it.
      expect(expires).toBe(n.preemptionTimerDeadline);
      expect(vcpu.arch.guestMode).toBe(true);
      hrtimerStart(pcpu, expires);
    };
    const r = runGuest(vm);
    expect(r.code).toBe(0);
    expect(armed.length).toBeGreaterThan(0);
    // The spinning L2 leaves at its 32000-instruction timer, not at the next 1M-instruction host
    // tick: the whole run (L1, L2 and the kernel's work) took about 54000 instructions with the
    // hrtimer, and about 1008000 without it.
    expect(host.pcpus[0]!.cpu.icount).toBeLessThan(200_000);
  });
});
