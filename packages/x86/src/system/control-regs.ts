/**
 * MOV to/from CR0, CR2, CR3, CR4, CR8 and DR0-DR7, CLTS, LMSW, SMSW and INVLPG (SDM Vol. 2;
 * Vol. 3A 2.5 and 10.8.5 for the mode-switch checks), with the guest-mode intercepts of
 * cpu/virt.ts and the TLB flushes that paging-control changes require (SDM Vol. 3A, 4.10.4).
 */
import type { VirtCpu } from '../cpu/virt.js';
import { ACCESS, INTERCEPT } from '../cpu/virt.js';
import { VEC } from '../cpu/events.js';
import { AR, CR0, CR4, EFER, SEG } from '../cpu/state.js';
import { PAGING_MODE, maxPhyAddr, pagingMode } from '../mmu/page-walk.js';
import { isLong64 } from '../seg/segments.js';
import { getReg64, setReg32, setReg64 } from './regs.js';

const TWO32 = 0x1_0000_0000;

/** CR0 bits software may set; the rest of bits 31:0 are reserved (ET reads as 1). */
const CR0_DEFINED = CR0.PE | CR0.MP | CR0.EM | CR0.TS | CR0.ET | CR0.NE | CR0.WP | CR0.AM | CR0.NW | CR0.CD | CR0.PG;

/** CR4 bits and the CPUID bit that makes each legal (leaf, register 0-3 = EAX..EDX, bit); null: always. */
const CR4_FEATURES: readonly (readonly [number, readonly [number, number, number] | null])[] = [
  [CR4.VME, null], [CR4.PVI, null], [CR4.TSD, null], [CR4.DE, null], [CR4.PSE, null], [CR4.PAE, null],
  [CR4.MCE, null], [CR4.PGE, null], [CR4.PCE, null], [CR4.OSFXSR, null], [CR4.OSXMMEXCPT, null],
  [CR4.UMIP, [7, 2, 2]], [CR4.LA57, [7, 2, 16]], [CR4.VMXE, [1, 2, 5]], [CR4.SMXE, [1, 2, 6]],
  [CR4.FSGSBASE, [7, 1, 0]], [CR4.PCIDE, [1, 2, 17]], [CR4.OSXSAVE, [1, 2, 26]],
  [CR4.SMEP, [7, 1, 7]], [CR4.SMAP, [7, 1, 20]], [CR4.PKE, [7, 2, 3]],
];

const cr4Cache = new WeakMap<object, number>();
export function cr4Allowed(cpu: VirtCpu): number {
  let v = cr4Cache.get(cpu.model);
  if (v === undefined) {
    const maxLeaf = cpu.model.cpuid(0, 0)[0] >>> 0;
    v = 0;
    for (const [bit, feat] of CR4_FEATURES) {
      if (feat === null) v |= bit;
      else if (feat[0] <= maxLeaf && cpu.model.cpuid(feat[0], 0)[feat[1]]! & (1 << feat[2])) v |= bit;
    }
    cr4Cache.set(cpu.model, v);
  }
  return v;
}

function guestExt(cpu: VirtCpu) {
  const ext = cpu.ext;
  return ext !== null && ext.guest ? ext : null;
}

/** CPL 0 required (real mode is CPL 0; virtual-8086 is CPL 3). */
function requireCpl0(cpu: VirtCpu): void {
  if (cpu.cpl !== 0) cpu.fault(VEC.GP, 0);
}

/**
 * PAE paging loads the four PDPTEs from CR3 (SDM Vol. 3A, 4.4.1): a present entry with a
 * reserved bit set makes the MOV #GP(0).
 */
function checkPdptes(cpu: VirtCpu, cr3: number): void {
  const base = (cr3 >>> 0) & 0xffffffe0;
  const ext = guestExt(cpu);
  const hiRsvd = ((1 << 20) - 1) & ~((1 << (maxPhyAddr(cpu) - 32)) - 1);
  for (let i = 0; i < 4; i++) {
    let pa = base + i * 8;
    if (ext !== null) pa = ext.translate(pa, ACCESS.WALK | ACCESS.READ, 0);
    const lo = cpu.bus.readPhys(pa, 4);
    const hi = cpu.bus.readPhys(pa + 4, 4);
    if (lo & 1 && ((lo & 0x1e6) !== 0 || (hi & (hiRsvd | 0x80000000 | 0x7ff00000)) !== 0)) cpu.fault(VEC.GP, 0);
  }
}

function paePaging(cr0: number, cr4: number, efer: number): boolean {
  return (cr0 & CR0.PG) !== 0 && (cr4 & CR4.PAE) !== 0 && (efer & EFER.LMA) === 0;
}

/** Loads CR0 with the SDM's checks (MOV CR0 #GP conditions) and the LMA/TLB side effects. */
export function setCr0(cpu: VirtCpu, value: number): void {
  value = (value | CR0.ET) >>> 0;
  if (value & ~CR0_DEFINED) cpu.fault(VEC.GP, 0);
  if (value & CR0.PG && !(value & CR0.PE)) cpu.fault(VEC.GP, 0);
  if (value & CR0.NW && !(value & CR0.CD)) cpu.fault(VEC.GP, 0);
  const old = cpu.cr0 >>> 0;
  let efer = cpu.efer;
  if (value & CR0.PG && !(old & CR0.PG)) {
    if (efer & EFER.LME) {
      // Activating IA-32e mode needs PAE and a code segment with L = 0 (SDM 10.8.5); LMA follows PG.
      if (!(cpu.cr4 & CR4.PAE) || cpu.seg[SEG.CS]!.ar & AR.L) cpu.fault(VEC.GP, 0);
      efer |= EFER.LMA;
    }
  } else if (!(value & CR0.PG) && old & CR0.PG) {
    if (isLong64(cpu) || cpu.cr4 & CR4.PCIDE) cpu.fault(VEC.GP, 0);
    efer &= ~EFER.LMA;
  }
  if (paePaging(value, cpu.cr4, efer) && (value ^ old) & (CR0.PG | CR0.CD | CR0.NW)) checkPdptes(cpu, cpu.cr3);
  cpu.cr0 = value | 0;
  cpu.efer = efer;
  if ((value ^ old) & (CR0.PG | CR0.WP | CR0.PE)) cpu.flushTlb();
  cpu.stateChanged();
}

export function setCr3(cpu: VirtCpu, value: number): void {
  if (cpu.efer & EFER.LMA) {
    // Bits 63:MAXPHYADDR are reserved (bit 63 is the PCID no-flush hint when CR4.PCIDE = 1).
    if (cpu.cr4 & CR4.PCIDE) value = value < 0 ? value + 2 ** 63 : value;
    if (value < 0 || value >= 2 ** maxPhyAddr(cpu)) cpu.fault(VEC.GP, 0);
  } else {
    value = value >>> 0;
  }
  if (paePaging(cpu.cr0, cpu.cr4, cpu.efer)) checkPdptes(cpu, value);
  cpu.cr3 = value;
  cpu.flushTlb();
}

export function setCr4(cpu: VirtCpu, value: number): void {
  value >>>= 0;
  if (value & ~cr4Allowed(cpu)) cpu.fault(VEC.GP, 0);
  const old = cpu.cr4 >>> 0;
  const lma = (cpu.efer & EFER.LMA) !== 0;
  if (lma && !(value & CR4.PAE)) cpu.fault(VEC.GP, 0);
  if (lma && (value ^ old) & CR4.LA57) cpu.fault(VEC.GP, 0);
  if (value & CR4.PCIDE && !(old & CR4.PCIDE) && (!lma || cpu.cr3 % 4096 !== 0)) cpu.fault(VEC.GP, 0);
  const pagingBits = CR4.PAE | CR4.PGE | CR4.PSE | CR4.PCIDE | CR4.SMEP | CR4.SMAP | CR4.PKE;
  if (paePaging(cpu.cr0, value, cpu.efer) && (value ^ old) & (CR4.PAE | CR4.PGE | CR4.PSE | CR4.SMEP)) checkPdptes(cpu, cpu.cr3);
  cpu.cr4 = value | 0;
  if ((value ^ old) & pagingBits) cpu.flushTlb();
  cpu.stateChanged();
}

/** The value of a MOV-to-CR source: 64 bits in 64-bit mode, 32 otherwise. */
function sourceValue(cpu: VirtCpu, gpr: number): number {
  return isLong64(cpu) ? getReg64(cpu, gpr) : cpu.gpr[gpr]! >>> 0;
}

function validCr(cpu: VirtCpu, cr: number): void {
  if (cr !== 0 && cr !== 2 && cr !== 3 && cr !== 4 && cr !== 8) cpu.fault(VEC.UD);
}

export function movToCr(cpu: VirtCpu, cr: number, gpr: number): void {
  validCr(cpu, cr);
  requireCpl0(cpu);
  const ext = guestExt(cpu);
  if (ext !== null && ext.intercept(INTERCEPT.CR_WRITE, cr, gpr)) return;
  const v = sourceValue(cpu, gpr);
  switch (cr) {
    case 0:
    case 4: {
      // Bits 63:32 of CR0 and CR4 are reserved.
      if (v < 0 || v >= TWO32) cpu.fault(VEC.GP, 0);
      const current = cr === 0 ? cpu.cr0 >>> 0 : cpu.cr4 >>> 0;
      const load = ext !== null ? ext.crWrite(cr, v, current) >>> 0 : v;
      if (cr === 0) setCr0(cpu, load);
      else setCr4(cpu, load);
      return;
    }
    case 2: cpu.cr2 = v; return;
    case 3: setCr3(cpu, v); return;
    default:
      if (v < 0 || v > 15) cpu.fault(VEC.GP, 0);
      cpu.cr8 = v;
  }
}

export function movFromCr(cpu: VirtCpu, cr: number, gpr: number): void {
  validCr(cpu, cr);
  requireCpl0(cpu);
  const ext = guestExt(cpu);
  if (ext !== null && ext.intercept(INTERCEPT.CR_READ, cr, gpr)) return;
  let v: number;
  switch (cr) {
    case 0: v = cpu.cr0 >>> 0; break;
    case 2: v = cpu.cr2; break;
    case 3: v = cpu.cr3; break;
    case 4: v = cpu.cr4 >>> 0; break;
    default: v = cpu.cr8 & 15;
  }
  if (ext !== null && (cr === 0 || cr === 4)) v = ext.crRead(cr, v) >>> 0;
  if (isLong64(cpu)) setReg64(cpu, gpr, v);
  else setReg32(cpu, gpr, v >>> 0);
}

/** DR4/DR5 alias DR6/DR7 unless CR4.DE (then #UD); DR7.GD makes any access #DB with DR6.BD (SDM 18.2.4). */
function debugRegIndex(cpu: VirtCpu, dr: number): number {
  if (dr > 7) cpu.fault(VEC.UD);
  if (dr === 4 || dr === 5) {
    if (cpu.cr4 & CR4.DE) cpu.fault(VEC.UD);
    dr += 2;
  }
  return dr;
}

const DR7_GD = 1 << 13;
const DR6_BD = 1 << 13;
const DR6_FIXED1 = 0xffff0ff0 | 0;
const DR7_FIXED1 = 0x400;

function checkGd(cpu: VirtCpu): void {
  if (cpu.dr[7]! & DR7_GD) {
    cpu.dr[6] = cpu.dr[6]! | DR6_BD;
    cpu.debugConditions = DR6_BD;
    cpu.dr[7] = cpu.dr[7]! & ~DR7_GD;
    cpu.fault(VEC.DB);
  }
}

export function movToDr(cpu: VirtCpu, dr: number, gpr: number): void {
  requireCpl0(cpu);
  const i = debugRegIndex(cpu, dr);
  const ext = guestExt(cpu);
  if (ext !== null && ext.intercept(INTERCEPT.DR_WRITE, dr, gpr)) return;
  checkGd(cpu);
  const v = sourceValue(cpu, gpr);
  if (i >= 6) {
    if (v < 0 || v >= TWO32) cpu.fault(VEC.GP, 0);
    cpu.dr[i] = i === 6 ? (v | DR6_FIXED1) & ~(1 << 12) : ((v & ~0xd800) | DR7_FIXED1) >>> 0;
  } else {
    cpu.dr[i] = v;
  }
}

export function movFromDr(cpu: VirtCpu, dr: number, gpr: number): void {
  requireCpl0(cpu);
  const i = debugRegIndex(cpu, dr);
  const ext = guestExt(cpu);
  if (ext !== null && ext.intercept(INTERCEPT.DR_READ, dr, gpr)) return;
  checkGd(cpu);
  const v = i >= 6 ? cpu.dr[i]! >>> 0 : cpu.dr[i]!;
  if (isLong64(cpu)) setReg64(cpu, gpr, v);
  else setReg32(cpu, gpr, v >>> 0);
}

export function cltsInsn(cpu: VirtCpu): void {
  requireCpl0(cpu);
  const ext = guestExt(cpu);
  if (ext !== null && ext.intercept(INTERCEPT.CLTS, 0, 0)) return;
  const current = cpu.cr0 >>> 0;
  const v = (current & ~CR0.TS) >>> 0;
  setCr0(cpu, ext !== null ? ext.crWrite(0, v, current) : v);
}

/** LMSW loads CR0[3:0] but can set PE, never clear it (SDM Vol. 2, LMSW). */
export function lmswInsn(cpu: VirtCpu, value: number, isMem: boolean): void {
  requireCpl0(cpu);
  const ext = guestExt(cpu);
  value &= 0xffff;
  if (ext !== null && ext.intercept(INTERCEPT.LMSW, value, isMem ? 1 : 0)) return;
  const current = cpu.cr0 >>> 0;
  const v = ((current & ~0xe) | (value & 0xf) | (current & CR0.PE)) >>> 0;
  setCr0(cpu, ext !== null ? ext.crWrite(0, v, current) : v);
}

/** SMSW's source, all of CR0: the executor stores the low 16 bits to memory or the operand size to a register. UMIP: #GP(0) at CPL > 0. */
export function smswValue(cpu: VirtCpu): number {
  if (cpu.cr4 & CR4.UMIP && cpu.cpl > 0) cpu.fault(VEC.GP, 0);
  const ext = guestExt(cpu);
  const v = cpu.cr0 >>> 0;
  return ext !== null ? ext.crRead(0, v) >>> 0 : v;
}

/**
 * INVLPG invalidates the translation of the page holding `la`, the whole page when it is a
 * large one. The TLB holds 4 KiB pieces of large pages, and the page size `la` had when it was
 * cached is unknown, so where large pages exist the whole TLB goes (the SDM allows flushing
 * more than asked).
 */
export function invlpgInsn(cpu: VirtCpu, la: number): void {
  requireCpl0(cpu);
  const ext = guestExt(cpu);
  if (ext !== null && ext.intercept(INTERCEPT.INVLPG, la, 0)) return;
  const mode = pagingMode(cpu);
  if (mode === PAGING_MODE.NONE || (mode === PAGING_MODE.BIT32 && !(cpu.cr4 & CR4.PSE))) cpu.flushTlb(undefined, la);
  else cpu.flushTlb();
}
