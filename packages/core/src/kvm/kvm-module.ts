/**
 * kvm.ko with a vendor module loaded: kvm_x86_vendor_init (hardware_setup, kvm_ops_update,
 * hardware_enable on every pCPU), the /dev/kvm misc device, and the VMs it has created.
 */
import { KVM_X86_OPS, type KvmX86InitOps, type KvmX86Ops } from '../x86/kvm-x86-ops.js';
import { ERRNO } from '../uapi/errno.js';
import type { Host } from '../host/host.js';
import type { KFile } from '../host/file.js';
import { supportedCpuid, type CpuidEntry } from '../x86/cpuid.js';
import { MSRS_TO_SAVE } from '../x86/x86.js';
import { DevFile } from './dev-ioctl.js';
import type { Vm } from './vm.js';

/** kvm_ops_update: every required hook must be present; returns the missing ones. */
export function missingRequiredOps(ops: Partial<Record<string, unknown>>): string[] {
  return KVM_X86_OPS.filter(([name, kind]) => kind === 'required' && ops[name] === undefined).map(([name]) => name);
}

export class KvmModule {
  readonly vms = new Set<Vm>();
  readonly supportedCpuid: CpuidEntry[];
  /** msrs_to_save + emulated_msrs, filtered by what the vendor can read (kvm_init_msr_lists). */
  readonly msrIndexList: number[];
  private nextVmId = 1;

  readonly host: Host;
  readonly ops: KvmX86Ops;

  private constructor(host: Host, ops: KvmX86Ops) {
    this.host = host;
    this.ops = ops;
    this.supportedCpuid = supportedCpuid(host.model);
    this.msrIndexList = [...MSRS_TO_SAVE];
  }

  static init(host: Host, initOps: KvmX86InitOps): KvmModule | number {
    const missing = missingRequiredOps(initOps.runtimeOps as unknown as Record<string, unknown>);
    if (missing.length) {
      host.log(`kvm: ${initOps.runtimeOps.name ?? 'vendor'} lacks required kvm_x86_ops: ${missing.join(', ')}`);
      return -ERRNO.EINVAL;
    }
    const r = initOps.hardwareSetup(host);
    if (r) {
      host.log(`kvm: ${initOps.runtimeOps.name}: hardware_setup failed (${r})`);
      return r < 0 ? r : -ERRNO.EIO;
    }
    const ops = initOps.runtimeOps;
    if (ops.checkProcessorCompatibility()) {
      ops.hardwareUnsetup();
      return -ERRNO.EIO;
    }
    const enabled: number[] = [];
    for (const p of host.pcpus) {
      const e = ops.hardwareEnable(p.id);
      if (e) {
        host.log(`kvm: enabling virtualization on CPU${p.id} failed (${e})`);
        for (const id of enabled) ops.hardwareDisable(id);
        ops.hardwareUnsetup();
        return e < 0 ? e : -ERRNO.EIO;
      }
      enabled.push(p.id);
    }
    host.log(`kvm: ${ops.name} loaded on ${host.pcpus.length} CPUs`);
    return new KvmModule(host, ops);
  }

  exit(): void {
    for (const p of this.host.pcpus) this.ops.hardwareDisable(p.id);
    this.ops.hardwareUnsetup();
  }

  openDev(): KFile {
    return new DevFile(this);
  }

  allocVmId(): number {
    return this.nextVmId++;
  }
}
