/**
 * DESIGN.md's `long64` start state, as the KVM selftests build it before any guest instruction
 * runs (tools/testing/selftests/kvm/lib/x86/processor.c: vcpu_init_sregs, virt_arch_pgd_alloc):
 * the first 1 GiB identity-mapped with 2 MiB pages, a flat GDT, paging and long mode on. A VMM
 * writes the tables into guest memory and loads the sregs with KVM_SET_SREGS; the one copy of
 * that set-up every VMM, bench and test harness here uses.
 */
import type { KvmSegment } from '../x86/kvm-types.js';
import type { KvmSregs } from './types.js';

const PTE_P = 1 << 0;
const PTE_RW = 1 << 1;
const PTE_PS = 1 << 7;
const PAGE_2M = 0x200000;
const PD_ENTRIES = 512;

export const LONG64 = {
  /** Where the tables sit, as offsets below the top of guest memory. */
  GDT_OFFSET: 0x4000,
  PML4_OFFSET: 0x3000,
  PDPT_OFFSET: 0x2000,
  PD_OFFSET: 0x1000,
  /** GDT entries: null, code 0x08 (64-bit, DPL 0), data 0x10 (flat 4 GiB, writable). */
  GDT: [0x0000000000000000n, 0x00af9b000000ffffn, 0x00cf93000000ffffn],
  CS: 0x08,
  DS: 0x10,
  /** PG | NE | ET | MP | PE. */
  CR0: 0x80000033n,
  /** PAE. */
  CR4: 0x20n,
  /** LMA | LME. */
  EFER: 0x500n,
} as const;

/** The smallest guest the tables fit in (they take the top 16 KiB). */
export const LONG64_MIN_MEM = LONG64.GDT_OFFSET;

/** A write of `bytes` at guest-physical `gpa`, as the VMM makes it through its mapping of guest RAM. */
export type GuestWriter = (gpa: number, bytes: Uint8Array) => void;

function qwords(values: readonly bigint[]): Uint8Array {
  const out = new Uint8Array(values.length * 8);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setBigUint64(i * 8, v, true));
  return out;
}

/** The GDT and page tables for a guest of `memSize` bytes, as (gpa, bytes) writes. */
export function long64Tables(memSize: number): { readonly gpa: number; readonly bytes: Uint8Array }[] {
  const pml4 = memSize - LONG64.PML4_OFFSET;
  const pdpt = memSize - LONG64.PDPT_OFFSET;
  const pd = memSize - LONG64.PD_OFFSET;
  const pdEntries = Array.from({ length: PD_ENTRIES }, (_, i) => BigInt(i * PAGE_2M + (PTE_P | PTE_RW | PTE_PS)));
  return [
    { gpa: memSize - LONG64.GDT_OFFSET, bytes: qwords(LONG64.GDT) },
    // Tables may sit above 2 GiB, where `|` would turn the address negative: add the flags.
    { gpa: pml4, bytes: qwords([BigInt(pdpt) + BigInt(PTE_P | PTE_RW)]) },
    { gpa: pdpt, bytes: qwords([BigInt(pd) + BigInt(PTE_P | PTE_RW)]) },
    { gpa: pd, bytes: qwords(pdEntries) },
  ];
}

/** A kvm_segment for a GDT descriptor (the fields of the 8-byte descriptor, unpacked; SDM 3.4.5). */
export function segmentFromDescriptor(selector: number, desc: bigint): KvmSegment {
  const lo = Number(desc & 0xffffffffn);
  const hi = Number(desc >> 32n);
  const limitRaw = (lo & 0xffff) | (hi & 0xf0000);
  const g = (hi >>> 23) & 1;
  return {
    base: ((lo >>> 16) | ((hi & 0xff) << 16) | (hi & 0xff000000)) >>> 0,
    limit: g ? ((limitRaw << 12) | 0xfff) >>> 0 : limitRaw,
    selector,
    type: (hi >>> 8) & 0xf,
    s: (hi >>> 12) & 1,
    dpl: (hi >>> 13) & 3,
    present: (hi >>> 15) & 1,
    avl: (hi >>> 20) & 1,
    l: (hi >>> 21) & 1,
    db: (hi >>> 22) & 1,
    g,
    unusable: 0,
  };
}

/** The system-segment type of a busy 64-bit TSS. */
const TSS_BUSY_64 = 11;

/**
 * The sregs for long64, from the vCPU's reset sregs. LDTR stays as KVM reset it; TR keeps its
 * reset base, limit and selector but is made a busy 64-bit TSS (type 11), which IA-32e mode
 * requires (SDM 26.3.1.2). kvm_amd resets TR as a busy 16-bit TSS (type 3) and SVM does not
 * check it, but that VM could not move to kvm_intel, whose VM entry does (issue 9).
 */
export function long64Sregs(reset: KvmSregs, memSize: number): KvmSregs {
  const code = segmentFromDescriptor(LONG64.CS, LONG64.GDT[1]);
  const data = segmentFromDescriptor(LONG64.DS, LONG64.GDT[2]);
  return {
    ...reset,
    cs: code, ds: data, es: { ...data }, fs: { ...data }, gs: { ...data }, ss: { ...data },
    tr: { ...reset.tr, type: TSS_BUSY_64 },
    gdt: { base: memSize - LONG64.GDT_OFFSET, limit: LONG64.GDT.length * 8 - 1 },
    cr0: LONG64.CR0,
    cr3: BigInt(memSize - LONG64.PML4_OFFSET),
    cr4: LONG64.CR4,
    efer: LONG64.EFER,
  };
}

/**
 * The whole set-up: writes the tables through `write` and returns the sregs to give
 * KVM_SET_SREGS. `memSize` is the size of the memslot at GPA 0 (at least LONG64_MIN_MEM).
 */
export function setupLong64(memSize: number, write: GuestWriter, reset: KvmSregs): KvmSregs {
  if (memSize < LONG64_MIN_MEM) throw new RangeError(`long64 needs at least ${LONG64_MIN_MEM} bytes of guest memory, not ${memSize}`);
  for (const w of long64Tables(memSize)) write(w.gpa, w.bytes);
  return long64Sregs(reset, memSize);
}
