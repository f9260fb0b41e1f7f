/** The header of struct kvm_nested_state, as KVM_GET_NESTED_STATE returns it (Documentation/virt/kvm/api.rst 4.114). */
import {
  decodeStruct, KVM_NESTED_STATE_STRUCT, KVM_STATE_NESTED, KVM_SVM_NESTED_STATE_HDR_STRUCT, KVM_VMX_NESTED_STATE_HDR_STRUCT,
} from '@kvmts/core';

export interface NestedState {
  readonly format: 'vmx' | 'svm';
  readonly flags: number;
  /** VMX: the VMXON region L1 gave, or -1 when L1 is not in VMX operation. */
  readonly vmxonPa: bigint;
  /** VMX: the current vmcs12 (-1 for none); SVM: vmcb12. */
  readonly vmcsPa: bigint;
  /** The whole state, header and data, to hand to KVM_SET_NESTED_STATE unchanged. */
  readonly raw: Uint8Array;
}

const INVALID_PA = -1n;

export function parseNestedState(raw: Uint8Array): NestedState {
  const h = decodeStruct(KVM_NESTED_STATE_STRUCT, raw);
  const flags = h['flags'] as number;
  const size = h['size'] as number;
  const hdrOffset = 8;
  const state = raw.subarray(0, Math.max(size, KVM_STATE_NESTED.HEADER_SIZE));
  if (h['format'] === KVM_STATE_NESTED.FORMAT_VMX) {
    const v = decodeStruct(KVM_VMX_NESTED_STATE_HDR_STRUCT, raw, hdrOffset);
    return {
      format: 'vmx', flags, raw: state,
      vmxonPa: BigInt.asIntN(64, v['vmxon_pa'] as bigint), vmcsPa: BigInt.asIntN(64, v['vmcs12_pa'] as bigint),
    };
  }
  const s = decodeStruct(KVM_SVM_NESTED_STATE_HDR_STRUCT, raw, hdrOffset);
  return { format: 'svm', flags, raw: state, vmxonPa: INVALID_PA, vmcsPa: BigInt.asIntN(64, s['vmcb_pa'] as bigint) };
}
