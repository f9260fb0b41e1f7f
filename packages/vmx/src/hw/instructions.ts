/**
 * The VMX instructions (SDM vol. 3C chapter 31, "VMX Instruction Reference"): VMXON, VMXOFF,
 * VMCLEAR, VMPTRLD, VMPTRST, VMREAD, VMWRITE, VMLAUNCH, VMRESUME, INVEPT, INVVPID, with the
 * conventions of SDM 31.2 (VMsucceed, VMfailInvalid, VMfailValid(n)).
 *
 * One implementation serves two callers: code running on the CPU (decoded by the CPU and handed
 * to VirtExtension.execute, see silicon.ts) and the TypeScript kernel, which calls the same
 * functions as methods of the silicon (`vmx.vmptrld(pa)`), as kvm_intel's inline asm would.
 */
import { CR0, CR4, RFLAGS, EFER, SEG, VEC, INTERRUPTIBILITY } from '@kvmts/x86';
import { vmcsFieldIndex, FIELD_TYPE, VMCS_TYPE } from './fields.js';
import { VMCS_REGION, INVALID_VMCS_PTR, FIELD_HI_MASK } from './region.js';
import { VMX_BASIC, FEATURE_CONTROL, CR0_FIXED0, CR0_FIXED1, CR4_FIXED0, CR4_FIXED1, MAXPHYADDR, VMCS_REVISION_ID } from './caps.js';
import type { VmxSilicon } from './silicon.js';

/** VM-instruction error numbers (SDM 31.4, Table 31-1), spelled as Linux's `enum vm_instruction_error_number`. */
export const VMXERR = {
  VMCALL_IN_VMX_ROOT_OPERATION: 1,
  VMCLEAR_INVALID_ADDRESS: 2,
  VMCLEAR_VMXON_POINTER: 3,
  VMLAUNCH_NONCLEAR_VMCS: 4,
  VMRESUME_NONLAUNCHED_VMCS: 5,
  VMRESUME_AFTER_VMXOFF: 6,
  ENTRY_INVALID_CONTROL_FIELD: 7,
  ENTRY_INVALID_HOST_STATE_FIELD: 8,
  VMPTRLD_INVALID_ADDRESS: 9,
  VMPTRLD_VMXON_POINTER: 10,
  VMPTRLD_INCORRECT_VMCS_REVISION_ID: 11,
  UNSUPPORTED_VMCS_COMPONENT: 12,
  VMWRITE_READ_ONLY_VMCS_COMPONENT: 13,
  VMXON_IN_VMX_ROOT_OPERATION: 15,
  ENTRY_INVALID_EXECUTIVE_VMCS_POINTER: 16,
  ENTRY_NONLAUNCHED_EXECUTIVE_VMCS: 17,
  ENTRY_EXECUTIVE_VMCS_POINTER_NOT_VMXON_POINTER: 18,
  VMCALL_NONCLEAR_VMCS: 19,
  VMCALL_INVALID_VM_EXIT_CONTROL_FIELDS: 20,
  VMCALL_INCORRECT_MSEG_REVISION_ID: 22,
  VMXOFF_UNDER_DUAL_MONITOR_TREATMENT_OF_SMIS_AND_SMM: 23,
  VMCALL_INVALID_SMM_MONITOR_FEATURES: 24,
  ENTRY_INVALID_VM_EXECUTION_CONTROL_FIELDS_IN_EXECUTIVE_VMCS: 25,
  ENTRY_EVENTS_BLOCKED_BY_MOV_SS: 26,
  INVALID_OPERAND_TO_INVEPT_INVVPID: 28,
} as const;

/** The outcome of a VMX instruction as RFLAGS reports it (SDM 31.2). */
export const VMX_STATUS = { SUCCEED: 0, FAIL_INVALID: 1, FAIL_VALID: 2 } as const;
export type VmxStatus = (typeof VMX_STATUS)[keyof typeof VMX_STATUS];

/** INVEPT types (SDM 31.3 INVEPT) and INVVPID types (INVVPID). */
export const INVEPT_TYPE = { SINGLE_CONTEXT: 1, ALL_CONTEXT: 2 } as const;
export const INVVPID_TYPE = { INDIVIDUAL_ADDR: 0, SINGLE_CONTEXT: 1, ALL_CONTEXT: 2, SINGLE_CONTEXT_RETAIN_GLOBALS: 3 } as const;

const ARITH_FLAGS = RFLAGS.CF | RFLAGS.PF | RFLAGS.AF | RFLAGS.ZF | RFLAGS.SF | RFLAGS.OF;

export function vmSucceed(s: VmxSilicon): VmxStatus {
  const flags = s.cpu.getRflags();
  // Back-to-back VMREADs/VMWRITEs find the flags clear already.
  if (flags & ARITH_FLAGS) s.cpu.setRflags(flags & ~ARITH_FLAGS);
  s.lastStatus = VMX_STATUS.SUCCEED;
  return VMX_STATUS.SUCCEED;
}

export function vmFailInvalid(s: VmxSilicon): VmxStatus {
  s.cpu.setRflags((s.cpu.getRflags() & ~ARITH_FLAGS) | RFLAGS.CF);
  s.lastStatus = VMX_STATUS.FAIL_INVALID;
  return VMX_STATUS.FAIL_INVALID;
}

/** VMfailValid(n) when a VMCS is current, else VMfailInvalid (SDM 31.2 "VMfail"). */
export function vmFail(s: VmxSilicon, error: number): VmxStatus {
  if (s.vmcs.hpa === INVALID_VMCS_PTR) return vmFailInvalid(s);
  s.cpu.setRflags((s.cpu.getRflags() & ~ARITH_FLAGS) | RFLAGS.ZF);
  s.vmcs.write32(s.fieldVmInstructionError, error);
  s.lastStatus = VMX_STATUS.FAIL_VALID;
  return VMX_STATUS.FAIL_VALID;
}

/**
 * The checks every VMX instruction but VMXON makes first outside non-root operation (#UD when not
 * in VMX operation or in the wrong mode, #GP(0) at CPL > 0).
 */
export function vmxRootPrelude(s: VmxSilicon): void {
  const cpu = s.cpu;
  // What the checks read changes only with a mode recompute, or with VMXON/VMXOFF (which reset
  // rootChecked): the TypeScript kernel's run of VMREADs and VMWRITEs after an exit checks once.
  if (s.rootChecked === cpu.modeSerial) return;
  // RFLAGS.VM is never lazy: rflags holds it without materializing the arithmetic flags.
  if (!s.inVmxOperation || !(cpu.cr0 & CR0.PE) || cpu.rflags & RFLAGS.VM || (cpu.efer & EFER.LMA && !(cpu.seg[SEG.CS]!.ar & (1 << 13)))) cpu.fault(VEC.UD);
  if (cpu.cpl > 0) cpu.fault(VEC.GP, 0);
  s.rootChecked = cpu.modeSerial;
}

const MAX_PA = 2 ** MAXPHYADDR;
/** 4 KiB aligned inside MAXPHYADDR; an integer below 2^53 has its low bits in `& 0xfff` (a floating-point % would be a library call). */
const physAligned = (pa: number): boolean => pa >= 0 && pa < MAX_PA && (pa & 0xfff) === 0 && pa === Math.floor(pa);

export function vmxon(s: VmxSilicon, pa: number): VmxStatus {
  const cpu = s.cpu;
  if (!s.inVmxOperation) {
    if (!(cpu.cr0 & CR0.PE) || !(cpu.cr4 & CR4.VMXE) || cpu.getRflags() & RFLAGS.VM || (cpu.efer & EFER.LMA && !(cpu.seg[SEG.CS]!.ar & (1 << 13)))) cpu.fault(VEC.UD);
    if (cpu.cpl > 0) cpu.fault(VEC.GP, 0);
    const cr0 = cpu.cr0 >>> 0;
    const fc = s.featureControl;
    if ((cr0 & CR0_FIXED0) >>> 0 !== CR0_FIXED0 || (cr0 & ~CR0_FIXED1) !== 0 || (cpu.cr4 & CR4_FIXED0) !== CR4_FIXED0 || (cpu.cr4 & ~CR4_FIXED1) !== 0
      || !(fc & FEATURE_CONTROL.LOCKED) || !(fc & FEATURE_CONTROL.VMXON_OUTSIDE_SMX)) cpu.fault(VEC.GP, 0);
    if (!physAligned(pa)) return vmFailInvalid(s);
    if ((s.mem.read32(pa + VMCS_REGION.REVISION) >>> 0) !== VMCS_REVISION_ID) return vmFailInvalid(s);
    s.inVmxOperation = true;
    s.rootChecked = -1;
    s.vmxonPtr = pa;
    s.vmcsCache.dropCurrent();
    s.vmcs = s.vmcsCache.current;
    return vmSucceed(s);
  }
  if (cpu.cpl > 0) cpu.fault(VEC.GP, 0);
  return vmFail(s, VMXERR.VMXON_IN_VMX_ROOT_OPERATION);
}

export function vmxoff(s: VmxSilicon): VmxStatus {
  vmxRootPrelude(s);
  s.vmcsCache.flushAll(s.mem);
  s.vmcs = s.vmcsCache.current;
  s.inVmxOperation = false;
  s.rootChecked = -1;
  s.vmxonPtr = -1;
  return vmSucceed(s);
}

export function vmclear(s: VmxSilicon, pa: number): VmxStatus {
  vmxRootPrelude(s);
  if (!physAligned(pa)) return vmFail(s, VMXERR.VMCLEAR_INVALID_ADDRESS);
  if (pa === s.vmxonPtr) return vmFail(s, VMXERR.VMCLEAR_VMXON_POINTER);
  // SDM 31.3 VMCLEAR: the data written back, launch state "clear", and not current any more.
  if (s.vmcsCache.clear(s.mem, pa)) s.vmcs = s.vmcsCache.current;
  else s.mem.write8(pa + VMCS_REGION.LAUNCH_STATE, 0);
  return vmSucceed(s);
}

export function vmptrld(s: VmxSilicon, pa: number): VmxStatus {
  vmxRootPrelude(s);
  if (!physAligned(pa)) return vmFail(s, VMXERR.VMPTRLD_INVALID_ADDRESS);
  if (pa === s.vmxonPtr) return vmFail(s, VMXERR.VMPTRLD_VMXON_POINTER);
  // Bit 31 is the shadow-VMCS indicator: VMCS shadowing is supported, so a shadow VMCS may be made current.
  if ((s.mem.read32(pa + VMCS_REGION.REVISION) & VMX_BASIC.REVISION_MASK) !== (VMX_BASIC.REVISION_MASK & VMCS_REVISION_ID)) return vmFail(s, VMXERR.VMPTRLD_INCORRECT_VMCS_REVISION_ID);
  if (s.vmcs.hpa !== pa) s.vmcs = s.vmcsCache.makeCurrent(s.mem, pa);
  return vmSucceed(s);
}

export function vmptrst(s: VmxSilicon): number {
  vmxRootPrelude(s);
  vmSucceed(s);
  return s.vmcs.hpa;
}

/** Resolves a VMREAD/VMWRITE field encoding (upper bits of the 64-bit register must be 0): the row, or -1 after VMfail. */
function fieldFor(s: VmxSilicon, encoding: number): number {
  if (s.vmcs.hpa === INVALID_VMCS_PTR) { vmFailInvalid(s); return -1; }
  const i = vmcsFieldIndex(encoding);
  if (i < 0) { vmFail(s, VMXERR.UNSUPPORTED_VMCS_COMPONENT); return -1; }
  return i;
}

/**
 * VMREAD up to the read itself: the row to read, or -1 after VMfail. The value is then
 * `vmreadLo`/`vmreadHi` of that row, so the TypeScript kernel's VMREADs allocate nothing.
 */
export function vmreadField(s: VmxSilicon, encoding: number): number {
  vmxRootPrelude(s);
  const i = fieldFor(s, encoding);
  if (i >= 0) vmSucceed(s);
  return i;
}

/** Bits 31:0 of what VMREAD of `encoding` returns (the high access returns the field's bits 63:32). */
export function vmreadLo(s: VmxSilicon, i: number, encoding: number): number {
  return (encoding & 1 ? s.vmcs.hi[i]! : s.vmcs.lo[i]!) >>> 0;
}

/** Bits 63:32 of what VMREAD returns: 0 for 16/32-bit fields and high accesses. */
export function vmreadHi(s: VmxSilicon, i: number, encoding: number): number {
  return encoding & 1 ? 0 : (s.vmcs.hi[i]! & FIELD_HI_MASK[i]!) >>> 0;
}

export function vmwriteHalves(s: VmxSilicon, encoding: number, lo: number, hi: number): VmxStatus {
  vmxRootPrelude(s);
  const i = fieldFor(s, encoding);
  if (i < 0) return s.lastStatus;
  if (FIELD_TYPE[i] === VMCS_TYPE.READ_ONLY && !s.vmwriteAnyField) return vmFail(s, VMXERR.VMWRITE_READ_ONLY_VMCS_COMPONENT);
  // The store truncates to the field's width (a 16/32-bit field keeps no high half).
  if (encoding & 1) s.vmcs.writeHalves(i, s.vmcs.lo[i]!, lo);
  else s.vmcs.writeHalves(i, lo, hi);
  return vmSucceed(s);
}

/**
 * The TypeScript kernel's run of full-width VMREADs of the current VMCS, one per field row in
 * `rows[0..count)`: bits 31:0 of row i into lo[i], bits 63:32 into hi[i] (arrays indexed by row,
 * as vmcs12's fields are, so a copy needs no second loop). The outcome is that of
 * the instruction sequence (copy_shadow_to_vmcs12 and sync_vmcs02_to_vmcs12 are such loops in
 * Linux). What could make one of them fault or fail (VMX operation, mode and CPL, a current
 * VMCS) is the same for all of them, since a VMREAD changes none of it, so it is checked once;
 * and every row of the field table is a supported component, so none fails on its encoding.
 */
export function vmreadRows(s: VmxSilicon, rows: Int16Array, count: number, lo: Int32Array, hi: Int32Array): VmxStatus {
  vmxRootPrelude(s);
  if (s.vmcs.hpa === INVALID_VMCS_PTR) return vmFailInvalid(s);
  const vlo = s.vmcs.lo;
  const vhi = s.vmcs.hi;
  for (let k = 0; k < count; k++) {
    const i = rows[k]!;
    lo[i] = vlo[i]!;
    hi[i] = vhi[i]! & FIELD_HI_MASK[i]!;
  }
  return vmSucceed(s);
}

/**
 * The TypeScript kernel's run of full-width VMWRITEs to the current VMCS, row i = rows[k] getting
 * (lo[i], hi[i]) truncated to its width (copy_vmcs12_to_shadow, load_vmcs12_host_state). The
 * outcome is that of the instruction sequence: the checks no VMWRITE changes are made once; a
 * read-only row without "VMWRITE to any field" fails alone, as its VMWRITE would, and the
 * status (RFLAGS) is the last VMWRITE's.
 */
export function vmwriteRows(s: VmxSilicon, rows: Int16Array, count: number, lo: Int32Array, hi: Int32Array): VmxStatus {
  vmxRootPrelude(s);
  if (s.vmcs.hpa === INVALID_VMCS_PTR) return vmFailInvalid(s);
  const vmcs = s.vmcs;
  if (s.vmwriteAnyField) {
    // No row can fail: the common case, one store each.
    for (let k = 0; k < count; k++) {
      const i = rows[k]!;
      vmcs.writeHalves(i, lo[i]!, hi[i]!);
    }
    return vmSucceed(s);
  }
  let failed = false;
  for (let k = 0; k < count; k++) {
    const i = rows[k]!;
    failed = FIELD_TYPE[i] === VMCS_TYPE.READ_ONLY;
    if (failed) vmFail(s, VMXERR.VMWRITE_READ_ONLY_VMCS_COMPONENT);
    else vmcs.writeHalves(i, lo[i]!, hi[i]!);
  }
  return failed ? s.lastStatus : vmSucceed(s);
}

/**
 * VMLAUNCH / VMRESUME up to the checks that VMfail (SDM 31.3 VMLAUNCH/VMRESUME, 27.1): returns
 * null when entry may proceed to the control/host/guest checks, else the VMX status.
 */
export function vmentryPrelude(s: VmxSilicon, launch: boolean): VmxStatus | null {
  vmxRootPrelude(s);
  if (s.vmcs.hpa === INVALID_VMCS_PTR) return vmFailInvalid(s);
  if (s.cpu.interruptibility & INTERRUPTIBILITY.MOV_SS) return vmFail(s, VMXERR.ENTRY_EVENTS_BLOCKED_BY_MOV_SS);
  if (launch && s.vmcs.launched) return vmFail(s, VMXERR.VMLAUNCH_NONCLEAR_VMCS);
  if (!launch && !s.vmcs.launched) return vmFail(s, VMXERR.VMRESUME_NONLAUNCHED_VMCS);
  return null;
}

export function invept(s: VmxSilicon, type: number): VmxStatus {
  vmxRootPrelude(s);
  if (type !== INVEPT_TYPE.SINGLE_CONTEXT && type !== INVEPT_TYPE.ALL_CONTEXT) return vmFail(s, VMXERR.INVALID_OPERAND_TO_INVEPT_INVVPID);
  // Combined mappings are tagged by VPID only here, so any INVEPT drops every guest tag.
  s.cpu.flushTlb();
  return vmSucceed(s);
}

export function invvpid(s: VmxSilicon, type: number, vpid: number, linear: number): VmxStatus {
  vmxRootPrelude(s);
  if (type < 0 || type > 3 || (type !== INVVPID_TYPE.ALL_CONTEXT && (vpid & 0xffff) === 0)) return vmFail(s, VMXERR.INVALID_OPERAND_TO_INVEPT_INVVPID);
  if (type === INVVPID_TYPE.INDIVIDUAL_ADDR) s.cpu.flushTlb(vpid & 0xffff, linear);
  else if (type === INVVPID_TYPE.ALL_CONTEXT) s.cpu.flushTlb(); // a superset of "every VPID but 0" is allowed: TLBs may always drop entries
  else s.cpu.flushTlb(vpid & 0xffff);
  return vmSucceed(s);
}
