/**
 * Nested paging (APM 15.25): the second translation stage, guest-physical to host-physical,
 * through the 4-level long-mode tables at nCR3. Every guest access is a user-level access in
 * the nested walk (15.25.5); the silicon sets Accessed and Dirty in the nested entries. A
 * violation is a #VMEXIT(NPF) with the page-fault error code in EXITINFO1 (bit 32: the final
 * translation, bit 33: a walk of the guest's own tables) and the GPA in EXITINFO2 (15.25.6).
 * The CPU caches the results in its TLB under the guest's ASID (setTlbTag at VMRUN).
 */
import { ACCESS, CR0, CR4, EFER, type PhysMemory, type VirtCpu } from '@kvmts/x86';
import { MAXPHYADDR } from './caps.js';
import { NPF_INFO } from './fields.js';

const PTE_P = 1 << 0;
const PTE_RW = 1 << 1;
const PTE_US = 1 << 2;
const PTE_A = 1 << 5;
const PTE_D = 1 << 6;
const PTE_PS = 1 << 7;
/** NX is bit 63: bit 31 of the high dword. */
const PTE_HI_NX = 1 << 31;
/** Bits 51:MAXPHYADDR of an entry are reserved (high-dword view), as KVM's rsvd_bits(maxphyaddr, 51). */
const PTE_HI_RSVD = (((1 << (52 - MAXPHYADDR)) - 1) << (MAXPHYADDR - 32)) >>> 0;
/** Large-page reserved bits in the low dword: bits 20:13 of a 2 MiB PDE, bits 29:13 of a 1 GiB PDPTE. */
const PDE_2M_RSVD_LO = 0x001fe000;
const PDPTE_1G_RSVD_LO = 0x3fffe000;

const TWO32 = 2 ** 32;

/** The outcome of a nested walk: an HPA (>= 0), or a fault with exit_info_1 halves. */
export interface NptResult {
  hpa: number;
  info1Lo: number;
  info1Hi: number;
}

/**
 * Walks the nested tables for `gpa`. `access` uses the ACCESS bits of the CPU seam. Returns
 * hpa >= 0 on success, or hpa = -1 with the #NPF exit_info_1 filled in.
 */
export function nptWalk(mem: PhysMemory, nCr3: number, gpa: number, access: number, out: NptResult): NptResult {
  const write = (access & ACCESS.WRITE) !== 0;
  const fetch = (access & ACCESS.FETCH) !== 0;
  let table = nCr3 - (nCr3 % 4096);
  let faultBits = 0;
  for (let level = 4; level >= 1; level--) {
    const shift = 12 + 9 * (level - 1);
    const index = Math.floor(gpa / 2 ** shift) % 512;
    const at = table + index * 8;
    if (!mem.contains(at)) { faultBits = 0; break; }
    const lo = mem.read32(at);
    const hi = mem.read32(at + 4);
    if (!(lo & PTE_P)) { faultBits = 0; return fail(out, faultBits, write, fetch, access); }
    const large = level > 1 && (lo & PTE_PS) !== 0;
    if ((hi & PTE_HI_RSVD) !== 0 || (large && level === 4) ||
        (large && level === 3 && (lo & PDPTE_1G_RSVD_LO) !== 0) ||
        (large && level === 2 && (lo & PDE_2M_RSVD_LO) !== 0)) {
      return fail(out, NPF_INFO.P | NPF_INFO.RSV, write, fetch, access);
    }
    if (!(lo & PTE_US) || (write && !(lo & PTE_RW)) || (fetch && (hi & PTE_HI_NX))) {
      return fail(out, NPF_INFO.P, write, fetch, access);
    }
    if (level === 1 || large) {
      const wantA = lo | PTE_A | (write ? PTE_D : 0);
      if (wantA !== lo) mem.write32(at, wantA >>> 0);
      const frameLo = level === 1 ? (lo & ~0xfff) >>> 0 : (lo & ~(2 ** shift - 1)) >>> 0;
      const frame = (hi & ((1 << (MAXPHYADDR - 32)) - 1)) * TWO32 + frameLo;
      out.hpa = frame + (gpa % 2 ** shift);
      return out;
    }
    if (!(lo & PTE_A)) mem.write32(at, (lo | PTE_A) >>> 0);
    table = (hi & ((1 << (MAXPHYADDR - 32)) - 1)) * TWO32 + ((lo & ~0xfff) >>> 0);
  }
  return fail(out, faultBits, write, fetch, access);
}

function fail(out: NptResult, bits: number, write: boolean, fetch: boolean, access: number): NptResult {
  out.hpa = -1;
  out.info1Lo = bits | NPF_INFO.US | (write ? NPF_INFO.RW : 0) | (fetch ? NPF_INFO.ID : 0);
  out.info1Hi = access & ACCESS.WALK ? NPF_INFO.HI_WALK : NPF_INFO.HI_FINAL;
  return out;
}

/** The paging controls a cached translation's permissions depend on. */
export interface PagingState { cr0: number; cr3: number; cr4: number; efer: number }

const PAGING_CR0 = CR0.PG | CR0.WP | CR0.PE;
const PAGING_CR4 = CR4.PAE | CR4.PGE | CR4.PSE | CR4.PCIDE | CR4.SMEP | CR4.SMAP | CR4.PKE | CR4.LA57;
const PAGING_EFER = EFER.NXE | EFER.LMA;

/** Per ASID, the paging controls its TLB entries were made under; the last ASID is kept at hand. */
export class PagingByAsid {
  private readonly byAsid = new Map<number, PagingState>();
  private lastAsid = -1;
  private last: PagingState | undefined = undefined;

  get(asid: number): PagingState | undefined {
    if (asid !== this.lastAsid) { this.lastAsid = asid; this.last = this.byAsid.get(asid); }
    return this.last;
  }

  getOrCreate(asid: number): PagingState {
    let p = this.get(asid);
    if (p === undefined) { p = { cr0: 0, cr3: 0, cr4: 0, efer: 0 }; this.byAsid.set(asid, p); this.last = p; }
    return p;
  }
}

/** Records the paging controls an ASID's TLB entries were made under (at #VMEXIT). */
export function notePaging(cpu: VirtCpu, asid: number, byAsid: PagingByAsid): void {
  const p = byAsid.getOrCreate(asid);
  p.cr0 = cpu.cr0 & PAGING_CR0; p.cr3 = cpu.cr3; p.cr4 = cpu.cr4 & PAGING_CR4; p.efer = cpu.efer & PAGING_EFER;
}

/**
 * A hardware TLB keeps the page-table bits and applies CR0.WP, CR4.SMEP and the rest at each
 * access, so a VMRUN that loads other paging controls needs no flush (KVM relies on it). The
 * CPU's software TLB caches the permission *outcome*, so at VMRUN the silicon drops an ASID's
 * entries when the controls they were computed under changed while the guest was out.
 */
export function flushIfPagingChanged(cpu: VirtCpu, asid: number, byAsid: PagingByAsid): void {
  const p = byAsid.get(asid);
  if (p === undefined) return;
  if (p.cr0 !== (cpu.cr0 & PAGING_CR0) || p.cr3 !== cpu.cr3 || p.cr4 !== (cpu.cr4 & PAGING_CR4) || p.efer !== (cpu.efer & PAGING_EFER)) {
    cpu.flushTlb(asid);
  }
}
