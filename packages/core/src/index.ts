// kvm_x86_ops and the shapes vendors see
export { KVM_X86_OPS } from './x86/kvm-x86-ops.js';
export type { KvmX86Ops, KvmX86OpsSignatures, KvmX86InitOps, TdpFormat, VendorInspection } from './x86/kvm-x86-ops.js';
export { VCPU_SREG, KVM_REQ } from './x86/kvm-types.js';
export type { KvmSegment, KvmDtable, MsrData, ExitResult, Pcpu, HostKernel, KvmVcpuArch, KvmVcpu, Kvm } from './x86/kvm-types.js';

// uapi
export { ERRNO, errnoName } from './uapi/errno.js';
export type { ErrnoName } from './uapi/errno.js';
export { KVM_CAP } from './uapi/caps.js';
export type { KvmCapName } from './uapi/caps.js';
export {
  KVM_API_VERSION, KVM_EXIT, KVM_INTERNAL_ERROR, KVM_EXIT_IO, KVM_SYSTEM_EVENT, KVM_MP_STATE, KVM_MEM, KVM_GUESTDBG,
  KVM_VCPUEVENT, KVM_SYNC_X86, KVM_STATE_NESTED, KVM_CPUID_FLAG, KVM_MSR_EXIT_REASON, KVM_LIMITS,
} from './uapi/constants.js';
export { KVM, KVMIO, KVM_IOCTLS, IOC_DIR, ioc, ioctlInfo } from './uapi/ioctls.js';
export type { KvmIoctlName, IoctlInfo } from './uapi/ioctls.js';
export {
  KVM_REGS_STRUCT, KVM_SEGMENT_STRUCT, KVM_DTABLE_STRUCT, KVM_SREGS_STRUCT, KVM_USERSPACE_MEMORY_REGION_STRUCT,
  KVM_CPUID_ENTRY2_STRUCT, KVM_CPUID2_STRUCT, KVM_MSR_ENTRY_STRUCT, KVM_MSRS_STRUCT, KVM_MSR_LIST_STRUCT,
  KVM_DIRTY_LOG_STRUCT, KVM_INTERRUPT_STRUCT, KVM_MP_STATE_STRUCT, KVM_TRANSLATION_STRUCT, KVM_GUEST_DEBUG_STRUCT,
  KVM_VCPU_EVENTS_STRUCT, KVM_ENABLE_CAP_STRUCT, KVM_FPU_STRUCT, KVM_VMX_NESTED_STATE_HDR_STRUCT,
  KVM_SVM_NESTED_STATE_HDR_STRUCT, KVM_NESTED_STATE_STRUCT, KVM_RUN_STRUCT, KVM_XSAVE_STRUCT, KVM_XCR_STRUCT, KVM_XCRS_STRUCT, UAPI_STRUCTS,
  decodeStruct, encodeStruct, fieldOffsets, offsetOf,
} from './uapi/structs.js';
export type { StructDef, Field, Scalar, StructValue, FieldValue } from './uapi/structs.js';

// the host
export { Host, LOCAL_TIMER_VECTOR, HOST_TICK_INSTRUCTIONS, HOST_SELECTORS } from './host/host.js';
export type { HostOptions, CpuFactory, HostCpuTables } from './host/host.js';
export { Process, PROT, MAP } from './host/process.js';
export type { IoctlArg, KFile } from './host/file.js';

// virt/kvm
export { KvmModule, missingRequiredOps } from './kvm/kvm-module.js';
export { Vm, VM_STAT_NAMES } from './kvm/vm.js';
export { Vcpu, VCPU_STAT_NAMES } from './kvm/vcpu.js';
export { KVM_MR } from './kvm/memslots.js';
export { StatsFile, parseStats, KVM_STATS_NAME_SIZE, KVM_STATS_TYPE, KVM_STATS_UNIT } from './kvm/stats-fd.js';
export type { Memslot } from './kvm/memslots.js';

// arch/x86/kvm common code, for the vendor modules
export {
  VCPU_REGS, PFERR, KVM_X86_SHADOW_INT, KVM_HC, MSR, MSRS_TO_SAVE, toVcpu,
  kvmRegisterRead, kvmRegisterReadLo, kvmRegisterWrite, kvmRegisterWriteLoHi, kvmRipRead, kvmRipWrite, isLongMode,
  kvmMakeRequest, kvmTestRequest, kvmCheckRequest,
  kvmQueueException, kvmRequeueException, kvmInjectGp, kvmInjectPageFault, kvmQueueInterrupt, kvmClearInterruptQueue,
  kvmClearExceptionQueue, kvmCpuHasInterrupt, kvmHandleInvalidOp,
  kvmSetCr0, kvmSetCr3, kvmSetCr4, kvmSetCr8, kvmGetCr8, kvmSetDr, kvmGetDr, kvmGetRflags, kvmSetRflags,
  kvmSkipEmulatedInstruction, kvmEmulateCpuid, kvmEmulateHalt, kvmEmulateHypercall,
  kvmGetMsrCommon, kvmSetMsrCommon, kvmEmulateRdmsr, kvmEmulateWrmsr,
  kvmFastPio, kvmPioExit, kvmRunFailEntry, kvmRunInternalError, kvmUnexpectedExitReason, kvmHandleTripleFault, kvmVcpuDebugExit,
} from './x86/x86.js';
export { KvmRun } from './x86/kvm-run.js';
export { EMULTYPE, kvmEmulateInstruction } from './x86/emulate.js';
export { TASK_SWITCH, kvmTaskSwitch } from './x86/task-switch.js';
export { XFEATURE, XFEATURE_MASK, KVM_SUPPORTED_XCR0, XCR_XFEATURE_ENABLED_MASK, FXREGS_STATE, XSAVE_HDR_OFFSET, kvmEmulateXsetbv } from './x86/fpu.js';
export { kvmArchVcpuIoctlRun, vcpuRun, vcpuEnterGuest } from './x86/vcpu-run.js';
export { supportedCpuid, findCpuidEntry, kvmCpuid, guestCpuidHasVirt, guestVendorIsAmd } from './x86/cpuid.js';
export type { CpuidEntry } from './x86/cpuid.js';
export { gvaToGpa } from './x86/paging.js';
export { kvmMmuPageFault } from './mmu/mmu.js';
export { TdpMmu } from './mmu/tdp-mmu.js';

// the typed façade (also at @kvmts/core/api, where the system handle is named Kvm)
export { Kvm as KvmApi, VmFd, VcpuFd, KvmError, GuestMemory, KVM_REGS_NAMES, gpa, hva } from './api/index.js';
export type { GuestRegion, Gpa, Gva, Hva, Gfn, KvmFpu, KvmRegs, KvmSregs, KvmVcpuEvents, KvmXcr, UserspaceMemoryRegion, VcpuExit } from './api/index.js';
export { LONG64, LONG64_MIN_MEM, long64Tables, long64Sregs, segmentFromDescriptor, setupLong64, type GuestWriter } from './api/index.js';
export { StatsFd, type KvmStats } from './api/index.js';

// benchmarks
export { benchVmCreate, createRunDestroy } from './bench/vm-create.js';
export { benchCpuidExit, benchPioExit, benchVmLoop64 } from './bench/exit-loops.js';
export type { BenchVendor } from './bench/exit-loops.js';
export type { VmCreateResult } from './bench/vm-create.js';
