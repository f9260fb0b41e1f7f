/**
 * The guest page walker (SDM Vol. 3A, chapter 4): linear -> physical through 32-bit, PAE and
 * 4-level paging, and in guest mode through the second stage (ext.translate) for every
 * paging-structure access and for the final address. The TLB that caches the result is the
 * Cpu's; this runs on a TLB miss and for implicit system accesses.
 */
import type { VirtCpu } from '../cpu/virt.js';
import { ACCESS } from '../cpu/virt.js';
import { CR0, CR4, EFER, RFLAGS } from '../cpu/state.js';
import { VEC } from '../cpu/events.js';

/** Page-fault error code bits (SDM Vol. 3A, Figure 4-12). */
export const PFERR = { P: 1 << 0, W: 1 << 1, U: 1 << 2, RSVD: 1 << 3, ID: 1 << 4, PK: 1 << 5 } as const;

/** Paging-structure entry bits common to every format (SDM Vol. 3A, Tables 4-5 … 4-20). */
export const PTE = { P: 1 << 0, RW: 1 << 1, US: 1 << 2, PWT: 1 << 3, PCD: 1 << 4, A: 1 << 5, D: 1 << 6, PS: 1 << 7, G: 1 << 8 } as const;
/** XD is bit 63: bit 31 of the entry's high half. */
const XD_HI = 1 << 31;

const TWO32 = 0x1_0000_0000;

/** CPUID.80000008H:EAX[7:0], the physical-address width, cached per model table. */
const maxPhyAddrCache = new WeakMap<object, number>();
export function maxPhyAddr(cpu: VirtCpu): number {
  let w = maxPhyAddrCache.get(cpu.model);
  if (w === undefined) {
    const max = cpu.model.cpuid(0x80000000, 0)[0] >>> 0;
    w = max >= 0x80000008 ? cpu.model.cpuid(0x80000008, 0)[0] & 0xff : 36;
    if (w < 32 || w > 52) w = 36;
    maxPhyAddrCache.set(cpu.model, w);
  }
  return w;
}

/** Reserved bits of an entry's high half above MAXPHYADDR (bits 51:MAXPHYADDR), plus 62:52 are ignored. */
function highReservedMask(cpu: VirtCpu): number {
  const w = maxPhyAddr(cpu);
  return ((1 << (52 - 32)) - 1) & ~((1 << (w - 32)) - 1);
}

function gb1Supported(cpu: VirtCpu): boolean {
  return (cpu.model.cpuid(0x80000001, 0)[3] & (1 << 26)) !== 0;
}

/** Paging mode from CR0/CR4/EFER (SDM Vol. 3A, Table 4-1). */
export const PAGING_MODE = { NONE: 0, BIT32: 1, PAE: 2, LEVEL4: 3, LEVEL5: 4 } as const;
export function pagingMode(cpu: VirtCpu): number {
  if (!(cpu.cr0 & CR0.PG)) return PAGING_MODE.NONE;
  if (!(cpu.cr4 & CR4.PAE)) return PAGING_MODE.BIT32;
  if (cpu.efer & EFER.LMA) return cpu.cr4 & CR4.LA57 ? PAGING_MODE.LEVEL5 : PAGING_MODE.LEVEL4;
  return PAGING_MODE.PAE;
}

/** Guest-physical -> host-physical for a paging-structure access (identity outside guest mode). */
function walkAddr(cpu: VirtCpu, gpa: number, la: number, write: boolean): number {
  const ext = cpu.ext;
  if (ext === null || !ext.guest) return gpa;
  return ext.translate(gpa, ACCESS.WALK | ACCESS.LINEAR_VALID | (write ? ACCESS.WRITE : ACCESS.READ), la);
}

function pageFault(cpu: VirtCpu, la: number, code: number): never {
  cpu.cr2 = la;
  return cpu.fault(VEC.PF, code);
}

/** Bits `lo..hi` (inclusive, hi < 64) of a signed-canonical or unsigned linear address. */
function laBits(la: number, lo: number, width: number): number {
  return Math.floor(la / 2 ** lo) & ((1 << width) - 1);
}

/** Linear -> host-physical, with A/D updates and #PF (see the agreed contract in the brief). */
export function translateLinear(cpu: VirtCpu, la: number, access: number): number {
  const mode = pagingMode(cpu);
  let pa: number;
  if (mode === PAGING_MODE.NONE) pa = la >>> 0;
  else pa = walk(cpu, la, access, mode);
  const ext = cpu.ext;
  if (ext !== null && ext.guest) return ext.translate(pa, (access & ~ACCESS.WALK) | ACCESS.LINEAR_VALID, la);
  return pa;
}

function walk(cpu: VirtCpu, la: number, access: number, mode: number): number {
  const bus = cpu.bus;
  const write = (access & ACCESS.WRITE) !== 0;
  const fetch = (access & ACCESS.FETCH) !== 0;
  const user = (access & ACCESS.USER) !== 0;
  const nxe = mode !== PAGING_MODE.BIT32 && (cpu.efer & EFER.NXE) !== 0;
  const smep = (cpu.cr4 & CR4.SMEP) !== 0;
  let code = (write ? PFERR.W : 0) | (user ? PFERR.U : 0) | (fetch && (nxe || smep) ? PFERR.ID : 0);

  // Cumulative rights: R/W and U/S are ANDed over the levels, XD ORed (SDM 4.6.1).
  let rw = true;
  let us = true;
  let xd = false;
  /** Physical address of the current table and the index bits still to translate. */
  let table: number;
  let level: number;
  const long = mode === PAGING_MODE.LEVEL4 || mode === PAGING_MODE.LEVEL5;
  const wide = mode !== PAGING_MODE.BIT32;
  const hiRsvd = wide ? highReservedMask(cpu) | (nxe ? 0 : XD_HI) : 0;

  if (mode === PAGING_MODE.BIT32) {
    table = cpu.cr3 - (cpu.cr3 % 4096);
    level = 2;
  } else if (mode === PAGING_MODE.PAE) {
    // PDPTE registers (SDM 4.4.1): loaded from CR3[31:5]; here read at walk time.
    const pdpteAddr = ((cpu.cr3 >>> 0) & 0xffffffe0) + laBits(la, 30, 2) * 8;
    const hpa = walkAddr(cpu, pdpteAddr, la, false);
    const lo = bus.readPhys(hpa, 4);
    const hi = bus.readPhys(hpa + 4, 4);
    if (!(lo & PTE.P)) pageFault(cpu, la, code);
    if ((lo & 0x1e6) || (hi & (highReservedMask(cpu) | XD_HI))) pageFault(cpu, la, code | PFERR.P | PFERR.RSVD);
    table = (lo & 0xfffff000) >>> 0;
    table += (hi & 0xfffff) * TWO32;
    level = 2;
  } else {
    table = cpu.cr3 - (cpu.cr3 % 4096);
    // CR3 bits above MAXPHYADDR are reserved; PCID bits 11:0 are not part of the address.
    table = table % 2 ** maxPhyAddr(cpu);
    level = mode === PAGING_MODE.LEVEL5 ? 5 : 4;
  }

  for (;;) {
    let lo: number;
    let hi = 0;
    let entryAddr: number;
    if (wide) {
      const shift = 12 + 9 * (level - 1);
      entryAddr = table + laBits(la, shift, 9) * 8;
    } else {
      const shift = 12 + 10 * (level - 1);
      entryAddr = table + laBits(la, shift, 10) * 4;
    }
    const hpa = walkAddr(cpu, entryAddr, la, false);
    lo = bus.readPhys(hpa, 4);
    if (wide) hi = bus.readPhys(hpa + 4, 4);
    if (!(lo & PTE.P)) pageFault(cpu, la, code);

    // Reserved bits (SDM 4.3, 4.4.2, 4.5.4).
    const ps = (lo & PTE.PS) !== 0;
    let leaf = level === 1;
    let rsvd = (hi & hiRsvd) !== 0;
    if (wide) {
      if (ps && level > 1) {
        if (level === 2) { leaf = true; rsvd ||= (lo & 0x1fe000) !== 0; }
        else if (level === 3 && long && gb1Supported(cpu)) { leaf = true; rsvd ||= (lo & 0x3fffe000) !== 0; }
        else rsvd = true;
      }
    } else if (ps && level === 2 && (cpu.cr4 & CR4.PSE)) {
      leaf = true;
      // PSE-36: bits 20:13 hold PA bits 39:32; bit 21 is reserved, as are bits above MAXPHYADDR.
      const w = Math.min(maxPhyAddr(cpu), 40);
      rsvd = (lo & (1 << 21)) !== 0 || ((lo >>> 13) & 0xff & ~((1 << (w - 32)) - 1)) !== 0;
    }
    if (rsvd) pageFault(cpu, la, code | PFERR.P | PFERR.RSVD);

    rw &&= (lo & PTE.RW) !== 0;
    us &&= (lo & PTE.US) !== 0;
    xd ||= nxe && (hi & XD_HI) !== 0;

    if (!leaf) {
      if (!(lo & PTE.A)) {
        bus.writePhys(walkAddr(cpu, entryAddr, la, true), 4, (lo | PTE.A) >>> 0);
      }
      table = (lo & 0xfffff000) >>> 0;
      if (wide) table += (hi & 0xfffff) * TWO32;
      level--;
      continue;
    }

    // Access rights (SDM 4.6).
    code |= PFERR.P;
    if (user) {
      if (!us) pageFault(cpu, la, code);
      if (write && !rw) pageFault(cpu, la, code);
      if (fetch && xd) pageFault(cpu, la, code);
    } else {
      if (write && !rw && (cpu.cr0 & CR0.WP)) pageFault(cpu, la, code);
      if (fetch && xd) pageFault(cpu, la, code);
      if (us && fetch && smep) pageFault(cpu, la, code);
      if (us && !fetch && (cpu.cr4 & CR4.SMAP) && (cpu.cpl === 3 || !(cpu.getRflags() & RFLAGS.AC))) {
        pageFault(cpu, la, code);
      }
    }

    const newLo = (lo | PTE.A | (write ? PTE.D : 0)) >>> 0;
    if (newLo !== (lo >>> 0)) bus.writePhys(walkAddr(cpu, entryAddr, la, true), 4, newLo);

    // Frame base plus the offset bits below the page size.
    if (!wide) {
      if (level === 2) {
        const base = (lo & 0xffc00000) >>> 0;
        return base + ((lo >>> 13) & 0xff) * TWO32 + (la & 0x3fffff);
      }
      return ((lo & 0xfffff000) >>> 0) + (la & 0xfff);
    }
    const hiBase = (hi & 0xfffff) * TWO32;
    if (level === 3) return ((lo & 0xc0000000) >>> 0) + hiBase + (la & 0x3fffffff);
    if (level === 2) return ((lo & 0xffe00000) >>> 0) + hiBase + (la & 0x1fffff);
    return ((lo & 0xfffff000) >>> 0) + hiBase + (la & 0xfff);
  }
}
