export { Kvm, VmFd, VcpuFd } from './kvm.js';
export { KvmError } from './kvm-error.js';
export { GuestMemory } from './guest-memory.js';
export type { GuestRegion } from './guest-memory.js';
export { KVM_REGS_NAMES, gpa, hva } from './types.js';
export type { Gpa, Gva, Hva, Gfn, KvmRegs, KvmSregs, KvmVcpuEvents, UserspaceMemoryRegion, VcpuExit } from './types.js';
