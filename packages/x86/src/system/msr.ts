/**
 * MSR reads and writes without intercepts (RDMSR/WRMSR semantics, and what KVM's
 * KVM_GET/SET_MSRS reach): the extension's MSRs first, then the table in msr-table.ts.
 */
import type { VirtCpu } from '../cpu/virt.js';
import { VEC } from '../cpu/events.js';
import { CR0, EFER, SEG } from '../cpu/state.js';
import { maxPhyAddr } from '../mmu/page-walk.js';
import { MSR, MSR_BY_INDEX, MSR_CHECK, MTRR_TYPES, PAT_TYPES } from './msr-table.js';
import { bigintToSigned, signedToBigint } from './regs.js';

const U64 = (1n << 64n) - 1n;
const LOW32 = 0xffffffffn;

/** CPUID feature bits that gate EFER bits (APM Vol. 3, E.4.2; SDM Vol. 2, CPUID 80000001H). */
function eferAllowed(cpu: VirtCpu): number {
  const [, , ecx, edx] = cpu.model.cpuid(0x80000001, 0);
  let allowed = EFER.LMA; // read-only: written values are ignored, not rejected
  if (edx & (1 << 11)) allowed |= EFER.SCE;
  if (edx & (1 << 29)) allowed |= EFER.LME;
  if (edx & (1 << 20)) allowed |= EFER.NXE;
  if (ecx & (1 << 2)) allowed |= EFER.SVME;
  if (edx & (1 << 25) && cpu.model.vendor === 'amd') allowed |= EFER.FFXSR;
  return allowed;
}

/** Bits 63:MAXPHYADDR of a physical-address MSR. */
function physReservedMask(cpu: VirtCpu): bigint {
  return U64 & ~((1n << BigInt(maxPhyAddr(cpu))) - 1n);
}

function bytesAreTypes(value: bigint, types: readonly number[]): boolean {
  for (let i = 0n; i < 64n; i += 8n) if (!types.includes(Number((value >> i) & 0xffn))) return false;
  return true;
}

function tscNow(cpu: VirtCpu): bigint {
  return (BigInt(cpu.icount) + (cpu.msrs.get(MSR.TSC_ADJUST) ?? 0n)) & U64;
}

/** The TSC the current context sees (guest mode adds the extension's offset). */
export function readTsc(cpu: VirtCpu): bigint {
  const ext = cpu.ext;
  const base = tscNow(cpu);
  return ext !== null && ext.guest ? (base + ext.tscOffset()) & U64 : base;
}

export function rdmsrValue(cpu: VirtCpu, index: number): bigint {
  index >>>= 0;
  const ext = cpu.ext;
  if (ext !== null) {
    const v = ext.rdmsr(index);
    if (v !== undefined) return v;
  }
  const info = MSR_BY_INDEX.get(index);
  if (info === undefined) return cpu.fault(VEC.GP, 0);
  switch (index) {
    case MSR.TSC: return tscNow(cpu);
    case MSR.EFER: return BigInt(cpu.efer >>> 0);
    case MSR.STAR: return (BigInt(cpu.starHi >>> 0) << 32n) | BigInt(cpu.starLo >>> 0);
    case MSR.LSTAR: return signedToBigint(cpu.lstar);
    case MSR.CSTAR: return signedToBigint(cpu.cstar);
    case MSR.FMASK: return BigInt(cpu.sfmask >>> 0);
    case MSR.FS_BASE: return signedToBigint(cpu.seg[SEG.FS]!.base);
    case MSR.GS_BASE: return signedToBigint(cpu.seg[SEG.GS]!.base);
    case MSR.KERNEL_GS_BASE: return signedToBigint(cpu.kernelGsBase);
    case MSR.SYSENTER_CS: return BigInt(cpu.sysenterCs >>> 0);
    case MSR.SYSENTER_ESP: return signedToBigint(cpu.sysenterEsp);
    case MSR.SYSENTER_EIP: return signedToBigint(cpu.sysenterEip);
    case MSR.TSC_AUX: return BigInt(cpu.tscAux >>> 0);
    case MSR.PAT: return (BigInt(cpu.patHi >>> 0) << 32n) | BigInt(cpu.patLo >>> 0);
    default: return cpu.msrs.get(index) ?? info.reset;
  }
}

/** Canonical address MSRs: #GP(0) otherwise (SDM Vol. 2, WRMSR). */
function canonical(cpu: VirtCpu, value: bigint): number {
  const v = BigInt.asIntN(64, value);
  if (v < -(1n << 47n) || v >= 1n << 47n) cpu.fault(VEC.GP, 0);
  return bigintToSigned(value);
}

export function wrmsrValue(cpu: VirtCpu, index: number, value: bigint): void {
  index >>>= 0;
  value &= U64;
  const ext = cpu.ext;
  if (ext !== null && ext.wrmsr(index, value)) return;
  const info = MSR_BY_INDEX.get(index);
  if (info === undefined) cpu.fault(VEC.GP, 0);
  switch (info.check) {
    case MSR_CHECK.READ_ONLY: cpu.fault(VEC.GP, 0); break;
    case MSR_CHECK.TSC: {
      const delta = (value - tscNow(cpu)) & U64;
      cpu.msrs.set(MSR.TSC_ADJUST, BigInt.asIntN(64, ((cpu.msrs.get(MSR.TSC_ADJUST) ?? 0n) + delta) & U64));
      return;
    }
    case MSR_CHECK.PAT:
      if (!bytesAreTypes(value, PAT_TYPES)) cpu.fault(VEC.GP, 0);
      cpu.patLo = Number(value & LOW32) | 0;
      cpu.patHi = Number(value >> 32n) | 0;
      return;
    case MSR_CHECK.MTRR_FIXED: if (!bytesAreTypes(value, MTRR_TYPES)) cpu.fault(VEC.GP, 0); break;
    case MSR_CHECK.MTRR_DEF_TYPE:
      if ((value & ~0xcffn) !== 0n || !MTRR_TYPES.includes(Number(value & 0xffn))) cpu.fault(VEC.GP, 0);
      break;
    case MSR_CHECK.MTRR_PHYSBASE:
      if ((value & (physReservedMask(cpu) | 0xf00n)) !== 0n || !MTRR_TYPES.includes(Number(value & 0xffn))) cpu.fault(VEC.GP, 0);
      break;
    case MSR_CHECK.MTRR_PHYSMASK:
      if ((value & (physReservedMask(cpu) | 0x7ffn)) !== 0n) cpu.fault(VEC.GP, 0);
      break;
    case MSR_CHECK.APIC_BASE: {
      const x2apic = (cpu.model.cpuid(1, 0)[2] & (1 << 21)) !== 0;
      const rsvd = physReservedMask(cpu) | 0x2ffn | (x2apic ? 0n : 0x400n);
      if ((value & rsvd) !== 0n) cpu.fault(VEC.GP, 0);
      break;
    }
    case MSR_CHECK.EFER: { writeEfer(cpu, value); return; }
    case MSR_CHECK.FIELD: { writeField(cpu, index, value); return; }
    default: break;
  }
  cpu.msrs.set(index, value);
}

function writeEfer(cpu: VirtCpu, value: bigint): void {
  if (value >> 32n !== 0n) cpu.fault(VEC.GP, 0);
  let v = Number(value);
  if (v & ~eferAllowed(cpu)) cpu.fault(VEC.GP, 0);
  // EFER.LME may not change while paging is on (SDM Vol. 3A, 10.8.5); LMA is read-only.
  if (cpu.cr0 & CR0.PG && (v ^ cpu.efer) & EFER.LME) cpu.fault(VEC.GP, 0);
  v = (v & ~EFER.LMA) | (cpu.efer & EFER.LMA);
  const changed = v ^ cpu.efer;
  cpu.efer = v;
  if (changed & EFER.NXE) cpu.flushTlb();
  cpu.stateChanged();
}

function writeField(cpu: VirtCpu, index: number, value: bigint): void {
  switch (index) {
    case MSR.STAR:
      cpu.starLo = Number(value & LOW32) | 0;
      cpu.starHi = Number(value >> 32n) | 0;
      return;
    case MSR.LSTAR: cpu.lstar = canonical(cpu, value); return;
    case MSR.CSTAR: cpu.cstar = canonical(cpu, value); return;
    case MSR.FMASK: cpu.sfmask = Number(value & LOW32) | 0; return;
    case MSR.FS_BASE: cpu.seg[SEG.FS] = { ...cpu.seg[SEG.FS]!, base: canonical(cpu, value) }; return;
    case MSR.GS_BASE: cpu.seg[SEG.GS] = { ...cpu.seg[SEG.GS]!, base: canonical(cpu, value) }; return;
    case MSR.KERNEL_GS_BASE: cpu.kernelGsBase = canonical(cpu, value); return;
    case MSR.SYSENTER_CS: cpu.sysenterCs = Number(value & LOW32) | 0; return;
    case MSR.SYSENTER_ESP: cpu.sysenterEsp = canonical(cpu, value); return;
    case MSR.SYSENTER_EIP: cpu.sysenterEip = canonical(cpu, value); return;
    case MSR.TSC_AUX:
      if (value >> 32n !== 0n) cpu.fault(VEC.GP, 0);
      cpu.tscAux = Number(value) | 0;
      return;
    default: cpu.fault(VEC.GP, 0);
  }
}
