/**
 * A guest page walk for KVM_TRANSLATE (the gva_to_gpa of arch/x86/kvm/mmu/paging_tmpl.h): the
 * guest's own tables, read from guest RAM through the memslots. 32-bit, PAE and 4-level paging.
 */
import { CR0, CR4, EFER } from '@kvmts/x86';
import type { Vm } from '../kvm/vm.js';

const PAGE = 4096;
const TWO32 = 2 ** 32;

/** Reads a little-endian u32 of guest-physical memory, or null when no memslot backs it. */
export function readGuest32(vm: Vm, gpa: number): number | null {
  const hpa = vm.gpaToHpa(gpa);
  return hpa < 0 ? null : vm.host.mem.read32(hpa);
}

export interface Translation {
  gpa: number;
  writeable: boolean;
  user: boolean;
}

/** Translates `gva` (unsigned) with the given paging state; null when not present or unbacked. */
export function gvaToGpa(vm: Vm, gva: number, cr0: number, cr3: number, cr4: number, efer: number): Translation | null {
  if (!(cr0 & CR0.PG)) return { gpa: gva % TWO32, writeable: true, user: true };
  let writeable = true;
  let user = true;
  if (!(cr4 & CR4.PAE)) {
    const va = gva % TWO32;
    const pde = readGuest32(vm, (cr3 & 0xfffff000) + Math.floor(va / 2 ** 22) * 4);
    if (pde === null || !(pde & 1)) return null;
    writeable &&= (pde & 2) !== 0;
    user &&= (pde & 4) !== 0;
    if (pde & 0x80 && cr4 & CR4.PSE) return { gpa: ((pde & 0xffc00000) >>> 0) + (va % 2 ** 22), writeable, user };
    const pte = readGuest32(vm, ((pde & 0xfffff000) >>> 0) + (Math.floor(va / PAGE) % 1024) * 4);
    if (pte === null || !(pte & 1)) return null;
    return { gpa: ((pte & 0xfffff000) >>> 0) + (va % PAGE), writeable: writeable && (pte & 2) !== 0, user: user && (pte & 4) !== 0 };
  }
  const long = (efer & EFER.LMA) !== 0;
  const levels = long ? 4 : 3;
  // Entries are 8 bytes; address bits 51:12 span both words.
  let table = long ? Math.floor(cr3 / PAGE) * PAGE : (cr3 & 0xffffffe0) >>> 0;
  for (let level = levels; level >= 1; level--) {
    const shift = 12 + 9 * (level - 1);
    const idx = level === 3 && !long ? Math.floor(gva / 2 ** 30) % 4 : Math.floor(gva / 2 ** shift) % 512;
    const ea = table + idx * 8;
    const lo = readGuest32(vm, ea);
    const hi = readGuest32(vm, ea + 4);
    if (lo === null || hi === null || !(lo & 1)) return null;
    const addr = (hi & 0xfffff) * TWO32 + ((lo & 0xfffff000) >>> 0);
    if (!(level === 3 && !long)) {
      writeable &&= (lo & 2) !== 0;
      user &&= (lo & 4) !== 0;
    }
    if (level === 1 || (level <= 3 && lo & 0x80 && !(level === 3 && !long))) {
      const size = 2 ** shift;
      const base = Math.floor(addr / size) * size;
      return { gpa: base + (gva % size), writeable, user };
    }
    table = addr;
  }
  return null;
}
