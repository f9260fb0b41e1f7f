export { KVM_X86_OPS } from './x86/kvm-x86-ops.js';
export type { KvmX86Ops, KvmX86OpsSignatures, KvmX86InitOps, TdpFormat, VendorInspection } from './x86/kvm-x86-ops.js';
export { VCPU_SREG, KVM_REQ } from './x86/kvm-types.js';
export type { KvmSegment, KvmDtable, MsrData, ExitResult, Pcpu, HostKernel, KvmVcpuArch, KvmVcpu, Kvm } from './x86/kvm-types.js';
