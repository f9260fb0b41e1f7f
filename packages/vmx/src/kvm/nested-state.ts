/**
 * KVM_GET_NESTED_STATE / KVM_SET_NESTED_STATE for VMX (vmx_get_nested_state,
 * vmx_set_nested_state): the kvm_nested_state header with its kvm_vmx_nested_state_hdr, then
 * vmcs12 (KVM's layout, 4 KiB) when L1 has a current VMCS. A vCPU stopped in L2 is saved with
 * KVM_STATE_NESTED_GUEST_MODE and vmcs12 synced from vmcs02, and restored by re-entering L2.
 */
import {
  KVM_STATE_NESTED, KVM_NESTED_STATE_STRUCT, KVM_VMX_NESTED_STATE_HDR_STRUCT, ERRNO, encodeStruct, decodeStruct,
  type KvmVcpu, type StructValue,
} from '@kvmts/core';
import { toVmx } from './setup.js';
import {
  toNested, syncVmcs02ToVmcs12, nestedVmxLeaveToL1, nestedVmxCheckControls, nestedVmxCheckHostState,
  nestedVmxCheckGuestState, enterVmxNonRootMode, nestedVmxAllowed, allocShadowVmcs, setCurrentVmptr, shadowActive,
  copyShadowToVmcs12, syncVmcs02ToVmcs12Rare, copyVmcs02ToVmcs12Rare, freeNested,
} from './nested.js';
import { VMCS12_REVISION, VMCS12_SIZE } from './vmcs12.js';

const HEADER = KVM_STATE_NESTED.HEADER_SIZE;
const INVALID_GPA = -1;
const NO_PA = 0xffffffffffffffffn;

const pa = (p: number): bigint => (p === INVALID_GPA ? NO_PA : BigInt(p));
const unpa = (b: bigint): number => (b === NO_PA ? INVALID_GPA : Number(b));

/** vmx_get_nested_state: the bytes of kvm_nested_state, or the size needed when `maxSize` is smaller. */
export function vmxGetNestedState(vcpu: KvmVcpu, maxSize: number): Uint8Array | number {
  const vmx = toVmx(vcpu);
  const n = toNested(vmx);
  const withVmcs12 = n.vmxon && n.currentVmptr !== INVALID_GPA;
  const size = HEADER + (withVmcs12 ? VMCS12_SIZE : 0);
  if (maxSize < size) return size;
  const guestMode = vcpu.arch.guestMode;
  // While L2 runs, vmcs02 holds the authoritative guest state (sync_vmcs02_to_vmcs12); while L1
  // runs, the shadow VMCS holds what L1 VMWROTE without exits (copy_shadow_to_vmcs12).
  if (guestMode) {
    syncVmcs02ToVmcs12(vcpu, vmx, n.cachedVmcs12);
    syncVmcs02ToVmcs12Rare(vmx, n.cachedVmcs12);
  } else if (withVmcs12) {
    if (shadowActive(vmx, n)) copyShadowToVmcs12(vmx, n);
    copyVmcs02ToVmcs12Rare(vmx, n);
  }
  const hdr: StructValue = {
    vmxon_pa: n.vmxon ? pa(n.vmxonPtr) : NO_PA, vmcs12_pa: n.vmxon ? pa(n.currentVmptr) : NO_PA,
    smm_flags: 0, pad: 0, flags: 0, preemption_timer_deadline: 0n,
  };
  const out = new Uint8Array(size);
  out.set(encodeStruct(KVM_NESTED_STATE_STRUCT, {
    flags: guestMode ? KVM_STATE_NESTED.GUEST_MODE : 0, format: KVM_STATE_NESTED.FORMAT_VMX, size,
    hdr: Array.from(encodeStruct(KVM_VMX_NESTED_STATE_HDR_STRUCT, hdr)),
  }));
  if (withVmcs12) out.set(n.cachedVmcs12.toPage(), HEADER);
  return out;
}

/** vmx_set_nested_state: 0, or -EINVAL for a state this vCPU cannot take. */
export function vmxSetNestedState(vcpu: KvmVcpu, state: Uint8Array): number {
  const vmx = toVmx(vcpu);
  const n = toNested(vmx);
  const h = decodeStruct(KVM_NESTED_STATE_STRUCT, state.subarray(0, HEADER));
  if (h['format'] !== KVM_STATE_NESTED.FORMAT_VMX) return -ERRNO.EINVAL;
  const flags = h['flags'] as number;
  const size = h['size'] as number;
  const vh = decodeStruct(KVM_VMX_NESTED_STATE_HDR_STRUCT, Uint8Array.from(h['hdr'] as number[]));
  const vmxonPa = unpa(vh['vmxon_pa'] as bigint);
  const vmcs12Pa = unpa(vh['vmcs12_pa'] as bigint);
  const guestMode = (flags & KVM_STATE_NESTED.GUEST_MODE) !== 0;
  if ((vh['smm_flags'] as number) !== 0) return -ERRNO.EINVAL;
  // vmx_leave_nested: whatever L2 this vCPU was running is abandoned, and free_nested drops
  // vmcs02, the shadow VMCS and EPT02 (vmcs12 is replaced, not written back).
  if (vcpu.arch.guestMode) nestedVmxLeaveToL1(vcpu, vmx, n);
  freeNested(vmx);
  n.currentVmptr = INVALID_GPA;
  if (vmxonPa === INVALID_GPA) return guestMode || vmcs12Pa !== INVALID_GPA ? -ERRNO.EINVAL : 0;
  if (!nestedVmxAllowed(vcpu) || vmxonPa % 4096 !== 0) return -ERRNO.EINVAL;
  if (vmcs12Pa !== INVALID_GPA && (vmcs12Pa % 4096 !== 0 || vmcs12Pa === vmxonPa)) return -ERRNO.EINVAL;
  if (guestMode && vmcs12Pa === INVALID_GPA) return -ERRNO.EINVAL;
  n.vmxon = true;
  n.vmxonPtr = vmxonPa;
  n.currentVmptr = INVALID_GPA;
  allocShadowVmcs(vmx, n);
  if (vmcs12Pa === INVALID_GPA) return 0;
  if (size < HEADER + VMCS12_SIZE || state.length < HEADER + VMCS12_SIZE) return -ERRNO.EINVAL;
  const v = n.cachedVmcs12;
  v.bytes.set(state.subarray(HEADER, HEADER + VMCS12_SIZE));
  v.fromPage();
  if (v.revisionId !== VMCS12_REVISION) return -ERRNO.EINVAL;
  setCurrentVmptr(vmx, n, vmcs12Pa);
  if (!guestMode) return 0;
  if (!nestedVmxCheckControls(v) || !nestedVmxCheckHostState(v) || !nestedVmxCheckGuestState(v)) return -ERRNO.EINVAL;
  enterVmxNonRootMode(vcpu, vmx, n, false, false);
  return vcpu.arch.guestMode ? 0 : -ERRNO.EINVAL;
}
