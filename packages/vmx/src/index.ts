export { intelCpuModel, CPUID_1_ECX_VMX } from './hw/model.js';
export { VmxSilicon } from './hw/silicon.js';
export type { VmxCpu, VmxSiliconOptions } from './hw/silicon.js';
export {
  VMCS_FIELDS, VMCS, FIELD, VMCS_WIDTH, VMCS_TYPE, vmcsFieldWidth, vmcsFieldType, vmcsFieldIndex,
} from './hw/fields.js';
export type { VmcsFieldName } from './hw/fields.js';
export {
  MSR_IA32_VMX, MSR_IA32_FEATURE_CONTROL, FEATURE_CONTROL, PIN_BASED, CPU_BASED, SECONDARY_EXEC, VM_EXIT, VM_ENTRY,
  VMCS_REVISION_ID,
} from './hw/caps.js';
export { EXIT_REASON, VMX_EXIT_REASONS_FAILED_VMENTRY, exitReasonName } from './hw/exit.js';
export { VMXERR, VMX_STATUS } from './hw/instructions.js';
export { ENTRY_CHECKS } from './hw/entry.js';
export { vmxX86Ops, vmxInitOps } from './kvm/ops.js';
export { kvmVmxExitHandlers, vmxHandleExit } from './kvm/exit-handlers.js';
export type { VcpuVmx, VmcsConfig, VmxCpuData, LoadedVmcs } from './kvm/setup.js';
export { benchCpuidExit, benchPioExit, benchVmLoop64 } from './bench/exit-bench.js';
export { benchNestedCpuid, NESTED_CPUID_ITERATIONS, NESTED_MEASURED_RUNS, NESTED_WARM_UP_RUNS } from './bench/nested-bench.js';
export { nestedParams, nestedVmxSetupCtlsMsrs, NESTED_CTLS } from './kvm/nested.js';
export type { NestedVmx } from './kvm/nested.js';
export { VMCS12_REVISION, VMCS12_SIZE } from './kvm/vmcs12.js';
