/**
 * VM entry (SDM vol. 3C chapter 27): the checks on VMX controls and host-state area (27.2), the
 * checks on the guest-state area (27.3.1), loading guest state (27.3.2), the VM-entry MSR-load
 * list (27.4) and event injection (27.6).
 *
 * Each check is one row: a name (what a failure reports), the class that decides how a failure
 * is reported (control -> VMfailValid 7, host -> VMfailValid 8, guest -> exit reason 33 with
 * bit 31), the fields it reads, and the predicate. Because the fields are listed, an entry need
 * only re-run the checks that read a field written since the last successful entry: every other
 * check passed on the very same values. `entry-checks.test.ts` proves the two agree.
 */
import { SEG, RFLAGS, CR0, CR4, EFER, INTR_INFO, EVENT_TYPE, type VirtCpu } from '@kvmts/x86';
import { FIELD as F, FIELD_COUNT, FIELD_TYPE, VMCS_TYPE, type VmcsFieldName } from './fields.js';
import {
  CPU_BASED, SECONDARY_EXEC, PIN_BASED, VM_EXIT, VM_ENTRY, VMX_CAPS, ctlAllowed, CR0_FIXED0, CR0_FIXED1,
  CR4_FIXED0, CR4_FIXED1, CR3_TARGET_MAX, MAXPHYADDR, VMX_MISC_VALUE, VMX_MISC,
} from './caps.js';
import type { VmcsCache } from './region.js';

export type CheckClass = 'control' | 'host' | 'guest';

/** What a check reads besides VMCS fields: the state of the processor executing VMLAUNCH. */
export interface EntryContext {
  /** IA32_EFER.LMA of the processor doing the entry (SDM 27.2.4). */
  hostLma: boolean;
}

export interface EntryCheck {
  readonly name: string;
  readonly cls: CheckClass;
  /** Field rows the predicate reads; 'context' checks also read the EntryContext and always run. */
  readonly deps: readonly number[];
  readonly context: boolean;
  readonly ok: (v: VmcsCache, c: EntryContext) => boolean;
}

const ADDR_HI_LIMIT = 2 ** (MAXPHYADDR - 32);
const canonical = (n: number): boolean => n >= -(2 ** 47) && n < 2 ** 47;
const physOk = (v: VmcsCache, i: number): boolean => (v.hi[i]! >>> 0) < ADDR_HI_LIMIT;
const pageOk = (v: VmcsCache, i: number): boolean => (v.lo[i]! & 0xfff) === 0 && physOk(v, i);
const hi32Zero = (v: VmcsCache, i: number): boolean => v.hi[i] === 0;

const proc = (v: VmcsCache) => v.read32(F.CPU_BASED_VM_EXEC_CONTROL);
const proc2 = (v: VmcsCache) => (proc(v) & CPU_BASED.ACTIVATE_SECONDARY_CONTROLS ? v.read32(F.SECONDARY_VM_EXEC_CONTROL) : 0);
const ug = (v: VmcsCache) => (proc2(v) & SECONDARY_EXEC.UNRESTRICTED_GUEST) !== 0;
const ia32e = (v: VmcsCache) => (v.read32(F.VM_ENTRY_CONTROLS) & VM_ENTRY.IA32E_MODE) !== 0;
const hostLong = (v: VmcsCache) => (v.read32(F.VM_EXIT_CONTROLS) & VM_EXIT.HOST_ADDR_SPACE_SIZE) !== 0;
const guestCr0 = (v: VmcsCache) => v.lo[F.GUEST_CR0]! >>> 0;
const guestCr4 = (v: VmcsCache) => v.lo[F.GUEST_CR4]! >>> 0;
const intrInfo = (v: VmcsCache) => v.read32(F.VM_ENTRY_INTR_INFO_FIELD);
const injecting = (v: VmcsCache, type: number) => {
  const i = intrInfo(v);
  return (i & INTR_INFO.VALID) !== 0 && ((i >> 8) & 7) === type;
};
const patOk = (lo: number, hi: number) => {
  for (let b = 0; b < 8; b++) {
    const t = ((b < 4 ? lo : hi) >>> ((b & 3) * 8)) & 0xff;
    if (t !== 0 && t !== 1 && t !== 4 && t !== 5 && t !== 6 && t !== 7) return false;
  }
  return true;
};
const EFER_VALID = EFER.SCE | EFER.LME | EFER.LMA | EFER.NXE;

const CTL_DEPS = ['PIN_BASED_VM_EXEC_CONTROL', 'CPU_BASED_VM_EXEC_CONTROL', 'SECONDARY_VM_EXEC_CONTROL'] as const;

type Row = readonly [name: string, cls: CheckClass, deps: readonly (VmcsFieldName | 'context')[], ok: (v: VmcsCache, c: EntryContext) => boolean];

// ---- segments (SDM 27.3.1.2) -------------------------------------------------------------------
const SEGS = ['ES', 'CS', 'SS', 'DS', 'FS', 'GS', 'LDTR', 'TR'] as const;
type SegName = (typeof SEGS)[number];
const sel = (v: VmcsCache, s: number) => v.read32(F.GUEST_ES_SELECTOR + s);
const ar = (v: VmcsCache, s: number) => v.read32(F.GUEST_ES_AR_BYTES + s);
const limit = (v: VmcsCache, s: number) => v.read32(F.GUEST_ES_LIMIT + s);
const usable = (v: VmcsCache, s: number) => (ar(v, s) & (1 << 16)) === 0;
const segFields = (s: SegName, ...what: ('SELECTOR' | 'BASE' | 'LIMIT' | 'AR_BYTES')[]) =>
  what.map((w) => `GUEST_${s}_${w}` as VmcsFieldName);
const limitGOk = (v: VmcsCache, s: number) => {
  const l = limit(v, s);
  const g = (ar(v, s) & (1 << 15)) !== 0;
  return ((l & 0xfff) === 0xfff || !g) && ((l >>> 20) === 0 || g);
};
const arReservedOk = (v: VmcsCache, s: number) => (ar(v, s) & 0xfffe0f00) === 0;

function dataSegChecks(name: 'DS' | 'ES' | 'FS' | 'GS'): Row[] {
  const s = SEG[name];
  const all = [...segFields(name, 'SELECTOR', 'LIMIT', 'AR_BYTES')];
  return [
    [`guest ${name} base bits 63:32 zero`, 'guest', [...segFields(name, 'BASE', 'AR_BYTES')],
      (v) => (name === 'FS' || name === 'GS' ? canonical(v.readNum(F.GUEST_ES_BASE + s)) : !usable(v, s) || hi32Zero(v, F.GUEST_ES_BASE + s))],
    [`guest ${name} type accessed and readable`, 'guest', all, (v) => !usable(v, s) || ((ar(v, s) & 1) === 1 && ((ar(v, s) & 8) === 0 || (ar(v, s) & 2) !== 0))],
    [`guest ${name} S=1`, 'guest', all, (v) => !usable(v, s) || (ar(v, s) & 0x10) !== 0],
    [`guest ${name} DPL >= RPL`, 'guest', [...all, ...CTL_DEPS], (v) => !usable(v, s) || ug(v) || (ar(v, s) & 0xf) > 11 || ((ar(v, s) >> 5) & 3) >= (sel(v, s) & 3)],
    [`guest ${name} present`, 'guest', all, (v) => !usable(v, s) || (ar(v, s) & 0x80) !== 0],
    [`guest ${name} access-rights reserved bits`, 'guest', all, (v) => !usable(v, s) || arReservedOk(v, s)],
    [`guest ${name} limit consistent with G`, 'guest', all, (v) => !usable(v, s) || limitGOk(v, s)],
  ];
}

const ROWS: readonly Row[] = [
  // ---- 27.2.1.1 VM-execution control fields ----
  ['pin-based controls reserved bits', 'control', ['PIN_BASED_VM_EXEC_CONTROL'], (v) => ctlAllowed(v.read32(F.PIN_BASED_VM_EXEC_CONTROL), VMX_CAPS.truePin)],
  ['processor-based controls reserved bits', 'control', ['CPU_BASED_VM_EXEC_CONTROL'], (v) => ctlAllowed(proc(v), VMX_CAPS.trueProc)],
  ['secondary controls reserved bits', 'control', [...CTL_DEPS], (v) => ctlAllowed(proc2(v), VMX_CAPS.proc2)],
  ['CR3-target count', 'control', ['CR3_TARGET_COUNT'], (v) => v.read32(F.CR3_TARGET_COUNT) <= CR3_TARGET_MAX],
  ['I/O bitmap addresses', 'control', ['CPU_BASED_VM_EXEC_CONTROL', 'IO_BITMAP_A', 'IO_BITMAP_B'],
    (v) => !(proc(v) & CPU_BASED.USE_IO_BITMAPS) || (pageOk(v, F.IO_BITMAP_A) && pageOk(v, F.IO_BITMAP_B))],
  ['MSR bitmap address', 'control', ['CPU_BASED_VM_EXEC_CONTROL', 'MSR_BITMAP'], (v) => !(proc(v) & CPU_BASED.USE_MSR_BITMAPS) || pageOk(v, F.MSR_BITMAP)],
  ['NMI exiting and virtual NMIs', 'control', ['PIN_BASED_VM_EXEC_CONTROL'],
    (v) => !(v.read32(F.PIN_BASED_VM_EXEC_CONTROL) & PIN_BASED.VIRTUAL_NMIS) || (v.read32(F.PIN_BASED_VM_EXEC_CONTROL) & PIN_BASED.NMI_EXITING) !== 0],
  ['NMI-window exiting requires virtual NMIs', 'control', ['PIN_BASED_VM_EXEC_CONTROL', 'CPU_BASED_VM_EXEC_CONTROL'],
    (v) => !(proc(v) & CPU_BASED.NMI_WINDOW_EXITING) || (v.read32(F.PIN_BASED_VM_EXEC_CONTROL) & PIN_BASED.VIRTUAL_NMIS) !== 0],
  ['VPID nonzero', 'control', [...CTL_DEPS, 'VIRTUAL_PROCESSOR_ID'], (v) => !(proc2(v) & SECONDARY_EXEC.ENABLE_VPID) || v.read32(F.VIRTUAL_PROCESSOR_ID) !== 0],
  ['EPT pointer', 'control', [...CTL_DEPS, 'EPT_POINTER'], (v) => {
    if (!(proc2(v) & SECONDARY_EXEC.ENABLE_EPT)) return true;
    const lo = v.lo[F.EPT_POINTER]!;
    const mt = lo & 7;
    return (mt === 0 || mt === 6) && ((lo >> 3) & 7) === 3 && (lo & 0xf80) === 0 && physOk(v, F.EPT_POINTER);
  }],
  ['unrestricted guest requires EPT', 'control', [...CTL_DEPS], (v) => !ug(v) || (proc2(v) & SECONDARY_EXEC.ENABLE_EPT) !== 0],
  // ---- 27.2.1.2 VM-exit control fields ----
  ['VM-exit controls reserved bits', 'control', ['VM_EXIT_CONTROLS'], (v) => ctlAllowed(v.read32(F.VM_EXIT_CONTROLS), VMX_CAPS.trueExit)],
  ['save preemption timer requires the timer', 'control', ['VM_EXIT_CONTROLS', 'PIN_BASED_VM_EXEC_CONTROL'],
    (v) => !(v.read32(F.VM_EXIT_CONTROLS) & VM_EXIT.SAVE_VMX_PREEMPTION_TIMER) || (v.read32(F.PIN_BASED_VM_EXEC_CONTROL) & PIN_BASED.VMX_PREEMPTION_TIMER) !== 0],
  ['VM-exit MSR-store address', 'control', ['VM_EXIT_MSR_STORE_COUNT', 'VM_EXIT_MSR_STORE_ADDR'],
    (v) => v.read32(F.VM_EXIT_MSR_STORE_COUNT) === 0 || ((v.lo[F.VM_EXIT_MSR_STORE_ADDR]! & 0xf) === 0 && physOk(v, F.VM_EXIT_MSR_STORE_ADDR))],
  ['VM-exit MSR-load address', 'control', ['VM_EXIT_MSR_LOAD_COUNT', 'VM_EXIT_MSR_LOAD_ADDR'],
    (v) => v.read32(F.VM_EXIT_MSR_LOAD_COUNT) === 0 || ((v.lo[F.VM_EXIT_MSR_LOAD_ADDR]! & 0xf) === 0 && physOk(v, F.VM_EXIT_MSR_LOAD_ADDR))],
  // ---- 27.2.1.3 VM-entry control fields ----
  ['VM-entry controls reserved bits', 'control', ['VM_ENTRY_CONTROLS'], (v) => ctlAllowed(v.read32(F.VM_ENTRY_CONTROLS), VMX_CAPS.trueEntry)],
  ['VM-entry interruption-information type', 'control', ['VM_ENTRY_INTR_INFO_FIELD'], (v) => {
    const i = intrInfo(v);
    if (!(i & INTR_INFO.VALID)) return true;
    const type = (i >> 8) & 7;
    const vec = i & 0xff;
    if (type === 1) return false;
    if (type === 7) return vec === 0;
    if (type === EVENT_TYPE.NMI) return vec === 2;
    if (type === EVENT_TYPE.HW_EXCEPTION) return vec <= 31;
    return true;
  }],
  ['VM-entry interruption-information deliver-error-code', 'control', ['VM_ENTRY_INTR_INFO_FIELD', 'GUEST_CR0', ...CTL_DEPS], (v) => {
    const i = intrInfo(v);
    if (!(i & INTR_INFO.VALID)) return true;
    const vec = i & 0xff;
    const pe = (guestCr0(v) & CR0.PE) !== 0 || !ug(v);
    const mustDeliver = pe && ((i >> 8) & 7) === EVENT_TYPE.HW_EXCEPTION && (vec === 8 || (vec >= 10 && vec <= 14) || vec === 17 || vec === 21);
    return ((i & INTR_INFO.DELIVER_CODE) !== 0) === mustDeliver;
  }],
  ['VM-entry interruption-information reserved bits', 'control', ['VM_ENTRY_INTR_INFO_FIELD'], (v) => !(intrInfo(v) & INTR_INFO.VALID) || (intrInfo(v) & 0x7ffff000) === 0],
  ['VM-entry exception error code', 'control', ['VM_ENTRY_INTR_INFO_FIELD', 'VM_ENTRY_EXCEPTION_ERROR_CODE'],
    (v) => (intrInfo(v) & (INTR_INFO.VALID | INTR_INFO.DELIVER_CODE)) >>> 0 !== (INTR_INFO.VALID | INTR_INFO.DELIVER_CODE) >>> 0 || (v.read32(F.VM_ENTRY_EXCEPTION_ERROR_CODE) >>> 16) === 0],
  ['VM-entry instruction length', 'control', ['VM_ENTRY_INTR_INFO_FIELD', 'VM_ENTRY_INSTRUCTION_LEN'], (v) => {
    const i = intrInfo(v);
    const type = (i >> 8) & 7;
    if (!(i & INTR_INFO.VALID) || (type !== 4 && type !== 5 && type !== 6)) return true;
    const len = v.read32(F.VM_ENTRY_INSTRUCTION_LEN);
    return len <= 15 && (len > 0 || (VMX_MISC_VALUE & VMX_MISC.ZERO_LEN_INS) !== 0);
  }],
  ['VM-entry MSR-load address', 'control', ['VM_ENTRY_MSR_LOAD_COUNT', 'VM_ENTRY_MSR_LOAD_ADDR'],
    (v) => v.read32(F.VM_ENTRY_MSR_LOAD_COUNT) === 0 || ((v.lo[F.VM_ENTRY_MSR_LOAD_ADDR]! & 0xf) === 0 && physOk(v, F.VM_ENTRY_MSR_LOAD_ADDR))],
  // ---- 27.2.2 host control registers and MSRs ----
  ['host CR0 fixed bits', 'host', ['HOST_CR0'], (v) => {
    const cr0 = v.lo[F.HOST_CR0]! >>> 0;
    return hi32Zero(v, F.HOST_CR0) && (cr0 & CR0_FIXED0) >>> 0 === CR0_FIXED0 && (cr0 & ~CR0_FIXED1) === 0;
  }],
  ['host CR4 fixed bits', 'host', ['HOST_CR4'], (v) => {
    const cr4 = v.lo[F.HOST_CR4]! >>> 0;
    return hi32Zero(v, F.HOST_CR4) && (cr4 & CR4_FIXED0) === CR4_FIXED0 && (cr4 & ~CR4_FIXED1) === 0;
  }],
  ['host CR3 within physical-address width', 'host', ['HOST_CR3'], (v) => physOk(v, F.HOST_CR3)],
  ['host SYSENTER_ESP/EIP canonical', 'host', ['HOST_IA32_SYSENTER_ESP', 'HOST_IA32_SYSENTER_EIP'],
    (v) => canonical(v.readNum(F.HOST_IA32_SYSENTER_ESP)) && canonical(v.readNum(F.HOST_IA32_SYSENTER_EIP))],
  ['host IA32_PAT', 'host', ['VM_EXIT_CONTROLS', 'HOST_IA32_PAT'],
    (v) => !(v.read32(F.VM_EXIT_CONTROLS) & VM_EXIT.LOAD_IA32_PAT) || patOk(v.lo[F.HOST_IA32_PAT]!, v.hi[F.HOST_IA32_PAT]!)],
  ['host IA32_EFER', 'host', ['VM_EXIT_CONTROLS', 'HOST_IA32_EFER'], (v) => {
    if (!(v.read32(F.VM_EXIT_CONTROLS) & VM_EXIT.LOAD_IA32_EFER)) return true;
    const e = v.lo[F.HOST_IA32_EFER]!;
    const hl = hostLong(v);
    return hi32Zero(v, F.HOST_IA32_EFER) && (e & ~EFER_VALID) === 0 && ((e & EFER.LMA) !== 0) === hl && ((e & EFER.LME) !== 0) === hl;
  }],
  // ---- 27.2.3 host segment and descriptor-table registers ----
  ['host selector RPL and TI zero', 'host', ['HOST_ES_SELECTOR', 'HOST_CS_SELECTOR', 'HOST_SS_SELECTOR', 'HOST_DS_SELECTOR', 'HOST_FS_SELECTOR', 'HOST_GS_SELECTOR', 'HOST_TR_SELECTOR'], (v) => {
    for (let i = F.HOST_ES_SELECTOR; i <= F.HOST_TR_SELECTOR; i++) if (v.read32(i) & 7) return false;
    return true;
  }],
  ['host CS selector nonzero', 'host', ['HOST_CS_SELECTOR'], (v) => v.read32(F.HOST_CS_SELECTOR) !== 0],
  ['host TR selector nonzero', 'host', ['HOST_TR_SELECTOR'], (v) => v.read32(F.HOST_TR_SELECTOR) !== 0],
  ['host SS selector nonzero outside 64-bit mode', 'host', ['HOST_SS_SELECTOR', 'VM_EXIT_CONTROLS'], (v) => hostLong(v) || v.read32(F.HOST_SS_SELECTOR) !== 0],
  ['host FS/GS/TR/GDTR/IDTR bases canonical', 'host', ['HOST_FS_BASE', 'HOST_GS_BASE', 'HOST_TR_BASE', 'HOST_GDTR_BASE', 'HOST_IDTR_BASE'],
    (v) => canonical(v.readNum(F.HOST_FS_BASE)) && canonical(v.readNum(F.HOST_GS_BASE)) && canonical(v.readNum(F.HOST_TR_BASE))
      && canonical(v.readNum(F.HOST_GDTR_BASE)) && canonical(v.readNum(F.HOST_IDTR_BASE))],
  // ---- 27.2.4 address-space size ----
  ['host address-space size', 'host', ['context', 'VM_EXIT_CONTROLS', 'VM_ENTRY_CONTROLS'], (v, c) => (c.hostLma ? hostLong(v) : !hostLong(v) && !ia32e(v))],
  ['host CR4.PAE and RIP for the host address-space size', 'host', ['VM_EXIT_CONTROLS', 'HOST_CR4', 'HOST_RIP'], (v) => (hostLong(v)
    ? (hostCr4(v) & CR4.PAE) !== 0 && canonical(v.readNum(F.HOST_RIP))
    : hi32Zero(v, F.HOST_RIP) && (hostCr4(v) & CR4.PCIDE) === 0)],
  // ---- 27.3.1.1 guest control registers, debug registers and MSRs ----
  ['guest CR0 fixed bits', 'guest', ['GUEST_CR0', ...CTL_DEPS], (v) => {
    const cr0 = guestCr0(v);
    const fixed0 = ug(v) ? CR0_FIXED0 & ~(CR0.PE | CR0.PG) : CR0_FIXED0;
    return hi32Zero(v, F.GUEST_CR0) && (cr0 & fixed0) >>> 0 === fixed0 >>> 0 && (cr0 & ~CR0_FIXED1) === 0;
  }],
  ['guest CR0.PG requires CR0.PE', 'guest', ['GUEST_CR0'], (v) => !(guestCr0(v) & CR0.PG) || (guestCr0(v) & CR0.PE) !== 0],
  ['guest CR4 fixed bits', 'guest', ['GUEST_CR4'], (v) => hi32Zero(v, F.GUEST_CR4) && (guestCr4(v) & CR4_FIXED0) === CR4_FIXED0 && (guestCr4(v) & ~CR4_FIXED1) === 0],
  ['guest IA-32e mode requires CR0.PG and CR4.PAE', 'guest', ['VM_ENTRY_CONTROLS', 'GUEST_CR0', 'GUEST_CR4'],
    (v) => !ia32e(v) || ((guestCr0(v) & CR0.PG) !== 0 && (guestCr4(v) & CR4.PAE) !== 0)],
  ['guest CR4.PCIDE requires IA-32e mode', 'guest', ['VM_ENTRY_CONTROLS', 'GUEST_CR4'], (v) => ia32e(v) || (guestCr4(v) & CR4.PCIDE) === 0],
  ['guest CR3 within physical-address width', 'guest', ['GUEST_CR3'], (v) => physOk(v, F.GUEST_CR3)],
  ['guest DR7 bits 63:32 zero', 'guest', ['VM_ENTRY_CONTROLS', 'GUEST_DR7'], (v) => !(v.read32(F.VM_ENTRY_CONTROLS) & VM_ENTRY.LOAD_DEBUG_CONTROLS) || hi32Zero(v, F.GUEST_DR7)],
  ['guest SYSENTER_ESP/EIP canonical', 'guest', ['GUEST_SYSENTER_ESP', 'GUEST_SYSENTER_EIP'],
    (v) => canonical(v.readNum(F.GUEST_SYSENTER_ESP)) && canonical(v.readNum(F.GUEST_SYSENTER_EIP))],
  ['guest IA32_PAT', 'guest', ['VM_ENTRY_CONTROLS', 'GUEST_IA32_PAT'],
    (v) => !(v.read32(F.VM_ENTRY_CONTROLS) & VM_ENTRY.LOAD_IA32_PAT) || patOk(v.lo[F.GUEST_IA32_PAT]!, v.hi[F.GUEST_IA32_PAT]!)],
  ['guest IA32_EFER', 'guest', ['VM_ENTRY_CONTROLS', 'GUEST_IA32_EFER', 'GUEST_CR0'], (v) => {
    if (!(v.read32(F.VM_ENTRY_CONTROLS) & VM_ENTRY.LOAD_IA32_EFER)) return true;
    const e = v.lo[F.GUEST_IA32_EFER]!;
    const lma = (e & EFER.LMA) !== 0;
    return hi32Zero(v, F.GUEST_IA32_EFER) && (e & ~EFER_VALID) === 0 && lma === ia32e(v) && (!(guestCr0(v) & CR0.PG) || ((e & EFER.LME) !== 0) === lma);
  }],
  // ---- 27.3.1.2 guest segment registers ----
  ['guest TR TI flag zero', 'guest', ['GUEST_TR_SELECTOR'], (v) => (sel(v, SEG.TR) & 4) === 0],
  ['guest LDTR TI flag zero', 'guest', segFields('LDTR', 'SELECTOR', 'AR_BYTES'), (v) => !usable(v, SEG.LDTR) || (sel(v, SEG.LDTR) & 4) === 0],
  ['guest SS.RPL equals CS.RPL', 'guest', ['GUEST_SS_SELECTOR', 'GUEST_CS_SELECTOR', 'GUEST_RFLAGS', ...CTL_DEPS],
    (v) => ug(v) || (v.lo[F.GUEST_RFLAGS]! & RFLAGS.VM) !== 0 || (sel(v, SEG.SS) & 3) === (sel(v, SEG.CS) & 3)],
  ['guest TR/LDTR bases canonical', 'guest', ['GUEST_TR_BASE', 'GUEST_LDTR_BASE', 'GUEST_LDTR_AR_BYTES'],
    (v) => canonical(v.readNum(F.GUEST_TR_BASE)) && (!usable(v, SEG.LDTR) || canonical(v.readNum(F.GUEST_LDTR_BASE)))],
  ['guest CS base bits 63:32 zero', 'guest', ['GUEST_CS_BASE'], (v) => hi32Zero(v, F.GUEST_CS_BASE)],
  ['guest SS base bits 63:32 zero', 'guest', segFields('SS', 'BASE', 'AR_BYTES'), (v) => !usable(v, SEG.SS) || hi32Zero(v, F.GUEST_SS_BASE)],
  ['guest CS type', 'guest', ['GUEST_CS_AR_BYTES', ...CTL_DEPS], (v) => {
    const t = ar(v, SEG.CS) & 0xf;
    return t === 9 || t === 11 || t === 13 || t === 15 || (ug(v) && t === 3);
  }],
  ['guest CS S=1 and present', 'guest', ['GUEST_CS_AR_BYTES'], (v) => (ar(v, SEG.CS) & 0x90) === 0x90],
  ['guest CS DPL', 'guest', ['GUEST_CS_AR_BYTES', 'GUEST_SS_AR_BYTES'], (v) => {
    const t = ar(v, SEG.CS) & 0xf;
    const dpl = (ar(v, SEG.CS) >> 5) & 3;
    const ssDpl = (ar(v, SEG.SS) >> 5) & 3;
    if (t === 3) return dpl === 0;
    if (t === 9 || t === 11) return dpl === ssDpl;
    return dpl <= ssDpl;
  }],
  ['guest CS access-rights reserved bits', 'guest', ['GUEST_CS_AR_BYTES'], (v) => arReservedOk(v, SEG.CS) && usable(v, SEG.CS)],
  ['guest CS limit consistent with G', 'guest', segFields('CS', 'LIMIT', 'AR_BYTES'), (v) => limitGOk(v, SEG.CS)],
  ['guest CS.L and CS.D/B', 'guest', ['VM_ENTRY_CONTROLS', 'GUEST_CS_AR_BYTES'], (v) => !ia32e(v) || (ar(v, SEG.CS) & 0x6000) !== 0x6000],
  ['guest SS type', 'guest', ['GUEST_SS_AR_BYTES'], (v) => !usable(v, SEG.SS) || (ar(v, SEG.SS) & 0xf) === 3 || (ar(v, SEG.SS) & 0xf) === 7],
  ['guest SS DPL', 'guest', ['GUEST_SS_AR_BYTES', 'GUEST_SS_SELECTOR', 'GUEST_CS_AR_BYTES', 'GUEST_CR0', ...CTL_DEPS], (v) => {
    const dpl = (ar(v, SEG.SS) >> 5) & 3;
    if ((ar(v, SEG.CS) & 0xf) === 3 || !(guestCr0(v) & CR0.PE)) return dpl === 0;
    return ug(v) || dpl === (sel(v, SEG.SS) & 3);
  }],
  ['guest SS S=1, present, reserved bits, limit', 'guest', segFields('SS', 'LIMIT', 'AR_BYTES'),
    (v) => !usable(v, SEG.SS) || ((ar(v, SEG.SS) & 0x90) === 0x90 && arReservedOk(v, SEG.SS) && limitGOk(v, SEG.SS))],
  ...dataSegChecks('DS'), ...dataSegChecks('ES'), ...dataSegChecks('FS'), ...dataSegChecks('GS'),
  ['guest TR type', 'guest', ['GUEST_TR_AR_BYTES', 'VM_ENTRY_CONTROLS'], (v) => {
    const t = ar(v, SEG.TR) & 0xf;
    return t === 11 || (!ia32e(v) && t === 3);
  }],
  ['guest TR S=0, present, usable, reserved bits, limit', 'guest', segFields('TR', 'LIMIT', 'AR_BYTES'),
    (v) => (ar(v, SEG.TR) & 0x90) === 0x80 && usable(v, SEG.TR) && arReservedOk(v, SEG.TR) && limitGOk(v, SEG.TR)],
  ['guest LDTR type, S=0, present, reserved bits, limit', 'guest', segFields('LDTR', 'LIMIT', 'AR_BYTES'),
    (v) => !usable(v, SEG.LDTR) || ((ar(v, SEG.LDTR) & 0x9f) === 0x82 && arReservedOk(v, SEG.LDTR) && limitGOk(v, SEG.LDTR))],
  // ---- 27.3.1.3 descriptor-table registers ----
  ['guest GDTR/IDTR bases canonical', 'guest', ['GUEST_GDTR_BASE', 'GUEST_IDTR_BASE'], (v) => canonical(v.readNum(F.GUEST_GDTR_BASE)) && canonical(v.readNum(F.GUEST_IDTR_BASE))],
  ['guest GDTR/IDTR limit bits 31:16 zero', 'guest', ['GUEST_GDTR_LIMIT', 'GUEST_IDTR_LIMIT'], (v) => (v.read32(F.GUEST_GDTR_LIMIT) >>> 16) === 0 && (v.read32(F.GUEST_IDTR_LIMIT) >>> 16) === 0],
  // ---- 27.3.1.4 RIP and RFLAGS ----
  ['guest RIP', 'guest', ['GUEST_RIP', 'VM_ENTRY_CONTROLS', 'GUEST_CS_AR_BYTES'],
    (v) => (ia32e(v) && (ar(v, SEG.CS) & 0x2000) !== 0 ? canonical(v.readNum(F.GUEST_RIP)) : hi32Zero(v, F.GUEST_RIP))],
  ['guest RFLAGS reserved bits', 'guest', ['GUEST_RFLAGS'], (v) => hi32Zero(v, F.GUEST_RFLAGS) && (v.lo[F.GUEST_RFLAGS]! & 0xffc08028) === 0 && (v.lo[F.GUEST_RFLAGS]! & 2) === 2],
  ['guest RFLAGS.VM', 'guest', ['GUEST_RFLAGS', 'VM_ENTRY_CONTROLS', 'GUEST_CR0'],
    (v) => !(v.lo[F.GUEST_RFLAGS]! & RFLAGS.VM) || (!ia32e(v) && (guestCr0(v) & CR0.PE) !== 0)],
  ['guest RFLAGS.IF for external-interrupt injection', 'guest', ['GUEST_RFLAGS', 'VM_ENTRY_INTR_INFO_FIELD'],
    (v) => !injecting(v, EVENT_TYPE.EXT_INTR) || (v.lo[F.GUEST_RFLAGS]! & RFLAGS.IF) !== 0],
  // ---- 27.3.1.5 non-register state ----
  ['guest activity state', 'guest', ['GUEST_ACTIVITY_STATE', 'GUEST_SS_AR_BYTES'], (v) => {
    const a = v.read32(F.GUEST_ACTIVITY_STATE);
    return a <= 3 && (a !== 1 || ((ar(v, SEG.SS) >> 5) & 3) === 0);
  }],
  ['guest interruptibility state', 'guest', ['GUEST_INTERRUPTIBILITY_INFO', 'GUEST_RFLAGS', 'VM_ENTRY_INTR_INFO_FIELD', 'PIN_BASED_VM_EXEC_CONTROL'], (v) => {
    const s = v.read32(F.GUEST_INTERRUPTIBILITY_INFO);
    if (s & ~0x1f || (s & 3) === 3 || s & 4) return false;
    if (s & 1 && !(v.lo[F.GUEST_RFLAGS]! & RFLAGS.IF)) return false;
    if ((injecting(v, EVENT_TYPE.EXT_INTR) || injecting(v, EVENT_TYPE.NMI)) && s & 3) return false;
    if (injecting(v, EVENT_TYPE.NMI) && v.read32(F.PIN_BASED_VM_EXEC_CONTROL) & PIN_BASED.VIRTUAL_NMIS && s & 8) return false;
    return true;
  }],
  ['guest pending debug exceptions', 'guest', ['GUEST_PENDING_DBG_EXCEPTIONS'], (v) => hi32Zero(v, F.GUEST_PENDING_DBG_EXCEPTIONS) && (v.lo[F.GUEST_PENDING_DBG_EXCEPTIONS]! & ~0x500f) === 0],
  // 27.3.1.5: FFFFFFFF_FFFFFFFFH, or (with VMCS shadowing, the shadow VMCS) a page inside the physical-address width.
  ['VMCS link pointer', 'guest', ['VMCS_LINK_POINTER', ...CTL_DEPS], (v) => (v.lo[F.VMCS_LINK_POINTER] === -1 && v.hi[F.VMCS_LINK_POINTER] === -1)
    || ((proc2(v) & SECONDARY_EXEC.SHADOW_VMCS) !== 0 && pageOk(v, F.VMCS_LINK_POINTER))],
];

function hostCr4(v: VmcsCache): number {
  return v.lo[F.HOST_CR4]! >>> 0;
}

export const ENTRY_CHECKS: readonly EntryCheck[] = ROWS.map(([name, cls, deps, ok]) => ({
  name,
  cls,
  deps: deps.filter((d): d is VmcsFieldName => d !== 'context').map((d) => F[d]),
  context: deps.includes('context'),
  ok,
}));

/**
 * For each field row, the checks that read it, as a bit set over check ids (bit k of word k>>5),
 * and the set of checks that always run: orderedFailure ORs the sets of the dirty fields and runs
 * the checks in id order, which is the SDM's.
 */
const WORDS = Math.ceil(ENTRY_CHECKS.length / 32);
const FIELD_CHECKS: Uint32Array = (() => {
  const t = new Uint32Array(FIELD_COUNT * WORDS);
  ENTRY_CHECKS.forEach((c, id) => c.deps.forEach((f) => { t[f * WORDS + (id >> 5)]! |= 1 << (id & 31); }));
  return t;
})();
const CONTEXT_CHECKS: Uint32Array = (() => {
  const t = new Uint32Array(WORDS);
  ENTRY_CHECKS.forEach((c, id) => { if (c.context) t[id >> 5]! |= 1 << (id & 31); });
  return t;
})();
const pending = new Uint32Array(WORDS);

/**
 * The same relation as lists, for the pass that only asks whether every due check holds: the ids
 * of the checks reading row f are FIELD_CHECK_IDS[FIELD_CHECK_START[f] .. FIELD_CHECK_START[f+1]).
 */
const FIELD_CHECK_START = new Int32Array(FIELD_COUNT + 1);
const FIELD_CHECK_IDS: Int16Array = (() => {
  const ids: number[] = [];
  for (let f = 0; f < FIELD_COUNT; f++) {
    FIELD_CHECK_START[f] = ids.length;
    ENTRY_CHECKS.forEach((c, id) => { if (c.deps.includes(f)) ids.push(id); });
  }
  FIELD_CHECK_START[FIELD_COUNT] = ids.length;
  return Int16Array.from(ids);
})();
const CONTEXT_CHECK_IDS: Int16Array = Int16Array.from(ENTRY_CHECKS.flatMap((c, id) => (c.context ? [id] : [])));

/** The exit qualification of an invalid-guest-state failure (SDM 27.8: 4 = VMCS link pointer). */
export function entryFailureQualification(check: EntryCheck): number {
  return check.name === 'VMCS link pointer' ? 4 : 0;
}

/** Runs every check in order; returns the first that fails, or null. */
export function fullEntryCheck(v: VmcsCache, c: EntryContext): EntryCheck | null {
  for (const chk of ENTRY_CHECKS) if (!chk.ok(v, c)) return chk;
  return null;
}

/**
 * Runs only the checks that read a field written since the last successful entry (plus the
 * context checks when `contextChanged`: the EntryContext differs from the one this VMCS last
 * passed with). Equivalent to fullEntryCheck provided the dirty set is cleared only after an entry
 * whose checks all passed. The checks are pure predicates, so the first pass runs them field by
 * field; only when one fails does orderedFailure find the first failure in the SDM's order.
 */
export function incrementalEntryCheck(v: VmcsCache, c: EntryContext, contextChanged: boolean): EntryCheck | null {
  if (contextChanged) {
    for (let k = 0; k < CONTEXT_CHECK_IDS.length; k++) if (!ENTRY_CHECKS[CONTEXT_CHECK_IDS[k]!]!.ok(v, c)) return orderedFailure(v, c, contextChanged);
  }
  const list = v.dirtyList;
  for (let k = 0; k < v.dirtyCount; k++) {
    const f = list[k]!;
    for (let j = FIELD_CHECK_START[f]!; j < FIELD_CHECK_START[f + 1]!; j++) {
      if (!ENTRY_CHECKS[FIELD_CHECK_IDS[j]!]!.ok(v, c)) return orderedFailure(v, c, contextChanged);
    }
  }
  return null;
}

/** The first failing check, in the SDM's order, among those incrementalEntryCheck runs. */
function orderedFailure(v: VmcsCache, c: EntryContext, contextChanged: boolean): EntryCheck | null {
  for (let w = 0; w < WORDS; w++) pending[w] = contextChanged ? CONTEXT_CHECKS[w]! : 0;
  const list = v.dirtyList;
  for (let k = 0; k < v.dirtyCount; k++) {
    const base = list[k]! * WORDS;
    for (let w = 0; w < WORDS; w++) pending[w]! |= FIELD_CHECKS[base + w]!;
  }
  for (let w = 0; w < WORDS; w++) {
    let bits = pending[w]!;
    while (bits !== 0) {
      const low = bits & -bits;
      const id = (w << 5) + 31 - Math.clz32(low);
      bits ^= low;
      const chk = ENTRY_CHECKS[id]!;
      if (!chk.ok(v, c)) return chk;
    }
  }
  return null;
}

/**
 * Which installed objects a field feeds: bit k for guest segment register k (its four fields),
 * GDTR_STALE and IDTR_STALE for the guest's tables, HOST_STATE_STALE for the host-state image
 * (every host-state field, and the VM-exit controls, which decide what an exit loads).
 */
const GDTR_STALE = 1 << 8;
const IDTR_STALE = 1 << 9;
export const HOST_STATE_STALE = 1 << 10;
const SEG_DEPS: Uint16Array = (() => {
  const t = new Uint16Array(FIELD_COUNT);
  for (let k = 0; k < 8; k++) {
    for (const base of [F.GUEST_ES_SELECTOR, F.GUEST_ES_BASE, F.GUEST_ES_LIMIT, F.GUEST_ES_AR_BYTES]) t[base + k] = 1 << k;
  }
  t[F.GUEST_GDTR_BASE] = t[F.GUEST_GDTR_LIMIT] = GDTR_STALE;
  t[F.GUEST_IDTR_BASE] = t[F.GUEST_IDTR_LIMIT] = IDTR_STALE;
  for (let i = 0; i < FIELD_COUNT; i++) if (FIELD_TYPE[i] === VMCS_TYPE.HOST) t[i] = HOST_STATE_STALE;
  t[F.VM_EXIT_CONTROLS] = HOST_STATE_STALE;
  return t;
})();

/**
 * The segment objects that fields written since the last successful entry make stale (the
 * dirty list is exactly those writes). Called before the entry clears it.
 */
export function segmentsStale(v: VmcsCache): number {
  let stale = 0;
  const list = v.dirtyList;
  for (let k = 0; k < v.dirtyCount; k++) stale |= SEG_DEPS[list[k]!]!;
  return stale;
}

/**
 * The segment registers, GDTR and IDTR of the guest-state area, as frozen objects kept per
 * VMCS: remade only when a field of theirs changed, so most entries install ten references. The
 * VM exit saves a register only when the guest replaced the object (the CPU never writes one in
 * place: LGDT and LIDT make new ones too).
 */
function loadGuestSegments(v: VmcsCache, cpu: VirtCpu, stale: number): void {
  const objs = v.guestSegs;
  for (let i = 0; i < 8; i++) {
    let o = objs[i];
    if (!o || stale & (1 << i)) {
      o = Object.freeze({
        selector: v.read32(F.GUEST_ES_SELECTOR + i), base: v.readNum(F.GUEST_ES_BASE + i),
        limit: v.read32(F.GUEST_ES_LIMIT + i), ar: v.read32(F.GUEST_ES_AR_BYTES + i),
      });
      objs[i] = o;
    }
    cpu.seg[i] = o;
  }
  const tables = v.guestTables;
  let gdtr = tables[0];
  if (!gdtr || stale & GDTR_STALE) tables[0] = gdtr = Object.freeze({ base: v.readNum(F.GUEST_GDTR_BASE), limit: v.read32(F.GUEST_GDTR_LIMIT) });
  let idtr = tables[1];
  if (!idtr || stale & IDTR_STALE) tables[1] = idtr = Object.freeze({ base: v.readNum(F.GUEST_IDTR_BASE), limit: v.read32(F.GUEST_IDTR_LIMIT) });
  cpu.gdtr = gdtr;
  cpu.idtr = idtr;
}

/** SDM 27.3.2: loads the guest-state area into the processor; `stale` is segmentsStale's answer. */
export function loadGuestState(v: VmcsCache, cpu: VirtCpu, stale: number): void {
  const entry = v.read32(F.VM_ENTRY_CONTROLS);
  cpu.cr0 = v.lo[F.GUEST_CR0]!;
  cpu.cr3 = v.readNum(F.GUEST_CR3);
  cpu.cr4 = v.lo[F.GUEST_CR4]!;
  if (entry & VM_ENTRY.LOAD_DEBUG_CONTROLS) cpu.dr[7] = v.readNum(F.GUEST_DR7);
  cpu.sysenterCs = v.read32(F.GUEST_SYSENTER_CS);
  cpu.sysenterEsp = v.readNum(F.GUEST_SYSENTER_ESP);
  cpu.sysenterEip = v.readNum(F.GUEST_SYSENTER_EIP);
  if (entry & VM_ENTRY.LOAD_IA32_EFER) {
    cpu.efer = v.lo[F.GUEST_IA32_EFER]!;
  } else {
    const lma = (entry & VM_ENTRY.IA32E_MODE) !== 0;
    let e = cpu.efer & ~(EFER.LMA | EFER.LME);
    if (lma) e |= EFER.LMA;
    if (lma && cpu.cr0 & CR0.PG) e |= EFER.LME;
    cpu.efer = e;
  }
  loadGuestSegments(v, cpu, stale);
  cpu.rip = v.readNum(F.GUEST_RIP);
  cpu.gpr[4] = v.lo[F.GUEST_RSP]!;
  cpu.gprHi[4] = v.hi[F.GUEST_RSP]!;
  cpu.setRflags(v.lo[F.GUEST_RFLAGS]!);
  cpu.interruptibility = v.read32(F.GUEST_INTERRUPTIBILITY_INFO);
  cpu.activity = v.read32(F.GUEST_ACTIVITY_STATE);
}

