/**
 * createHost: a new Host with the vendor's CPU model, and the vendor's kvm module loaded
 * (modprobe kvm_intel / kvm_amd), seen through /dev/kvm as a HostPort.
 */
import type { HostPort } from './kvm-port.js';

export type Vendor = 'intel' | 'amd';

export interface HostOptions {
  /** Physical CPUs. */
  readonly pcpus?: number;
  /** Host physical memory in bytes (sparse: paid for when touched). */
  readonly memory?: number;
}

/** A host, or a sentence saying why this vendor cannot run yet. */
export async function createHost(vendor: Vendor, _opts: HostOptions = {}): Promise<HostPort | string> {
  return `kvm_${vendor === 'intel' ? 'intel' : 'amd'} is not available yet: @kvmts/core has no typed /dev/kvm façade to drive`;
}
