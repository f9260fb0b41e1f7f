/**
 * The VMM's sregs (kvm-port.ts) against the façade's kvm_sregs, and the start states of the
 * `kvmts run` contract in the VMM's terms. The long64 set-up itself is the core's.
 */
import { long64Sregs as kvmLong64Sregs, type KvmSregs as KvmApiSregs } from '@kvmts/core';
import type { KvmSregs } from './kvm-port.js';

/** kvm_sregs in the VMM's terms. A 64-bit CR2 beyond 2^53 is rounded: the VMM only shows it, never sets it back. */
export function sregsFromKvm(s: KvmApiSregs): KvmSregs {
  const { cr0, cr2, cr3, cr4, cr8, efer, interruptBitmap: _bitmap, ...rest } = s;
  return { ...rest, cr0: Number(cr0), cr2: Number(cr2), cr3: Number(cr3), cr4: Number(cr4), cr8: Number(cr8), efer: Number(efer) };
}

/** kvm_sregs with an empty interrupt bitmap: KVM_SET_SREGS then queues no interrupt. */
export function sregsToKvm(s: KvmSregs): KvmApiSregs {
  const { cr0, cr2, cr3, cr4, cr8, efer, ...rest } = s;
  const u = (n: number): bigint => BigInt.asUintN(64, BigInt(n));
  return { ...rest, cr0: u(cr0), cr2: u(cr2), cr3: u(cr3), cr4: u(cr4), cr8: u(cr8), efer: u(efer), interruptBitmap: [0n, 0n, 0n, 0n] };
}

/** The sregs for `real` mode: CS selector 0, base 0; everything else as reset. */
export function realSregs(reset: KvmSregs): KvmSregs {
  return { ...reset, cs: { ...reset.cs, selector: 0, base: 0 } };
}

/** The sregs for `long64` (the core's long64Sregs), from the vCPU's reset sregs. */
export function long64Sregs(reset: KvmSregs, memSize: number): KvmSregs {
  return sregsFromKvm(kvmLong64Sregs(sregsToKvm(reset), memSize));
}
