/**
 * The default CPU model: a vendor-neutral long-mode CPU without virtualization silicon.
 * No FPU/SSE bits: x87 and SSE opcodes raise #UD. CPUID bits per SDM Vol. 2, CPUID (Tables 3-8 … 3-20); extended leaves per the APM Vol. 3, E.
 */
import type { CpuModel } from './virt.js';

/** CPUID.1:EDX feature bits (SDM Vol. 2, Table 3-11). */
const CPUID1_EDX = {
  PSE: 1 << 3, TSC: 1 << 4, MSR: 1 << 5, PAE: 1 << 6,
  CX8: 1 << 8, APIC: 1 << 9, SEP: 1 << 11, PGE: 1 << 13, CMOV: 1 << 15, PAT: 1 << 16,
} as const;
/** CPUID.1:ECX (SDM Vol. 2, Table 3-10). */
const CPUID1_ECX = { CX16: 1 << 13, MOVBE: 1 << 22, POPCNT: 1 << 23 } as const;
/** CPUID.80000001h:EDX and ECX (APM Vol. 3, E.4.2). */
const EXT1_EDX = { SYSCALL: 1 << 11, NX: 1 << 20, LM: 1 << 29 } as const;
const EXT1_ECX = { LAHF_SAHF: 1 << 0, ABM: 1 << 5 } as const;

function ascii4(s: string): number {
  return (s.charCodeAt(0) | (s.charCodeAt(1) << 8) | (s.charCodeAt(2) << 16) | (s.charCodeAt(3) << 24)) >>> 0;
}

const VENDOR = 'KvmtsGeneric';
const BRAND = 'kvmts generic x86-64 CPU'.padEnd(48, '\0');

function brandLeaf(n: number): readonly [number, number, number, number] {
  const s = BRAND.slice(n * 16, n * 16 + 16);
  return [ascii4(s.slice(0, 4)), ascii4(s.slice(4, 8)), ascii4(s.slice(8, 12)), ascii4(s.slice(12, 16))];
}

const ZERO = [0, 0, 0, 0] as const;

export const genericModel: CpuModel = {
  vendor: 'generic',
  name: 'kvmts generic x86-64 CPU',
  cpuid(leaf: number, _subleaf: number): readonly [number, number, number, number] {
    switch (leaf >>> 0) {
      case 0: return [1, ascii4(VENDOR.slice(0, 4)), ascii4(VENDOR.slice(8, 12)), ascii4(VENDOR.slice(4, 8))];
      case 1: {
        const edx = Object.values(CPUID1_EDX).reduce((a, b) => a | b, 0) >>> 0;
        const ecx = Object.values(CPUID1_ECX).reduce((a, b) => a | b, 0) >>> 0;
        return [0x000306a9, 0x00010800, ecx, edx]; // family 6; 1 logical processor, CLFLUSH line 64
      }
      case 0x80000000: return [0x80000008, 0, 0, 0];
      case 0x80000001: {
        const edx = Object.values(EXT1_EDX).reduce((a, b) => a | b, 0) >>> 0;
        const ecx = Object.values(EXT1_ECX).reduce((a, b) => a | b, 0) >>> 0;
        return [0, 0, ecx, edx];
      }
      case 0x80000002: return brandLeaf(0);
      case 0x80000003: return brandLeaf(1);
      case 0x80000004: return brandLeaf(2);
      case 0x80000008: return [0x3028, 0, 0, 0]; // 40 physical, 48 linear address bits
      default: return ZERO;
    }
  },
  createExtension: () => null,
};
