/**
 * vmx_x86_ops and vmx_init_ops (arch/x86/kvm/vmx/vmx.c, main.c): the kvm_x86_ops table kvm_intel
 * registers, and the MSR, reset, TLB and inspection hooks that have no better home.
 */
import { CR0 } from '@kvmts/x86';
import {
  kvmGetMsrCommon, kvmSetMsrCommon, type KvmX86Ops, type KvmX86InitOps, type KvmVcpu, type MsrData, type TdpFormat,
  type VendorInspection, type HostKernel,
} from '@kvmts/core';
import { VMCS, VMCS_FIELDS, VMCS_TYPE, vmcsFieldType } from '../hw/fields.js';
import { MSR_IA32_VMX, MSR_IA32_FEATURE_CONTROL, FEATURE_CONTROL } from '../hw/caps.js';
import { EPT } from '../hw/tdp.js';
import { INVEPT_TYPE, INVVPID_TYPE } from '../hw/instructions.js';
import { exitReasonName } from '../hw/exit.js';
import {
  vmxHardwareSetup, vmxHardwareEnable, vmxHardwareDisable, vmxVmInit, vmxVcpuCreate, vmxVcpuFree, toVmx,
  vmxUpdateExceptionBitmap, type VcpuVmx,
} from './setup.js';
import {
  vmxVcpuLoad, vmxVcpuPut, vmxVcpuRun, vmcsSilicon, vmxInjectIrq, vmxInjectNmi, vmxInjectException, vmxCancelInjection,
  vmxGetInterruptShadow, vmxSetInterruptShadow, vmxInterruptAllowed, vmxNmiAllowed, vmxGetNmiMask, vmxSetNmiMask,
  vmxEnableIrqWindow, vmxEnableNmiWindow, vmxSkipEmulatedInstruction, vmxGetSegment, vmxSetSegment, vmxGetSegmentBase,
  vmxGetCpl, vmxGetCsDbLBits, vmxGetIdt, vmxSetIdt, vmxGetGdt, vmxSetGdt, vmxGetRflags, vmxSetRflags, vmxGetIfFlag,
  vmxCacheReg, vmxSetEfer, vmxSetCr0, vmxSetCr4, vmxSetDr7, vmxLoadMmuPgd, vmxWriteTscOffset,
} from './run.js';
import { vmxHandleExit } from './exit-handlers.js';
import { vmxGetVmxMsr, nestedVmxAllowed, nestedVmxPrepareSwitchToGuest, freeNested } from './nested.js';
import { nestedInspect } from './nested-inspect.js';
import { vmxGetNestedState, vmxSetNestedState } from './nested-state.js';
import type { VmxSilicon } from '../hw/silicon.js';

const MSR_FS_BASE = 0xc0000100;
const MSR_GS_BASE = 0xc0000101;
const MSR_KERNEL_GS_BASE = 0xc0000102;
const MSR_STAR = 0xc0000081;
const MSR_LSTAR = 0xc0000082;
const MSR_CSTAR = 0xc0000083;
const MSR_SYSCALL_MASK = 0xc0000084;
const MSR_TSC_AUX = 0xc0000103;
const MSR_SYSENTER_CS = 0x174;
const MSR_SYSENTER_ESP = 0x175;
const MSR_SYSENTER_EIP = 0x176;
const MSR_IA32_CR_PAT = 0x277;

const toBig = (n: number): bigint => BigInt.asUintN(64, BigInt(n));
const toNum = (b: bigint): number => Number(BigInt.asIntN(64, b));

/** vmx_get_msr: what the VMCS or the switched MSRs hold, else the common code. IA32_VMX_* answer L1 as nested.c sets them up. */
function vmxGetMsr(vcpu: KvmVcpu, msr: { index: number; data: bigint; hostInitiated: boolean }): number {
  const vmx = toVmx(vcpu);
  const g = vmx.guestMsrs;
  const s = vmcsSilicon(vmx);
  switch (msr.index) {
    case MSR_FS_BASE: msr.data = toBig(s.vmreadNum(VMCS.GUEST_FS_BASE)); return 0;
    case MSR_GS_BASE: msr.data = toBig(s.vmreadNum(VMCS.GUEST_GS_BASE)); return 0;
    case MSR_KERNEL_GS_BASE: msr.data = toBig(g.kernelGsBase); return 0;
    case MSR_STAR: msr.data = (BigInt(g.starHi >>> 0) << 32n) | BigInt(g.starLo >>> 0); return 0;
    case MSR_LSTAR: msr.data = toBig(g.lstar); return 0;
    case MSR_CSTAR: msr.data = toBig(g.cstar); return 0;
    case MSR_SYSCALL_MASK: msr.data = BigInt(g.sfmask >>> 0); return 0;
    case MSR_TSC_AUX: msr.data = BigInt(g.tscAux >>> 0); return 0;
    case MSR_SYSENTER_CS: msr.data = BigInt(s.vmread32(VMCS.GUEST_SYSENTER_CS)); return 0;
    case MSR_SYSENTER_ESP: msr.data = toBig(s.vmreadNum(VMCS.GUEST_SYSENTER_ESP)); return 0;
    case MSR_SYSENTER_EIP: msr.data = toBig(s.vmreadNum(VMCS.GUEST_SYSENTER_EIP)); return 0;
    case MSR_IA32_FEATURE_CONTROL:
      // Locked, VMXON outside SMX allowed: what firmware leaves for a guest with nested VMX.
      if (!nestedVmxAllowed(vcpu)) return 1;
      msr.data = BigInt(FEATURE_CONTROL.LOCKED | FEATURE_CONTROL.VMXON_OUTSIDE_SMX);
      return 0;
    default:
      if (msr.index >= MSR_IA32_VMX.BASIC && msr.index <= MSR_IA32_VMX.VMFUNC) {
        const d = vmxGetVmxMsr(vcpu, msr.index);
        if (d === undefined) return 1;
        msr.data = d;
        return 0;
      }
      return kvmGetMsrCommon(vcpu, msr);
  }
}

function vmxSetMsr(vcpu: KvmVcpu, msr: MsrData): number {
  const vmx = toVmx(vcpu);
  const g = vmx.guestMsrs;
  const s = vmcsSilicon(vmx);
  const d = msr.data;
  const canonical = (): boolean => { const n = toNum(d); return n >= -(2 ** 47) && n < 2 ** 47; };
  switch (msr.index) {
    case MSR_FS_BASE: if (!canonical()) return 1; s.vmwriteNum(VMCS.GUEST_FS_BASE, toNum(d)); return 0;
    case MSR_GS_BASE: if (!canonical()) return 1; s.vmwriteNum(VMCS.GUEST_GS_BASE, toNum(d)); return 0;
    case MSR_KERNEL_GS_BASE: if (!canonical()) return 1; g.kernelGsBase = toNum(d); return 0;
    case MSR_STAR: g.starLo = Number(d & 0xffffffffn) | 0; g.starHi = Number((d >> 32n) & 0xffffffffn) | 0; return 0;
    case MSR_LSTAR: if (!canonical()) return 1; g.lstar = toNum(d); return 0;
    case MSR_CSTAR: if (!canonical()) return 1; g.cstar = toNum(d); return 0;
    case MSR_SYSCALL_MASK: g.sfmask = Number(d & 0xffffffffn) | 0; return 0;
    case MSR_TSC_AUX: if (d >> 32n) return 1; g.tscAux = Number(d) | 0; return 0;
    case MSR_SYSENTER_CS: s.vmwrite32(VMCS.GUEST_SYSENTER_CS, Number(d & 0xffffffffn)); return 0;
    case MSR_SYSENTER_ESP: if (!canonical()) return 1; s.vmwriteNum(VMCS.GUEST_SYSENTER_ESP, toNum(d)); return 0;
    case MSR_SYSENTER_EIP: if (!canonical()) return 1; s.vmwriteNum(VMCS.GUEST_SYSENTER_EIP, toNum(d)); return 0;
    case MSR_IA32_CR_PAT: {
      const r = kvmSetMsrCommon(vcpu, msr);
      if (r === 0) s.vmwrite64(VMCS.GUEST_IA32_PAT, d);
      return r;
    }
    case MSR_IA32_FEATURE_CONTROL: return 1;
    default:
      if (msr.index >= MSR_IA32_VMX.BASIC && msr.index <= MSR_IA32_VMX.VMFUNC) return 1;
      return kvmSetMsrCommon(vcpu, msr);
  }
}

/**
 * vmx_vcpu_reset (__vmx_vcpu_reset and the seg_setup calls): the guest state of RESET/INIT
 * (SDM vol. 3A Table 10-1), written into the VMCS.
 */
function vmxVcpuReset(vcpu: KvmVcpu, _initEvent: boolean): void {
  const vmx = toVmx(vcpu);
  const s = vmcsSilicon(vmx);
  for (let seg = 0; seg < 8; seg++) {
    const cs = seg === 1;
    const tr = seg === 6;
    const ldtr = seg === 7;
    vmxSetSegmentRaw(s, seg, cs ? 0xf000 : 0, cs ? 0xffff0000 : 0, 0xffff, cs ? 0x9b : tr ? 0x8b : ldtr ? 0x82 : 0x93);
  }
  s.vmwriteNum(VMCS.GUEST_GDTR_BASE, 0);
  s.vmwrite32(VMCS.GUEST_GDTR_LIMIT, 0xffff);
  s.vmwriteNum(VMCS.GUEST_IDTR_BASE, 0);
  s.vmwrite32(VMCS.GUEST_IDTR_LIMIT, 0xffff);
  s.vmwrite32(VMCS.GUEST_ACTIVITY_STATE, 0);
  s.vmwrite32(VMCS.GUEST_INTERRUPTIBILITY_INFO, 0);
  s.vmwriteNum(VMCS.GUEST_PENDING_DBG_EXCEPTIONS, 0);
  vmxSetRflags(vcpu, 2); // kvm_set_rflags(vcpu, X86_EFLAGS_FIXED)
  s.vmwriteNum(VMCS.GUEST_DR7, 0x400);
  s.vmwrite32(VMCS.GUEST_SYSENTER_CS, 0);
  s.vmwriteNum(VMCS.GUEST_SYSENTER_ESP, 0);
  s.vmwriteNum(VMCS.GUEST_SYSENTER_EIP, 0);
  s.vmwrite64(VMCS.GUEST_IA32_PAT, 0x0007040600070406n);
  s.vmwrite32(VMCS.VM_ENTRY_INTR_INFO_FIELD, 0);
  vcpu.arch.rip = 0xfff0;
  vcpu.arch.cr0 = CR0.ET | CR0.CD | CR0.NW;
  vmxSetCr0(vcpu, (CR0.ET | CR0.CD | CR0.NW) >>> 0);
  vmxSetCr4(vcpu, 0);
  vmxSetEfer(vcpu, 0);
  s.vmwriteNum(VMCS.GUEST_CR3, 0);
  vmxUpdateExceptionBitmap(vcpu);
}

function vmxSetSegmentRaw(s: ReturnType<typeof vmcsSilicon>, sreg: number, selector: number, base: number, limit: number, ar: number): void {
  // VCPU_SREG order: ES CS SS DS FS GS TR LDTR; VMCS order: ES CS SS DS FS GS LDTR TR.
  const o = (sreg === 6 ? 7 : sreg === 7 ? 6 : sreg) * 2;
  s.vmwrite32(VMCS.GUEST_ES_SELECTOR + o, selector);
  s.vmwriteNum(VMCS.GUEST_ES_BASE + o, base);
  s.vmwrite32(VMCS.GUEST_ES_LIMIT + o, limit);
  s.vmwrite32(VMCS.GUEST_ES_AR_BYTES + o, ar);
}

// ---- TLB flushes: INVEPT and INVVPID (vmx_flush_tlb_*) ----

function vmxFlushTlbAll(vcpu: KvmVcpu): void {
  const s = vmcsSilicon(toVmx(vcpu));
  s.invept(INVEPT_TYPE.ALL_CONTEXT, 0n);
}

function vmxFlushTlbCurrent(vcpu: KvmVcpu): void {
  const s = vmcsSilicon(toVmx(vcpu));
  s.invept(INVEPT_TYPE.SINGLE_CONTEXT, s.vmread64(VMCS.EPT_POINTER));
}

function vmxFlushTlbGva(vcpu: KvmVcpu, gva: number): void {
  const vmx = toVmx(vcpu);
  if (vmx.vpid) vmcsSilicon(vmx).invvpid(INVVPID_TYPE.INDIVIDUAL_ADDR, vmx.vpid, gva);
}

function vmxFlushTlbGuest(vcpu: KvmVcpu): void {
  const vmx = toVmx(vcpu);
  if (vmx.vpid) vmcsSilicon(vmx).invvpid(INVVPID_TYPE.SINGLE_CONTEXT, vmx.vpid);
  else vmxFlushTlbCurrent(vcpu);
}

/** The EPT leaf format the core's TDP MMU writes: RWX, WB memory type with ignore-PAT, MMIO as a W+X misconfiguration. */
const EPT_FORMAT: TdpFormat = {
  kind: 'ept',
  read: EPT.READ,
  write: EPT.WRITE,
  exec: EPT.EXEC,
  nonLeaf: 0,
  leafExtra: (6 << EPT.MT_SHIFT) | EPT.IPAT,
  mmioSpte: { lo: EPT.WRITE | EPT.EXEC, hi: 0 },
};

const GROUPS = [
  ['controls', VMCS_TYPE.CONTROL],
  ['exit information', VMCS_TYPE.READ_ONLY],
  ['guest state', VMCS_TYPE.GUEST],
  ['host state', VMCS_TYPE.HOST],
] as const;

/** The VMCS as the SDM groups it (25.3-25.9), with the fields the last exit changed. */
function vmxInspect(vcpu: KvmVcpu): VendorInspection {
  const vmx = toVmx(vcpu);
  const s = vmcsSilicon(vmx);
  const nested = nestedInspect(vmx, vmcsGroups);
  return {
    vendor: 'intel',
    structures: nested?.structures ?? [{ name: 'vmcs01', hpa: vmx.vmcs01.vmcs, groups: vmcsGroups(s) }],
    counters: { entries: s.entryCount, exits: s.exitCount, vpid: vmx.vpid, ...nested?.counters },
  };
}

/** The current VMCS of `s`, grouped. */
function vmcsGroups(s: VmxSilicon): VendorInspection['structures'][number]['groups'] {
  const changed = new Set(s.fieldsChangedAtLastExit());
  return GROUPS.map(([name, type]) => ({
    name,
    fields: VMCS_FIELDS.flatMap(([n, enc], i) => (vmcsFieldType(enc) === type ? [{ name: n, value: s.vmread64(enc), changed: changed.has(i) }] : [])),
  }));
}

/**
 * vmx_get_exit_info. The common code asks for it on every exit but mostly reads only the reason,
 * so one view per vCPU VMREADs the other fields when they are read.
 */
export class VmxExitInfo {
  private readonly vmx: VcpuVmx;
  constructor(vmx: VcpuVmx) { this.vmx = vmx; }
  get reason(): number { return this.vmx.exitReason; }
  get info1(): bigint { return BigInt.asUintN(64, BigInt(vmcsSilicon(this.vmx).vmreadNum(VMCS.EXIT_QUALIFICATION))); }
  get info2(): bigint { return BigInt.asUintN(64, BigInt(vmcsSilicon(this.vmx).vmreadNum(VMCS.GUEST_PHYSICAL_ADDRESS))); }
  get intrInfo(): number { return vmcsSilicon(this.vmx).vmread32(VMCS.VM_EXIT_INTR_INFO); }
  get errorCode(): number { return vmcsSilicon(this.vmx).vmread32(VMCS.VM_EXIT_INTR_ERROR_CODE); }
}

/** vmx_free_vcpu: nested state first (nested_vmx_free_vcpu -> free_nested), then vmcs01, the MSR bitmap and the VPID. */
function vmxFreeVcpu(vcpu: KvmVcpu): void {
  freeNested(toVmx(vcpu));
  vmxVcpuFree(vcpu);
}

function vmxGetExitInfo(vcpu: KvmVcpu): VmxExitInfo {
  const vmx = toVmx(vcpu);
  return vmx.exitInfo ?? (vmx.exitInfo = new VmxExitInfo(vmx));
}

export const vmxX86Ops: KvmX86Ops = {
  name: 'kvm_intel',
  checkProcessorCompatibility: () => 0,
  hardwareEnable: (pcpuId) => vmxHardwareEnable(hostOf(pcpuId), pcpuId),
  hardwareDisable: (pcpuId) => vmxHardwareDisable(hostOf(pcpuId), pcpuId),
  hardwareUnsetup: () => {},
  hasEmulatedMsr: (_kvm, index) => !(index >= MSR_IA32_VMX.BASIC && index <= MSR_IA32_VMX.VMFUNC),
  vcpuAfterSetCpuid: () => {},
  vmInit: vmxVmInit,
  vcpuCreate: vmxVcpuCreate,
  vcpuFree: vmxFreeVcpu,
  vcpuReset: vmxVcpuReset,
  prepareSwitchToGuest: nestedVmxPrepareSwitchToGuest,
  vcpuLoad: vmxVcpuLoad,
  vcpuPut: vmxVcpuPut,
  updateExceptionBitmap: vmxUpdateExceptionBitmap,
  getMsrFeature: () => undefined,
  getMsr: vmxGetMsr,
  setMsr: vmxSetMsr,
  getSegmentBase: vmxGetSegmentBase,
  getSegment: vmxGetSegment,
  getCpl: vmxGetCpl,
  setSegment: vmxSetSegment,
  getCsDbLBits: vmxGetCsDbLBits,
  isValidCr0: () => true,
  setCr0: vmxSetCr0,
  // CR4.VMXE only for a guest offered VMX (nested_vmx_allowed).
  isValidCr4: (vcpu, cr4) => (cr4 & (1 << 13)) === 0 || nestedVmxAllowed(vcpu),
  setCr4: vmxSetCr4,
  setEfer: vmxSetEfer,
  getIdt: vmxGetIdt,
  setIdt: vmxSetIdt,
  getGdt: vmxGetGdt,
  setGdt: vmxSetGdt,
  syncDirtyDebugRegs: () => {},
  setDr7: vmxSetDr7,
  cacheReg: vmxCacheReg,
  getRflags: vmxGetRflags,
  setRflags: vmxSetRflags,
  getIfFlag: vmxGetIfFlag,
  flushTlbAll: vmxFlushTlbAll,
  flushTlbCurrent: vmxFlushTlbCurrent,
  flushTlbGva: vmxFlushTlbGva,
  flushTlbGuest: vmxFlushTlbGuest,
  vcpuPreRun: () => 1,
  vcpuRun: vmxVcpuRun,
  handleExit: vmxHandleExit,
  skipEmulatedInstruction: vmxSkipEmulatedInstruction,
  setInterruptShadow: vmxSetInterruptShadow,
  getInterruptShadow: vmxGetInterruptShadow,
  injectIrq: vmxInjectIrq,
  injectNmi: vmxInjectNmi,
  injectException: vmxInjectException,
  cancelInjection: vmxCancelInjection,
  interruptAllowed: vmxInterruptAllowed,
  nmiAllowed: vmxNmiAllowed,
  getNmiMask: vmxGetNmiMask,
  setNmiMask: vmxSetNmiMask,
  enableNmiWindow: vmxEnableNmiWindow,
  enableIrqWindow: vmxEnableIrqWindow,
  loadMmuPgd: vmxLoadMmuPgd,
  getExitInfo: vmxGetExitInfo,
  exitReasonName,
  writeTscOffset: vmxWriteTscOffset,
  tdpFormat: () => EPT_FORMAT,
  nestedGetState: vmxGetNestedState,
  nestedSetState: vmxSetNestedState,
  inspect: vmxInspect,
};

/**
 * The host the pCPU-indexed hooks (hardware_enable/disable) run on: the one hardware_setup last
 * ran for, as a kernel has one. vcpu_load also enables a pCPU that is not yet in VMX operation,
 * so several hosts in one process stay correct.
 */
let setupHost: HostKernel | null = null;
function hostOf(_pcpuId: number): HostKernel {
  if (!setupHost) throw new Error('kvm_intel: hardware_setup has not run');
  return setupHost;
}

export const vmxInitOps: KvmX86InitOps = {
  hardwareSetup: (host) => {
    setupHost = host;
    return vmxHardwareSetup(host);
  },
  runtimeOps: vmxX86Ops,
};

