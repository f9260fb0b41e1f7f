/**
 * createHost: a new Host with the vendor's CPU model, and the vendor's kvm module loaded
 * (modprobe kvm_intel / kvm_amd), seen through /dev/kvm as a HostPort.
 */
import { Host, KVM, type KvmX86InitOps } from '@kvmts/core';
import type { CpuModel } from '@kvmts/x86';
import { amdCpuModel, svmInitOps } from '@kvmts/svm';
import { intelCpuModel, vmxInitOps } from '@kvmts/vmx';
import type { HostPort } from './kvm-port.js';
import { ApiHost } from './api-port.js';

export type Vendor = 'intel' | 'amd';

export interface HostOptions {
  /** Physical CPUs. */
  readonly pcpus?: number;
  /** Host physical memory in bytes (sparse: paid for when touched). */
  readonly memBytes?: number;
}

const DEFAULTS = { pcpus: 2, memBytes: 16 * 1024 ** 3 } as const;

/** What `modprobe` needs per vendor: the CPU model the host is built with, and the module's init ops. */
const VENDORS = {
  intel: { model: intelCpuModel, initOps: vmxInitOps },
  amd: { model: amdCpuModel, initOps: svmInitOps },
} as const satisfies Record<Vendor, { model: () => CpuModel; initOps: KvmX86InitOps }>;

/** A host, or a sentence saying why this vendor cannot run. Async, so a vendor module may be loaded lazily later. */
export async function createHost(vendor: Vendor, opts: HostOptions = {}): Promise<HostPort | string> {
  const pkg = VENDORS[vendor];
  const module = pkg.initOps.runtimeOps.name;
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
  return new ApiHost(host, { vendor, cpuModel: host.model.name, module, apiVersion, pcpus: host.pcpus.length });
}
