/**
 * The dashboard's view of nested VMX: vmcs01, vmcs02 and vmcs12 side by side, which vmcs02 fields
 * the last prepare_vmcs02 changed, and the nested counters.
 */
import type { VendorInspection } from '@kvmts/core';
import type { VmxSilicon } from '../hw/silicon.js';
import { VMCS_FIELDS, VMCS_TYPE, vmcsFieldType } from '../hw/fields.js';
import { vmcsSilicon } from './run.js';
import { vmxCpuData, type VcpuVmx, type LoadedVmcs } from './setup.js';
import { nestedState, copyVmcs02ToVmcs12Rare } from './nested.js';
import { VMCS12_OFFSET } from './vmcs12.js';
import { shadowAccessCount } from '../hw/shadow.js';

type Structure = VendorInspection['structures'][number];
type Groups = Structure['groups'];

const GROUP_NAMES = [
  ['controls', VMCS_TYPE.CONTROL],
  ['exit information', VMCS_TYPE.READ_ONLY],
  ['guest state', VMCS_TYPE.GUEST],
  ['host state', VMCS_TYPE.HOST],
] as const;

/** Reads a VMCS that is not the vCPU's current one by making it current for a moment. */
function readOther(vmx: VcpuVmx, l: LoadedVmcs, groupsOf: (s: VmxSilicon) => Groups): Groups {
  // Only a VMCS active on the pCPU where the current one is can be made current here.
  if (l.cpu < 0 || l.cpu !== vmx.loadedVmcs.cpu) return [];
  return readAt(vmx, l.vmcs, groupsOf);
}

/** VMPTRLD `hpa`, read it, and make the vCPU's VMCS current again. */
function readAt(vmx: VcpuVmx, hpa: number, groupsOf: (s: VmxSilicon) => Groups): Groups {
  const s = vmcsSilicon(vmx);
  const cur = vmx.loadedVmcs.vmcs;
  s.vmptrld(hpa);
  const g = groupsOf(s);
  s.vmptrld(cur);
  vmxCpuData(vmx.module.host.pcpus[vmx.loadedVmcs.cpu]!).currentVmcs = cur;
  return g;
}

/** Structures and counters when the vCPU has used VMX as L1, else null (the plain vmcs01 view). */
export function nestedInspect(vmx: VcpuVmx, groupsOf: (s: VmxSilicon) => Groups): { structures: Structure[]; counters: Record<string, number> } | null {
  const n = nestedState(vmx);
  if (!n) return null;
  const inL2 = vmx.loadedVmcs !== vmx.vmcs01;
  const structures: Structure[] = [];
  const current = groupsOf(vmcsSilicon(vmx));
  structures.push({ name: 'vmcs01', hpa: vmx.vmcs01.vmcs, groups: inL2 ? readOther(vmx, vmx.vmcs01, groupsOf) : current });
  if (n.vmcs02) {
    const g = inL2 ? current : readOther(vmx, n.vmcs02, groupsOf);
    const changed = new Set<string>(Array.from(n.lastPrepareChangedRows.subarray(0, n.lastPrepareChangedCount), (row) => VMCS_FIELDS[row]![0]));
    // "changed" on vmcs02 means: written by the last prepare_vmcs02.
    structures.push({
      name: 'vmcs02', hpa: n.vmcs02.vmcs,
      groups: g.map((grp) => ({ name: grp.name, fields: grp.fields.map((f) => ({ ...f, changed: changed.has(f.name) })) })),
    });
  }
  if (n.currentVmptr >= 0) {
    // L2's rarely changed state is copied into vmcs12 lazily: catch up before showing it.
    if (!inL2) copyVmcs02ToVmcs12Rare(vmx, n);
    const v = n.cachedVmcs12;
    structures.push({
      name: 'vmcs12', hpa: n.currentVmptr,
      groups: GROUP_NAMES.map(([name, type]) => ({
        name,
        fields: VMCS_FIELDS.flatMap(([f, enc], i) => (vmcsFieldType(enc) === type && VMCS12_OFFSET[i]! >= 0 ? [{ name: f, value: v.big(i), changed: false }] : [])),
      })),
    });
  }
  // The shadow VMCS linked from vmcs01: what L1's unexiting VMREAD/VMWRITE see.
  if (n.shadowVmcs >= 0) structures.push({ name: 'shadow vmcs', hpa: n.shadowVmcs, groups: readAt(vmx, n.shadowVmcs, groupsOf) });
  const st = n.stats;
  return {
    structures,
    counters: {
      nested_guest_mode: inL2 ? 1 : 0,
      nested_entries: st.nestedEntries,
      l2_exits_handled_in_l0: st.l2ExitsHandledInL0,
      l2_exits_reflected_to_l1: st.l2ExitsReflected,
      vmx_instruction_exits: st.vmxInstructionExits,
      vmread_vmwrite_exits_avoided: shadowAccessCount(vmcsSilicon(vmx)),
      prepare_vmcs02_fields_changed: n.lastPrepareChangedCount,
    },
  };
}
