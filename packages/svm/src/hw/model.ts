/**
 * The AMD CPU model: vendor CPUID (APM vol. 3, Appendix E) with the SVM bits (Fn8000_0001 ECX.SVM,
 * Fn8000_000A), and createExtension, which attaches the SVM silicon to a CPU.
 */
import type { CpuModel, VirtCpu } from '@kvmts/x86';
import { CPUID_8000_0001_ECX_SVM, MAXPHYADDR, SVM_FEATURES_IMPLEMENTED, SVM_NASID, SVM_REVISION } from './caps.js';
import { SvmSilicon } from './silicon.js';

function ascii4(s: string): number {
  return (s.charCodeAt(0) | (s.charCodeAt(1) << 8) | (s.charCodeAt(2) << 16) | (s.charCodeAt(3) << 24)) >>> 0;
}

const BRAND = 'kvmts AMD EPYC (SVM)'.padEnd(48, '\0');
const brandLeaf = (n: number): readonly [number, number, number, number] => {
  const s = BRAND.slice(n * 16, n * 16 + 16);
  return [ascii4(s.slice(0, 4)), ascii4(s.slice(4, 8)), ascii4(s.slice(8, 12)), ascii4(s.slice(12, 16))];
};

/** Family 17h (Zen): base family 0xf + extended family 8. */
const SIGNATURE = 0x00800f12;

/** [leaf, eax, ebx, ecx, edx] for subleaf 0. */
const CPUID_TABLE: readonly (readonly [number, number, number, number, number])[] = [
  [0x00000000, 0x0000000d, ascii4('Auth'), ascii4('cAMD'), ascii4('enti')],
  // What the interpreter implements (x87, MMX, FXSR, SSE* raise #UD; no I/O breakpoints, so no DE):
  // EDX: VME PSE TSC MSR PAE MCE CX8 APIC SEP MTRR PGE MCA CMOV PAT PSE36 CLFSH HTT; ECX: CX16 POPCNT.
  [0x00000001, SIGNATURE, 0x00010800, (1 << 13) | (1 << 23),
    (1 << 1) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 11) | (1 << 12)
    | (1 << 13) | (1 << 14) | (1 << 15) | (1 << 16) | (1 << 17) | (1 << 19) | (1 << 28)],
  [0x80000000, 0x8000000a, ascii4('Auth'), ascii4('cAMD'), ascii4('enti')],
  // ECX: LahfSahf, SVM; EDX: SYSCALL, NX, RDTSCP, LM.
  [0x80000001, SIGNATURE, 0, 0x00000001 | CPUID_8000_0001_ECX_SVM, (1 << 11) | (1 << 20) | (1 << 27) | (1 << 29)],
  [0x80000002, ...brandLeaf(0)],
  [0x80000003, ...brandLeaf(1)],
  [0x80000004, ...brandLeaf(2)],
  [0x80000008, MAXPHYADDR | (48 << 8), 0, 0, 0],
  [0x8000000a, SVM_REVISION, SVM_NASID, 0, SVM_FEATURES_IMPLEMENTED],
];

const LEAVES = new Map(CPUID_TABLE.map(([leaf, ...regs]) => [leaf, regs as readonly [number, number, number, number]]));
const ZERO = [0, 0, 0, 0] as const;

export function amdCpuModel(): CpuModel {
  return {
    vendor: 'amd',
    name: 'kvmts AMD EPYC (SVM)',
    cpuid: (leaf: number) => LEAVES.get(leaf >>> 0) ?? ZERO,
    createExtension: (cpu: VirtCpu) => new SvmSilicon(cpu),
  };
}
