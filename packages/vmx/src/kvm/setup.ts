/**
 * Module and vCPU set-up, after arch/x86/kvm/vmx/vmx.c: setup_vmcs_config with
 * adjust_vmx_controls (hardware_setup), vmx_hardware_enable/disable (CR4.VMXE and VMXON on each
 * pCPU's VMXON region), alloc_vmcs and loaded_vmcs_init, allocate_vpid, vmx_vcpu_create/free and
 * init_vmcs (the I/O and MSR bitmap set-up, VMCS link pointer, controls, exception bitmap, CR
 * masks and shadows, the constant host state). Everything reaches the silicon through the VMX
 * instructions of the pCPU the kernel is running on.
 */
import { CR0, CR4, SEG, VEC, MSR, rdmsrValue, type VirtCpu } from '@kvmts/x86';
import { vmxVcpuLoad, vmcsSilicon } from './run.js';
import type { HostKernel, Kvm, KvmVcpu, Pcpu } from '@kvmts/core';
import { VMCS } from '../hw/fields.js';
import {
  MSR_IA32_VMX, MSR_IA32_FEATURE_CONTROL, FEATURE_CONTROL, PIN_BASED, CPU_BASED, SECONDARY_EXEC, VM_EXIT, VM_ENTRY,
  VMX_BASIC,
} from '../hw/caps.js';
import { VMX_STATUS } from '../hw/instructions.js';
import type { VmxSilicon } from '../hw/silicon.js';
import type { VmxExitInfo } from './ops.js';
import { CPUID_1_ECX_VMX } from '../hw/model.js';

const ENOMEM = 12;
const EIO = 5;

/** struct vmcs_config (vmx/capabilities.h): what hardware_setup settled on. */
export interface VmcsConfig {
  revisionId: number;
  size: number;
  pinBasedExecCtrl: number;
  cpuBasedExecCtrl: number;
  cpuBasedExec2Ctrl: number;
  vmexitCtrl: number;
  vmentryCtrl: number;
  misc: bigint;
  eptVpidCap: bigint;
}

/** The module's state on one host (vmx.c's globals: vmcs_config, enable_ept, vmx_vpid_bitmap, the MSR bitmap template). */
export interface VmxModule {
  readonly host: HostKernel;
  readonly config: VmcsConfig;
  enableEpt: boolean;
  enableVpid: boolean;
  enableUnrestrictedGuest: boolean;
  enableEptAdBits: boolean;
  readonly vpidBitmap: Uint8Array;
}

/** Per-pCPU data (vmxarea, current_vmcs, loaded_vmcss_on_cpu). */
export interface VmxCpuData {
  readonly cpu: number;
  /** The VMXON region. */
  vmxarea: number;
  /** The VMCS last VMPTRLDed here (per_cpu current_vmcs), or -1. */
  currentVmcs: number;
  /** loaded_vmcss_on_cpu: VMCSs active on this pCPU, VMCLEARed before they move or the CPU goes down. */
  readonly loadedVmcss: Set<LoadedVmcs>;
}

/** struct loaded_vmcs: a VMCS and where it is active. */
export interface LoadedVmcs {
  readonly vmcs: number;
  /** The pCPU on which it is active, or -1 (VMCLEARed). */
  cpu: number;
  launched: boolean;
}

/** The user-return MSRs and others the kernel switches by hand around VM entry (vmx_prepare_switch_to_guest). */
export interface GuestSwitchedMsrs {
  kernelGsBase: number;
  starLo: number;
  starHi: number;
  lstar: number;
  cstar: number;
  sfmask: number;
  tscAux: number;
}

/** struct vcpu_vmx (vmx.h), as much as this module uses. */
export interface VcpuVmx {
  readonly vcpu: KvmVcpu;
  readonly module: VmxModule;
  /** vmcs01 and loaded_vmcs (which points at it: there is no nested vmcs02 here). */
  readonly vmcs01: LoadedVmcs;
  loadedVmcs: LoadedVmcs;
  readonly vpid: number;
  readonly msrBitmap: number;
  /** The last exit: VM_EXIT_REASON (full), or 0xdead when VMLAUNCH/VMRESUME itself failed (vmx->fail). */
  exitReason: number;
  fail: boolean;
  /** vcpu->arch.event_exit_inst_len: length of a soft event to re-inject. */
  eventExitInstLen: number;
  /** The controls as last written (the vmx->*_controls shadows Linux keeps to avoid VMREADs). */
  pinCtl: number;
  execCtl: number;
  exec2Ctl: number;
  entryCtl: number;
  exitCtl: number;
  readonly guestMsrs: GuestSwitchedMsrs;
  /** Why the pCPU's run loop returned at the last entry (STOP.*). */
  lastStop: number;
  /** vmx_get_exit_info's view of this vCPU's exit fields, made on first use. */
  exitInfo: VmxExitInfo | null;
  /**
   * vmx->rflags, valid while `rflagsVmcs` is the loaded VMCS (VCPU_EXREG_RFLAGS available): an
   * exit or a switch of loaded_vmcs makes it unavailable, so the next read is a VMREAD.
   */
  rflags: number;
  rflagsVmcs: LoadedVmcs | null;
  /**
   * GUEST_RSP as this vCPU last wrote or read it in `rspVmcs`: vmx_vcpu_run writes RSP only when
   * vcpu->arch.regs[RSP] differs (kvm_register_is_dirty), as nothing else writes GUEST_RSP.
   */
  rspLo: number;
  rspHi: number;
  rspVmcs: LoadedVmcs | null;
}

const modules = new WeakMap<HostKernel, VmxModule>();

export function vmxModule(host: HostKernel): VmxModule {
  const m = modules.get(host);
  if (!m) throw new Error('kvm_intel: hardware_setup has not run on this host');
  return m;
}

export function toVmx(vcpu: KvmVcpu): VcpuVmx {
  return vcpu.vendor as VcpuVmx;
}

export function vmxCpuData(pcpu: Pcpu): VmxCpuData {
  return pcpu.vendor as VmxCpuData;
}

/** The VMX silicon of a pCPU: what the kernel's VMX instructions execute on. */
export function silicon(cpu: VirtCpu): VmxSilicon {
  return cpu.ext as VmxSilicon;
}

/** rdmsr on the pCPU the kernel runs on. */
function rdmsr(cpu: VirtCpu, index: number): bigint {
  return cpu.ext?.rdmsr(index) ?? 0n;
}

/** adjust_vmx_controls: min must be allowed, opt is taken where allowed. Returns -1 when min is not. */
function adjustVmxControls(min: number, opt: number, cap: bigint): number {
  const must1 = Number(cap & 0xffffffffn);
  const may1 = Number(cap >> 32n);
  let ctl = (min | opt) >>> 0;
  ctl &= may1;
  ctl |= must1;
  if ((min & ~ctl) !== 0) return -1;
  return ctl >>> 0;
}

/** setup_vmcs_config: reads the capability MSRs and settles the controls KVM will use. */
export function setupVmcsConfig(cpu: VirtCpu): VmcsConfig | number {
  const pin = adjustVmxControls(PIN_BASED.EXT_INTR_MASK | PIN_BASED.NMI_EXITING,
    PIN_BASED.VIRTUAL_NMIS | PIN_BASED.VMX_PREEMPTION_TIMER, rdmsr(cpu, MSR_IA32_VMX.PINBASED_CTLS));
  let exec = adjustVmxControls(
    CPU_BASED.HLT_EXITING | CPU_BASED.CR8_LOAD_EXITING | CPU_BASED.CR8_STORE_EXITING | CPU_BASED.CR3_LOAD_EXITING
    | CPU_BASED.CR3_STORE_EXITING | CPU_BASED.UNCOND_IO_EXITING | CPU_BASED.MOV_DR_EXITING | CPU_BASED.USE_TSC_OFFSETTING
    | CPU_BASED.MWAIT_EXITING | CPU_BASED.MONITOR_EXITING | CPU_BASED.INVLPG_EXITING | CPU_BASED.RDPMC_EXITING,
    CPU_BASED.USE_MSR_BITMAPS | CPU_BASED.ACTIVATE_SECONDARY_CONTROLS, rdmsr(cpu, MSR_IA32_VMX.PROCBASED_CTLS));
  if (pin < 0 || exec < 0) return -EIO;
  let exec2 = 0;
  if (exec & CPU_BASED.ACTIVATE_SECONDARY_CONTROLS) {
    exec2 = adjustVmxControls(0, SECONDARY_EXEC.ENABLE_EPT | SECONDARY_EXEC.ENABLE_VPID | SECONDARY_EXEC.UNRESTRICTED_GUEST
      | SECONDARY_EXEC.WBINVD_EXITING | SECONDARY_EXEC.ENABLE_RDTSCP | SECONDARY_EXEC.ENABLE_INVPCID,
    rdmsr(cpu, MSR_IA32_VMX.PROCBASED_CTLS2));
  }
  // With EPT the guest owns CR3 and INVLPG (vmx.c: "CR3 accesses and invlpg don't need to cause VM Exits when EPT enabled").
  if (exec2 & SECONDARY_EXEC.ENABLE_EPT) exec = (exec & ~(CPU_BASED.CR3_LOAD_EXITING | CPU_BASED.CR3_STORE_EXITING | CPU_BASED.INVLPG_EXITING)) >>> 0;
  const exit = adjustVmxControls(VM_EXIT.SAVE_DEBUG_CONTROLS | VM_EXIT.HOST_ADDR_SPACE_SIZE | VM_EXIT.ACK_INTR_ON_EXIT,
    VM_EXIT.LOAD_IA32_EFER | VM_EXIT.SAVE_IA32_EFER | VM_EXIT.SAVE_IA32_PAT | VM_EXIT.LOAD_IA32_PAT, rdmsr(cpu, MSR_IA32_VMX.EXIT_CTLS));
  const entry = adjustVmxControls(VM_ENTRY.LOAD_DEBUG_CONTROLS, VM_ENTRY.LOAD_IA32_EFER | VM_ENTRY.LOAD_IA32_PAT,
    rdmsr(cpu, MSR_IA32_VMX.ENTRY_CTLS));
  if (exit < 0 || entry < 0) return -EIO;
  const basic = rdmsr(cpu, MSR_IA32_VMX.BASIC);
  return {
    revisionId: Number(basic & BigInt(VMX_BASIC.REVISION_MASK)),
    size: Number((basic >> 32n) & 0x1fffn),
    pinBasedExecCtrl: pin,
    cpuBasedExecCtrl: exec,
    cpuBasedExec2Ctrl: exec2,
    vmexitCtrl: exit,
    vmentryCtrl: entry,
    misc: rdmsr(cpu, MSR_IA32_VMX.MISC),
    eptVpidCap: rdmsr(cpu, MSR_IA32_VMX.EPT_VPID_CAP),
  };
}

/** hardware_setup: module-wide capabilities. Returns 0 or -errno. */
export function vmxHardwareSetup(host: HostKernel): number {
  const pcpu = host.pcpus[0];
  if (!pcpu) return -EIO;
  const cpu = pcpu.cpu;
  // cpu_has_vmx and the firmware's IA32_FEATURE_CONTROL (vmx_disabled_by_bios).
  if (!(cpu.model.cpuid(1, 0)[2] & CPUID_1_ECX_VMX)) return -EIO;
  const fc = Number(rdmsr(cpu, MSR_IA32_FEATURE_CONTROL));
  if (!(fc & FEATURE_CONTROL.LOCKED) || !(fc & FEATURE_CONTROL.VMXON_OUTSIDE_SMX)) return -EIO;
  const config = setupVmcsConfig(cpu);
  if (typeof config === 'number') return config;
  const exec2 = config.cpuBasedExec2Ctrl;
  const enableEpt = (exec2 & SECONDARY_EXEC.ENABLE_EPT) !== 0;
  const vpidBitmap = new Uint8Array(65536 / 8);
  vpidBitmap[0] = 1; // VPID 0 is the host's
  modules.set(host, {
    host,
    config,
    enableEpt,
    enableVpid: (exec2 & SECONDARY_EXEC.ENABLE_VPID) !== 0,
    enableUnrestrictedGuest: enableEpt && (exec2 & SECONDARY_EXEC.UNRESTRICTED_GUEST) !== 0,
    enableEptAdBits: (config.eptVpidCap & (1n << 21n)) !== 0n,
    vpidBitmap,
  });
  for (const p of host.pcpus) p.vendor = { cpu: p.id, vmxarea: -1, currentVmcs: -1, loadedVmcss: new Set<LoadedVmcs>() } satisfies VmxCpuData;
  return 0;
}

/** alloc_vmcs_cpu: a zeroed page with the revision identifier at offset 0. */
export function allocVmcs(m: VmxModule): number {
  const pa = m.host.allocPage();
  if (pa < 0) return -1;
  m.host.mem.write32(pa, m.config.revisionId);
  return pa;
}

/** vmx_hardware_enable: CR4.VMXE, then VMXON on this pCPU's VMXON region. */
export function vmxHardwareEnable(host: HostKernel, pcpuId: number): number {
  const m = vmxModule(host);
  const pcpu = host.pcpus[pcpuId];
  if (!pcpu) return -EIO;
  const d = vmxCpuData(pcpu);
  if (d.vmxarea < 0) {
    d.vmxarea = allocVmcs(m);
    if (d.vmxarea < 0) return -ENOMEM;
  }
  const cpu = pcpu.cpu;
  cpu.cr4 |= CR4.VMXE;
  cpu.stateChanged();
  if (silicon(cpu).vmxon(d.vmxarea) !== VMX_STATUS.SUCCEED) {
    cpu.cr4 &= ~CR4.VMXE;
    return -EIO;
  }
  return 0;
}

/** vmx_hardware_disable: VMCLEAR everything active here (vmclear_local_loaded_vmcss), VMXOFF, clear CR4.VMXE. */
export function vmxHardwareDisable(host: HostKernel, pcpuId: number): void {
  const pcpu = host.pcpus[pcpuId];
  if (!pcpu) return;
  const d = vmxCpuData(pcpu);
  for (const l of d.loadedVmcss) loadedVmcsClearLocal(pcpu, l);
  const s = silicon(pcpu.cpu);
  if (s.inVmxOperation) s.vmxoff();
  pcpu.cpu.cr4 &= ~CR4.VMXE;
  pcpu.cpu.stateChanged();
}

/** __loaded_vmcs_clear on the pCPU where the VMCS is active. */
export function loadedVmcsClearLocal(pcpu: Pcpu, l: LoadedVmcs): void {
  const d = vmxCpuData(pcpu);
  silicon(pcpu.cpu).vmclear(l.vmcs);
  if (d.currentVmcs === l.vmcs) d.currentVmcs = -1;
  d.loadedVmcss.delete(l);
  l.cpu = -1;
  l.launched = false;
}

/** allocate_vpid / free_vpid. */
export function allocateVpid(m: VmxModule): number {
  if (!m.enableVpid) return 0;
  for (let v = 1; v < 65536; v++) {
    if (!(m.vpidBitmap[v >> 3]! & (1 << (v & 7)))) {
      m.vpidBitmap[v >> 3]! |= 1 << (v & 7);
      return v;
    }
  }
  return 0;
}

export function freeVpid(m: VmxModule, vpid: number): void {
  if (vpid !== 0) m.vpidBitmap[vpid >> 3]! &= ~(1 << (vpid & 7));
}

/** MSRs the guest reaches without an exit: the ones the VMCS switches, and the ones vcpu_run switches by hand. */
const PASSTHROUGH_MSRS = [
  0xc0000100, 0xc0000101, 0xc0000102, // FS_BASE, GS_BASE, KERNEL_GS_BASE
  0x174, 0x175, 0x176, // SYSENTER_CS/ESP/EIP
  0xc0000081, 0xc0000082, 0xc0000083, 0xc0000084, // STAR, LSTAR, CSTAR, SFMASK
  0xc0000103, // TSC_AUX
] as const;

/** vmx_disable_intercept_for_msr on a bitmap that traps everything (SDM 25.6.9 layout). */
function msrBitmapPassThrough(host: HostKernel, bitmap: number, msr: number): void {
  const base = msr >= 0xc0000000 ? 1024 : 0;
  const bit = msr & 0x1fff;
  for (const write of [0, 2048]) {
    const a = bitmap + base + write + (bit >> 3);
    host.mem.write8(a, host.mem.read8(a) & ~(1 << (bit & 7)));
  }
}

export function vmxVmInit(kvm: Kvm): number {
  kvm.vendor = { module: vmxModule(kvm.host) };
  return 0;
}

/** vmx_vcpu_create: vcpu_vmx with vmcs01 (alloc_vmcs + loaded_vmcs_init's VMCLEAR), a VPID, the MSR bitmap, then init_vmcs. */
export function vmxVcpuCreate(vcpu: KvmVcpu): number {
  const m = vmxModule(vcpu.kvm.host);
  const host = m.host;
  const vmcs = allocVmcs(m);
  if (vmcs < 0) return -ENOMEM;
  const msrBitmap = host.allocPage();
  if (msrBitmap < 0) { host.freePage(vmcs); return -ENOMEM; }
  host.mem.fill(msrBitmap, 4096, 0xff);
  for (const msr of PASSTHROUGH_MSRS) msrBitmapPassThrough(host, msrBitmap, msr);
  // loaded_vmcs_init: VMCLEAR gives the region a clear launch state.
  const pcpu0 = host.pcpus[0]!;
  silicon(pcpu0.cpu).vmclear(vmcs);
  const vmcs01: LoadedVmcs = { vmcs, cpu: -1, launched: false };
  const vmx: VcpuVmx = {
    vcpu, module: m, vmcs01, loadedVmcs: vmcs01, vpid: allocateVpid(m), msrBitmap,
    exitReason: 0, fail: false, eventExitInstLen: 0,
    pinCtl: 0, execCtl: 0, exec2Ctl: 0, entryCtl: 0, exitCtl: 0,
    guestMsrs: { kernelGsBase: 0, starLo: 0, starHi: 0, lstar: 0, cstar: 0, sfmask: 0, tscAux: 0 },
    lastStop: 0, exitInfo: null,
    rflags: 0, rflagsVmcs: null, rspLo: 0, rspHi: 0, rspVmcs: null,
  };
  vcpu.vendor = vmx;
  vmxVcpuLoad(vcpu, 0);
  initVmcs(vmx);
  return 0;
}

/** The exception bitmap KVM starts from (update_exception_bitmap): #MC and #AC always; #DB while the VMM debugs. */
export function vmxUpdateExceptionBitmap(vcpu: KvmVcpu): void {
  let eb = (1 << VEC.MC) | (1 << VEC.AC);
  if (vcpu.guestDebug) eb |= (1 << VEC.DB) | (1 << VEC.BP);
  vmcsSilicon(toVmx(vcpu)).vmwrite32(VMCS.EXCEPTION_BITMAP, eb);
}

/** KVM_POSSIBLE_CR0_GUEST_BITS / KVM_POSSIBLE_CR4_GUEST_BITS (kvm_cache_regs.h): what the guest may change without an exit. */
export const CR0_GUEST_OWNED = CR0.TS | CR0.WP;
export const CR4_GUEST_OWNED = CR4.PVI | CR4.DE | CR4.PCE | CR4.OSFXSR | CR4.OSXMMEXCPT | CR4.PGE | CR4.TSD | CR4.FSGSBASE;

/** init_vmcs: the parts of the VMCS that stay for the vCPU's life. */
export function initVmcs(vmx: VcpuVmx): void {
  const s = vmcsSilicon(vmx);
  const c = vmx.module.config;
  const m = vmx.module;
  s.vmwrite64(VMCS.MSR_BITMAP, BigInt(vmx.msrBitmap));
  s.vmwrite64(VMCS.VMCS_LINK_POINTER, -1n);
  vmx.pinCtl = c.pinBasedExecCtrl & ~PIN_BASED.VMX_PREEMPTION_TIMER;
  vmx.execCtl = c.cpuBasedExecCtrl;
  vmx.exec2Ctl = c.cpuBasedExec2Ctrl & ~(m.enableVpid ? 0 : SECONDARY_EXEC.ENABLE_VPID);
  vmx.exitCtl = c.vmexitCtrl;
  vmx.entryCtl = c.vmentryCtrl & ~VM_ENTRY.IA32E_MODE;
  s.vmwrite32(VMCS.PIN_BASED_VM_EXEC_CONTROL, vmx.pinCtl);
  s.vmwrite32(VMCS.CPU_BASED_VM_EXEC_CONTROL, vmx.execCtl);
  s.vmwrite32(VMCS.SECONDARY_VM_EXEC_CONTROL, vmx.exec2Ctl);
  s.vmwrite32(VMCS.VM_EXIT_CONTROLS, vmx.exitCtl);
  s.vmwrite32(VMCS.VM_ENTRY_CONTROLS, vmx.entryCtl);
  if (vmx.vpid) s.vmwrite32(VMCS.VIRTUAL_PROCESSOR_ID, vmx.vpid);
  s.vmwrite32(VMCS.PAGE_FAULT_ERROR_CODE_MASK, 0);
  s.vmwrite32(VMCS.PAGE_FAULT_ERROR_CODE_MATCH, 0);
  s.vmwrite32(VMCS.CR3_TARGET_COUNT, 0);
  s.vmwrite32(VMCS.VM_EXIT_MSR_STORE_COUNT, 0);
  s.vmwrite32(VMCS.VM_EXIT_MSR_LOAD_COUNT, 0);
  s.vmwrite32(VMCS.VM_ENTRY_MSR_LOAD_COUNT, 0);
  s.vmwrite32(VMCS.VM_ENTRY_INTR_INFO_FIELD, 0);
  const a = vmx.vcpu.arch;
  a.cr0GuestOwnedBits = CR0_GUEST_OWNED;
  a.cr4GuestOwnedBits = CR4_GUEST_OWNED;
  s.vmwriteNum(VMCS.CR0_GUEST_HOST_MASK, ~CR0_GUEST_OWNED >>> 0);
  s.vmwriteNum(VMCS.CR4_GUEST_HOST_MASK, ~CR4_GUEST_OWNED >>> 0);
  vmxUpdateExceptionBitmap(vmx.vcpu);
  vmxSetHostState(s, s.cpu);
}

export function vmxVcpuFree(vcpu: KvmVcpu): void {
  const vmx = toVmx(vcpu);
  const host = vmx.module.host;
  const l = vmx.vmcs01;
  if (l.cpu >= 0) loadedVmcsClearLocal(host.pcpus[l.cpu]!, l);
  freeVpid(vmx.module, vmx.vpid);
  host.freePage(l.vmcs);
  host.freePage(vmx.msrBitmap);
}

/**
 * vmx_set_constant_host_state plus the per-cpu part of vmx_vcpu_load_vmcs: the HOST_* fields,
 * read from the pCPU's own registers as the kernel would (native_read_cr0, store_gdt, …).
 */
export function vmxSetHostState(s: VmxSilicon, cpu: VirtCpu): void {
  s.vmwriteNum(VMCS.HOST_CR0, cpu.cr0 >>> 0);
  s.vmwriteNum(VMCS.HOST_CR3, cpu.cr3);
  s.vmwriteNum(VMCS.HOST_CR4, cpu.cr4 >>> 0);
  s.vmwrite32(VMCS.HOST_CS_SELECTOR, cpu.seg[SEG.CS]!.selector);
  s.vmwrite32(VMCS.HOST_SS_SELECTOR, cpu.seg[SEG.SS]!.selector);
  s.vmwrite32(VMCS.HOST_DS_SELECTOR, cpu.seg[SEG.DS]!.selector);
  s.vmwrite32(VMCS.HOST_ES_SELECTOR, cpu.seg[SEG.ES]!.selector);
  s.vmwrite32(VMCS.HOST_FS_SELECTOR, cpu.seg[SEG.FS]!.selector);
  s.vmwrite32(VMCS.HOST_GS_SELECTOR, cpu.seg[SEG.GS]!.selector);
  s.vmwrite32(VMCS.HOST_TR_SELECTOR, cpu.seg[SEG.TR]!.selector);
  s.vmwriteNum(VMCS.HOST_FS_BASE, cpu.seg[SEG.FS]!.base);
  s.vmwriteNum(VMCS.HOST_GS_BASE, cpu.seg[SEG.GS]!.base);
  s.vmwriteNum(VMCS.HOST_TR_BASE, cpu.seg[SEG.TR]!.base);
  s.vmwriteNum(VMCS.HOST_GDTR_BASE, cpu.gdtr.base);
  s.vmwriteNum(VMCS.HOST_IDTR_BASE, cpu.idtr.base);
  s.vmwrite32(VMCS.HOST_IA32_SYSENTER_CS, cpu.sysenterCs);
  s.vmwriteNum(VMCS.HOST_IA32_SYSENTER_ESP, cpu.sysenterEsp);
  s.vmwriteNum(VMCS.HOST_IA32_SYSENTER_EIP, cpu.sysenterEip);
  s.vmwrite64(VMCS.HOST_IA32_EFER, BigInt(cpu.efer >>> 0));
  s.vmwrite64(VMCS.HOST_IA32_PAT, rdmsrValue(cpu, MSR.PAT));
  // vmx_vmexit's address and the kernel stack: where the pCPU continues after a VM exit.
  s.vmwriteNum(VMCS.HOST_RIP, cpu.rip);
  s.vmwriteNum(VMCS.HOST_RSP, cpu.gprHi[4]! * 2 ** 32 + (cpu.gpr[4]! >>> 0));
}
