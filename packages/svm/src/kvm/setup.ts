/**
 * Module and vCPU set-up, after arch/x86/kvm/svm/svm.c: svm_hardware_setup, svm_cpu_init,
 * svm_hardware_enable/disable, svm_vcpu_create/free and init_vmcb. The kernel reaches the
 * silicon only through instructions: WRMSR (EFER, VM_HSAVE_PA), and later VMRUN, VMLOAD, VMSAVE.
 */
import { CR0, EFER, type VirtCpu } from '@kvmts/x86';
import type { HostKernel, Kvm, KvmVcpu, Pcpu } from '@kvmts/core';
import {
  INTERCEPT_BIT, SVM_NESTED_CTL_NP_ENABLE, V_INTR_MASKING_MASK, VMCB, VMCB_CLEAN, VMCB_SEG,
} from '../hw/fields.js';
import { CPUID_8000_0001_ECX_SVM, MSR_EFER, MSR_VM_CR, MSR_VM_HSAVE_PA, SVM_FEATURE, SVM_VM_CR_SVM_DISABLE } from '../hw/caps.js';
import { VmcbRegion } from '../hw/region.js';
import type { SvmSilicon } from '../hw/silicon.js';
import { msrpmOffset } from '../hw/intercepts.js';

const ENOMEM = 12;
const EIO = 5;
const EBUSY = 16;

/** IOPM: 12 KiB, allocated as order 2 (IOPM_ALLOC_ORDER); MSRPM: 8 KiB, order 1 (MSRPM_ALLOC_ORDER). */
export const IOPM_ALLOC_ORDER = 2;
export const MSRPM_ALLOC_ORDER = 1;
const IOPM_SIZE = 3 * 4096;
const MSRPM_SIZE = 2 * 4096;

/** struct svm_cpu_data (svm.h): per pCPU. */
export interface SvmCpuData {
  cpu: number;
  asidGeneration: number;
  maxAsid: number;
  nextAsid: number;
  minAsid: number;
  /** The host save area page, programmed into VM_HSAVE_PA. */
  saveAreaPa: number;
  /** The VMCB last run on this pCPU. */
  currentVmcb: number;
}

/** struct vcpu_svm (svm.h), as much as this module uses. */
export interface VcpuSvm {
  readonly vcpu: KvmVcpu;
  /** vmcb01: the VMCB page (kernel-mapped) and its PA. */
  readonly vmcb: VmcbRegion;
  readonly vmcbPa: number;
  readonly msrpmPa: number;
  asid: number;
  /** svm->current_vmcb->asid_generation and ->cpu. */
  asidGeneration: number;
  vmcbCpu: number;
  /** svm->next_rip: the RIP after the intercepted instruction, when KVM knows it without NRIPS (IOIO's EXITINFO2). */
  nextRip: number;
  /**
   * svm->soft_int_*: the INTn/INT3/INTO KVM injected last, so that an exit during its delivery
   * can re-inject it with the same return address (svm_complete_soft_interrupt).
   */
  softIntInjected: boolean;
  softIntCsbase: number;
  softIntOldRip: number;
  softIntNextRip: number;
  nmiMasked: boolean;
  awaitingIretCompletion: boolean;
  nmiIretRip: number;
  /** Single-stepping the guest (TF) to find where NMIs unblock; the RFLAGS it had before. */
  nmiSinglestep: boolean;
  nmiSinglestepGuestRflags: number;
  /** svm->guest_state_loaded: host state VMSAVEd to the save area for this load. */
  guestStateLoaded: boolean;
  /** VMCB bytes at the last VMRUN, for the inspector's change marks (only kept once inspect() is used). */
  snapshot: Uint8Array | null;
  hsaveSnapshot: Uint8Array | null;
  /** Why the pCPU's run loop returned at the last VMRUN (STOP.*), or -1 when VMRUN itself faulted. */
  lastStop: number;
  /** svm_get_exit_info's view of the VMCB: read when asked, so the exit path builds no BigInt. */
  readonly exitInfo: SvmExitInfo;
}

/** The last exit as kvm_x86_ops.get_exit_info reports it, read from the VMCB on demand. */
export class SvmExitInfo {
  private readonly vmcb: VmcbRegion;
  constructor(vmcb: VmcbRegion) { this.vmcb = vmcb; }
  get reason(): number { return this.vmcb.r32(VMCB.exit_code) | 0; }
  get info1(): bigint { return this.vmcb.get('exit_info_1'); }
  get info2(): bigint { return this.vmcb.get('exit_info_2'); }
  get intrInfo(): number { return this.vmcb.r32(VMCB.exit_int_info); }
  get errorCode(): number { return this.vmcb.r32(VMCB.exit_int_info_err); }
}

/** The module's globals (svm.c's npt_enabled, nrips, iopm_base, …), set by svm_hardware_setup. */
export const svmGlobals = {
  host: null as HostKernel | null,
  nptEnabled: true,
  nrips: true,
  flushByAsid: true,
  iopmBase: -1,
};

export function toSvm(vcpu: KvmVcpu): VcpuSvm {
  return vcpu.vendor as VcpuSvm;
}

export function svmData(pcpu: Pcpu): SvmCpuData {
  return pcpu.vendor as SvmCpuData;
}

/** The pCPU's SVM silicon: what its instructions act on. */
export function silicon(cpu: VirtCpu): SvmSilicon {
  return cpu.ext as SvmSilicon;
}

/** wrmsr_safe on a pCPU: 0, or -EIO when the MSR write faults. */
export function wrmsrSafe(cpu: VirtCpu, index: number, value: bigint): number {
  try {
    if (cpu.ext?.wrmsr(index, value)) return 0;
    if (index === MSR_EFER) { cpu.efer = Number(value & 0xffffn); cpu.stateChanged(); return 0; }
    cpu.msrs.set(index, value);
    return 0;
  } catch {
    return -EIO;
  }
}

function rdmsr(cpu: VirtCpu, index: number): bigint {
  if (index === MSR_EFER) return BigInt(cpu.efer);
  return cpu.ext?.rdmsr(index) ?? cpu.msrs.get(index) ?? 0n;
}

/** svm_cpu_init: the per-cpu data with its zeroed save area page. */
export function svmCpuInit(host: HostKernel, pcpu: Pcpu): number {
  const saveAreaPa = host.allocPage();
  if (saveAreaPa < 0) return -ENOMEM;
  const sd: SvmCpuData = { cpu: pcpu.id, asidGeneration: 1, maxAsid: 0, nextAsid: 0, minAsid: 1, saveAreaPa, currentVmcb: -1 };
  pcpu.vendor = sd;
  return 0;
}

/** svm_hardware_setup: the IOPM (every port intercepted), features, per-cpu data. */
export function svmHardwareSetup(host: HostKernel): number {
  const cpu0 = host.pcpus[0]?.cpu;
  if (!cpu0) return -EIO;
  const [, , ecx] = cpu0.model.cpuid(0x80000001, 0);
  if (!(ecx & CPUID_8000_0001_ECX_SVM)) return -EIO;
  const [, , , features] = cpu0.model.cpuid(0x8000000a, 0);
  svmGlobals.host = host;
  svmGlobals.nptEnabled = (features & SVM_FEATURE.NPT) !== 0;
  svmGlobals.nrips = (features & SVM_FEATURE.NRIPS) !== 0;
  svmGlobals.flushByAsid = (features & SVM_FEATURE.FLUSHBYASID) !== 0;
  const iopm = host.allocPages(IOPM_ALLOC_ORDER);
  if (iopm < 0) return -ENOMEM;
  host.mem.fill(iopm, IOPM_SIZE, 0xff);
  svmGlobals.iopmBase = iopm;
  for (const pcpu of host.pcpus) {
    const r = svmCpuInit(host, pcpu);
    if (r) return r;
  }
  return 0;
}

export function svmHardwareUnsetup(): void {
  const host = svmGlobals.host;
  if (!host) return;
  for (const pcpu of host.pcpus) {
    const sd = pcpu.vendor as SvmCpuData | null;
    if (sd) host.freePage(sd.saveAreaPa);
    pcpu.vendor = null;
  }
  for (let i = 0; i < 1 << IOPM_ALLOC_ORDER; i++) host.freePage(svmGlobals.iopmBase + i * 4096);
  svmGlobals.iopmBase = -1;
}

/** svm_hardware_enable: EFER.SVME on, then VM_HSAVE_PA = the save area. */
export function svmHardwareEnable(pcpuId: number): number {
  const pcpu = svmGlobals.host!.pcpus[pcpuId]!;
  const cpu = pcpu.cpu;
  const sd = svmData(pcpu);
  if (cpu.efer & EFER.SVME) return -EBUSY;
  if (rdmsr(cpu, MSR_VM_CR) & BigInt(SVM_VM_CR_SVM_DISABLE)) return -EIO;
  sd.asidGeneration = 1;
  sd.maxAsid = cpu.model.cpuid(0x8000000a, 0)[1] - 1;
  sd.nextAsid = sd.maxAsid + 1;
  sd.minAsid = 1;
  if (wrmsrSafe(cpu, MSR_EFER, BigInt(cpu.efer | EFER.SVME))) return -EIO;
  return wrmsrSafe(cpu, MSR_VM_HSAVE_PA, BigInt(sd.saveAreaPa));
}

/** svm_hardware_disable: VM_HSAVE_PA = 0, EFER.SVME off. */
export function svmHardwareDisable(pcpuId: number): void {
  const cpu = svmGlobals.host!.pcpus[pcpuId]!.cpu;
  wrmsrSafe(cpu, MSR_VM_HSAVE_PA, 0n);
  wrmsrSafe(cpu, MSR_EFER, BigInt(cpu.efer & ~EFER.SVME));
}

/** The MSRs KVM lets the guest touch without an exit (svm.c direct_access_msrs): the VMLOAD/VMSAVE-switched ones. */
export const DIRECT_ACCESS_MSRS = [
  0xc0000100, // MSR_FS_BASE
  0xc0000101, // MSR_GS_BASE
  0xc0000102, // MSR_KERNEL_GS_BASE
  0xc0000081, // MSR_STAR
  0xc0000082, // MSR_LSTAR
  0xc0000083, // MSR_CSTAR
  0xc0000084, // MSR_SYSCALL_MASK
] as const;

/** set_msr_interception: clears (or sets) the read and write bits of `msr` in the MSRPM. */
export function setMsrInterception(host: HostKernel, msrpmPa: number, msr: number, read: boolean, write: boolean): void {
  const bit = msrpmOffset(msr);
  if (bit < 0) return;
  const at = msrpmPa + (bit >>> 3);
  let byte = host.mem.read8(at);
  const r = 1 << (bit & 7);
  const w = 1 << ((bit & 7) + 1);
  byte = read ? byte | r : byte & ~r;
  byte = write ? byte | w : byte & ~w;
  host.mem.write8(at, byte);
}

/** svm_vcpu_create: the VMCB page and the MSR permission map. */
export function svmVcpuCreate(vcpu: KvmVcpu): number {
  const host = vcpu.kvm.host;
  const vmcbPa = host.allocPage();
  if (vmcbPa < 0) return -ENOMEM;
  const msrpmPa = host.allocPages(MSRPM_ALLOC_ORDER);
  if (msrpmPa < 0) { host.freePage(vmcbPa); return -ENOMEM; }
  host.mem.fill(msrpmPa, MSRPM_SIZE, 0xff);
  for (const msr of DIRECT_ACCESS_MSRS) setMsrInterception(host, msrpmPa, msr, false, false);
  const vmcb = new VmcbRegion(host.mem, vmcbPa);
  const svm: VcpuSvm = {
    vcpu, vmcb, vmcbPa, msrpmPa, exitInfo: new SvmExitInfo(vmcb), asid: 0, asidGeneration: 0, vmcbCpu: -1,
    nextRip: 0, softIntInjected: false, softIntCsbase: 0, softIntOldRip: 0, softIntNextRip: 0, nmiMasked: false, awaitingIretCompletion: false, nmiIretRip: 0, nmiSinglestep: false,
    nmiSinglestepGuestRflags: 0, guestStateLoaded: false,
    snapshot: null, hsaveSnapshot: null, lastStop: 0,
  };
  vcpu.vendor = svm;
  initVmcb(vcpu);
  return 0;
}

export function svmVcpuFree(vcpu: KvmVcpu): void {
  const svm = toSvm(vcpu);
  const host = vcpu.kvm.host;
  host.freePage(svm.vmcbPa);
  host.freePage(svm.msrpmPa);
  host.freePage(svm.msrpmPa + 4096);
}

export function svmVmInit(kvm: Kvm): number {
  kvm.vendor = {};
  return 0;
}

/** VMCB_ALL_CLEAN_MASK without VMCB_ALWAYS_DIRTY_MASK (svm.h): KVM never leaves INTR and CR2 clean. */
const VMCB_ALL_CLEAN_MASK = Object.values(VMCB_CLEAN).reduce((m: number, b) => m | (1 << b), 0);
const VMCB_ALWAYS_DIRTY_MASK = (1 << VMCB_CLEAN.INTR) | (1 << VMCB_CLEAN.CR2);

/** vmcb_mark_all_dirty: the next VMRUN loads everything from the VMCB. */
export function vmcbMarkAllDirty(v: VmcbRegion): void {
  v.w32(VMCB.clean, 0);
}

/** vmcb_mark_all_clean: after a VMRUN the processor holds what the VMCB says. */
export function vmcbMarkAllClean(v: VmcbRegion): void {
  v.w32(VMCB.clean, VMCB_ALL_CLEAN_MASK & ~VMCB_ALWAYS_DIRTY_MASK);
}

/** vmcb_mark_dirty: KVM changed a field of group `bit` (VMCB_CLEAN), which the next VMRUN must load. */
export function vmcbMarkDirty(v: VmcbRegion, bit: number): void {
  v.w32(VMCB.clean, v.r32(VMCB.clean) & ~(1 << bit));
}

function setIntercept(v: VmcbRegion, bit: number): void {
  const off = VMCB.intercept_cr + 4 * (bit >>> 5);
  v.w32(off, v.r32(off) | (1 << (bit & 31)));
  vmcbMarkDirty(v, VMCB_CLEAN.INTERCEPTS);
}

function clrIntercept(v: VmcbRegion, bit: number): void {
  const off = VMCB.intercept_cr + 4 * (bit >>> 5);
  v.w32(off, v.r32(off) & ~(1 << (bit & 31)));
  vmcbMarkDirty(v, VMCB_CLEAN.INTERCEPTS);
}

export function svmSetIntercept(svm: VcpuSvm, bit: number): void { setIntercept(svm.vmcb, bit); }
export function svmClrIntercept(svm: VcpuSvm, bit: number): void { clrIntercept(svm.vmcb, bit); }
export function svmIsIntercept(svm: VcpuSvm, bit: number): boolean {
  return (svm.vmcb.r32(VMCB.intercept_cr + 4 * (bit >>> 5)) & (1 << (bit & 31))) !== 0;
}

/** Bit numbers of the CR intercepts in word 0 (INTERCEPT_CR0_READ = 0, INTERCEPT_CR0_WRITE = 16). */
export const INTERCEPT_CR_READ = (n: number): number => n;
export const INTERCEPT_CR_WRITE = (n: number): number => 16 + n;
/** Exception intercepts are word 2. */
export const INTERCEPT_EXCEPTION = (vec: number): number => 64 + vec;

const UD_VECTOR = 6;
const PF_VECTOR = 14;
const MC_VECTOR = 18;
const AC_VECTOR = 17;
/** The reset segment attributes init_vmcb writes (svm.c init_seg / init_sys_seg). */
const SEG_ATTRIB_DATA = 0x93; // P | S | WRITE | ACCESSED
const SEG_ATTRIB_CODE = 0x9b; // P | S | CODE | READ | ACCESSED
const SYS_ATTRIB_LDT = 0x82;
const SYS_ATTRIB_TSS16_BUSY = 0x83;

/** init_vmcb: the intercepts KVM sets, the permission maps, and the reset state (APM 14.1.3). */
export function initVmcb(vcpu: KvmVcpu): void {
  const svm = toSvm(vcpu);
  const v = svm.vmcb;
  const host = vcpu.kvm.host;
  host.mem.fill(svm.vmcbPa, 4096, 0);
  // CR intercepts (svm_set_intercept INTERCEPT_CR0/3/4 READ and WRITE, CR8_WRITE); NPT drops CR3.
  for (const cr of [0, 3, 4]) { setIntercept(v, INTERCEPT_CR_READ(cr)); setIntercept(v, INTERCEPT_CR_WRITE(cr)); }
  setIntercept(v, INTERCEPT_CR_WRITE(8));
  // set_dr_intercepts: every DR read and write.
  v.w32(VMCB.intercept_dr, 0xffffffff);
  for (const vec of [PF_VECTOR, UD_VECTOR, MC_VECTOR, AC_VECTOR]) setIntercept(v, INTERCEPT_EXCEPTION(vec));
  for (const bit of [
    INTERCEPT_BIT.INTR, INTERCEPT_BIT.NMI, INTERCEPT_BIT.SMI, INTERCEPT_BIT.SELECTIVE_CR0,
    INTERCEPT_BIT.RDPMC, INTERCEPT_BIT.CPUID, INTERCEPT_BIT.INVD, INTERCEPT_BIT.INVLPG,
    INTERCEPT_BIT.INVLPGA, INTERCEPT_BIT.IOIO_PROT, INTERCEPT_BIT.MSR_PROT, INTERCEPT_BIT.TASK_SWITCH,
    INTERCEPT_BIT.SHUTDOWN, INTERCEPT_BIT.VMRUN, INTERCEPT_BIT.VMMCALL, INTERCEPT_BIT.VMLOAD,
    INTERCEPT_BIT.VMSAVE, INTERCEPT_BIT.STGI, INTERCEPT_BIT.CLGI, INTERCEPT_BIT.SKINIT,
    INTERCEPT_BIT.WBINVD, INTERCEPT_BIT.XSETBV, INTERCEPT_BIT.RDPRU, INTERCEPT_BIT.RSM,
    INTERCEPT_BIT.MONITOR, INTERCEPT_BIT.MWAIT, INTERCEPT_BIT.HLT,
  ]) setIntercept(v, bit);
  v.w64(VMCB.iopm_base_pa, svmGlobals.iopmBase);
  v.w64(VMCB.msrpm_base_pa, svm.msrpmPa);
  v.w32(VMCB.int_ctl, V_INTR_MASKING_MASK);
  // Reset state (svm.c init_vmcb, APM Table 14-1).
  for (const s of [VMCB_SEG.es, VMCB_SEG.ss, VMCB_SEG.ds, VMCB_SEG.fs, VMCB_SEG.gs]) {
    v.writeSeg(s, { selector: 0, base: 0, limit: 0xffff, ar: SEG_ATTRIB_DATA });
  }
  v.writeSeg(VMCB_SEG.cs, { selector: 0xf000, base: 0xffff0000, limit: 0xffff, ar: SEG_ATTRIB_CODE });
  v.writeDtr(VMCB_SEG.gdtr, { base: 0, limit: 0xffff });
  v.writeDtr(VMCB_SEG.idtr, { base: 0, limit: 0xffff });
  v.writeSeg(VMCB_SEG.ldtr, { selector: 0, base: 0, limit: 0xffff, ar: SYS_ATTRIB_LDT });
  v.writeSeg(VMCB_SEG.tr, { selector: 0, base: 0, limit: 0xffff, ar: SYS_ATTRIB_TSS16_BUSY });
  v.w64(VMCB.efer, EFER.SVME);
  v.w64(VMCB.rflags, 2);
  v.w64(VMCB.rip, 0xfff0);
  v.w64(VMCB.dr6, 0xffff0ff0);
  v.w64(VMCB.dr7, 0x400);
  v.w64Halves(VMCB.g_pat, 0x00070406, 0x00070406);
  if (svmGlobals.nptEnabled) {
    // Paging is the guest's own: no #PF, INVLPG or CR3 intercepts.
    v.w64(VMCB.nested_ctl, SVM_NESTED_CTL_NP_ENABLE);
    clrIntercept(v, INTERCEPT_BIT.INVLPG);
    clrIntercept(v, INTERCEPT_EXCEPTION(PF_VECTOR));
    clrIntercept(v, INTERCEPT_CR_READ(3));
    clrIntercept(v, INTERCEPT_CR_WRITE(3));
  }
  svmSetCr0Hw(svm, CR0.NW | CR0.CD | CR0.ET);
  svm.asidGeneration = 0;
  svm.nmiMasked = false;
  svm.awaitingIretCompletion = false;
  svm.nmiSinglestep = false;
  vmcbMarkAllDirty(v);
}

/**
 * The hardware CR0 svm_set_cr0 derives from the guest's: with KVM_X86_QUIRK_CD_NW_CLEARED,
 * CD and NW are cleared; when that makes it differ from the guest's view, CR0 reads and writes
 * are intercepted so the guest still sees its own value.
 */
export function svmSetCr0Hw(svm: VcpuSvm, cr0: number): void {
  let hcr0 = cr0;
  if (!svmGlobals.nptEnabled) hcr0 |= CR0.PG | CR0.WP;
  hcr0 &= ~(CR0.CD | CR0.NW);
  svm.vmcb.w64(VMCB.cr0, hcr0 >>> 0);
  vmcbMarkDirty(svm.vmcb, VMCB_CLEAN.CR);
  if ((hcr0 >>> 0) === (cr0 >>> 0)) {
    clrIntercept(svm.vmcb, INTERCEPT_CR_READ(0));
    clrIntercept(svm.vmcb, INTERCEPT_CR_WRITE(0));
  } else {
    setIntercept(svm.vmcb, INTERCEPT_CR_READ(0));
    setIntercept(svm.vmcb, INTERCEPT_CR_WRITE(0));
  }
}
