/**
 * Nested EPT (arch/x86/kvm/mmu with the nested_ept_* hooks of nested.c, in small): when vmcs12
 * enables EPT, L2 runs on EPT02, a shadow of L1's EPT12 composed with L0's own mapping of L1's
 * memory (what EPT01 maps). EPT02 starts empty; an EPT violation on it walks EPT12 for the L2
 * guest-physical address. Not mapped there (or not with the access's permission): the EPT
 * violation is L1's, reflected with EPT12's permissions in the qualification. Mapped: L0
 * installs the 4 KiB translation L2 GPA → HPA with EPT12's permissions, and L2 retries. INVEPT
 * from L1, or a new EPTP12, drops EPT02.
 *
 * With accessed and dirty flags enabled in EPTP12 (bit 6), the walk does what the processor
 * would do to L1's tables (SDM 29.3.5): the accessed flag in every EPT12 entry it uses, the
 * dirty flag in the leaf on a write, and an access to a guest paging structure counts as a
 * write. A translation whose EPT12 leaf is not dirty goes into EPT02 without write permission,
 * so that the first write comes back to L0 to set the flag (as KVM's shadow EPT does).
 */
import type { KvmVcpu } from '@kvmts/core';
import { EPT, EPTP, EPT_VIOLATION } from '../hw/tdp.js';
import { INVEPT_TYPE } from '../hw/instructions.js';
import type { VcpuVmx } from './setup.js';
import { vmcsSilicon } from './run.js';

const PAGE = 4096;
const TWO32 = 2 ** 32;
/** Address bits 51:12 of an entry, as a number (MAXPHYADDR 46 keeps it exact). */
const addrOf = (lo: number, hi: number): number => (hi & 0xfffff) * TWO32 + ((lo & 0xfffff000) >>> 0);

/** One vCPU's EPT02: its root page and every table page under it. */
export interface Ept02 {
  root: number;
  readonly pages: number[];
  /** EPTP12 it shadows. */
  eptp12: number;
}

export interface Ept12Walk {
  /** L1 guest-physical address, or -1 when not mapped with the permissions asked. */
  gpa: number;
  /** EPT12's effective R/W/X for the address (bits 0-2), 0 when a level is not present. */
  perms: number;
  /** The leaf's dirty flag (always true without A/D: nothing to track). */
  dirty: boolean;
}

/**
 * Walks L1's 4-level EPT12 (in L1 memory) for L2 guest-physical `gpa2`, with 2 MiB and 1 GiB
 * leaves. With A/D on, a walk that ends in a translation allowing `access` (R/W/X bits: an
 * access the processor then performs) sets the accessed flags, and the leaf's dirty flag when
 * `dirtying`.
 */
export function walkEpt12(vcpu: KvmVcpu, eptp12: number, gpa2: number, access = 0, dirtying = false): Ept12Walk {
  const mem = vcpu.kvm.host.mem;
  const ad = (eptp12 % PAGE & EPTP.AD_ENABLE) !== 0;
  let table = eptp12 - (eptp12 % PAGE);
  let perms = 7;
  const used: number[] = [];
  for (let level = 4; level >= 1; level--) {
    const shift = 12 + 9 * (level - 1);
    const idx = Math.floor(gpa2 / 2 ** shift) % 512;
    const hpa = vcpu.kvm.gpaToHpa(table + idx * 8);
    if (hpa < 0) return { gpa: -1, perms: 0, dirty: false };
    const lo = mem.read32(hpa);
    const hi = mem.read32(hpa + 4);
    perms &= lo & 7;
    if (!(lo & 7)) return { gpa: -1, perms: 0, dirty: false };
    if (ad) used.push(hpa);
    const addr = addrOf(lo, hi);
    if (level === 1 || ((level === 2 || level === 3) && lo & EPT.LARGE)) {
      const size = 2 ** shift;
      let dirty = !ad || (lo & EPT.DIRTY) !== 0;
      if (ad && (access & ~perms) === 0) {
        for (const e of used) { const v = mem.read32(e); if (!(v & EPT.ACCESSED)) mem.write32(e, (v | EPT.ACCESSED) >>> 0); }
        if (dirtying && !dirty) { mem.write32(hpa, (mem.read32(hpa) | EPT.DIRTY) >>> 0); dirty = true; }
      }
      return { gpa: addr - (addr % size) + (gpa2 % size), perms, dirty };
    }
    table = addr;
  }
  return { gpa: -1, perms: 0, dirty: false };
}

function newTable(vmx: VcpuVmx, e: Ept02): number {
  const p = vmx.module.host.allocPage();
  if (p >= 0) e.pages.push(p);
  return p;
}

export function allocEpt02(vmx: VcpuVmx, eptp12: number): Ept02 | null {
  const e: Ept02 = { root: -1, pages: [], eptp12 };
  e.root = newTable(vmx, e);
  return e.root < 0 ? null : e;
}

export function freeEpt02(vmx: VcpuVmx, e: Ept02): void {
  for (const p of e.pages) vmx.module.host.freePage(p);
  e.pages.length = 0;
  e.root = -1;
}

/** The EPTP vmcs02 runs on: EPT02's root, write-back, 4-level walk. */
export function ept02Pointer(e: Ept02): number {
  return e.root + EPTP.MT_WB + EPTP.WALK_LENGTH_4;
}

/** Installs gpa2 → hpa (4 KiB) in EPT02 with `perms`. False when out of memory. */
function ept02Map(vmx: VcpuVmx, e: Ept02, gpa2: number, hpa: number, perms: number): boolean {
  const mem = vmx.module.host.mem;
  let table = e.root;
  for (let level = 4; level > 1; level--) {
    const a = table + (Math.floor(gpa2 / 2 ** (12 + 9 * (level - 1))) % 512) * 8;
    let lo = mem.read32(a);
    if (!(lo & 7)) {
      const t = newTable(vmx, e);
      if (t < 0) return false;
      mem.write32(a, (t | 7) >>> 0);
      mem.write32(a + 4, Math.floor(t / TWO32));
      lo = mem.read32(a);
    }
    table = addrOf(lo, mem.read32(a + 4));
  }
  const a = table + (Math.floor(gpa2 / PAGE) % 512) * 8;
  const page = hpa - (hpa % PAGE);
  mem.write32(a, ((page % TWO32) | (perms & 7) | (6 << EPT.MT_SHIFT) | EPT.IPAT) >>> 0);
  mem.write32(a + 4, Math.floor(page / TWO32));
  return true;
}

export type NestedEptFault = { kind: 'fixed' } | { kind: 'reflect'; qual: number } | { kind: 'error' };

/**
 * An EPT violation L2 took on EPT02 (the nested TDP page fault): fixed in EPT02 from EPT12, or
 * L1's to handle (with the qualification L1 must see).
 */
export function nestedEptViolation(vcpu: KvmVcpu, vmx: VcpuVmx, e: Ept02, gpa2: number, qual: number): NestedEptFault {
  // SDM 29.3.3.2 and 29.3.5: with A/D on in EPT12, L2's accesses to its own paging-structure
  // entries (a linear address being translated) are writes for EPT12: they need write
  // permission, are reported as writes, and set the dirty flag (KVM's walker: PFERR_WRITE_MASK).
  const walksGuestTables = (qual & EPT_VIOLATION.GVA_IS_VALID) !== 0 && (qual & EPT_VIOLATION.GVA_TRANSLATED) === 0;
  const ad12 = (e.eptp12 % PAGE & EPTP.AD_ENABLE) !== 0;
  const access = (qual & (EPT_VIOLATION.ACC_READ | EPT_VIOLATION.ACC_WRITE | EPT_VIOLATION.ACC_INSTR))
    | (walksGuestTables && ad12 ? EPT_VIOLATION.ACC_WRITE : 0);
  const w = walkEpt12(vcpu, e.eptp12, gpa2, access, (access & EPT_VIOLATION.ACC_WRITE) !== 0 || walksGuestTables);
  if (w.gpa < 0 || (access & ~w.perms) !== 0) {
    // Bits 0-2: the access as L1's EPT saw it; bits 3-5: what EPT12 allows at this address.
    return { kind: 'reflect', qual: (qual & ~0x3f) | access | ((w.perms & 7) << 3) };
  }
  const hpa = vcpu.kvm.gpaToHpa(w.gpa);
  // Not yet dirty in EPT12: no write permission in EPT02, so the first write is L0's to see.
  const perms = w.dirty ? w.perms : w.perms & ~EPT.WRITE;
  if (hpa < 0 || !ept02Map(vmx, e, gpa2, hpa, perms)) return { kind: 'error' };
  vmcsSilicon(vmx).invept(INVEPT_TYPE.SINGLE_CONTEXT, BigInt(ept02Pointer(e)));
  return { kind: 'fixed' };
}

/** INVEPT from L1 (or a new EPTP12): EPT02 starts over, empty. */
export function nestedEptFlush(vmx: VcpuVmx, e: Ept02): void {
  const mem = vmx.module.host.mem;
  for (const p of e.pages.splice(1)) vmx.module.host.freePage(p);
  mem.fill(e.root, PAGE, 0);
  vmcsSilicon(vmx).invept(INVEPT_TYPE.SINGLE_CONTEXT, BigInt(ept02Pointer(e)));
}
