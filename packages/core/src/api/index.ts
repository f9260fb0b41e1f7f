export { Kvm, VmFd, VcpuFd } from './kvm.js';
export { KvmError } from './kvm-error.js';
export { GuestMemory } from './guest-memory.js';
export type { GuestRegion } from './guest-memory.js';
export { KVM_REGS_NAMES, gpa, hva } from './types.js';
export type { Gpa, Gva, Hva, Gfn, KvmRegs, KvmSregs, KvmVcpuEvents, UserspaceMemoryRegion, VcpuExit } from './types.js';
export { LONG64, LONG64_MIN_MEM, long64Tables, long64Sregs, segmentFromDescriptor, setupLong64 } from './long64.js';
export type { GuestWriter } from './long64.js';
