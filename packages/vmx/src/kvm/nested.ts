/**
 * Nested VMX, after arch/x86/kvm/vmx/nested.c: L1 is a hypervisor running in our guest, L0 is
 * this KVM. L1's VMX instructions exit to L0, which emulates them on vmcs12 (in L1's memory, KVM's
 * layout, cached in cached_vmcs12). VMLAUNCH/VMRESUME merge vmcs12 with vmcs01 into vmcs02
 * (prepare_vmcs02), a real VMCS that L0 runs on the silicon. Every L2 exit comes back to L0,
 * which handles it itself or reflects it to L1 (nested_vmx_reflect_vmexit → nested_vmx_vmexit:
 * vmcs02 synced into vmcs12, L1's host state loaded from vmcs12).
 */
import { AR, CR0, CR4, EFER, RFLAGS, VEC, INTR_INFO, EVENT_TYPE, CHUNK_SIZE } from '@kvmts/x86';
import {
  kvmSkipEmulatedInstruction, kvmQueueException, kvmQueueInterrupt, kvmInjectPageFault, kvmClearExceptionQueue,
  kvmClearInterruptQueue, kvmHandleInvalidOp, gvaToGpa, guestCpuidHasVirt, toVcpu, kvmMakeRequest, KVM_REQ,
  type ExitResult, type KvmVcpu, type Vm,
} from '@kvmts/core';
import { VMCS, FIELD, FIELD_COUNT, VMCS_FIELDS, FIELD_TYPE, VMCS_TYPE, VMCS_WIDTH, vmcsFieldIndex, vmcsFieldType, vmcsFieldWidth } from '../hw/fields.js';
import type { VmxSilicon } from '../hw/silicon.js';
import {
  MSR_IA32_VMX, PIN_BASED, CPU_BASED, SECONDARY_EXEC, VM_EXIT, VM_ENTRY, VMX_CAPS, VMX_MISC_VALUE, VMX_MISC,
  CR0_FIXED0, CR0_FIXED1, CR4_FIXED0, CR4_FIXED1, MAXPHYADDR, VMX_EPT_VPID_CAP, type CtlCap,
} from '../hw/caps.js';
import { VMXERR, vmreadRows, vmwriteRows } from '../hw/instructions.js';
import { FIELD_LO_MASK, FIELD_HI_MASK } from '../hw/region.js';
import { EXIT_REASON, VMX_EXIT_REASONS_FAILED_VMENTRY } from '../hw/exit.js';
import { VMCS_MAX_INDEX } from '../hw/fields.js';
import { toVmx, allocVmcs, allocateVpid, freeVpid, silicon, loadedVmcsClearLocal, type VcpuVmx, type LoadedVmcs } from './setup.js';
import { vmcsSilicon, vmxVcpuLoad, vmxGetRflags, vmxSetRflags, vmxSetCr0, vmxSetCr4, vmxSetEfer } from './run.js';
import { allocEpt02, freeEpt02, ept02Pointer, nestedEptFlush, nestedEptViolation, type Ept02 } from './nested-ept.js';
import { EPTP } from '../hw/tdp.js';
import { Vmcs12, VMCS12_REVISION, VMCS12_SIZE, VMCS12_LAUNCH_STATE, VMCS12_OFFSET, VMCS12_ABORT } from './vmcs12.js';

const TWO32 = 2 ** 32;
const PAGE = 4096;
/** 2^MAXPHYADDR: physical addresses lie below it. */
const MAX_PA = 2 ** MAXPHYADDR;
const INVALID_GPA = -1;
const RSP = 4;
const RCX = 1;
/** EXIT_QUALIFICATION of a guest-state entry failure (ENTRY_FAIL_DEFAULT). */
const ENTRY_FAIL_DEFAULT = 0;
/** RFLAGS bits VMX instructions report through (SDM 31.2). */
const VMX_ARITH_FLAGS = RFLAGS.CF | RFLAGS.PF | RFLAGS.AF | RFLAGS.ZF | RFLAGS.SF | RFLAGS.OF;

/** The controls vmcs01 had when L2 was entered (Linux keeps them per loaded_vmcs as controls_shadow). */
interface ControlsShadow { pin: number; exec: number; exec2: number; entry: number; exit: number }

/** struct nested_vmx, as much as this model uses. */
export interface NestedVmx {
  vmxon: boolean;
  vmxonPtr: number;
  /** GPA of the current vmcs12, or INVALID_GPA. */
  currentVmptr: number;
  readonly cachedVmcs12: Vmcs12;
  vmcs02: LoadedVmcs | null;
  msrBitmap02: number;
  vpid02: number;
  /** last_vpid: vmcs12's VPID at the last entry to L2 (0: none), whose change flushes VPID02. */
  lastVpid: number;
  /** vmcs01's control shadows while L2 runs, and vcpu->arch.cr*_guest_owned_bits of L1. */
  ctls01: ControlsShadow;
  /** vmcs02's control shadows while L1 runs (loaded_vmcs->controls_shadow of vmcs02): prepare_vmcs02 writes only what changes. -1: unknown. */
  ctls02: ControlsShadow;
  cr0GuestOwned01: number;
  cr4GuestOwned01: number;
  /** The vmcs02 field rows the last prepare_vmcs02 changed: the first lastPrepareChangedCount of them. */
  readonly lastPrepareChangedRows: Int16Array;
  lastPrepareChangedCount: number;
  /** vmcs01.shadow_vmcs (HPA, -1 without shadowing) and the VMREAD/VMWRITE bitmaps that steer L1's accesses to it. */
  shadowVmcs: number;
  vmreadBitmap: number;
  vmwriteBitmap: number;
  /** need_vmcs12_to_shadow_sync: cached_vmcs12 changed under L1; copy it to the shadow VMCS before L1 runs. */
  needVmcs12ToShadowSync: boolean;
  /**
   * dirty_vmcs12: L1 changed vmcs12 in a way prepare_vmcs02's fast path does not pick up (an
   * exiting VMWRITE of a field that is not shadowed read-write, a new current vmcs12), so the
   * next entry runs prepare_vmcs02_rare.
   */
  dirtyVmcs12: boolean;
  /** need_sync_vmcs02_to_vmcs12_rare: the vmcs12 fields of is_vmcs12_ext_field still lag vmcs02 since the last L2 exit. */
  needSyncVmcs02ToVmcs12Rare: boolean;
  /** preemption_timer_deadline: when L1's VMX-preemption timer for L2 expires, in the pCPU's instruction count (Infinity: not armed). */
  preemptionTimerDeadline: number;
  /** EPT02 while vmcs12 enables EPT (nested EPT), else null; and whether vmcs02 runs on EPT01. */
  ept02: Ept02 | null;
  vmcs02OnEpt01: boolean;
  readonly stats: { l2ExitsHandledInL0: number; l2ExitsReflected: number; vmxInstructionExits: number; nestedEntries: number };
}

/** Module parameters of nested.c that the tests and the dashboard may turn (enable_shadow_vmcs). */
export const nestedParams = { enableShadowVmcs: true };

const nestedOf = new WeakMap<VcpuVmx, NestedVmx>();
/** The last vCPU asked about and its nested state: a round trip asks a dozen times, so only the first looks in the WeakMap. */
let lastVmx: VcpuVmx | null = null;
let lastNested: NestedVmx | null = null;

export function toNested(vmx: VcpuVmx): NestedVmx {
  if (vmx === lastVmx) return lastNested!;
  let n = nestedOf.get(vmx);
  if (!n) {
    n = {
      vmxon: false, vmxonPtr: INVALID_GPA, currentVmptr: INVALID_GPA, cachedVmcs12: new Vmcs12(),
      vmcs02: null, msrBitmap02: -1, vpid02: 0, lastVpid: 0,
      ctls01: { pin: 0, exec: 0, exec2: 0, entry: 0, exit: 0 }, ctls02: { pin: -1, exec: -1, exec2: -1, entry: -1, exit: -1 },
      cr0GuestOwned01: 0, cr4GuestOwned01: 0,
      lastPrepareChangedRows: new Int16Array(FIELD_COUNT), lastPrepareChangedCount: 0, shadowVmcs: -1, vmreadBitmap: -1, vmwriteBitmap: -1, needVmcs12ToShadowSync: false,
      dirtyVmcs12: true, needSyncVmcs02ToVmcs12Rare: false, preemptionTimerDeadline: Infinity,
      ept02: null, vmcs02OnEpt01: true,
      stats: { l2ExitsHandledInL0: 0, l2ExitsReflected: 0, vmxInstructionExits: 0, nestedEntries: 0 },
    };
    nestedOf.set(vmx, n);
  }
  lastVmx = vmx;
  lastNested = n;
  return n;
}

export function nestedState(vmx: VcpuVmx): NestedVmx | undefined {
  return vmx === lastVmx ? lastNested! : nestedOf.get(vmx);
}

// ---- the capabilities L1 sees (nested_vmx_setup_ctls_msrs) --------------------------------------

const NESTED_PIN = PIN_BASED.EXT_INTR_MASK | PIN_BASED.NMI_EXITING | PIN_BASED.VIRTUAL_NMIS | PIN_BASED.VMX_PREEMPTION_TIMER;
const NESTED_PROC = ~(CPU_BASED.TPR_SHADOW) >>> 0;
/** Nested EPT; no VMCS shadowing for L1's own guests, no unrestricted guest. */
const NESTED_PROC2 = SECONDARY_EXEC.ENABLE_EPT | SECONDARY_EXEC.ENABLE_VPID | SECONDARY_EXEC.DESC | SECONDARY_EXEC.ENABLE_RDTSCP | SECONDARY_EXEC.WBINVD_EXITING
  | SECONDARY_EXEC.ENABLE_INVPCID;
const NESTED_EXIT = (VM_EXIT.HOST_ADDR_SPACE_SIZE | VM_EXIT.SAVE_IA32_PAT | VM_EXIT.LOAD_IA32_PAT | VM_EXIT.SAVE_IA32_EFER
  | VM_EXIT.LOAD_IA32_EFER | VM_EXIT.ACK_INTR_ON_EXIT | VM_EXIT.SAVE_VMX_PREEMPTION_TIMER) >>> 0;
const NESTED_ENTRY = VM_ENTRY.IA32E_MODE | VM_ENTRY.LOAD_IA32_PAT | VM_ENTRY.LOAD_IA32_EFER;

function restrict(c: CtlCap, allowed: number): CtlCap {
  return { must1: c.must1, may1: (c.must1 | (c.may1 & allowed)) >>> 0 };
}

/** The controls L1 may set in vmcs12: the silicon's, less what nesting does not offer. */
export const NESTED_CTLS = {
  pin: restrict(VMX_CAPS.truePin, NESTED_PIN),
  proc: restrict(VMX_CAPS.trueProc, NESTED_PROC),
  proc2: restrict(VMX_CAPS.proc2, NESTED_PROC2),
  exit: restrict(VMX_CAPS.trueExit, NESTED_EXIT),
  entry: restrict(VMX_CAPS.trueEntry, NESTED_ENTRY),
} as const;

/**
 * VMX_MISC_EMULATED_PREEMPTION_TIMER_RATE: L0 emulates L1's VMX-preemption timer, which
 * counts down once every 2^5 ticks of L2's time stamp counter (here, instructions retired).
 */
const NESTED_PREEMPTION_TIMER_RATE = 5;
/** IA32_VMX_MISC for L1: no VMWRITE to the exit-information fields (so error 13 is seen), the emulated timer's rate. */
const NESTED_MISC = ((VMX_MISC_VALUE & ~VMX_MISC.VMWRITE_ANY_FIELD & ~0x1f) | NESTED_PREEMPTION_TIMER_RATE) >>> 0;

const ctlMsr = (c: CtlCap, must1 = c.must1): bigint => (BigInt(c.may1 >>> 0) << 32n) | BigInt(must1 >>> 0);

/** nested_vmx_setup_ctls_msrs: every IA32_VMX_* MSR as L1 reads it. */
export function nestedVmxSetupCtlsMsrs(): ReadonlyMap<number, bigint> {
  const basic = BigInt(VMCS12_REVISION) | (BigInt(VMCS12_SIZE) << 32n) | (6n << 50n) | (1n << 54n) | (1n << 55n);
  const c = NESTED_CTLS;
  return new Map<number, bigint>([
    [MSR_IA32_VMX.BASIC, basic],
    [MSR_IA32_VMX.PINBASED_CTLS, ctlMsr(c.pin, VMX_CAPS.pin.must1)],
    [MSR_IA32_VMX.PROCBASED_CTLS, ctlMsr(c.proc, VMX_CAPS.proc.must1)],
    [MSR_IA32_VMX.EXIT_CTLS, ctlMsr(c.exit, VMX_CAPS.exit.must1)],
    [MSR_IA32_VMX.ENTRY_CTLS, ctlMsr(c.entry, VMX_CAPS.entry.must1)],
    [MSR_IA32_VMX.MISC, BigInt(NESTED_MISC)],
    [MSR_IA32_VMX.CR0_FIXED0, BigInt(CR0_FIXED0)],
    [MSR_IA32_VMX.CR0_FIXED1, BigInt(CR0_FIXED1)],
    [MSR_IA32_VMX.CR4_FIXED0, BigInt(CR4_FIXED0)],
    [MSR_IA32_VMX.CR4_FIXED1, BigInt(CR4_FIXED1)],
    [MSR_IA32_VMX.VMCS_ENUM, BigInt(VMCS_MAX_INDEX << 1)],
    [MSR_IA32_VMX.PROCBASED_CTLS2, ctlMsr(c.proc2)],
    [MSR_IA32_VMX.EPT_VPID_CAP, VMX_EPT_VPID_CAP.PAGE_WALK_4 | VMX_EPT_VPID_CAP.WB | VMX_EPT_VPID_CAP.UC | VMX_EPT_VPID_CAP.PAGE_2M
      | VMX_EPT_VPID_CAP.PAGE_1G | VMX_EPT_VPID_CAP.INVEPT | VMX_EPT_VPID_CAP.INVEPT_SINGLE_CONTEXT | VMX_EPT_VPID_CAP.INVEPT_ALL_CONTEXT
      | VMX_EPT_VPID_CAP.INVVPID | VMX_EPT_VPID_CAP.INVVPID_SINGLE_CONTEXT | VMX_EPT_VPID_CAP.INVVPID_ALL_CONTEXT
      | VMX_EPT_VPID_CAP.INVVPID_INDIVIDUAL_ADDR | VMX_EPT_VPID_CAP.AD],
    [MSR_IA32_VMX.TRUE_PINBASED_CTLS, ctlMsr(c.pin)],
    [MSR_IA32_VMX.TRUE_PROCBASED_CTLS, ctlMsr(c.proc)],
    [MSR_IA32_VMX.TRUE_EXIT_CTLS, ctlMsr(c.exit)],
    [MSR_IA32_VMX.TRUE_ENTRY_CTLS, ctlMsr(c.entry)],
    [MSR_IA32_VMX.VMFUNC, 0n],
  ]);
}

const NESTED_MSRS = nestedVmxSetupCtlsMsrs();

/** vmx_get_vmx_msr: L1's view of an IA32_VMX_* MSR, or undefined when nesting is off for this vCPU. */
export function vmxGetVmxMsr(vcpu: KvmVcpu, index: number): bigint | undefined {
  return nestedVmxAllowed(vcpu) ? NESTED_MSRS.get(index) : undefined;
}

/**
 * nested=1 and CPUID.1:ECX.VMX in the guest's CPUID (guest_cpuid_has(vcpu, X86_FEATURE_VMX)).
 * Deviation: a vCPU whose VMM never did KVM_SET_CPUID2 (kvmts run does not yet) counts as
 * offered VMX, as KVM_GET_SUPPORTED_CPUID offers it; a table without the bit turns nesting off.
 */
export function nestedVmxAllowed(vcpu: KvmVcpu): boolean {
  const table = toVcpu(vcpu).cpuid;
  return table.length === 0 || guestCpuidHasVirt(table).vmx;
}

// ---- L1 memory -------------------------------------------------------------------------------

function vmOf(vcpu: KvmVcpu): Vm {
  return vcpu.kvm as unknown as Vm;
}

/** The HPA behind L1 guest-physical `gpa`, or -1 (kvm_vcpu_map failing). */
function gpaToHpa(vcpu: KvmVcpu, gpa: number): number {
  return gpa < 0 ? -1 : vcpu.kvm.gpaToHpa(gpa);
}

function hostMem(vcpu: KvmVcpu): Vm['host']['mem'] {
  return vcpu.kvm.host.mem;
}

/** kvm_vcpu_read_guest of a page-aligned page into `dst`; false when unbacked. */
function readGuestPage(vcpu: KvmVcpu, gpa: number, dst: Uint8Array): boolean {
  const hpa = gpaToHpa(vcpu, gpa);
  if (hpa < 0) return false;
  dst.set(hostMem(vcpu).readBytes(hpa, dst.length));
  return true;
}

function writeGuestPage(vcpu: KvmVcpu, gpa: number, src: Uint8Array): boolean {
  const hpa = gpaToHpa(vcpu, gpa);
  if (hpa < 0) return false;
  hostMem(vcpu).writeBytes(hpa, src);
  return true;
}

function readGuest32(vcpu: KvmVcpu, gpa: number): number | null {
  const hpa = gpaToHpa(vcpu, gpa);
  return hpa < 0 ? null : hostMem(vcpu).read32(hpa);
}

function readGuest8(vcpu: KvmVcpu, gpa: number): number | null {
  const hpa = gpaToHpa(vcpu, gpa);
  return hpa < 0 ? null : hostMem(vcpu).read8(hpa);
}

// ---- registers and operands ------------------------------------------------------------------

/**
 * Scratch for the runs of VMREADs and VMWRITEs (vmreadRows/vmwriteRows) whose values do not go
 * to or come from vmcs12's own fields: row i's halves in [i]. Each user fills and empties them in
 * one go, and nothing here re-enters.
 */
const rowLo = new Int32Array(FIELD_COUNT);
const rowHi = new Int32Array(FIELD_COUNT);

function regRead(vcpu: KvmVcpu, reg: number): number {
  return vcpu.arch.regsHi[reg]! * TWO32 + (vcpu.arch.regs[reg]! >>> 0);
}

function regWriteHalves(vcpu: KvmVcpu, reg: number, lo: number, hi: number): void {
  vcpu.arch.regs[reg] = lo | 0;
  vcpu.arch.regsHi[reg] = hi | 0;
}

function longMode(vcpu: KvmVcpu): boolean {
  return (vcpu.arch.efer & EFER.LMA) !== 0;
}

/**
 * get_vmx_mem_address: the linear address of the instruction's memory operand from the exit
 * qualification (displacement) and the instruction-information field (SDM 28.2.5, Table 28-13).
 */
export function getVmxMemAddress(vcpu: KvmVcpu, qual: number, info: number): number {
  const s = vmcsSilicon(toVmx(vcpu));
  const scaling = info & 3;
  const addrSize = (info >> 7) & 7;
  const seg = (info >> 15) & 7;
  const index = (info >> 18) & 0xf;
  const indexValid = !(info & (1 << 22));
  const base = (info >> 23) & 0xf;
  const baseValid = !(info & (1 << 27));
  let off = qual;
  if (baseValid) off += regRead(vcpu, base);
  if (indexValid) off += regRead(vcpu, index) * 2 ** scaling;
  if (addrSize === 1) off = off >>> 0;
  else if (addrSize === 0) off &= 0xffff;
  // In 64-bit mode only FS and GS have a base (SDM 3.4.4); elsewhere every segment's base is added.
  const segBase = s.vmreadNum(VMCS.GUEST_ES_BASE + seg * 2);
  if (!longMode(vcpu) || seg === 4 || seg === 5) off += segBase;
  if (!longMode(vcpu)) off = off >>> 0;
  return off;
}

/** Reads `len` (4 or 8) bytes at L1 linear `gva`, or null after queueing #PF. */
function readGuestVirt(vcpu: KvmVcpu, gva: number, len: 4 | 8): { lo: number; hi: number } | null {
  const lo = guestVirtWord(vcpu, gva, false);
  if (lo === null) return null;
  if (len === 4) return { lo: lo.value, hi: 0 };
  const hi = guestVirtWord(vcpu, gva + 4, false);
  if (hi === null) return null;
  return { lo: lo.value, hi: hi.value };
}

function l1PagingState(vcpu: KvmVcpu): [number, number, number, number] {
  const s = vmcsSilicon(toVmx(vcpu));
  return [s.vmreadNum(VMCS.GUEST_CR0), s.vmreadNum(VMCS.GUEST_CR3), s.vmreadNum(VMCS.GUEST_CR4), vcpu.arch.efer];
}

function gvaToHpa(vcpu: KvmVcpu, gva: number, write: boolean): number {
  const [cr0, cr3, cr4, efer] = l1PagingState(vcpu);
  const t = gvaToGpa(vmOf(vcpu), gva < 0 ? gva + 2 ** 64 : gva, cr0, cr3, cr4, efer);
  if (!t || (write && !t.writeable && cr0 & CR0.WP)) {
    kvmInjectPageFault(vcpu, gva, (t ? 1 : 0) | (write ? 2 : 0));
    return -1;
  }
  const hpa = gpaToHpa(vcpu, t.gpa);
  if (hpa < 0) kvmQueueException(vcpu, VEC.GP, 0);
  return hpa;
}

function guestVirtWord(vcpu: KvmVcpu, gva: number, _write: boolean): { value: number } | null {
  const mem = hostMem(vcpu);
  if (gva % PAGE <= PAGE - 4) {
    const hpa = gvaToHpa(vcpu, gva, false);
    return hpa < 0 ? null : { value: mem.read32(hpa) };
  }
  // A word across a page boundary: each byte through its own page.
  let value = 0;
  for (let b = 0; b < 4; b++) {
    const hpa = gvaToHpa(vcpu, gva + b, false);
    if (hpa < 0) return null;
    value |= mem.read8(hpa) << (8 * b);
  }
  return { value: value >>> 0 };
}

function writeVirt32(vcpu: KvmVcpu, gva: number, value: number): boolean {
  const mem = hostMem(vcpu);
  if (gva % PAGE <= PAGE - 4) {
    const hpa = gvaToHpa(vcpu, gva, true);
    if (hpa < 0) return false;
    mem.write32(hpa, value >>> 0);
    return true;
  }
  for (let b = 0; b < 4; b++) {
    const hpa = gvaToHpa(vcpu, gva + b, true);
    if (hpa < 0) return false;
    mem.write8(hpa, (value >>> (8 * b)) & 0xff);
  }
  return true;
}

function writeGuestVirt(vcpu: KvmVcpu, gva: number, lo: number, hi: number, len: 4 | 8): boolean {
  if (!writeVirt32(vcpu, gva, lo)) return false;
  return len === 4 || writeVirt32(vcpu, gva + 4, hi);
}

/** The 64-bit pointer operand of VMXON/VMCLEAR/VMPTRLD (nested_vmx_get_vmptr), or null after a fault. */
function nestedVmxGetVmptr(vcpu: KvmVcpu): number | null {
  const s = vmcsSilicon(toVmx(vcpu));
  const gva = getVmxMemAddress(vcpu, s.vmreadNum(VMCS.EXIT_QUALIFICATION), s.vmread32(VMCS.VMX_INSTRUCTION_INFO));
  const v = readGuestVirt(vcpu, gva, 8);
  if (!v) return null;
  return v.hi * TWO32 + (v.lo >>> 0);
}

/** page_address_valid: 4 KiB aligned, within MAXPHYADDR. */
function pageAddressValid(gpa: number): boolean {
  // Integers below 2^53 keep their low bits under `&`; a floating-point % would be a library call.
  return gpa >= 0 && gpa < MAX_PA && (gpa & (PAGE - 1)) === 0;
}

// ---- VMsucceed / VMfail (nested_vmx_succeed, nested_vmx_failInvalid, nested_vmx_failValid) -----

function vmxInsnDone(vcpu: KvmVcpu, set: number): ExitResult {
  vmxSetRflags(vcpu, ((vmxGetRflags(vcpu) & ~VMX_ARITH_FLAGS) | set) >>> 0);
  kvmSkipEmulatedInstruction(vcpu);
  return 'resume';
}

export function nestedVmxSucceed(vcpu: KvmVcpu): ExitResult {
  return vmxInsnDone(vcpu, 0);
}

export function nestedVmxFailInvalid(vcpu: KvmVcpu): ExitResult {
  return vmxInsnDone(vcpu, RFLAGS.CF);
}

/** VMfailValid(err), or VMfailInvalid when there is no current VMCS to hold the error number. */
export function nestedVmxFailValid(vcpu: KvmVcpu, err: number): ExitResult {
  const n = toNested(toVmx(vcpu));
  if (n.currentVmptr === INVALID_GPA) return nestedVmxFailInvalid(vcpu);
  n.cachedVmcs12.set(FIELD.VM_INSTRUCTION_ERROR, err);
  return vmxInsnDone(vcpu, RFLAGS.ZF);
}

/** nested_vmx_check_permission: #UD outside VMX operation, #GP(0) above CPL 0. */
function nestedVmxCheckPermission(vcpu: KvmVcpu): boolean {
  const n = toNested(toVmx(vcpu));
  n.stats.vmxInstructionExits++;
  if (!nestedVmxAllowed(vcpu) || !n.vmxon) { kvmQueueException(vcpu, VEC.UD); return false; }
  if (l1Cpl(vcpu) > 0) { kvmQueueException(vcpu, VEC.GP, 0); return false; }
  return true;
}

function l1Cpl(vcpu: KvmVcpu): number {
  return (vmcsSilicon(toVmx(vcpu)).vmread32(VMCS.GUEST_SS_AR_BYTES) >> 5) & 3;
}

// ---- VMXON, VMXOFF, VMCLEAR, VMPTRLD, VMPTRST -------------------------------------------------

/** handle_vmxon. */
export function handleVmxon(vcpu: KvmVcpu): ExitResult {
  const vmx = toVmx(vcpu);
  const n = toNested(vmx);
  n.stats.vmxInstructionExits++;
  if (!nestedVmxAllowed(vcpu) || !(vcpu.arch.cr4 & CR4.VMXE)) return kvmHandleInvalidOp(vcpu);
  if (l1Cpl(vcpu) > 0) { kvmQueueException(vcpu, VEC.GP, 0); return 'resume'; }
  // CR0 and CR4 must honour the fixed bits of VMX operation (SDM 31.3 VMXON), else #GP(0).
  if (((vcpu.arch.cr0 & CR0_FIXED0) >>> 0) !== CR0_FIXED0) { kvmQueueException(vcpu, VEC.GP, 0); return 'resume'; }
  if (n.vmxon) return nestedVmxFailValid(vcpu, VMXERR.VMXON_IN_VMX_ROOT_OPERATION);
  const ptr = nestedVmxGetVmptr(vcpu);
  if (ptr === null) return 'resume';
  if (!pageAddressValid(ptr)) return nestedVmxFailInvalid(vcpu);
  const rev = readGuest32(vcpu, ptr);
  if (rev === null || (rev & 0x7fffffff) !== VMCS12_REVISION) return nestedVmxFailInvalid(vcpu);
  n.vmxon = true;
  n.vmxonPtr = ptr;
  n.currentVmptr = INVALID_GPA;
  allocShadowVmcs(vmx, n);
  return nestedVmxSucceed(vcpu);
}

/** nested_release_vmcs12: cached_vmcs12 back into L1's memory; no current VMCS any more. */
function nestedReleaseVmcs12(vcpu: KvmVcpu): void {
  const vmx = toVmx(vcpu);
  const n = toNested(vmx);
  if (n.currentVmptr === INVALID_GPA) return;
  if (shadowActive(vmx, n)) {
    copyShadowToVmcs12(vmx, n);
    vmxDisableShadowVmcs(vmx, n);
  }
  // L1's memory gets vmcs12 exact, the fields L2 may have changed since its last exit included.
  copyVmcs02ToVmcs12Rare(vmx, n);
  writeGuestPage(vcpu, n.currentVmptr, n.cachedVmcs12.toPage());
  n.currentVmptr = INVALID_GPA;
}

/** handle_vmxoff (free_nested). */
export function handleVmxoff(vcpu: KvmVcpu): ExitResult {
  if (!nestedVmxCheckPermission(vcpu)) return 'resume';
  nestedReleaseVmcs12(vcpu);
  freeNested(toVmx(vcpu));
  return nestedVmxSucceed(vcpu);
}

/**
 * free_nested: L1 leaves VMX operation (VMXOFF, or KVM_SET_NESTED_STATE replacing its state):
 * vmcs02 VMCLEARed and freed with its MSR bitmap and VPID02, the shadow VMCS and its bitmaps,
 * EPT02. The next VMXON and VMLAUNCH allocate them again. The caller has released vmcs12.
 */
export function freeNested(vmx: VcpuVmx): void {
  const n = nestedOf.get(vmx);
  if (!n) return;
  const host = vmx.module.host;
  n.vmxon = false;
  n.vmxonPtr = INVALID_GPA;
  if (shadowActive(vmx, n)) vmxDisableShadowVmcs(vmx, n);
  if (n.vmcs02) {
    if (n.vmcs02.cpu >= 0) loadedVmcsClearLocal(host.pcpus[n.vmcs02.cpu]!, n.vmcs02);
    host.freePage(n.vmcs02.vmcs);
    host.freePage(n.msrBitmap02);
    freeVpid(vmx.module, n.vpid02);
    n.vmcs02 = null;
    n.msrBitmap02 = -1;
    n.vpid02 = 0;
    n.lastVpid = 0;
    const c02 = n.ctls02;
    c02.pin = c02.exec = c02.exec2 = c02.entry = c02.exit = -1;
  }
  if (n.ept02) {
    freeEpt02(vmx, n.ept02);
    n.ept02 = null;
  }
  if (n.shadowVmcs >= 0) {
    // Not linked any more (vmx_disable_shadow_vmcs ran at release); clear it off the chip before its page goes.
    vmcsSilicon(vmx).vmclear(n.shadowVmcs);
    host.freePage(n.shadowVmcs);
    host.freePage(n.vmreadBitmap);
    host.freePage(n.vmwriteBitmap);
    n.shadowVmcs = n.vmreadBitmap = n.vmwriteBitmap = -1;
  }
  n.dirtyVmcs12 = true;
  n.needSyncVmcs02ToVmcs12Rare = false;
}

/** handle_vmclear. */
export function handleVmclear(vcpu: KvmVcpu): ExitResult {
  if (!nestedVmxCheckPermission(vcpu)) return 'resume';
  const n = toNested(toVmx(vcpu));
  const ptr = nestedVmxGetVmptr(vcpu);
  if (ptr === null) return 'resume';
  if (!pageAddressValid(ptr)) return nestedVmxFailValid(vcpu, VMXERR.VMCLEAR_INVALID_ADDRESS);
  if (ptr === n.vmxonPtr) return nestedVmxFailValid(vcpu, VMXERR.VMCLEAR_VMXON_POINTER);
  if (ptr === n.currentVmptr) nestedReleaseVmcs12(vcpu);
  // launch_state = 0 in L1's copy, written directly as KVM does (kvm_vcpu_write_guest).
  const hpa = gpaToHpa(vcpu, ptr + VMCS12_LAUNCH_STATE);
  if (hpa >= 0) hostMem(vcpu).write32(hpa, 0);
  return nestedVmxSucceed(vcpu);
}

/** handle_vmptrld. */
export function handleVmptrld(vcpu: KvmVcpu): ExitResult {
  if (!nestedVmxCheckPermission(vcpu)) return 'resume';
  const n = toNested(toVmx(vcpu));
  const ptr = nestedVmxGetVmptr(vcpu);
  if (ptr === null) return 'resume';
  if (!pageAddressValid(ptr)) return nestedVmxFailValid(vcpu, VMXERR.VMPTRLD_INVALID_ADDRESS);
  if (ptr === n.vmxonPtr) return nestedVmxFailValid(vcpu, VMXERR.VMPTRLD_VMXON_POINTER);
  if (ptr !== n.currentVmptr) {
    const rev = readGuest32(vcpu, ptr);
    if (rev === null) return nestedVmxFailValid(vcpu, VMXERR.VMPTRLD_INVALID_ADDRESS);
    if ((rev & 0x7fffffff) !== VMCS12_REVISION) return nestedVmxFailValid(vcpu, VMXERR.VMPTRLD_INCORRECT_VMCS_REVISION_ID);
    nestedReleaseVmcs12(vcpu);
    readGuestPage(vcpu, ptr, n.cachedVmcs12.bytes);
    n.cachedVmcs12.fromPage();
    setCurrentVmptr(toVmx(vcpu), n, ptr);
  }
  return nestedVmxSucceed(vcpu);
}

/** handle_vmptrst. */
export function handleVmptrst(vcpu: KvmVcpu): ExitResult {
  if (!nestedVmxCheckPermission(vcpu)) return 'resume';
  const n = toNested(toVmx(vcpu));
  const s = vmcsSilicon(toVmx(vcpu));
  const gva = getVmxMemAddress(vcpu, s.vmreadNum(VMCS.EXIT_QUALIFICATION), s.vmread32(VMCS.VMX_INSTRUCTION_INFO));
  const p = n.currentVmptr;
  const lo = p === INVALID_GPA ? 0xffffffff : p >>> 0;
  const hi = p === INVALID_GPA ? 0xffffffff : Math.floor(p / TWO32);
  if (!writeGuestVirt(vcpu, gva, lo, hi, 8)) return 'resume';
  return nestedVmxSucceed(vcpu);
}

// ---- VMREAD, VMWRITE ----------------------------------------------------------------------------

/** handle_vmread. */
export function handleVmread(vcpu: KvmVcpu): ExitResult {
  if (!nestedVmxCheckPermission(vcpu)) return 'resume';
  const n = toNested(toVmx(vcpu));
  const s = vmcsSilicon(toVmx(vcpu));
  const info = s.vmread32(VMCS.VMX_INSTRUCTION_INFO);
  if (n.currentVmptr === INVALID_GPA) return nestedVmxFailInvalid(vcpu);
  const long = longMode(vcpu);
  const enc = long ? regRead(vcpu, (info >>> 28) & 0xf) : vcpu.arch.regs[(info >>> 28) & 0xf]! >>> 0;
  const i = vmcsFieldIndex(enc);
  if (i < 0 || VMCS12_OFFSET[i]! < 0) return nestedVmxFailValid(vcpu, VMXERR.UNSUPPORTED_VMCS_COMPONENT);
  if (!vcpu.arch.guestMode && isVmcs12ExtField(i)) copyVmcs02ToVmcs12Rare(toVmx(vcpu), n);
  const v = n.cachedVmcs12;
  const lo = enc & 1 ? v.hi(i) : v.lo(i);
  const hi = enc & 1 ? 0 : v.hi(i);
  if (info & (1 << 10)) {
    regWriteHalves(vcpu, (info >> 3) & 0xf, lo, long ? hi : 0);
  } else {
    const gva = getVmxMemAddress(vcpu, s.vmreadNum(VMCS.EXIT_QUALIFICATION), info);
    if (!writeGuestVirt(vcpu, gva, lo, hi, long ? 8 : 4)) return 'resume';
  }
  return nestedVmxSucceed(vcpu);
}

/** handle_vmwrite. */
export function handleVmwrite(vcpu: KvmVcpu): ExitResult {
  if (!nestedVmxCheckPermission(vcpu)) return 'resume';
  const n = toNested(toVmx(vcpu));
  const s = vmcsSilicon(toVmx(vcpu));
  const info = s.vmread32(VMCS.VMX_INSTRUCTION_INFO);
  const long = longMode(vcpu);
  let lo: number;
  let hi = 0;
  if (info & (1 << 10)) {
    const r = (info >> 3) & 0xf;
    lo = vcpu.arch.regs[r]! >>> 0;
    if (long) hi = vcpu.arch.regsHi[r]! >>> 0;
  } else {
    const gva = getVmxMemAddress(vcpu, s.vmreadNum(VMCS.EXIT_QUALIFICATION), info);
    const m = readGuestVirt(vcpu, gva, long ? 8 : 4);
    if (!m) return 'resume';
    lo = m.lo >>> 0;
    hi = m.hi >>> 0;
  }
  if (n.currentVmptr === INVALID_GPA) return nestedVmxFailInvalid(vcpu);
  const enc = long ? regRead(vcpu, (info >>> 28) & 0xf) : vcpu.arch.regs[(info >>> 28) & 0xf]! >>> 0;
  const i = vmcsFieldIndex(enc);
  if (i < 0 || VMCS12_OFFSET[i]! < 0) return nestedVmxFailValid(vcpu, VMXERR.UNSUPPORTED_VMCS_COMPONENT);
  if (FIELD_TYPE[i] === VMCS_TYPE.READ_ONLY && !(NESTED_MISC & VMX_MISC.VMWRITE_ANY_FIELD)) {
    return nestedVmxFailValid(vcpu, VMXERR.VMWRITE_READ_ONLY_VMCS_COMPONENT);
  }
  // A field the shadow VMCS does not carry read-write reaches vmcs02 only through
  // prepare_vmcs02_rare, which copies every rare field from vmcs12: vmcs12 must hold L2's latest
  // values of them first, or the write would bring back stale ones (copy_vmcs02_to_vmcs12_rare).
  const dirties = !vcpu.arch.guestMode && !IS_SHADOW_FIELD_RW[i];
  if (dirties) copyVmcs02ToVmcs12Rare(toVmx(vcpu), n);
  const v = n.cachedVmcs12;
  if (enc & 1) v.set(i, v.lo(i), lo);
  else v.set(i, lo, hi);
  if (dirties) n.dirtyVmcs12 = true;
  return nestedVmxSucceed(vcpu);
}

/** handle_invept / handle_invvpid: L2 runs on EPT01 under VPID02, so both flush what L2 could have cached. */
export function handleInvvpid(vcpu: KvmVcpu): ExitResult {
  if (!nestedVmxCheckPermission(vcpu)) return 'resume';
  const n = toNested(toVmx(vcpu));
  const s = vmcsSilicon(toVmx(vcpu));
  const info = s.vmread32(VMCS.VMX_INSTRUCTION_INFO);
  const type = regRead(vcpu, (info >>> 28) & 0xf);
  if (type < 0 || type > 3) return nestedVmxFailValid(vcpu, VMXERR.INVALID_OPERAND_TO_INVEPT_INVVPID);
  if (n.vpid02) s.invvpid(1, n.vpid02);
  return nestedVmxSucceed(vcpu);
}

/** handle_invept: single-context (1) or all-context (2); EPT02 shadows the one EPT12 L2 runs on, so both drop it. */
export function handleInvept(vcpu: KvmVcpu): ExitResult {
  if (!nestedVmxCheckPermission(vcpu)) return 'resume';
  const vmx = toVmx(vcpu);
  const n = toNested(vmx);
  const info = vmcsSilicon(vmx).vmread32(VMCS.VMX_INSTRUCTION_INFO);
  const type = regRead(vcpu, (info >>> 28) & 0xf);
  if (type !== 1 && type !== 2) return nestedVmxFailValid(vcpu, VMXERR.INVALID_OPERAND_TO_INVEPT_INVVPID);
  if (n.ept02) nestedEptFlush(vmx, n.ept02);
  return nestedVmxSucceed(vcpu);
}

// ---- VMLAUNCH / VMRESUME ----------------------------------------------------------------------

function ctlOk(value: number, c: CtlCap): boolean {
  return (value & c.must1) === c.must1 && (value & ~c.may1) === 0;
}

/** nested_vmx_check_controls (check_vmentry_prereqs): VMfailValid(7) when false. */
export function nestedVmxCheckControls(v: Vmcs12): boolean {
  const proc = v.lo(FIELD.CPU_BASED_VM_EXEC_CONTROL);
  if (!ctlOk(v.lo(FIELD.PIN_BASED_VM_EXEC_CONTROL), NESTED_CTLS.pin)) return false;
  if (!ctlOk(proc, NESTED_CTLS.proc)) return false;
  if (proc & CPU_BASED.ACTIVATE_SECONDARY_CONTROLS && !ctlOk(v.lo(FIELD.SECONDARY_VM_EXEC_CONTROL), NESTED_CTLS.proc2)) return false;
  if (!ctlOk(v.lo(FIELD.VM_EXIT_CONTROLS), NESTED_CTLS.exit)) return false;
  if (!ctlOk(v.lo(FIELD.VM_ENTRY_CONTROLS), NESTED_CTLS.entry)) return false;
  if (v.lo(FIELD.CR3_TARGET_COUNT) > 4) return false;
  // nested_vmx_check_io_bitmap_controls / _msr_bitmap_controls: page-aligned, inside MAXPHYADDR.
  if (proc & CPU_BASED.USE_IO_BITMAPS && (!pageAddressValid(v.num(FIELD.IO_BITMAP_A)) || !pageAddressValid(v.num(FIELD.IO_BITMAP_B)))) return false;
  if (proc & CPU_BASED.USE_MSR_BITMAPS && !pageAddressValid(v.num(FIELD.MSR_BITMAP))) return false;
  // nested_check_vm_entry_controls: the event to inject must be well formed (SDM 27.2.1.3).
  const intr = v.lo(FIELD.VM_ENTRY_INTR_INFO_FIELD);
  if (intr & INTR_INFO.VALID) {
    const type = (intr & INTR_INFO.TYPE_MASK) >> INTR_INFO.TYPE_SHIFT;
    if (type === 1 || type === 7) return false;
    if (intr & 0x7ffff000) return false;
    if (type === EVENT_TYPE.NMI && (intr & 0xff) !== VEC.NMI) return false;
    if (type === EVENT_TYPE.HW_EXCEPTION && (intr & 0xff) > 31) return false;
  }
  if (!nestedVmxCheckMsrSwitchControls(v)) return false;
  // nested_vmx_check_eptp: WB or UC, a 4-level walk, A/D (bit 6) as offered, reserved bits 11:7 clear.
  const proc2 = proc & CPU_BASED.ACTIVATE_SECONDARY_CONTROLS ? v.lo(FIELD.SECONDARY_VM_EXEC_CONTROL) : 0;
  if (proc2 & SECONDARY_EXEC.ENABLE_EPT) {
    const lo = v.lo(FIELD.EPT_POINTER);
    if (((lo & 7) !== EPTP.MT_WB && (lo & 7) !== EPTP.MT_UC) || (lo & 0x38) !== EPTP.WALK_LENGTH_4 || (lo & 0xf80) !== 0) return false;
    if (v.num(FIELD.EPT_POINTER) >= MAX_PA) return false;
  }
  return true;
}

// ---- the vmcs12 MSR-load and MSR-store lists (SDM 27.4, 28.4, 28.6) -----------------------------

/** struct vmx_msr_entry: index, reserved, value (16 bytes). */
const MSR_ENTRY_SIZE = 16;
/** IA32_VMX_MISC bits 27:25: lists longer than 512 × (N + 1) entries may fail (nested_vmx_max_atomic_switch_msrs). */
const NESTED_MAX_MSR_LIST = 512 * (((NESTED_MISC >>> 25) & 7) + 1);
/** The VMX-abort indicators of SDM 28.7 (VMX_ABORT_*). */
export const VMX_ABORT = { SAVE_GUEST_MSR_FAIL: 1, LOAD_HOST_PDPTE_FAIL: 2, LOAD_HOST_MSR_FAIL: 4 } as const;
const MSR_FS_BASE = 0xc0000100;
const MSR_GS_BASE = 0xc0000101;
const MSR_IA32_SMM_MONITOR_CTL = 0x9b;
const MSR_IA32_SMBASE = 0x9e;
const MSR_IA32_UCODE_WRITE = 0x79;
const MSR_IA32_UCODE_REV = 0x8b;

/** nested_vmx_check_msr_switch: a list of `count` entries at `addr` is 16-byte aligned and inside MAXPHYADDR. */
function nestedVmxCheckMsrSwitch(count: number, addr: number): boolean {
  if (count === 0) return true;
  return addr >= 0 && (addr & (MSR_ENTRY_SIZE - 1)) === 0 && addr + count * MSR_ENTRY_SIZE - 1 < MAX_PA;
}

/** nested_vmx_check_msr_switch_controls (the exit lists, then the entry list): VMfailValid(7) when false. */
function nestedVmxCheckMsrSwitchControls(v: Vmcs12): boolean {
  return nestedVmxCheckMsrSwitch(v.lo(FIELD.VM_EXIT_MSR_LOAD_COUNT), v.num(FIELD.VM_EXIT_MSR_LOAD_ADDR))
    && nestedVmxCheckMsrSwitch(v.lo(FIELD.VM_EXIT_MSR_STORE_COUNT), v.num(FIELD.VM_EXIT_MSR_STORE_ADDR))
    && nestedVmxCheckMsrSwitch(v.lo(FIELD.VM_ENTRY_MSR_LOAD_COUNT), v.num(FIELD.VM_ENTRY_MSR_LOAD_ADDR));
}

/** nested_vmx_msr_check_common: x2APIC MSRs in x2APIC mode, microcode MSRs, a non-zero reserved word. */
function nestedVmxMsrCheckCommon(vcpu: KvmVcpu, index: number, reserved: number): boolean {
  // IA32_APIC_BASE bit 10: x2APIC mode.
  if (index >>> 8 === 0x8 && (apicBase(vcpu) & 0x400n) !== 0n) return false;
  return index !== MSR_IA32_UCODE_WRITE && index !== MSR_IA32_UCODE_REV && reserved === 0;
}

/** IA32_APIC_BASE as the vCPU has it (0 when the vendor does not report one). */
function apicBase(vcpu: KvmVcpu): bigint {
  const msr = { index: 0x1b, data: 0n, hostInitiated: true };
  return toVcpu(vcpu).ops.getMsr(vcpu, msr) === 0 ? msr.data : 0n;
}

/** The 16-byte entry `i` of the list at L1 guest-physical `gpa`: index, reserved and the value's halves, or null when unbacked. */
function readMsrEntry(vcpu: KvmVcpu, gpa: number, i: number): { index: number; reserved: number; lo: number; hi: number } | null {
  const e = gpa + i * MSR_ENTRY_SIZE;
  const index = readGuest32(vcpu, e);
  const reserved = readGuest32(vcpu, e + 4);
  const lo = readGuest32(vcpu, e + 8);
  const hi = readGuest32(vcpu, e + 12);
  return index === null || reserved === null || lo === null || hi === null ? null : { index, reserved, lo, hi };
}

/**
 * nested_vmx_load_msr: WRMSR of each entry, in order (SDM 27.4 at entry, 28.6 at exit). 0 when
 * all loaded, else the 1-based index of the entry that failed; those before it stay loaded.
 */
export function nestedVmxLoadMsr(vcpu: KvmVcpu, gpa: number, count: number): number {
  for (let i = 0; i < count; i++) {
    if (i >= NESTED_MAX_MSR_LIST) return i + 1;
    const e = readMsrEntry(vcpu, gpa, i);
    if (e === null) return i + 1;
    // nested_vmx_load_msr_check: FS/GS base (loaded from the segment fields instead) and SMM's MSR may not be listed.
    if (e.index === MSR_FS_BASE || e.index === MSR_GS_BASE || e.index === MSR_IA32_SMM_MONITOR_CTL
      || !nestedVmxMsrCheckCommon(vcpu, e.index, e.reserved)) return i + 1;
    const data = (BigInt(e.hi) << 32n) | BigInt(e.lo);
    if (toVcpu(vcpu).ops.setMsr(vcpu, { index: e.index, data, hostInitiated: false }) !== 0) return i + 1;
  }
  return 0;
}

/** nested_vmx_store_msr: RDMSR of each entry's MSR into its value field (SDM 28.4). False when one fails. */
export function nestedVmxStoreMsr(vcpu: KvmVcpu, gpa: number, count: number): boolean {
  for (let i = 0; i < count; i++) {
    if (i >= NESTED_MAX_MSR_LIST) return false;
    const e = readMsrEntry(vcpu, gpa, i);
    // nested_vmx_store_msr_check: SMBASE may not be stored.
    if (e === null || e.index === MSR_IA32_SMBASE || !nestedVmxMsrCheckCommon(vcpu, e.index, e.reserved)) return false;
    const msr = { index: e.index, data: 0n, hostInitiated: false };
    if (toVcpu(vcpu).ops.getMsr(vcpu, msr) !== 0) return false;
    const hpa = gpaToHpa(vcpu, gpa + i * MSR_ENTRY_SIZE + 8);
    if (hpa < 0) return false;
    hostMem(vcpu).write64(hpa, msr.data);
  }
  return true;
}

/**
 * nested_vmx_abort (SDM 28.7): the indicator goes into vmcs12's VMX-abort field, in L1's memory
 * too, and the vCPU shuts down. (Linux only asks for the triple fault.)
 */
function nestedVmxAbort(vcpu: KvmVcpu, n: NestedVmx, indicator: number): void {
  n.cachedVmcs12.abort = indicator;
  const hpa = gpaToHpa(vcpu, n.currentVmptr + VMCS12_ABORT);
  if (hpa >= 0) hostMem(vcpu).write32(hpa, indicator);
  kvmMakeRequest(KVM_REQ.TRIPLE_FAULT, vcpu);
}

/** A 64-bit vmcs12 field holds a canonical address: bits 63:47 all equal, i.e. bits 31:15 of its high half. */
function canonical(v: Vmcs12, row: number): boolean {
  const h = v.fieldHi[row]!;
  return (h << 16) >> 16 === h;
}

const HOST_SELECTOR_ROWS = Int16Array.from([FIELD.HOST_ES_SELECTOR, FIELD.HOST_CS_SELECTOR, FIELD.HOST_SS_SELECTOR, FIELD.HOST_DS_SELECTOR,
  FIELD.HOST_FS_SELECTOR, FIELD.HOST_GS_SELECTOR, FIELD.HOST_TR_SELECTOR]);
const HOST_CANONICAL_ROWS = Int16Array.from([FIELD.HOST_FS_BASE, FIELD.HOST_GS_BASE, FIELD.HOST_TR_BASE, FIELD.HOST_GDTR_BASE, FIELD.HOST_IDTR_BASE,
  FIELD.HOST_RIP, FIELD.HOST_IA32_SYSENTER_ESP, FIELD.HOST_IA32_SYSENTER_EIP]);

/** nested_vmx_check_host_state: VMfailValid(8) when false. */
export function nestedVmxCheckHostState(v: Vmcs12): boolean {
  const cr0 = v.lo(FIELD.HOST_CR0);
  const cr4 = v.lo(FIELD.HOST_CR4);
  if (((cr0 & CR0_FIXED0) >>> 0) !== CR0_FIXED0 || v.hi(FIELD.HOST_CR0)) return false;
  if ((cr4 & CR4_FIXED0) !== CR4_FIXED0 || (cr4 & ~CR4_FIXED1) || v.hi(FIELD.HOST_CR4)) return false;
  if (v.num(FIELD.HOST_CR3) < 0 || v.num(FIELD.HOST_CR3) >= MAX_PA) return false;
  const hostLong = (v.lo(FIELD.VM_EXIT_CONTROLS) & VM_EXIT.HOST_ADDR_SPACE_SIZE) !== 0;
  if (hostLong && !(cr4 & CR4.PAE)) return false;
  for (let k = 0; k < HOST_SELECTOR_ROWS.length; k++) if (v.lo(HOST_SELECTOR_ROWS[k]!) & 7) return false;
  if (v.lo(FIELD.HOST_CS_SELECTOR) === 0 || v.lo(FIELD.HOST_TR_SELECTOR) === 0) return false;
  if (!hostLong && v.lo(FIELD.HOST_SS_SELECTOR) === 0) return false;
  for (let k = 0; k < HOST_CANONICAL_ROWS.length; k++) if (!canonical(v, HOST_CANONICAL_ROWS[k]!)) return false;
  return true;
}

/** nested_vmx_check_guest_state (and the parts of 27.3.1 KVM checks in software): an entry-failure exit when false. */
export function nestedVmxCheckGuestState(v: Vmcs12): boolean {
  const cr0 = v.lo(FIELD.GUEST_CR0);
  const cr4 = v.lo(FIELD.GUEST_CR4);
  if (((cr0 & CR0_FIXED0) >>> 0) !== CR0_FIXED0 || v.hi(FIELD.GUEST_CR0)) return false;
  if ((cr4 & CR4_FIXED0) !== CR4_FIXED0 || (cr4 & ~CR4_FIXED1) || v.hi(FIELD.GUEST_CR4)) return false;
  const ia32e = (v.lo(FIELD.VM_ENTRY_CONTROLS) & VM_ENTRY.IA32E_MODE) !== 0;
  if (ia32e && !(cr4 & CR4.PAE)) return false;
  if (v.num(FIELD.VMCS_LINK_POINTER) !== -1) return false;
  if (v.lo(FIELD.VM_ENTRY_CONTROLS) & VM_ENTRY.LOAD_IA32_EFER) {
    const efer = v.lo(FIELD.GUEST_IA32_EFER);
    if (((efer & EFER.LMA) !== 0) !== ia32e) return false;
    if (cr0 & CR0.PG && ((efer & EFER.LMA) !== 0) !== ((efer & EFER.LME) !== 0)) return false;
  }
  if (!canonical(v, FIELD.GUEST_RIP) || (ia32e && !canonical(v, FIELD.GUEST_RSP))) return false;
  if (!(v.lo(FIELD.GUEST_RFLAGS) & RFLAGS.FIXED1) || v.hi(FIELD.GUEST_RFLAGS)) return false;
  if (v.lo(FIELD.GUEST_ACTIVITY_STATE) > 3) return false;
  return true;
}

/** nested_vmx_calc_efer. */
function nestedVmxCalcEfer(v: Vmcs12, l1Efer: number): number {
  if (v.lo(FIELD.VM_ENTRY_CONTROLS) & VM_ENTRY.LOAD_IA32_EFER) return v.lo(FIELD.GUEST_IA32_EFER);
  if (v.lo(FIELD.VM_ENTRY_CONTROLS) & VM_ENTRY.IA32E_MODE) return l1Efer | EFER.LMA | EFER.LME;
  return l1Efer & ~(EFER.LMA | EFER.LME);
}

/** vmx_switch_vmcs: make `l` the vCPU's loaded VMCS on the pCPU it runs on. */
function vmxSwitchVmcs(vmx: VcpuVmx, l: LoadedVmcs): void {
  if (vmx.loadedVmcs === l) return;
  vmx.loadedVmcs = l;
  vmxVcpuLoad(vmx.vcpu, vmx.vcpu.pcpu?.id ?? 0);
}

/** Allocates vmcs02, its MSR bitmap and VPID02 on first use (alloc_loaded_vmcs in enter_vmx_operation). */
function nestedAllocVmcs02(vmx: VcpuVmx, n: NestedVmx): LoadedVmcs | null {
  if (n.vmcs02) return n.vmcs02;
  const m = vmx.module;
  const vmcs = allocVmcs(m);
  if (vmcs < 0) return null;
  const bitmap = m.host.allocPage();
  if (bitmap < 0) { m.host.freePage(vmcs); return null; }
  silicon(m.host.pcpus[vmx.vcpu.pcpu?.id ?? 0]!.cpu).vmclear(vmcs);
  n.vmcs02 = { vmcs, cpu: -1, launched: false };
  n.msrBitmap02 = bitmap;
  n.vpid02 = allocateVpid(m);
  return n.vmcs02;
}

/** The guest-state rows prepare_vmcs02 copies straight from vmcs12 (CRs, EFER, RIP/RSP are computed). */
const GUEST_COPY_ROWS: readonly number[] = VMCS_FIELDS.flatMap(([name, enc], i) =>
  vmcsFieldType(enc) === VMCS_TYPE.GUEST && VMCS12_OFFSET[i]! >= 0
    && !['GUEST_CR0', 'GUEST_CR4', 'GUEST_IA32_EFER', 'VMCS_LINK_POINTER', 'GUEST_PML_INDEX', 'GUEST_INTR_STATUS',
      'GUEST_IA32_PERF_GLOBAL_CTRL', 'GUEST_BNDCFGS', 'GUEST_IA32_PAT', 'GUEST_PDPTR0', 'GUEST_PDPTR1', 'GUEST_PDPTR2', 'GUEST_PDPTR3',
      'VMX_PREEMPTION_TIMER_VALUE'].includes(name)
    ? [i] : []);

/**
 * is_vmcs12_ext_field: the guest state L2 seldom changes (segments but CS/SS access rights,
 * descriptor tables, pending debug exceptions). prepare_vmcs02_rare writes them into vmcs02 only
 * when vmcs12 is dirty; sync_vmcs02_to_vmcs12_rare copies them back only when someone is about to
 * look at vmcs12 (an exiting VMREAD or VMWRITE of one, vmcs12 written back to L1's memory, GET_NESTED_STATE).
 */
const VMCS12_EXT_FIELDS: ReadonlySet<string> = new Set([
  ...['ES', 'CS', 'SS', 'DS', 'FS', 'GS', 'LDTR', 'TR'].flatMap((r) => [`GUEST_${r}_SELECTOR`, `GUEST_${r}_LIMIT`, `GUEST_${r}_BASE`]),
  ...['ES', 'DS', 'FS', 'GS', 'LDTR', 'TR'].map((r) => `GUEST_${r}_AR_BYTES`),
  'GUEST_GDTR_LIMIT', 'GUEST_GDTR_BASE', 'GUEST_IDTR_LIMIT', 'GUEST_IDTR_BASE', 'GUEST_PENDING_DBG_EXCEPTIONS', 'GUEST_BNDCFGS',
]);
const isVmcs12ExtField = (row: number): boolean => VMCS12_EXT_FIELDS.has(VMCS_FIELDS[row]![0]);
const GUEST_EXT_ROWS = Int16Array.from(GUEST_COPY_ROWS.filter(isVmcs12ExtField));
/**
 * The guest rows every prepare_vmcs02 writes: those L1 may change through the shadow VMCS
 * without an exit (shadowed read-write). L1 changes any other field only by an exiting VMWRITE,
 * which dirties vmcs12, so the rest waits for prepare_vmcs02_rare; L2's own changes to them are
 * in vmcs02 already.
 */
const GUEST_FAST_ROWS = Int16Array.from(GUEST_COPY_ROWS.filter((i) => VMCS_FIELDS[i]![3] === 'rw'));
const GUEST_RARE_ROWS = Int16Array.from(GUEST_COPY_ROWS.filter((i) => VMCS_FIELDS[i]![3] !== 'rw'));
/** The encodings and names of the field rows, for loops that must not look them up. */
const ROW_ENC: Int32Array = Int32Array.from(VMCS_FIELDS, ([, enc]) => enc);

/**
 * prepare_vmcs02's writes of vmcs02 fields, gathered as a list of rows and each row's value
 * (bits 31:0, bits 63:32, truncated to the field's width), and made at its end (writeVmcs02):
 * nothing reads those fields of vmcs02 in between, so that is the same as writing each at once.
 * One scratch list: entries do not nest.
 */
const prep = { rows: new Int16Array(FIELD_COUNT), lo: new Int32Array(FIELD_COUNT), hi: new Int32Array(FIELD_COUNT), count: 0 };

function putHalves(row: number, lo: number, hi: number): void {
  prep.rows[prep.count++] = row;
  prep.lo[row] = lo & FIELD_LO_MASK[row]!;
  prep.hi[row] = hi & FIELD_HI_MASK[row]!;
}

/** A vmcs02 field from a number (64-bit values signed canonical); most fit 32 bits, and need no division. */
function put(row: number, value: number): void {
  if (value >= 0 && value < TWO32) return putHalves(row, value, 0);
  const hi = Math.floor(value / TWO32);
  putHalves(row, value - hi * TWO32, hi);
}

/** A vmcs02 field from the same field of vmcs12. */
function putFrom12(v: Vmcs12, row: number): void {
  putHalves(row, v.lo(row), v.hi(row));
}

/**
 * The gathered writes: vmcs02 read in one run of VMREADs, then one run of VMWRITEs of the fields
 * whose value changes, noted for the inspector (which fields the last prepare_vmcs02 changed).
 */
function writeVmcs02(s: VmxSilicon, n: NestedVmx): void {
  const { rows, lo, hi } = prep;
  const count = prep.count;
  prep.count = 0;
  vmreadRows(s, rows, count, rowLo, rowHi);
  let w = 0;
  for (let k = 0; k < count; k++) {
    const row = rows[k]!;
    if (rowLo[row] === lo[row] && rowHi[row] === hi[row]) continue;
    rows[w++] = row;
    n.lastPrepareChangedRows[n.lastPrepareChangedCount++] = row;
  }
  vmwriteRows(s, rows, w, lo, hi);
}

/** A control field of vmcs02 whose shadow says it changes (as the *_controls_set helpers write them). */
function putCtl(s: VmxSilicon, n: NestedVmx, row: number, value: number): void {
  s.vmwrite32(ROW_ENC[row]!, value);
  n.lastPrepareChangedRows[n.lastPrepareChangedCount++] = row;
}

/** prepare_vmcs02_rare: the vmcs12 fields that reach vmcs02 only when vmcs12 was dirtied (an exiting VMWRITE of a field not shadowed read-write, a new vmcs12). */
function prepareVmcs02Rare(n: NestedVmx, v: Vmcs12): void {
  // prepare_vmcs02_constant_state: what never changes for vmcs02 (the first entry always comes here).
  put(FIELD.VMCS_LINK_POINTER, -1);
  if (n.vpid02) put(FIELD.VIRTUAL_PROCESSOR_ID, n.vpid02);
  for (let k = 0; k < GUEST_RARE_ROWS.length; k++) putFrom12(v, GUEST_RARE_ROWS[k]!);
  putFrom12(v, FIELD.PAGE_FAULT_ERROR_CODE_MASK);
  putFrom12(v, FIELD.PAGE_FAULT_ERROR_CODE_MATCH);
  putFrom12(v, FIELD.CR3_TARGET_COUNT);
  for (let t = 0; t < 4; t++) putFrom12(v, FIELD.CR3_TARGET_VALUE0 + t);
}

/** What prepare_vmcs02 takes from vmcs01, read while vmcs01 is current (one scratch record: entries do not nest). */
interface Vmcs01Inputs { eb: number; eptp: number; tscLo: number; tscHi: number; cr0Mask: number; cr4Mask: number }
const vmcs01Inputs: Vmcs01Inputs = { eb: 0, eptp: 0, tscLo: 0, tscHi: 0, cr0Mask: 0, cr4Mask: 0 };
/** The vmcs01 rows of Vmcs01Inputs, read in one run of VMREADs. */
const VMCS01_INPUT_ROWS = Int16Array.from([FIELD.EXCEPTION_BITMAP, FIELD.EPT_POINTER, FIELD.TSC_OFFSET, FIELD.CR0_GUEST_HOST_MASK, FIELD.CR4_GUEST_HOST_MASK]);

/**
 * prepare_vmcs02: vmcs12's guest state and controls merged with what L0 needs from vmcs01
 * (its EPT, its host state, its own intercepts), written into the current VMCS (vmcs02).
 */
function prepareVmcs02(vmx: VcpuVmx, n: NestedVmx, v: Vmcs12, c01: ControlsShadow, in01: Vmcs01Inputs, efer02: number): void {
  const s = vmcsSilicon(vmx);
  n.lastPrepareChangedCount = 0;
  if (n.dirtyVmcs12) {
    prepareVmcs02Rare(n, v);
    n.dirtyVmcs12 = false;
  }
  // Guest state.
  for (let k = 0; k < GUEST_FAST_ROWS.length; k++) putFrom12(v, GUEST_FAST_ROWS[k]!);
  put(FIELD.GUEST_CR0, (v.lo(FIELD.GUEST_CR0) | CR0.NE) >>> 0);
  put(FIELD.GUEST_CR4, (v.lo(FIELD.GUEST_CR4) | CR4.VMXE) >>> 0);
  put(FIELD.GUEST_IA32_EFER, efer02);
  if (v.lo(FIELD.VM_ENTRY_CONTROLS) & VM_ENTRY.LOAD_IA32_PAT) putFrom12(v, FIELD.GUEST_IA32_PAT);
  // Controls: L0's own (vmcs01's) or'ed with L1's, less the windows L0 asked for L1.
  const proc12 = v.lo(FIELD.CPU_BASED_VM_EXEC_CONTROL);
  const proc2_12 = proc12 & CPU_BASED.ACTIVATE_SECONDARY_CONTROLS ? v.lo(FIELD.SECONDARY_VM_EXEC_CONTROL) : 0;
  // L1's preemption timer is L0's to emulate (vmx_start_preemption_timer): never vmcs02's.
  const pin = ((c01.pin | v.lo(FIELD.PIN_BASED_VM_EXEC_CONTROL)) & ~PIN_BASED.VMX_PREEMPTION_TIMER) >>> 0;
  let exec = ((c01.exec & ~(CPU_BASED.INTR_WINDOW_EXITING | CPU_BASED.NMI_WINDOW_EXITING | CPU_BASED.USE_IO_BITMAPS
    | CPU_BASED.USE_MSR_BITMAPS | CPU_BASED.MONITOR_TRAP_FLAG)) | proc12) >>> 0;
  // L0 takes every L2 port access and looks at L1's bitmaps itself (nested_vmx_exit_handled_io).
  if (exec & CPU_BASED.USE_IO_BITMAPS) exec = ((exec & ~CPU_BASED.USE_IO_BITMAPS) | CPU_BASED.UNCOND_IO_EXITING) >>> 0;
  exec = (exec | CPU_BASED.ACTIVATE_SECONDARY_CONTROLS) >>> 0;
  if (proc12 & CPU_BASED.USE_MSR_BITMAPS) {
    nestedVmxPrepareMsrBitmap(vmx, n, v);
    exec = (exec | CPU_BASED.USE_MSR_BITMAPS) >>> 0;
    put(FIELD.MSR_BITMAP, n.msrBitmap02);
  }
  const exec2 = ((c01.exec2 & ~(SECONDARY_EXEC.UNRESTRICTED_GUEST | SECONDARY_EXEC.SHADOW_VMCS)) | (proc2_12 & ~SECONDARY_EXEC.ENABLE_VPID)
    | (n.vpid02 ? SECONDARY_EXEC.ENABLE_VPID : 0)) >>> 0;
  const lma = (efer02 & EFER.LMA) !== 0;
  const entry = ((c01.entry & ~VM_ENTRY.IA32E_MODE) | (lma ? VM_ENTRY.IA32E_MODE : 0)) >>> 0;
  const c02 = n.ctls02;
  if (c02.pin !== pin) putCtl(s, n, FIELD.PIN_BASED_VM_EXEC_CONTROL, pin);
  if (c02.exec !== exec) putCtl(s, n, FIELD.CPU_BASED_VM_EXEC_CONTROL, exec);
  if (c02.exec2 !== exec2) putCtl(s, n, FIELD.SECONDARY_VM_EXEC_CONTROL, exec2);
  if (c02.entry !== entry) putCtl(s, n, FIELD.VM_ENTRY_CONTROLS, entry);
  if (c02.exit !== c01.exit) putCtl(s, n, FIELD.VM_EXIT_CONTROLS, c01.exit);
  vmx.pinCtl = pin;
  vmx.execCtl = exec;
  vmx.exec2Ctl = exec2;
  vmx.entryCtl = entry;
  vmx.exitCtl = c01.exit;
  // EPT02 (a shadow of EPT12) when L1 uses EPT for L2, else EPT01: L2's GPAs are then L1's.
  n.vmcs02OnEpt01 = !(proc2_12 & SECONDARY_EXEC.ENABLE_EPT);
  if (n.vmcs02OnEpt01) {
    put(FIELD.EPT_POINTER, in01.eptp);
  } else {
    const eptp12 = v.num(FIELD.EPT_POINTER);
    if (!n.ept02) n.ept02 = allocEpt02(vmx, eptp12);
    else if (n.ept02.eptp12 !== eptp12) { nestedEptFlush(vmx, n.ept02); n.ept02.eptp12 = eptp12; }
    put(FIELD.EPT_POINTER, n.ept02 ? ept02Pointer(n.ept02) : in01.eptp);
  }
  put(FIELD.EXCEPTION_BITMAP, (in01.eb | v.lo(FIELD.EXCEPTION_BITMAP)) >>> 0);
  // What L2 reads of CR0/CR4 is what L1 would have it read (nested_read_cr0/cr4).
  const m0 = v.lo(FIELD.CR0_GUEST_HOST_MASK);
  const m4 = v.lo(FIELD.CR4_GUEST_HOST_MASK);
  put(FIELD.CR0_GUEST_HOST_MASK, (in01.cr0Mask | m0) >>> 0);
  put(FIELD.CR4_GUEST_HOST_MASK, (in01.cr4Mask | m4) >>> 0);
  put(FIELD.CR0_READ_SHADOW, ((v.lo(FIELD.GUEST_CR0) & ~m0) | (v.lo(FIELD.CR0_READ_SHADOW) & m0)) >>> 0);
  put(FIELD.CR4_READ_SHADOW, ((v.lo(FIELD.GUEST_CR4) & ~m4) | (v.lo(FIELD.CR4_READ_SHADOW) & m4)) >>> 0);
  // TSC_OFFSET of vmcs02 = vmcs01's + vmcs12's, modulo 2^64, in 32-bit halves.
  let tscLo = in01.tscLo;
  let tscHi = in01.tscHi;
  if (proc12 & CPU_BASED.USE_TSC_OFFSETTING) {
    const sum = tscLo + v.lo(FIELD.TSC_OFFSET);
    tscLo = sum >>> 0;
    tscHi = (tscHi + v.hi(FIELD.TSC_OFFSET) + (sum > 0xffffffff ? 1 : 0)) >>> 0;
  }
  putHalves(FIELD.TSC_OFFSET, tscLo, tscHi);
  putFrom12(v, FIELD.VM_ENTRY_INTR_INFO_FIELD);
  putFrom12(v, FIELD.VM_ENTRY_EXCEPTION_ERROR_CODE);
  putFrom12(v, FIELD.VM_ENTRY_INSTRUCTION_LEN);
  writeVmcs02(s, n);
}

/** nested_vmx_prepare_msr_bitmap: an MSR access of L2 exits when L0 or L1 intercepts it. */
function nestedVmxPrepareMsrBitmap(vmx: VcpuVmx, n: NestedVmx, v: Vmcs12): void {
  const mem = vmx.module.host.mem;
  const l1 = gpaToHpa(vmx.vcpu, v.num(FIELD.MSR_BITMAP));
  const out = pageWords(mem, n.msrBitmap02);
  const l0 = pageWords(mem, vmx.msrBitmap);
  mem.noteWrite(n.msrBitmap02, PAGE);
  // An unbacked L1 bitmap intercepts everything.
  if (l1 < 0) { out.fill(-1); return; }
  const w1 = pageWords(mem, l1);
  for (let k = 0; k < PAGE / 4; k++) out[k] = w1[k]! | l0[k]!;
}

/** A page of host memory as 32-bit words (a page never straddles a chunk). */
function pageWords(mem: Vm['host']['mem'], hpa: number): Int32Array {
  const c = mem.chunk(hpa);
  return new Int32Array(c.buffer, c.byteOffset + (hpa % CHUNK_SIZE), PAGE / 4);
}

/** handle_vmlaunch / handle_vmresume: nested_vmx_run. */
export function nestedVmxRun(vcpu: KvmVcpu, launch: boolean): ExitResult {
  if (!nestedVmxCheckPermission(vcpu)) return 'resume';
  const vmx = toVmx(vcpu);
  const n = toNested(vmx);
  if (n.currentVmptr === INVALID_GPA) return nestedVmxFailInvalid(vcpu);
  // L1's shadowed VMWRITEs are in the shadow VMCS only (copy_shadow_to_vmcs12 in nested_vmx_run).
  if (shadowActive(vmx, n)) copyShadowToVmcs12(vmx, n);
  const v = n.cachedVmcs12;
  const s = vmcsSilicon(vmx);
  if (s.vmread32(VMCS.GUEST_INTERRUPTIBILITY_INFO) & 2) return nestedVmxFailValid(vcpu, VMXERR.ENTRY_EVENTS_BLOCKED_BY_MOV_SS);
  if (launch && v.launchState) return nestedVmxFailValid(vcpu, VMXERR.VMLAUNCH_NONCLEAR_VMCS);
  if (!launch && !v.launchState) return nestedVmxFailValid(vcpu, VMXERR.VMRESUME_NONLAUNCHED_VMCS);
  if (!nestedVmxCheckControls(v)) return nestedVmxFailValid(vcpu, VMXERR.ENTRY_INVALID_CONTROL_FIELD);
  if (!nestedVmxCheckHostState(v)) return nestedVmxFailValid(vcpu, VMXERR.ENTRY_INVALID_HOST_STATE_FIELD);
  if (!nestedVmxCheckGuestState(v)) {
    // nested_vmx_enter_non_root_mode failing its guest-state checks: an entry-failure exit to L1.
    loadVmcs12HostState(vcpu, v);
    nestedVmxEntryFailureInfo(v, EXIT_REASON.INVALID_STATE, ENTRY_FAIL_DEFAULT);
    n.needVmcs12ToShadowSync = true;
    return 'resume';
  }
  return enterVmxNonRootMode(vcpu, vmx, n, launch);
}

function nestedVmxEntryFailureInfo(v: Vmcs12, reason: number, qual: number): void {
  v.set(FIELD.VM_EXIT_REASON, (reason | VMX_EXIT_REASONS_FAILED_VMENTRY) >>> 0);
  v.setNum(FIELD.EXIT_QUALIFICATION, qual);
}

/**
 * nested_vmx_transition_tlb_flush at VM entry. L2 runs on VPID02. Without VPID in vmcs12, L1
 * expects every entry to flush L2's linear mappings; with it, only a change of vmcs12's VPID
 * does (nested.last_vpid), since L1 flushes that VPID itself with INVVPID.
 */
function nestedVmxTransitionTlbFlush(vmx: VcpuVmx, n: NestedVmx, v: Vmcs12): void {
  if (!n.vpid02) return;
  const proc2 = v.lo(FIELD.CPU_BASED_VM_EXEC_CONTROL) & CPU_BASED.ACTIVATE_SECONDARY_CONTROLS ? v.lo(FIELD.SECONDARY_VM_EXEC_CONTROL) : 0;
  const vpid12 = proc2 & SECONDARY_EXEC.ENABLE_VPID ? v.lo(FIELD.VIRTUAL_PROCESSOR_ID) : 0;
  if (vpid12 !== 0 && vpid12 === n.lastVpid) return;
  n.lastVpid = vpid12;
  vmcsSilicon(vmx).invvpid(1, n.vpid02);
}

/** The pCPU's instruction count: the time base of the (emulated) VMX-preemption timer. */
function l2Clock(vcpu: KvmVcpu): number {
  return vcpu.pcpu?.cpu.icount ?? 0;
}

/**
 * vmx_start_preemption_timer: each entry to L2 with the timer on in vmcs12 loads it from
 * VMX_PREEMPTION_TIMER_VALUE (SDM 26.5.1). L0 keeps the deadline, arms a host hrtimer on it
 * before each entry to L2 (which kicks L2 out when it expires), and checks it whenever it has
 * control (vmx_check_nested_events): the exit reaches L1 at the first entry after expiry.
 */
function vmxStartPreemptionTimer(vcpu: KvmVcpu, n: NestedVmx, v: Vmcs12): void {
  n.preemptionTimerDeadline = v.lo(FIELD.PIN_BASED_VM_EXEC_CONTROL) & PIN_BASED.VMX_PREEMPTION_TIMER
    ? l2Clock(vcpu) + v.lo(FIELD.VMX_PREEMPTION_TIMER_VALUE) * 2 ** NESTED_PREEMPTION_TIMER_RATE
    : Infinity;
}

/** vmx_get_preemption_timer_value: what is left of L1's timer, in its own units. */
function vmxGetPreemptionTimerValue(vcpu: KvmVcpu, n: NestedVmx): number {
  const left = n.preemptionTimerDeadline - l2Clock(vcpu);
  return left <= 0 ? 0 : Math.min(0xffffffff, Math.ceil(left / 2 ** NESTED_PREEMPTION_TIMER_RATE));
}

/** nested_vmx_enter_non_root_mode: vmcs02 prepared and loaded; the next vcpu_run enters L2. */
export function enterVmxNonRootMode(vcpu: KvmVcpu, vmx: VcpuVmx, n: NestedVmx, launch: boolean, fromVmentry = true): ExitResult {
  const v = n.cachedVmcs12;
  const s01 = vmcsSilicon(vmx);
  const vmcs02 = nestedAllocVmcs02(vmx, n);
  if (!vmcs02) return nestedVmxFailValid(vcpu, VMXERR.ENTRY_INVALID_CONTROL_FIELD);
  // What prepare_vmcs02 takes from vmcs01, read while it is current.
  const c = n.ctls01;
  c.pin = vmx.pinCtl; c.exec = vmx.execCtl; c.exec2 = vmx.exec2Ctl; c.entry = vmx.entryCtl; c.exit = vmx.exitCtl;
  const in01 = vmcs01Inputs;
  vmreadRows(s01, VMCS01_INPUT_ROWS, VMCS01_INPUT_ROWS.length, rowLo, rowHi);
  in01.eb = rowLo[FIELD.EXCEPTION_BITMAP]! >>> 0;
  in01.eptp = rowHi[FIELD.EPT_POINTER]! * TWO32 + (rowLo[FIELD.EPT_POINTER]! >>> 0);
  in01.tscLo = rowLo[FIELD.TSC_OFFSET]! >>> 0;
  in01.tscHi = rowHi[FIELD.TSC_OFFSET]! >>> 0;
  in01.cr0Mask = rowLo[FIELD.CR0_GUEST_HOST_MASK]! >>> 0;
  in01.cr4Mask = rowLo[FIELD.CR4_GUEST_HOST_MASK]! >>> 0;
  // L1's RIP stays at VMLAUNCH in vmcs01; a VMfail seen on vmcs02 resumes L1 there.
  s01.vmwriteNum(VMCS.GUEST_RIP, vcpu.arch.rip);
  const efer02 = nestedVmxCalcEfer(v, vcpu.arch.efer);
  n.cr0GuestOwned01 = vcpu.arch.cr0GuestOwnedBits;
  n.cr4GuestOwned01 = vcpu.arch.cr4GuestOwnedBits;
  vmxSwitchVmcs(vmx, vmcs02);
  prepareVmcs02(vmx, n, v, c, in01, efer02);
  nestedVmxTransitionTlbFlush(vmx, n, v);
  const a = vcpu.arch;
  a.guestMode = true;
  a.rip = v.num(FIELD.GUEST_RIP);
  const rsp = v.num(FIELD.GUEST_RSP);
  const rspHi = Math.floor(rsp / TWO32);
  a.regs[RSP] = rsp - rspHi * TWO32;
  a.regsHi[RSP] = rspHi;
  a.cr0 = v.lo(FIELD.GUEST_CR0);
  a.cr4 = v.lo(FIELD.GUEST_CR4);
  a.cr3 = v.num(FIELD.GUEST_CR3);
  a.efer = efer02;
  a.cr0GuestOwnedBits &= ~v.lo(FIELD.CR0_GUEST_HOST_MASK);
  a.cr4GuestOwnedBits &= ~v.lo(FIELD.CR4_GUEST_HOST_MASK);
  kvmClearExceptionQueue(vcpu);
  kvmClearInterruptQueue(vcpu);
  // SDM 27.4: the VM-entry MSR-load list, after guest state; a failing entry is a VM-entry failure
  // (exit reason 34, the entry's 1-based index as qualification) back in L1, launch state unchanged.
  // KVM_SET_NESTED_STATE restores a guest already past it (from_vmentry false).
  const failed = fromVmentry ? nestedVmxLoadMsr(vcpu, v.num(FIELD.VM_ENTRY_MSR_LOAD_ADDR), v.lo(FIELD.VM_ENTRY_MSR_LOAD_COUNT)) : 0;
  if (failed) {
    nestedVmxLeaveToL1(vcpu, vmx, n);
    loadVmcs12HostState(vcpu, v);
    nestedVmxEntryFailureInfo(v, EXIT_REASON.MSR_LOAD_FAIL, failed);
    n.needVmcs12ToShadowSync = true;
    return 'resume';
  }
  if (launch) v.launchState = 1;
  vmxStartPreemptionTimer(vcpu, n, v);
  n.stats.nestedEntries++;
  return 'resume';
}

// ---- L2 exits ---------------------------------------------------------------------------------

/** nested_vmx_exit_handled_io: does L1's I/O bitmap (or unconditional exiting) claim this access? */
function nestedVmxExitHandledIo(vcpu: KvmVcpu, v: Vmcs12, qual: number): boolean {
  const proc = v.lo(FIELD.CPU_BASED_VM_EXEC_CONTROL);
  if (!(proc & CPU_BASED.USE_IO_BITMAPS)) return (proc & CPU_BASED.UNCOND_IO_EXITING) !== 0;
  const port = qual >>> 16;
  const size = (qual & 7) + 1;
  for (let p = port; p < port + size; p++) {
    if (p > 0xffff) return true;
    const bitmap = v.num(p < 0x8000 ? FIELD.IO_BITMAP_A : FIELD.IO_BITMAP_B);
    const b = readGuest8(vcpu, bitmap + ((p & 0x7fff) >>> 3));
    if (b === null || b & (1 << (p & 7))) return true;
  }
  return false;
}

/** nested_vmx_exit_handled_msr: L1's MSR bitmap, or every access without one. */
function nestedVmxExitHandledMsr(vcpu: KvmVcpu, v: Vmcs12, write: boolean): boolean {
  if (!(v.lo(FIELD.CPU_BASED_VM_EXEC_CONTROL) & CPU_BASED.USE_MSR_BITMAPS)) return true;
  const msr = vcpu.arch.regs[RCX]! >>> 0;
  let quarter: number;
  if (msr <= 0x1fff) quarter = 0;
  else if (msr >= 0xc0000000 && msr <= 0xc0001fff) quarter = 1024;
  else return true;
  const b = readGuest8(vcpu, v.num(FIELD.MSR_BITMAP) + quarter + (write ? 2048 : 0) + ((msr & 0x1fff) >>> 3));
  return b === null || (b & (1 << (msr & 7))) !== 0;
}

/** nested_vmx_exit_handled_cr: L1's CR masks, shadows and CR3/CR8 exiting. */
function nestedVmxExitHandledCr(vcpu: KvmVcpu, v: Vmcs12, qual: number): boolean {
  const cr = qual & 15;
  const reg = (qual >> 8) & 15;
  const proc = v.lo(FIELD.CPU_BASED_VM_EXEC_CONTROL);
  switch ((qual >> 4) & 3) {
    case 0: {
      const val = vcpu.arch.regs[reg]! >>> 0;
      if (cr === 0) return ((val ^ v.lo(FIELD.CR0_READ_SHADOW)) & v.lo(FIELD.CR0_GUEST_HOST_MASK)) !== 0;
      if (cr === 4) return ((val ^ v.lo(FIELD.CR4_READ_SHADOW)) & v.lo(FIELD.CR4_GUEST_HOST_MASK)) !== 0;
      if (cr === 3) {
        if (!(proc & CPU_BASED.CR3_LOAD_EXITING)) return false;
        const full = regRead(vcpu, reg);
        for (let t = 0; t < v.lo(FIELD.CR3_TARGET_COUNT); t++) if (v.num(FIELD.CR3_TARGET_VALUE0 + t) === full) return false;
        return true;
      }
      if (cr === 8) return (proc & CPU_BASED.CR8_LOAD_EXITING) !== 0;
      return true;
    }
    case 1:
      if (cr === 3) return (proc & CPU_BASED.CR3_STORE_EXITING) !== 0;
      if (cr === 8) return (proc & CPU_BASED.CR8_STORE_EXITING) !== 0;
      return true;
    case 2:
      return (v.lo(FIELD.CR0_GUEST_HOST_MASK) & CR0.TS) !== 0 && (v.lo(FIELD.CR0_READ_SHADOW) & CR0.TS) !== 0;
    default: {
      const m = v.lo(FIELD.CR0_GUEST_HOST_MASK);
      const sh = v.lo(FIELD.CR0_READ_SHADOW);
      const val = (qual >>> 16) & 0xf;
      if (m & 0xe & (val ^ sh)) return true;
      return (m & 1) !== 0 && !(sh & 1) && (val & 1) !== 0;
    }
  }
}

/** nested_vmx_l0_wants_exit: exits L0 handles whatever L1 asked for. */
function nestedVmxL0WantsExit(vmx: VcpuVmx, basic: number, intrInfo: number): boolean {
  switch (basic) {
    case EXIT_REASON.EXCEPTION_NMI: {
      const type = (intrInfo & INTR_INFO.TYPE_MASK) >> INTR_INFO.TYPE_SHIFT;
      return type === EVENT_TYPE.NMI || (intrInfo & 0xff) === VEC.MC;
    }
    case EXIT_REASON.EXTERNAL_INTERRUPT:
    case EXIT_REASON.EPT_VIOLATION:
    case EXIT_REASON.EPT_MISCONFIG:
    case EXIT_REASON.PREEMPTION_TIMER:
      return true;
    default:
      return false;
  }
}

/** nested_vmx_l1_wants_exit: what vmcs12 asked to see. */
function nestedVmxL1WantsExit(vcpu: KvmVcpu, v: Vmcs12, basic: number, qual: number, intrInfo: number): boolean {
  const proc = v.lo(FIELD.CPU_BASED_VM_EXEC_CONTROL);
  const proc2 = proc & CPU_BASED.ACTIVATE_SECONDARY_CONTROLS ? v.lo(FIELD.SECONDARY_VM_EXEC_CONTROL) : 0;
  switch (basic) {
    case EXIT_REASON.EXCEPTION_NMI: {
      const vector = intrInfo & 0xff;
      if (!(v.lo(FIELD.EXCEPTION_BITMAP) & (1 << vector))) return false;
      if (vector !== VEC.PF) return true;
      // SDM 26.2: #PF exits when (error code & mask) == match is as bit 14 says.
      const s = vmcsSilicon(toVmx(vcpu));
      const ec = s.vmread32(VMCS.VM_EXIT_INTR_ERROR_CODE);
      return ((ec & v.lo(FIELD.PAGE_FAULT_ERROR_CODE_MASK)) === v.lo(FIELD.PAGE_FAULT_ERROR_CODE_MATCH));
    }
    case EXIT_REASON.EXTERNAL_INTERRUPT: return (v.lo(FIELD.PIN_BASED_VM_EXEC_CONTROL) & PIN_BASED.EXT_INTR_MASK) !== 0;
    case EXIT_REASON.INTERRUPT_WINDOW: return (proc & CPU_BASED.INTR_WINDOW_EXITING) !== 0;
    case EXIT_REASON.NMI_WINDOW: return (proc & CPU_BASED.NMI_WINDOW_EXITING) !== 0;
    case EXIT_REASON.HLT: return (proc & CPU_BASED.HLT_EXITING) !== 0;
    case EXIT_REASON.INVLPG: return (proc & CPU_BASED.INVLPG_EXITING) !== 0;
    case EXIT_REASON.RDPMC: return (proc & CPU_BASED.RDPMC_EXITING) !== 0;
    case EXIT_REASON.RDTSC:
    case EXIT_REASON.RDTSCP: return (proc & CPU_BASED.RDTSC_EXITING) !== 0;
    case EXIT_REASON.CR_ACCESS: return nestedVmxExitHandledCr(vcpu, v, qual);
    case EXIT_REASON.DR_ACCESS: return (proc & CPU_BASED.MOV_DR_EXITING) !== 0;
    case EXIT_REASON.IO_INSTRUCTION: return nestedVmxExitHandledIo(vcpu, v, qual);
    case EXIT_REASON.MSR_READ: return nestedVmxExitHandledMsr(vcpu, v, false);
    case EXIT_REASON.MSR_WRITE: return nestedVmxExitHandledMsr(vcpu, v, true);
    case EXIT_REASON.MWAIT_INSTRUCTION: return (proc & CPU_BASED.MWAIT_EXITING) !== 0;
    case EXIT_REASON.MONITOR_INSTRUCTION: return (proc & CPU_BASED.MONITOR_EXITING) !== 0;
    case EXIT_REASON.MONITOR_TRAP_FLAG: return (proc & CPU_BASED.MONITOR_TRAP_FLAG) !== 0;
    case EXIT_REASON.PAUSE_INSTRUCTION: return (proc & CPU_BASED.PAUSE_EXITING) !== 0;
    case EXIT_REASON.WBINVD: return (proc2 & SECONDARY_EXEC.WBINVD_EXITING) !== 0;
    case EXIT_REASON.PREEMPTION_TIMER: return false;
    // CPUID, VMCALL, every VMX instruction, INVD, XSETBV, triple fault: always L1's.
    default: return true;
  }
}

const EXIT_QUAL_INFO_ROWS = Int16Array.from([FIELD.EXIT_QUALIFICATION, FIELD.VM_EXIT_INTR_INFO]);

/**
 * nested_vmx_reflect_vmexit: after an L2 exit, true when it went to L1 (nested_vmx_vmexit),
 * false when L0 handles it through its own exit handlers.
 */
export function nestedVmxReflectVmexit(vcpu: KvmVcpu): boolean {
  const vmx = toVmx(vcpu);
  const n = toNested(vmx);
  if (vmx.fail) {
    // vmcs02 failed the silicon's control or host-state checks: L1 sees VMfailValid at its VMLAUNCH.
    const s = vmcsSilicon(vmx);
    const err = s.vmread32(VMCS.VM_INSTRUCTION_ERROR);
    nestedVmxLeaveToL1(vcpu, vmx, n);
    vcpu.arch.rip = vmcsSilicon(vmx).vmreadNum(VMCS.GUEST_RIP);
    n.cachedVmcs12.launchState = 0;
    vmx.fail = false;
    nestedVmxFailValid(vcpu, err || VMXERR.ENTRY_INVALID_CONTROL_FIELD);
    return true;
  }
  const reason = vmx.exitReason >>> 0;
  const s = vmcsSilicon(vmx);
  // vmx_get_exit_qual and vmx_get_intr_info, in one run of VMREADs.
  vmreadRows(s, EXIT_QUAL_INFO_ROWS, EXIT_QUAL_INFO_ROWS.length, rowLo, rowHi);
  const qual = rowHi[FIELD.EXIT_QUALIFICATION]! * TWO32 + (rowLo[FIELD.EXIT_QUALIFICATION]! >>> 0);
  const intrInfo = rowLo[FIELD.VM_EXIT_INTR_INFO]! >>> 0;
  if (reason & VMX_EXIT_REASONS_FAILED_VMENTRY) {
    // The silicon refused vmcs02's guest state: the entry failure is L1's (Linux: nested_vmx_vmexit).
    n.cachedVmcs12.launchState = 0;
    nestedVmxLeaveToL1(vcpu, vmx, n);
    loadVmcs12HostState(vcpu, n.cachedVmcs12);
    nestedVmxEntryFailureInfo(n.cachedVmcs12, reason & 0xffff, qual);
    n.needVmcs12ToShadowSync = true;
    n.stats.l2ExitsReflected++;
    return true;
  }
  const basic = reason & 0xffff;
  if (basic === EXIT_REASON.EPT_VIOLATION && !n.vmcs02OnEpt01 && n.ept02) {
    // The nested TDP fault: fixed in EPT02 from EPT12, or L1's own EPT violation.
    const f = nestedEptViolation(vcpu, vmx, n.ept02, s.vmreadNum(VMCS.GUEST_PHYSICAL_ADDRESS), qual);
    if (f.kind === 'reflect') {
      n.stats.l2ExitsReflected++;
      nestedVmxVmexit(vcpu, reason, intrInfo, f.qual);
      return true;
    }
    if (f.kind === 'fixed') {
      n.stats.l2ExitsHandledInL0++;
      return true;
    }
  }
  if (nestedVmxL0WantsExit(vmx, basic, intrInfo) || !nestedVmxL1WantsExit(vcpu, n.cachedVmcs12, basic, qual, intrInfo)) {
    n.stats.l2ExitsHandledInL0++;
    return false;
  }
  n.stats.l2ExitsReflected++;
  nestedVmxVmexit(vcpu, reason, intrInfo, qual);
  return true;
}

/** The guest-state rows sync_vmcs02_to_vmcs12 copies back at every exit: all but the rare ones (CR0/CR4 and RIP/RSP are computed). */
const GUEST_SYNC_ROWS: readonly number[] = GUEST_COPY_ROWS.filter((i) => !isVmcs12ExtField(i) && i !== FIELD.GUEST_RIP && i !== FIELD.GUEST_RSP);
const GUEST_SYNC_ROWS16 = Int16Array.from(GUEST_SYNC_ROWS);
/** The vmcs02 rows vmcs12_guest_cr0/cr4 look at. */
const SYNC_CR_ROWS = Int16Array.from([FIELD.CR0_GUEST_HOST_MASK, FIELD.GUEST_CR0, FIELD.CR0_READ_SHADOW, FIELD.CR4_GUEST_HOST_MASK,
  FIELD.GUEST_CR4, FIELD.CR4_READ_SHADOW]);

/** Exit-information rows prepare_vmcs12 copies from vmcs02. */
const EXIT_INFO_ROWS = Int16Array.from([FIELD.VM_EXIT_INTR_ERROR_CODE, FIELD.IDT_VECTORING_INFO_FIELD, FIELD.IDT_VECTORING_ERROR_CODE,
  FIELD.VM_EXIT_INSTRUCTION_LEN, FIELD.VMX_INSTRUCTION_INFO, FIELD.GUEST_LINEAR_ADDRESS, FIELD.GUEST_PHYSICAL_ADDRESS]);

/** sync_vmcs02_to_vmcs12: L2's guest state from vmcs02 (and vcpu->arch) into vmcs12. */
export function syncVmcs02ToVmcs12(vcpu: KvmVcpu, vmx: VcpuVmx, v: Vmcs12): void {
  const s = vmcsSilicon(vmx);
  toNested(vmx).needSyncVmcs02ToVmcs12Rare = true;
  vmreadRows(s, GUEST_SYNC_ROWS16, GUEST_SYNC_ROWS16.length, v.fieldLo, v.fieldHi);
  vmreadRows(s, SYNC_CR_ROWS, SYNC_CR_ROWS.length, rowLo, rowHi);
  v.setNum(FIELD.GUEST_RIP, vcpu.arch.rip);
  v.setNum(FIELD.GUEST_RSP, regRead(vcpu, RSP));
  // vmcs12_guest_cr0/cr4: bits L2 owns from vmcs02, L1's masked bits from vmcs12, L0's from the shadow.
  const owned0 = ~rowLo[FIELD.CR0_GUEST_HOST_MASK]!;
  const m0 = v.lo(FIELD.CR0_GUEST_HOST_MASK);
  v.set(FIELD.GUEST_CR0, ((rowLo[FIELD.GUEST_CR0]! & owned0) | (v.lo(FIELD.GUEST_CR0) & m0) | (rowLo[FIELD.CR0_READ_SHADOW]! & ~(owned0 | m0))) >>> 0);
  const owned4 = ~rowLo[FIELD.CR4_GUEST_HOST_MASK]!;
  const m4 = v.lo(FIELD.CR4_GUEST_HOST_MASK);
  v.set(FIELD.GUEST_CR4, ((rowLo[FIELD.GUEST_CR4]! & owned4) | (v.lo(FIELD.GUEST_CR4) & m4) | (rowLo[FIELD.CR4_READ_SHADOW]! & ~(owned4 | m4))) >>> 0);
  const lma = (vcpu.arch.efer & EFER.LMA) !== 0;
  v.set(FIELD.VM_ENTRY_CONTROLS, ((v.lo(FIELD.VM_ENTRY_CONTROLS) & ~VM_ENTRY.IA32E_MODE) | (lma ? VM_ENTRY.IA32E_MODE : 0)) >>> 0);
  if (v.lo(FIELD.VM_EXIT_CONTROLS) & VM_EXIT.SAVE_IA32_EFER) v.set(FIELD.GUEST_IA32_EFER, vcpu.arch.efer >>> 0);
  // SDM 28.3: "save VMX-preemption timer value" with the timer on stores what is left of it.
  const n = toNested(vmx);
  if (v.lo(FIELD.PIN_BASED_VM_EXEC_CONTROL) & PIN_BASED.VMX_PREEMPTION_TIMER && v.lo(FIELD.VM_EXIT_CONTROLS) & VM_EXIT.SAVE_VMX_PREEMPTION_TIMER) {
    v.set(FIELD.VMX_PREEMPTION_TIMER_VALUE, vmxGetPreemptionTimerValue(vcpu, n));
  }
  if (v.lo(FIELD.VM_EXIT_CONTROLS) & VM_EXIT.SAVE_IA32_PAT) v.setNum(FIELD.GUEST_IA32_PAT, s.vmreadNum(VMCS.GUEST_IA32_PAT));
}

/** sync_vmcs02_to_vmcs12_rare: the is_vmcs12_ext_field rows, from vmcs02 (current) into vmcs12. */
export function syncVmcs02ToVmcs12Rare(vmx: VcpuVmx, v: Vmcs12): void {
  const s = vmcsSilicon(vmx);
  vmreadRows(s, GUEST_EXT_ROWS, GUEST_EXT_ROWS.length, v.fieldLo, v.fieldHi);
  toNested(vmx).needSyncVmcs02ToVmcs12Rare = false;
}

/**
 * copy_vmcs02_to_vmcs12_rare: while L1 runs (vmcs01 loaded), catches vmcs12's rare fields up with
 * vmcs02, loading vmcs02 for the reads and vmcs01 again after.
 */
export function copyVmcs02ToVmcs12Rare(vmx: VcpuVmx, n: NestedVmx): void {
  if (!n.needSyncVmcs02ToVmcs12Rare || !n.vmcs02 || vmx.loadedVmcs !== vmx.vmcs01) return;
  vmxSwitchVmcs(vmx, n.vmcs02);
  syncVmcs02ToVmcs12Rare(vmx, n.cachedVmcs12);
  vmxSwitchVmcs(vmx, vmx.vmcs01);
}

/** prepare_vmcs12's exit information: what vmcs02 recorded about the exit. */
function prepareVmcs12ExitInfo(vmx: VcpuVmx, v: Vmcs12): void {
  vmreadRows(vmcsSilicon(vmx), EXIT_INFO_ROWS, EXIT_INFO_ROWS.length, v.fieldLo, v.fieldHi);
  // The event vmcs12 asked to inject was delivered (or is in IDT-vectoring info).
  v.set(FIELD.VM_ENTRY_INTR_INFO_FIELD, (v.lo(FIELD.VM_ENTRY_INTR_INFO_FIELD) & ~INTR_INFO.VALID) >>> 0);
}

/** Back to vmcs01 and L1's control shadows; guest mode ends. */
export function nestedVmxLeaveToL1(vcpu: KvmVcpu, vmx: VcpuVmx, n: NestedVmx): void {
  // The MMU may have loaded its root while L2 ran on EPT01 (KVM_SET_NESTED_STATE before the first run): vmcs01 follows.
  const eptp = n.vmcs02OnEpt01 ? vmcsSilicon(vmx).vmreadNum(VMCS.EPT_POINTER) : 0;
  vmxSwitchVmcs(vmx, vmx.vmcs01);
  const s01 = vmcsSilicon(vmx);
  if (n.vmcs02OnEpt01 && s01.vmreadNum(VMCS.EPT_POINTER) !== eptp) s01.vmwriteNum(VMCS.EPT_POINTER, eptp);
  const c02 = n.ctls02;
  c02.pin = vmx.pinCtl; c02.exec = vmx.execCtl; c02.exec2 = vmx.exec2Ctl; c02.entry = vmx.entryCtl; c02.exit = vmx.exitCtl;
  const c = n.ctls01;
  vmx.pinCtl = c.pin; vmx.execCtl = c.exec; vmx.exec2Ctl = c.exec2; vmx.entryCtl = c.entry; vmx.exitCtl = c.exit;
  vcpu.arch.cr0GuestOwnedBits = n.cr0GuestOwned01;
  vcpu.arch.cr4GuestOwnedBits = n.cr4GuestOwned01;
  vcpu.arch.guestMode = false;
  n.preemptionTimerDeadline = Infinity;
  // What L0 had queued for L2 is now in vmcs12's IDT-vectoring information, not L1's to receive.
  kvmClearExceptionQueue(vcpu);
  kvmClearInterruptQueue(vcpu);
  vcpu.arch.nmiInjected = false;
}

/** nested_vmx_vmexit: an L2 exit delivered to L1 as a VM exit from vmcs12. */
export function nestedVmxVmexit(vcpu: KvmVcpu, reason: number, intrInfo: number, qual: number): void {
  const vmx = toVmx(vcpu);
  const n = toNested(vmx);
  const v = n.cachedVmcs12;
  syncVmcs02ToVmcs12(vcpu, vmx, v);
  prepareVmcs12ExitInfo(vmx, v);
  v.set(FIELD.VM_EXIT_REASON, reason >>> 0);
  v.set(FIELD.VM_EXIT_INTR_INFO, intrInfo >>> 0);
  v.setNum(FIELD.EXIT_QUALIFICATION, qual);
  // SDM 28.4: L2's MSRs into the VM-exit MSR-store list, while vmcs02 still holds them.
  const storeCount = v.lo(FIELD.VM_EXIT_MSR_STORE_COUNT);
  if (storeCount && !nestedVmxStoreMsr(vcpu, v.num(FIELD.VM_EXIT_MSR_STORE_ADDR), storeCount)) nestedVmxAbort(vcpu, n, VMX_ABORT.SAVE_GUEST_MSR_FAIL);
  nestedVmxLeaveToL1(vcpu, vmx, n);
  loadVmcs12HostState(vcpu, v);
  n.needVmcs12ToShadowSync = true;
}

/**
 * The segment registers load_vmcs12_host_state loads (SDM 28.5.2), in its order, with the kvm_segment
 * it builds for each: the vmcs12 host fields of selector and base (-1: none, 0), the limit, and the
 * access rights __vmx_set_segment writes for it (vmx_segment_access_rights; AR is that layout).
 * CS: execute/read accessed code, L and D/B from the host address-space size. Data segments:
 * read/write accessed, D/B and G, unusable with a null selector (but SS). TR: busy 64-bit TSS,
 * limit 0x67. LDTR: unusable.
 */
const HOST_CODE_AR = 11 | AR.S | AR.P | AR.G;
const HOST_DATA_AR = 3 | AR.S | AR.P | AR.DB | AR.G;
const HOST_SEGMENTS = [
  // register, vmcs12 selector,    vmcs12 base,       limit,      access rights (CS: less L, D/B), null selector: unusable
  ['CS', FIELD.HOST_CS_SELECTOR, -1, 0xffffffff, HOST_CODE_AR, false],
  ['ES', FIELD.HOST_ES_SELECTOR, -1, 0xffffffff, HOST_DATA_AR, true],
  ['SS', FIELD.HOST_SS_SELECTOR, -1, 0xffffffff, HOST_DATA_AR, false],
  ['DS', FIELD.HOST_DS_SELECTOR, -1, 0xffffffff, HOST_DATA_AR, true],
  ['FS', FIELD.HOST_FS_SELECTOR, FIELD.HOST_FS_BASE, 0xffffffff, HOST_DATA_AR, true],
  ['GS', FIELD.HOST_GS_SELECTOR, FIELD.HOST_GS_BASE, 0xffffffff, HOST_DATA_AR, true],
  ['TR', FIELD.HOST_TR_SELECTOR, FIELD.HOST_TR_BASE, 0x67, 11 | AR.P, false],
  ['LDTR', -1, -1, 0, AR.UNUSABLE, false],
] as const;
/** The vmcs01 rows of each, four a segment: selector, base, limit, access rights (what __vmx_set_segment writes). */
const HOST_SEGMENT_ROWS = HOST_SEGMENTS.flatMap(([r]) =>
  [FIELD[`GUEST_${r}_SELECTOR`], FIELD[`GUEST_${r}_BASE`], FIELD[`GUEST_${r}_LIMIT`], FIELD[`GUEST_${r}_AR_BYTES`]]);
/** HOST_SEGMENTS' columns as arrays, for the exit path (CS is segment 0), and the vmcs01 rows each goes to. */
const HOST_SEG_SEL = Int16Array.from(HOST_SEGMENTS, ([, sel]) => sel);
const HOST_SEG_BASE = Int16Array.from(HOST_SEGMENTS, ([, , base]) => base);
const HOST_SEG_AR = Int32Array.from(HOST_SEGMENTS, ([, , , , ar]) => ar);
const HOST_SEG_NULL_UNUSABLE = Uint8Array.from(HOST_SEGMENTS, ([, , , , , u]) => (u ? 1 : 0));
const HOST_SEG_SELECTOR_ROW = Int16Array.from(HOST_SEGMENTS, ([r]) => FIELD[`GUEST_${r}_SELECTOR`]);
const HOST_SEG_BASE_ROW = Int16Array.from(HOST_SEGMENTS, ([r]) => FIELD[`GUEST_${r}_BASE`]);
const HOST_SEG_AR_ROW = Int16Array.from(HOST_SEGMENTS, ([r]) => FIELD[`GUEST_${r}_AR_BYTES`]);
/** Guest-state rows of vmcs01 that load_vmcs12_host_state takes from vmcs12's host area (same order as HOST_STATE_FROM12). */
const HOST_STATE_TO01 = Int16Array.from([FIELD.GUEST_CR3, FIELD.GUEST_SYSENTER_CS, FIELD.GUEST_SYSENTER_ESP, FIELD.GUEST_SYSENTER_EIP,
  FIELD.GUEST_IDTR_BASE, FIELD.GUEST_GDTR_BASE]);
const HOST_STATE_FROM12 = Int16Array.from([FIELD.HOST_CR3, FIELD.HOST_IA32_SYSENTER_CS, FIELD.HOST_IA32_SYSENTER_ESP, FIELD.HOST_IA32_SYSENTER_EIP,
  FIELD.HOST_IDTR_BASE, FIELD.HOST_GDTR_BASE]);
/** The rows it sets to fixed values (SDM 28.5.2, 28.5.1): IDTR/GDTR limits 0xffff, DR7 0x400, DEBUGCTL, interruptibility and activity 0. */
const HOST_STATE_FIXED_ROWS = Int16Array.from([FIELD.GUEST_IDTR_LIMIT, FIELD.GUEST_GDTR_LIMIT, FIELD.GUEST_DR7, FIELD.GUEST_IA32_DEBUGCTL,
  FIELD.GUEST_INTERRUPTIBILITY_INFO, FIELD.GUEST_ACTIVITY_STATE]);
const HOST_STATE_FIXED = Int32Array.from([0xffff, 0xffff, 0x400, 0, 0, 0]);
const HOST_STATE_ROWS = Int16Array.from([...HOST_STATE_TO01, ...HOST_STATE_FIXED_ROWS, ...HOST_SEGMENT_ROWS]);
const HOST_STATE_ROWS_PAT = Int16Array.from([...HOST_STATE_ROWS, FIELD.GUEST_IA32_PAT]);
/**
 * The values load_vmcs12_host_state writes, by vmcs01 row: what never changes (the fixed rows,
 * the limits, the bases and high halves vmcs12 has no field for, LDTR) is set here once, and each
 * exit fills in what comes from vmcs12.
 */
const hostLo = new Int32Array(FIELD_COUNT);
const hostHi = new Int32Array(FIELD_COUNT);
HOST_STATE_FIXED_ROWS.forEach((row, k) => { hostLo[row] = HOST_STATE_FIXED[k]!; });
HOST_SEGMENTS.forEach(([r, , , limit, ar]) => {
  hostLo[FIELD[`GUEST_${r}_LIMIT`]] = limit;
  hostLo[FIELD[`GUEST_${r}_AR_BYTES`]] = ar;
});

/** load_vmcs12_host_state (SDM 28.5): L1 continues at HOST_RIP in the state vmcs12's host area gives. */
export function loadVmcs12HostState(vcpu: KvmVcpu, v: Vmcs12): void {
  const vmx = toVmx(vcpu);
  const s = vmcsSilicon(vmx);
  const a = vcpu.arch;
  const exitCtl = v.lo(FIELD.VM_EXIT_CONTROLS);
  const long = (exitCtl & VM_EXIT.HOST_ADDR_SPACE_SIZE) !== 0;
  let efer = exitCtl & VM_EXIT.LOAD_IA32_EFER ? v.lo(FIELD.HOST_IA32_EFER) : a.efer;
  efer = long ? efer | EFER.LMA | EFER.LME : efer & ~(EFER.LMA | EFER.LME);
  const cr0 = v.lo(FIELD.HOST_CR0);
  a.cr0 = cr0;
  vmxSetEfer(vcpu, efer);
  vmxSetCr0(vcpu, cr0);
  vmxSetCr4(vcpu, v.lo(FIELD.HOST_CR4));
  a.cr3 = v.num(FIELD.HOST_CR3);
  // The guest state SDM 28.5 loads from vmcs12's host area, or to fixed values, and the segment
  // registers as __vmx_set_segment would write them: one run of VMWRITEs in HOST_STATE_ROWS' order,
  // the PAT last and only when the exit loads it.
  for (let k = 0; k < HOST_STATE_TO01.length; k++) {
    const from = HOST_STATE_FROM12[k]!;
    hostLo[HOST_STATE_TO01[k]!] = v.fieldLo[from]!;
    hostHi[HOST_STATE_TO01[k]!] = v.fieldHi[from]!;
  }
  for (let g = 0; g < HOST_SEG_SEL.length; g++) {
    const selRow = HOST_SEG_SEL[g]!;
    if (selRow < 0) continue;
    const sel = v.fieldLo[selRow]!;
    hostLo[HOST_SEG_SELECTOR_ROW[g]!] = sel;
    const baseRow = HOST_SEG_BASE[g]!;
    if (baseRow >= 0) {
      hostLo[HOST_SEG_BASE_ROW[g]!] = v.fieldLo[baseRow]!;
      hostHi[HOST_SEG_BASE_ROW[g]!] = v.fieldHi[baseRow]!;
    }
    const ar = HOST_SEG_AR[g]!;
    hostLo[HOST_SEG_AR_ROW[g]!] = g === 0 ? ar | (long ? AR.L : AR.DB) : HOST_SEG_NULL_UNUSABLE[g] && sel === 0 ? AR.UNUSABLE : ar;
  }
  const loadPat = (exitCtl & VM_EXIT.LOAD_IA32_PAT) !== 0;
  if (loadPat) {
    hostLo[FIELD.GUEST_IA32_PAT] = v.fieldLo[FIELD.HOST_IA32_PAT]!;
    hostHi[FIELD.GUEST_IA32_PAT] = v.fieldHi[FIELD.HOST_IA32_PAT]!;
  }
  vmwriteRows(s, HOST_STATE_ROWS_PAT, loadPat ? HOST_STATE_ROWS_PAT.length : HOST_STATE_ROWS.length, hostLo, hostHi);
  a.rip = v.num(FIELD.HOST_RIP);
  const rsp = v.num(FIELD.HOST_RSP);
  const hi = Math.floor(rsp / TWO32);
  a.regs[RSP] = rsp - hi * TWO32;
  a.regsHi[RSP] = hi;
  vmxSetRflags(vcpu, RFLAGS.FIXED1);
  // SDM 28.6: last, the VM-exit MSR-load list; a failure there is a VMX abort.
  const loadCount = v.lo(FIELD.VM_EXIT_MSR_LOAD_COUNT);
  if (loadCount && nestedVmxLoadMsr(vcpu, v.num(FIELD.VM_EXIT_MSR_LOAD_ADDR), loadCount)) nestedVmxAbort(vcpu, toNested(vmx), VMX_ABORT.LOAD_HOST_MSR_FAIL);
}

// ---- VMCS shadowing: L1's VMREAD/VMWRITE of the shadow fields run without exits ---------------

/** vmcs_shadow_fields.h, from the field table's shadow class: what L1 may VMREAD (RO and RW) and VMWRITE (RW) unseen. */
const SHADOW_FIELDS_RW = Int16Array.from(VMCS_FIELDS.flatMap(([, , , cls], i) => (cls === 'rw' ? [i] : [])));
const SHADOW_FIELDS_RO = Int16Array.from(VMCS_FIELDS.flatMap(([, , , cls], i) => (cls === 'ro' ? [i] : [])));
const SHADOW_FIELDS = Int16Array.from([...SHADOW_FIELDS_RW, ...SHADOW_FIELDS_RO]);
const IS_SHADOW_FIELD_RW: Uint8Array = Uint8Array.from(VMCS_FIELDS, ([, , , cls]) => (cls === 'rw' ? 1 : 0));

function clearBitmapField(mem: Vm['host']['mem'], bitmap: number, row: number): void {
  const enc = VMCS_FIELDS[row]![1];
  // A 64-bit field's high access (encoding | 1) is shadowed with it.
  const encs = vmcsFieldWidth(enc) === VMCS_WIDTH.U64 ? [enc, enc | 1] : [enc];
  for (const e of encs) mem.write8(bitmap + (e >>> 3), mem.read8(bitmap + (e >>> 3)) & ~(1 << (e & 7)));
}

function cpuHasShadowVmcs(vmx: VcpuVmx): boolean {
  const cap = vmcsSilicon(vmx).rdmsr(MSR_IA32_VMX.PROCBASED_CTLS2) ?? 0n;
  return ((cap >> 32n) & BigInt(SECONDARY_EXEC.SHADOW_VMCS)) !== 0n;
}

/** alloc_shadow_vmcs and the bitmaps of init_vmcs_shadow_fields, at VMXON. */
export function allocShadowVmcs(vmx: VcpuVmx, n: NestedVmx): void {
  if (n.shadowVmcs >= 0 || !nestedParams.enableShadowVmcs || !cpuHasShadowVmcs(vmx)) return;
  const host = vmx.module.host;
  const shadow = allocVmcs(vmx.module);
  const rd = host.allocPage();
  const wr = host.allocPage();
  if (shadow < 0 || rd < 0 || wr < 0) return;
  // The shadow-VMCS indicator (bit 31 of the revision identifier).
  host.mem.write32(shadow, (host.mem.read32(shadow) | 0x80000000) >>> 0);
  vmcsSilicon(vmx).vmclear(shadow);
  host.mem.fill(rd, PAGE, 0xff);
  host.mem.fill(wr, PAGE, 0xff);
  for (const i of SHADOW_FIELDS) clearBitmapField(host.mem, rd, i);
  for (const i of SHADOW_FIELDS_RW) clearBitmapField(host.mem, wr, i);
  n.shadowVmcs = shadow;
  n.vmreadBitmap = rd;
  n.vmwriteBitmap = wr;
}

export function shadowActive(vmx: VcpuVmx, n: NestedVmx): boolean {
  return n.shadowVmcs >= 0 && (vmx.exec2Ctl & SECONDARY_EXEC.SHADOW_VMCS) !== 0;
}

/** set_current_vmptr: vmcs12 current, and vmcs01 links the shadow VMCS (vmx_enable_shadow_vmcs). */
export function setCurrentVmptr(vmx: VcpuVmx, n: NestedVmx, ptr: number): void {
  n.currentVmptr = ptr;
  n.dirtyVmcs12 = true;
  n.needSyncVmcs02ToVmcs12Rare = false;
  if (n.shadowVmcs < 0) return;
  const s = vmcsSilicon(vmx);
  vmx.exec2Ctl = (vmx.exec2Ctl | SECONDARY_EXEC.SHADOW_VMCS) >>> 0;
  s.vmwrite32(VMCS.SECONDARY_VM_EXEC_CONTROL, vmx.exec2Ctl);
  if (!(vmx.execCtl & CPU_BASED.ACTIVATE_SECONDARY_CONTROLS)) {
    vmx.execCtl = (vmx.execCtl | CPU_BASED.ACTIVATE_SECONDARY_CONTROLS) >>> 0;
    s.vmwrite32(VMCS.CPU_BASED_VM_EXEC_CONTROL, vmx.execCtl);
  }
  s.vmwriteNum(VMCS.VMCS_LINK_POINTER, n.shadowVmcs);
  s.vmwriteNum(VMCS.VMREAD_BITMAP, n.vmreadBitmap);
  s.vmwriteNum(VMCS.VMWRITE_BITMAP, n.vmwriteBitmap);
  n.needVmcs12ToShadowSync = true;
}

/** vmx_disable_shadow_vmcs: vmcs12 released, L1's VMREAD/VMWRITE exit again. */
function vmxDisableShadowVmcs(vmx: VcpuVmx, n: NestedVmx): void {
  const s = vmcsSilicon(vmx);
  vmx.exec2Ctl = (vmx.exec2Ctl & ~SECONDARY_EXEC.SHADOW_VMCS) >>> 0;
  s.vmwrite32(VMCS.SECONDARY_VM_EXEC_CONTROL, vmx.exec2Ctl);
  s.vmwriteNum(VMCS.VMCS_LINK_POINTER, -1);
  n.needVmcs12ToShadowSync = false;
}

/**
 * copy_shadow_to_vmcs12: vmcs_load(shadow_vmcs), a VMREAD of every read-write shadow field into
 * vmcs12, vmcs_clear(shadow_vmcs), vmcs_load(loaded_vmcs->vmcs).
 */
export function copyShadowToVmcs12(vmx: VcpuVmx, n: NestedVmx): void {
  const s = vmcsSilicon(vmx);
  const v = n.cachedVmcs12;
  s.vmptrld(n.shadowVmcs);
  vmreadRows(s, SHADOW_FIELDS_RW, SHADOW_FIELDS_RW.length, v.fieldLo, v.fieldHi);
  s.vmclear(n.shadowVmcs);
  s.vmptrld(vmx.loadedVmcs.vmcs);
}

/**
 * copy_vmcs12_to_shadow: vmcs_load(shadow_vmcs), a VMWRITE of every shadow field (read-only ones
 * too: the silicon offers VMWRITE to any field, which enable_shadow_vmcs requires) from vmcs12,
 * vmcs_clear(shadow_vmcs), vmcs_load(loaded_vmcs->vmcs).
 */
export function copyVmcs12ToShadow(vmx: VcpuVmx, n: NestedVmx): void {
  const s = vmcsSilicon(vmx);
  const v = n.cachedVmcs12;
  s.vmptrld(n.shadowVmcs);
  vmwriteRows(s, SHADOW_FIELDS, SHADOW_FIELDS.length, v.fieldLo, v.fieldHi);
  s.vmclear(n.shadowVmcs);
  s.vmptrld(vmx.loadedVmcs.vmcs);
  n.needVmcs12ToShadowSync = false;
}

/**
 * The nested part of the way into the guest: vmx_check_nested_events for an external interrupt
 * while L2 runs, then (vmx_prepare_switch_to_guest) the shadow VMCS catches up before L1 runs.
 */
export function nestedVmxPrepareSwitchToGuest(vcpu: KvmVcpu): void {
  const vmx = toVmx(vcpu);
  const n = nestedState(vmx);
  if (!n) return;
  if (vcpu.arch.guestMode && l2Clock(vcpu) >= n.preemptionTimerDeadline) nestedVmxPreemptionTimerExit(vcpu, n);
  // The emulated timer is an hrtimer (vmx_start_preemption_timer): it kicks L2 out when it expires.
  if (vcpu.arch.guestMode && n.preemptionTimerDeadline !== Infinity && vcpu.pcpu) vmx.module.host.hrtimerStart(vcpu.pcpu, n.preemptionTimerDeadline);
  if (vcpu.arch.guestMode) nestedVmxCheckExtIntr(vcpu, vmx, n);
  if (n.needVmcs12ToShadowSync && !vcpu.arch.guestMode && shadowActive(vmx, n)) copyVmcs12ToShadow(vmx, n);
}

/** L1's VMX-preemption timer ran out while L2 ran: exit reason 52 to L1, nothing else to report (SDM 26.5.1). */
function nestedVmxPreemptionTimerExit(vcpu: KvmVcpu, n: NestedVmx): void {
  const v = n.cachedVmcs12;
  n.stats.l2ExitsReflected++;
  nestedVmxVmexit(vcpu, EXIT_REASON.PREEMPTION_TIMER, 0, 0);
  // Not an instruction or an event delivery of L2's: no length, no IDT-vectoring information.
  v.set(FIELD.VM_EXIT_INSTRUCTION_LEN, 0);
  v.set(FIELD.IDT_VECTORING_INFO_FIELD, 0);
  v.set(FIELD.VM_EXIT_INTR_ERROR_CODE, 0);
}

/**
 * An interrupt for the vCPU while L2 runs and vmcs12 has external-interrupt exiting: a VM exit
 * to L1 (SDM 26.2), whatever L2's RFLAGS.IF, with the vector in the exit's interruption
 * information when L1 asked for acknowledge-on-exit (then it is consumed), else left pending for L1.
 */
function nestedVmxCheckExtIntr(vcpu: KvmVcpu, vmx: VcpuVmx, n: NestedVmx): void {
  const irq = vcpu.arch.interrupt;
  const v = n.cachedVmcs12;
  if (!irq.injected || irq.soft || !(v.lo(FIELD.PIN_BASED_VM_EXEC_CONTROL) & PIN_BASED.EXT_INTR_MASK)) return;
  const s = vmcsSilicon(vmx);
  // L0 may have just written it into vmcs02 for L2: it is L1's, not L2's.
  const info = s.vmread32(VMCS.VM_ENTRY_INTR_INFO_FIELD);
  if (info & INTR_INFO.VALID && ((info & INTR_INFO.TYPE_MASK) >> INTR_INFO.TYPE_SHIFT) === EVENT_TYPE.EXT_INTR && (info & 0xff) === irq.nr) {
    s.vmwrite32(VMCS.VM_ENTRY_INTR_INFO_FIELD, 0);
  }
  const ack = (v.lo(FIELD.VM_EXIT_CONTROLS) & VM_EXIT.ACK_INTR_ON_EXIT) !== 0;
  const nr = irq.nr;
  n.stats.l2ExitsReflected++;
  nestedVmxVmexit(vcpu, EXIT_REASON.EXTERNAL_INTERRUPT, ack ? (nr | INTR_INFO.VALID) >>> 0 : 0, 0);
  // Not an instruction or an event delivery of L2's: no length, no IDT-vectoring information.
  v.set(FIELD.VM_EXIT_INSTRUCTION_LEN, 0);
  v.set(FIELD.IDT_VECTORING_INFO_FIELD, 0);
  v.set(FIELD.VM_EXIT_INTR_ERROR_CODE, 0);
  if (!ack) kvmQueueInterrupt(vcpu, nr, false);
}
