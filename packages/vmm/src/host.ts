/**
 * createHost: a new Host with the vendor's CPU model, and the vendor's kvm module loaded
 * (modprobe kvm_intel / kvm_amd), seen through /dev/kvm as a HostPort.
 */
import { Host, KVM, type KvmX86InitOps } from '@kvmts/core';
import type { CpuModel } from '@kvmts/x86';
import type { HostPort } from './kvm-port.js';
import { UapiHost } from './uapi-port.js';

export type Vendor = 'intel' | 'amd';

export interface HostOptions {
  /** Physical CPUs. */
  readonly pcpus?: number;
  /** Host physical memory in bytes (sparse: paid for when touched). */
  readonly memBytes?: number;
}

const DEFAULTS = { pcpus: 2, memBytes: 16 * 1024 ** 3 } as const;

/** What a vendor package provides: its CPU model and its kvm module's init ops. */
interface VendorPackage {
  readonly model?: () => CpuModel;
  readonly initOps?: KvmX86InitOps;
}

/**
 * The vendor packages are loaded when asked for, and read by name, so that a host of one
 * vendor can be built while the other vendor's package is still missing its module.
 */
async function loadVendor(vendor: Vendor): Promise<VendorPackage> {
  if (vendor === 'intel') {
    const m: Record<string, unknown> & { intelCpuModel?: () => CpuModel; vmxInitOps?: KvmX86InitOps } = await import('@kvmts/vmx');
    return { ...(m.intelCpuModel && { model: m.intelCpuModel }), ...(m.vmxInitOps && { initOps: m.vmxInitOps }) };
  }
  const m: Record<string, unknown> & { amdCpuModel?: () => CpuModel; svmInitOps?: KvmX86InitOps } = await import('@kvmts/svm');
  return { ...(m.amdCpuModel && { model: m.amdCpuModel }), ...(m.svmInitOps && { initOps: m.svmInitOps }) };
}

/** A host, or a sentence saying why this vendor cannot run. */
export async function createHost(vendor: Vendor, opts: HostOptions = {}): Promise<HostPort | string> {
  const module = vendor === 'intel' ? 'kvm_intel' : 'kvm_amd';
  const pkg = await loadVendor(vendor);
  if (!pkg.model || !pkg.initOps) return `${module} is not available yet: @kvmts/${vendor === 'intel' ? 'vmx' : 'svm'} does not export ${!pkg.model ? 'its CPU model' : 'its init ops'}`;
  const dmesg: string[] = [];
  let host: Host;
  try {
    host = new Host({ model: pkg.model(), pcpus: opts.pcpus ?? DEFAULTS.pcpus, memBytes: opts.memBytes ?? DEFAULTS.memBytes, printk: (l) => dmesg.push(l) });
  } catch (e) {
    return `the host could not be built: ${e instanceof Error ? e.message : String(e)}`;
  }
  const r = host.modprobe(pkg.initOps);
  if (r < 0) return `modprobe ${module} failed (errno ${-r})${dmesg.length ? `: ${dmesg.join('; ')}` : ''}`;
  const proc = host.spawn();
  const fd = proc.open('/dev/kvm');
  const apiVersion = fd < 0 ? fd : proc.ioctl(fd, KVM.KVM_GET_API_VERSION);
  proc.exit();
  if (apiVersion < 0) return `/dev/kvm does not answer KVM_GET_API_VERSION (errno ${-apiVersion})`;
  return new UapiHost(host, { vendor, cpuModel: host.model.name, module: pkg.initOps.runtimeOps.name, apiVersion, pcpus: host.pcpus.length });
}
