/**
 * The Intel CPU model: vendor CPUID (SDM vol. 2, CPUID) with CPUID.1:ECX.VMX[bit 5], and
 * createExtension, which attaches the VMX silicon to a CPU. The feature bits are those the
 * interpreter implements (as the generic model reports them) plus VMX, RDTSCP and 1-GByte pages.
 */
import type { CpuModel, VirtCpu } from '@kvmts/x86';
import { MAXPHYADDR } from './caps.js';
import { VmxSilicon, type VmxCpu, type VmxSiliconOptions } from './silicon.js';

function ascii4(s: string): number {
  return (s.charCodeAt(0) | (s.charCodeAt(1) << 8) | (s.charCodeAt(2) << 16) | (s.charCodeAt(3) << 24)) >>> 0;
}

const NAME = 'kvmts Intel Core (VMX)';
const BRAND = NAME.padEnd(48, '\0');
const brandLeaf = (n: number): readonly [number, number, number, number] => {
  const s = BRAND.slice(n * 16, n * 16 + 16);
  return [ascii4(s.slice(0, 4)), ascii4(s.slice(4, 8)), ascii4(s.slice(8, 12)), ascii4(s.slice(12, 16))];
};

/** CPUID.1:ECX.VMX (SDM vol. 3C 24.6 "Discovering Support for VMX"). */
export const CPUID_1_ECX_VMX = 1 << 5;
/** Family 6, model 0x55 (a Skylake server signature). */
const SIGNATURE = 0x00050654;

/** [leaf, eax, ebx, ecx, edx] for subleaf 0. */
const CPUID_TABLE: readonly (readonly [number, number, number, number, number])[] = [
  [0x00000000, 0x00000001, ascii4('Genu'), ascii4('ntel'), ascii4('ineI')],
  // EDX: VME PSE TSC MSR PAE CX8 APIC SEP PGE CMOV PAT; ECX: VMX CX16 MOVBE POPCNT.
  [0x00000001, SIGNATURE, 0x00010800, CPUID_1_ECX_VMX | (1 << 13) | (1 << 22) | (1 << 23),
    (1 << 1) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 8) | (1 << 9) | (1 << 11) | (1 << 13) | (1 << 15) | (1 << 16)],
  [0x80000000, 0x80000008, 0, 0, 0],
  // ECX: LAHF/SAHF, ABM; EDX: SYSCALL, NX, 1-GByte pages, RDTSCP, LM.
  [0x80000001, 0, 0, (1 << 0) | (1 << 5), (1 << 11) | (1 << 20) | (1 << 26) | (1 << 27) | (1 << 29)],
  [0x80000002, ...brandLeaf(0)],
  [0x80000003, ...brandLeaf(1)],
  [0x80000004, ...brandLeaf(2)],
  [0x80000008, MAXPHYADDR | (48 << 8), 0, 0, 0],
];

const LEAVES = new Map(CPUID_TABLE.map(([leaf, ...regs]) => [leaf, regs as readonly [number, number, number, number]]));
const ZERO = [0, 0, 0, 0] as const;

export function intelCpuModel(opts: VmxSiliconOptions = {}): CpuModel {
  return {
    vendor: 'intel',
    name: NAME,
    cpuid: (leaf: number) => LEAVES.get(leaf >>> 0) ?? ZERO,
    createExtension: (cpu: VirtCpu) => new VmxSilicon(cpu as VmxCpu, opts),
  };
}
