/**
 * The guest catalog (@kvmts/guests) on kvm_intel: each self-checking guest runs through /dev/kvm
 * with DESIGN.md's `kvmts run` set-up (real or long64 mode, COM1 on 0x3f8, the port-0xf4 test
 * exit) and must end and print what its catalog entry expects. This covers real mode through
 * unrestricted guest, the mode switches to protected mode with paging and to long mode, and
 * 64-bit guests under EPT.
 */
import { describe, it, expect } from 'vitest';
import { CATALOG, hasImage, loadImage, type CatalogEntry } from '@kvmts/guests';
import { KVM, KVM_EXIT, KVM_INTERRUPT_STRUCT, encodeStruct, type StructValue } from '@kvmts/core';
import { makeVm } from './vm.js';
import { setupLong64 } from './nested-harness.js';

const COM1 = 0x3f8;
const DEBUG_EXIT = 0xf4;


interface Outcome { exit: string; code?: number; serial: string; exits: number }

function runGuest(g: CatalogEntry): Outcome {
  const vm = makeVm(g.mem);
  vm.write(g.load, loadImage(g.name));
  if (g.mode === 'long64') setupLong64(vm, g.mem);
  else vm.setSregs((s) => { const cs = s['cs'] as StructValue; cs['base'] = 0n; cs['selector'] = 0; });
  const regs: Record<string, bigint> = { rip: BigInt(g.entry), rflags: 2n };
  for (const [k, v] of Object.entries(g.regs ?? {})) regs[k] = BigInt(v);
  vm.setRegs(regs);
  let serial = '';
  let irqsLeft = g.irqs ? (g.irqs.count ?? Infinity) : 0;
  for (let exits = 0; exits < 200000; exits++) {
    const r = vm.kvmRun();
    if (r < 0) return { exit: `errno ${r}`, serial, exits };
    const reason = vm.run.exitReason;
    if (reason === KVM_EXIT.IO) {
      const io = vm.run.io.get();
      const data = vm.pages.subarray(io.dataOffset, io.dataOffset + io.size * io.count);
      if (io.direction === 1 && io.port === DEBUG_EXIT) return { exit: 'debug_exit', code: data[0]!, serial, exits };
      if (io.direction === 1 && io.port === COM1) serial += String.fromCharCode(...data);
      // Unclaimed and device reads: 0xff bytes (the UART's LSR then reads "transmitter empty").
      if (io.direction === 0) data.fill(0xff);
      continue;
    }
    if (reason === KVM_EXIT.MMIO) {
      const m = vm.run.mmio.get();
      if (!m.isWrite) vm.run.mmio.data().fill(0xff);
      continue;
    }
    if (reason === KVM_EXIT.HLT) {
      if (irqsLeft > 0 && g.irqs) {
        irqsLeft--;
        vm.proc.ioctl(vm.vcpuFd, KVM.KVM_INTERRUPT, encodeStruct(KVM_INTERRUPT_STRUCT, { irq: g.irqs.vector }));
        continue;
      }
      return { exit: 'hlt', serial, exits };
    }
    return { exit: `exit ${reason}`, serial, exits };
  }
  return { exit: 'too many exits', serial, exits: 200000 };
}

// Nested-virtualization guests need kvm_intel's nested VMX (nested.ts, issue 7); its own tests run them.
const guests = CATALOG.filter((g) => g.kind === 'test' && !g.name.startsWith('nested-'));

describe('the guest catalog on kvm_intel', () => {
  it.each(guests.map((g) => [g.name, g] as const))('%s', (name, g) => {
    if (!hasImage(name)) {
      console.log(`skipped ${name}: no image (build @kvmts/guests)`);
      return;
    }
    const o = runGuest(g);
    expect(o.exit).toBe(g.expect.exit ?? 'hlt');
    if (g.expect.code !== undefined) expect(o.code).toBe(g.expect.code);
    const s = g.expect.serial;
    if ('exact' in s) expect(o.serial).toBe(s.exact);
    else if ('includes' in s) expect(o.serial).toContain(s.includes);
    else expect(o.serial).toMatch(new RegExp(s.pattern));
  });
});
