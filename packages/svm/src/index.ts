export { amdCpuModel } from './hw/model.js';
export { SvmSilicon } from './hw/silicon.js';
export {
  VMCB_FIELDS, VMCB, SVM_EXIT, INTERCEPT_BIT, TLB_CONTROL, SVM_EVTINJ, SVM_IOIO, NPF_INFO,
  V_IRQ_MASK, V_TPR_MASK, V_INTR_MASKING_MASK, V_IGN_TPR_MASK, V_INTR_PRIO_SHIFT,
  SVM_NESTED_CTL_NP_ENABLE,
} from './hw/fields.js';
export type { VmcbFieldName } from './hw/fields.js';
export {
  MSR_VM_CR, MSR_VM_HSAVE_PA, SVM_VM_CR_LOCK, SVM_VM_CR_SVM_DISABLE, SVM_FEATURE, SVM_NASID,
} from './hw/caps.js';
export { VmcbRegion } from './hw/region.js';
export { VMRUN_CHECKS } from './hw/entry.js';
export { svmX86Ops, svmInitOps } from './kvm/ops.js';
export { svmExitHandlers, svmHandleExit } from './kvm/exit-handlers.js';
export type { SvmCpuData, VcpuSvm } from './kvm/setup.js';
export { benchCpuidExit, benchPioExit, benchVmLoop64 } from './bench/exit-bench.js';
