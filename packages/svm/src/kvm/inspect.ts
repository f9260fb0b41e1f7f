/**
 * The dashboard's view of kvm_amd's state (the VendorInspection hook): the VMCB's control and
 * save areas and the pCPU's host save area at VM_HSAVE_PA, as field groups from the field
 * table, each marked when the last VMRUN..#VMEXIT changed it.
 */
import type { KvmVcpu, VendorInspection } from '@kvmts/core';
import { VMCB_FIELDS } from '../hw/fields.js';
import { VmcbRegion } from '../hw/region.js';
import { svmData, toSvm } from './setup.js';

function readField(bytes: Uint8Array, off: number, size: number): bigint {
  let v = 0n;
  for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[off + i]!);
  return v;
}

function structure(name: string, region: VmcbRegion, before: Uint8Array | null, saveOnly: boolean): VendorInspection['structures'][number] {
  const groups = new Map<string, { name: string; value: bigint; changed: boolean }[]>();
  for (const [field, off, size, group] of VMCB_FIELDS) {
    if (saveOnly && off < 0x400) continue;
    const value = region.get(field);
    const changed = before !== null && readField(before, off, size) !== value;
    let g = groups.get(group);
    if (!g) { g = []; groups.set(group, g); }
    g.push({ name: field, value, changed });
  }
  return { name, hpa: region.pa, groups: [...groups].map(([n, fields]) => ({ name: n, fields })) };
}

export function svmInspect(vcpu: KvmVcpu): VendorInspection {
  const svm = toSvm(vcpu);
  const mem = vcpu.kvm.host.mem;
  // From now on, every VMRUN snapshots the pages so the next view can mark what changed.
  if (svm.snapshot === null) svm.snapshot = new Uint8Array(0);
  const vmcbBefore = svm.snapshot.length ? svm.snapshot : null;
  const structures: VendorInspection['structures'][number][] = [structure('vmcb', svm.vmcb, vmcbBefore, false)];
  // The pCPU the VMCB last ran on (the vCPU may be put by now).
  const pcpu = vcpu.pcpu ?? vcpu.kvm.host.pcpus[svm.vmcbCpu];
  if (pcpu) {
    const hsave = new VmcbRegion(mem, svmData(pcpu).saveAreaPa);
    structures.push(structure('host save area', hsave, svm.hsaveSnapshot, true));
  }
  return { vendor: 'amd', structures, counters: { ...vcpu.stat, asid: svm.asid, asidGeneration: svm.asidGeneration } };
}
