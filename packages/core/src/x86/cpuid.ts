/** The vCPU's CPUID table (arch/x86/kvm/cpuid.c): KVM_GET_SUPPORTED_CPUID and kvm_cpuid(). */
import type { CpuModel } from '@kvmts/x86';
import { KVM_CPUID_FLAG } from '../uapi/constants.js';

export interface CpuidEntry {
  function: number;
  index: number;
  flags: number;
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
}

/** Leaves whose output depends on ECX (cpuid_function_is_indexed). */
const INDEXED_LEAVES = new Set([0x4, 0x7, 0xb, 0xd, 0xf, 0x10, 0x12, 0x14, 0x17, 0x18, 0x1d, 0x1e, 0x1f, 0x24, 0x8000001d]);
/** Subleaves reported per indexed leaf. */
const SUBLEAVES = 4;

/** CPUID.1:ECX bits KVM computes at run time. */
const CPUID1_ECX_OSXSAVE = 1 << 27;
const CPUID1_ECX_HYPERVISOR = 1 << 31;
const CPUID1_ECX_VMX = 1 << 5;
const CPUID_80000001_ECX_SVM = 1 << 2;

/**
 * KVM_GET_SUPPORTED_CPUID: the host's leaves as KVM offers them. Nested virtualization is
 * offered (VMX/SVM stay set), and the hypervisor bit is set as KVM sets it.
 */
export function supportedCpuid(model: CpuModel): CpuidEntry[] {
  const out: CpuidEntry[] = [];
  for (const base of [0, 0x80000000]) {
    const max = model.cpuid(base, 0)[0] >>> 0;
    if (max < base || max > base + 0xff) continue;
    for (let fn = base; fn <= max; fn++) {
      const indexed = INDEXED_LEAVES.has(fn);
      for (let idx = 0; idx < (indexed ? SUBLEAVES : 1); idx++) {
        const [eax, ebx, ecx, edx] = model.cpuid(fn, idx);
        const e: CpuidEntry = { function: fn, index: idx, flags: indexed ? KVM_CPUID_FLAG.SIGNIFCANT_INDEX : 0, eax, ebx, ecx, edx };
        if (fn === 1) e.ecx = (e.ecx | CPUID1_ECX_HYPERVISOR) >>> 0;
        out.push(e);
      }
    }
  }
  return out;
}

/** kvm_find_cpuid_entry_index. */
export function findCpuidEntry(table: readonly CpuidEntry[], fn: number, index: number): CpuidEntry | undefined {
  // A plain loop: this runs on every CPUID exit.
  for (let i = 0; i < table.length; i++) {
    const e = table[i]!;
    if (e.function === fn && (!(e.flags & KVM_CPUID_FLAG.SIGNIFCANT_INDEX) || e.index === index)) return e;
  }
  return undefined;
}

/** True when the guest's CPUID advertises VMX (Intel) or SVM (AMD): nested is on offer. */
export function guestCpuidHasVirt(table: readonly CpuidEntry[]): { vmx: boolean; svm: boolean } {
  return {
    vmx: ((findCpuidEntry(table, 1, 0)?.ecx ?? 0) & CPUID1_ECX_VMX) !== 0,
    svm: ((findCpuidEntry(table, 0x80000001, 0)?.ecx ?? 0) & CPUID_80000001_ECX_SVM) !== 0,
  };
}

/** "AuthenticAMD" / "HygonGenuine" in leaf 0's EBX: is_guest_vendor_amd / is_guest_vendor_hygon. */
const VENDOR_EBX_AMD = 0x68747541;
const VENDOR_EBX_HYGON = 0x6f677948;

/**
 * True when the guest's own CPUID says AMD or Hygon. KVM decides the out-of-range behaviour by
 * the vendor the guest sees, not the host's, so a VM migrated across vendors keeps it.
 */
export function guestVendorIsAmd(table: readonly CpuidEntry[]): boolean {
  const ebx = findCpuidEntry(table, 0, 0)?.ebx;
  return ebx === VENDOR_EBX_AMD || ebx === VENDOR_EBX_HYGON;
}

/**
 * The entry kvm_cpuid() answers (fn, index) from. A leaf beyond the basic or extended range
 * reads the highest basic leaf, as Intel hardware does (get_out_of_range_cpuid_entry), unless the
 * guest's vendor is AMD; undefined when the table has no answer (all zeros).
 */
export function kvmCpuidEntry(table: readonly CpuidEntry[], fn: number, index: number): CpuidEntry | undefined {
  const e = findCpuidEntry(table, fn, index);
  if (e || guestVendorIsAmd(table)) return e;
  const base = fn >= 0x80000000 ? 0x80000000 : 0;
  const max = findCpuidEntry(table, base, 0)?.eax;
  if (max === undefined || fn >>> 0 <= max >>> 0) return undefined;
  return findCpuidEntry(table, findCpuidEntry(table, 0, 0)?.eax ?? 0, index);
}

/** ECX of the answer: leaf 1's OSXSAVE follows the guest's CR4.OSXSAVE. */
export function kvmCpuidEcx(e: CpuidEntry, fn: number, cr4Osxsave: boolean): number {
  if (fn !== 1) return e.ecx >>> 0;
  return (cr4Osxsave ? e.ecx | CPUID1_ECX_OSXSAVE : e.ecx & ~CPUID1_ECX_OSXSAVE) >>> 0;
}

/** kvm_cpuid(): the guest's EAX, EBX, ECX and EDX for (fn, index). */
export function kvmCpuid(table: readonly CpuidEntry[], fn: number, index: number, cr4Osxsave: boolean): [number, number, number, number] {
  const e = kvmCpuidEntry(table, fn, index);
  return e ? [e.eax >>> 0, e.ebx >>> 0, kvmCpuidEcx(e, fn, cr4Osxsave), e.edx >>> 0] : [0, 0, 0, 0];
}
