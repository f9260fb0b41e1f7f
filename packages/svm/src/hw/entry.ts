/**
 * VMRUN's work after its own instruction checks (APM 15.5.1 "Basic Operation"):
 * save the host state at VM_HSAVE_PA, check the VMCB for consistency (15.5.1
 * "Canonicalization and Consistency Checks"), load the control area and the guest state,
 * flush by ASID as TLB_CONTROL says, and queue EVENTINJ for delivery before the first guest
 * instruction (15.20).
 */
import { AR, CR0, CR4, EFER, INTERRUPTIBILITY, makeSegment, type PhysMemory, type Segment, type VirtCpu } from '@kvmts/x86';
import { MAX_PA, MAXPHYADDR } from './caps.js';
import {
  INTERCEPT_BIT, SVM_EVTINJ, SVM_INTERRUPT_SHADOW_MASK, SVM_NESTED_CTL_NP_ENABLE, SWITCHED_SEG, TLB_CONTROL, cleanMaskAt,
  V_IRQ_MASK, V_TPR_MASK, VMCB, VMCB_CLEAN, VMCB_SEG,
} from './fields.js';
import { VmcbRegion, getAddr, getSeg, put64, putSeg, unsigned64 } from './region.js';
import { svmVmexitInvalid } from './exit.js';
import type { HostSaved } from './region.js';
import { flushIfPagingChanged } from './tdp.js';
import type { SvmSilicon } from './silicon.js';

/** Dword indices of the save-area fields VMRUN reads and writes. */
const SWITCHED_SEG_DW = SWITCHED_SEG.map((off) => off >>> 2);
const GDTR_DW = VMCB_SEG.gdtr >>> 2, IDTR_DW = VMCB_SEG.idtr >>> 2;
const EFER_DW = VMCB.efer >>> 2, CR0_DW = VMCB.cr0 >>> 2, CR2_DW = VMCB.cr2 >>> 2, CR3_DW = VMCB.cr3 >>> 2, CR4_DW = VMCB.cr4 >>> 2;
const DR6_DW = VMCB.dr6 >>> 2, DR7_DW = VMCB.dr7 >>> 2, RFLAGS_DW = VMCB.rflags >>> 2, RIP_DW = VMCB.rip >>> 2;
const RSP_DW = VMCB.rsp >>> 2, RAX_DW = VMCB.rax >>> 2, INT_STATE_DW = VMCB.int_state >>> 2;
const INTERCEPT_DW = VMCB.intercept_cr >>> 2, TSC_OFFSET_DW = VMCB.tsc_offset >>> 2, ASID_DW = VMCB.asid >>> 2;
const INT_CTL_DW = VMCB.int_ctl >>> 2, INT_VECTOR_DW = VMCB.int_vector >>> 2, NESTED_CTL_DW = VMCB.nested_ctl >>> 2, G_PAT_DW = VMCB.g_pat >>> 2;
const CLEAN_DW = VMCB.clean >>> 2, EVENT_INJ_DW = VMCB.event_inj >>> 2, NEXT_RIP_DW = VMCB.next_rip >>> 2;

/**
 * The host state VMRUN saves (APM 15.5.1): ES, CS, SS, DS, GDTR, IDTR, EFER, CR0, CR3, CR4,
 * RFLAGS, RIP (next), RSP, RAX. The processor keeps it (the segment and descriptor-table
 * registers as they are), and the host save area gets a copy, written where it changed since
 * the last VMRUN saved into the same area: the area's format is the processor's own, and
 * software must not write it (15.30.4).
 */
export function saveHost(svm: SvmSilicon, h: VmcbRegion, nextRip: number): void {
  const cpu = svm.cpu;
  const host = svm.host;
  const m = h.u32;
  const fresh = host.pa !== h.pa;
  host.pa = h.pa;
  // A register object still the one saved last time holds the same values (never changed in place).
  const seg = cpu.seg;
  for (let i = 0; i < 4; i++) {
    const s = seg[i]!;
    if (fresh || host.seg[i] !== s) putSeg(m, SWITCHED_SEG_DW[i]!, (host.seg[i] = s));
  }
  const gdtr = cpu.gdtr;
  if (fresh || host.gdtr !== gdtr) {
    host.gdtr = gdtr;
    m[GDTR_DW + 1] = gdtr.limit;
    put64(m, GDTR_DW + 2, gdtr.base);
  }
  const idtr = cpu.idtr;
  if (fresh || host.idtr !== idtr) {
    host.idtr = idtr;
    m[IDTR_DW + 1] = idtr.limit;
    put64(m, IDTR_DW + 2, idtr.base);
  }
  // EFER, CR0, CR4 and RFLAGS are 32 bits wide here: their high dwords are zero.
  const efer = cpu.efer;
  if (fresh || host.efer !== efer) { host.efer = efer; m[EFER_DW] = efer; m[EFER_DW + 1] = 0; }
  const cr0 = cpu.cr0 >>> 0;
  if (fresh || host.cr0 !== cr0) { host.cr0 = cr0; m[CR0_DW] = cr0; m[CR0_DW + 1] = 0; }
  const cr3 = cpu.cr3;
  if (fresh || host.cr3 !== cr3) { host.cr3 = cr3; put64(m, CR3_DW, cr3); }
  const cr4 = cpu.cr4 >>> 0;
  if (fresh || host.cr4 !== cr4) { host.cr4 = cr4; m[CR4_DW] = cr4; m[CR4_DW + 1] = 0; }
  const rflags = cpu.getRflags() >>> 0;
  if (fresh || host.rflags !== rflags) { host.rflags = rflags; m[RFLAGS_DW] = rflags; m[RFLAGS_DW + 1] = 0; }
  if (fresh || host.rip !== nextRip) { host.rip = nextRip; put64(m, RIP_DW, nextRip); }
  const gpr = cpu.gpr;
  const gprHi = cpu.gprHi;
  if (fresh || host.rspLo !== gpr[4]) m[RSP_DW] = host.rspLo = gpr[4]!;
  if (fresh || host.rspHi !== gprHi[4]) m[RSP_DW + 1] = host.rspHi = gprHi[4]!;
  if (fresh || host.raxLo !== gpr[0]) m[RAX_DW] = host.raxLo = gpr[0]!;
  if (fresh || host.raxHi !== gprHi[0]) m[RAX_DW + 1] = host.raxHi = gprHi[0]!;
}

/** EFER bits that exist (SCE, LME, LMA, NXE, SVME, LMSLE, FFXSR, TCE); the rest must be zero. */
const EFER_VALID = 0x1 | 0x100 | 0x400 | 0x800 | 0x1000 | 0x2000 | 0x4000 | 0x8000;
/** CR4 bits this CPU implements; VMXE and SMXE are Intel's and reserved here. */
const CR4_VALID = Object.values(CR4).reduce((m, b) => m | b, 0) & ~(CR4.VMXE | CR4.SMXE);

/** One consistency check: the APM's wording, the VMCB dwords it reads, and the test for failure. */
export interface VmrunCheck {
  readonly name: string;
  readonly deps: readonly number[];
  readonly fails: (v: VmcbRegion) => boolean;
}

const check = (name: string, deps: readonly number[], fails: (v: VmcbRegion) => boolean): VmrunCheck => ({ name, deps, fails });
const EFER_LO = VMCB.efer, CR0_LO = VMCB.cr0, CR4_LO = VMCB.cr4, CS_SEL_ATTRIB = VMCB_SEG.cs;

/** The consistency checks (APM 15.5.1), in the APM's order. */
export const VMRUN_CHECKS: readonly VmrunCheck[] = [
  check('EFER.SVME is zero', [EFER_LO], (v) => (v.r32(VMCB.efer) & EFER.SVME) === 0),
  check('CR0.CD is zero and CR0.NW is set', [CR0_LO], (v) => (v.r32(VMCB.cr0) & (CR0.CD | CR0.NW)) === CR0.NW),
  check('CR0[63:32] are not zero', [VMCB.cr0 + 4], (v) => v.r32(VMCB.cr0 + 4) !== 0),
  check('any MBZ bit of CR3 is set', [EFER_LO, VMCB.cr3 + 4], (v) => {
    const lma = (v.r32(VMCB.efer) & EFER.LMA) !== 0;
    const hi = v.r32(VMCB.cr3 + 4);
    return lma ? hi >>> (MAXPHYADDR - 32) !== 0 : hi !== 0;
  }),
  check('any MBZ bit of CR4 is set', [CR4_LO, VMCB.cr4 + 4], (v) => (v.r32(VMCB.cr4) & ~CR4_VALID) !== 0 || v.r32(VMCB.cr4 + 4) !== 0),
  check('DR6[63:32] are not zero', [VMCB.dr6 + 4], (v) => v.r32(VMCB.dr6 + 4) !== 0),
  check('DR7[63:32] are not zero', [VMCB.dr7 + 4], (v) => v.r32(VMCB.dr7 + 4) !== 0),
  check('any MBZ bit of EFER is set', [EFER_LO, VMCB.efer + 4], (v) => (v.r32(VMCB.efer) & ~EFER_VALID) !== 0 || v.r32(VMCB.efer + 4) !== 0),
  check('EFER.LME and CR0.PG are both set and CR4.PAE is zero', [EFER_LO, CR0_LO, CR4_LO], (v) =>
    (v.r32(VMCB.efer) & EFER.LME) !== 0 && (v.r32(VMCB.cr0) & CR0.PG) !== 0 && (v.r32(VMCB.cr4) & CR4.PAE) === 0),
  check('EFER.LME and CR0.PG are both non-zero and CR0.PE is zero', [EFER_LO, CR0_LO], (v) =>
    (v.r32(VMCB.efer) & EFER.LME) !== 0 && (v.r32(VMCB.cr0) & CR0.PG) !== 0 && (v.r32(VMCB.cr0) & CR0.PE) === 0),
  check('EFER.LME, CR0.PG, CR4.PAE, CS.L, and CS.D are all non-zero', [EFER_LO, CR0_LO, CR4_LO, CS_SEL_ATTRIB], (v) => {
    const attrib = v.r16(VMCB_SEG.cs + 2);
    return (v.r32(VMCB.efer) & EFER.LME) !== 0 && (v.r32(VMCB.cr0) & CR0.PG) !== 0 &&
      (v.r32(VMCB.cr4) & CR4.PAE) !== 0 && (attrib & 0x200) !== 0 && (attrib & 0x400) !== 0;
  }),
  check('the VMRUN intercept bit is clear', [VMCB.intercept_misc2], (v) => (v.r32(VMCB.intercept_misc2) & (1 << (INTERCEPT_BIT.VMRUN - 128))) === 0),
  check('the MSR or IOIO intercept tables extend to a physical address that is greater than or equal to the maximum supported physical address',
    [VMCB.msrpm_base_pa, VMCB.msrpm_base_pa + 4, VMCB.iopm_base_pa, VMCB.iopm_base_pa + 4], (v) =>
      unsigned64(v.r32(VMCB.msrpm_base_pa), v.r32(VMCB.msrpm_base_pa + 4)) - (v.r32(VMCB.msrpm_base_pa) & 0xfff) + 2 * 4096 > MAX_PA ||
      unsigned64(v.r32(VMCB.iopm_base_pa), v.r32(VMCB.iopm_base_pa + 4)) - (v.r32(VMCB.iopm_base_pa) & 0xfff) + 3 * 4096 > MAX_PA),
  check('illegal event injection', [VMCB.event_inj], (v) => {
    const inj = v.r32(VMCB.event_inj);
    if (!(inj & SVM_EVTINJ.VALID)) return false;
    const type = (inj & SVM_EVTINJ.TYPE_MASK) >>> 8;
    const vec = inj & SVM_EVTINJ.VEC_MASK;
    if (type === 1 || type > 4) return true; // reserved types
    if (type === 3 && (vec === 2 || vec > 31)) return true; // an "exception" that is NMI, or beyond 31
    return (inj & (0x7ffff000 & ~SVM_EVTINJ.VALID)) !== 0; // reserved bits 30:12
  }),
  check('ASID is equal to zero', [VMCB.asid], (v) => v.r32(VMCB.asid) === 0),
];

/** Every dword some check reads, and for each check the bit mask of its dwords in that list. */
const CHECK_DWORDS = [...new Set(VMRUN_CHECKS.flatMap((c) => c.deps))];
const CHECK_DWORD_INDEX = Int32Array.from(CHECK_DWORDS, (off) => off >>> 2);
const CHECK_MASKS = VMRUN_CHECKS.map((c) => c.deps.reduce((m, d) => m | (1 << CHECK_DWORDS.indexOf(d)), 0));
/**
 * The checked dwords by the clean bit covering them (state the processor takes from its cache was
 * checked when it was loaded), and those no clean bit covers, which every VMRUN reads.
 */
const dwordsCoveredBy = (mask: number): Int32Array =>
  Int32Array.from(CHECK_DWORDS.flatMap((off, i) => (cleanMaskAt(off) === mask ? [i] : [])));
const CHECK_DWORDS_BY_CLEAN_BIT = Array.from({ length: 32 }, (_, bit) => dwordsCoveredBy(1 << bit));
const CHECK_DWORDS_UNCOVERED = dwordsCoveredBy(0);
/** The clean bits covering some checked dword. */
const CHECKED_CLEAN_BITS = CHECK_DWORDS.reduce((m, off) => m | cleanMaskAt(off), 0);

/** Runs every check; the first failure's name, or null. */
export function svmVmrunConsistencyCheck(v: VmcbRegion): string | null {
  for (const c of VMRUN_CHECKS) if (c.fails(v)) return c.name;
  return null;
}

/**
 * The checked dwords of one VMCB as of its last VMRUN that passed every check, so the next VMRUN
 * re-runs only the checks whose inputs changed (the silicon's own dirty set; the VMCB clean bits
 * are a hint KVM maintains, this needs none).
 */
export class VmrunCheckCache {
  readonly words = new Uint32Array(CHECK_DWORDS.length);
  valid = false;
}

/**
 * The incremental form of svmVmrunConsistencyCheck: the same answer, re-checking only what changed.
 * `clean` is the VMCB clean bits this VMRUN honours: the groups they mark are taken from state
 * already checked, so their dwords are not read again.
 */
export function svmVmrunConsistencyCheckIncremental(v: VmcbRegion, cache: VmrunCheckCache, clean = 0): string | null {
  const m = v.u32;
  const words = cache.words;
  let changed = compareDwords(m, words, CHECK_DWORDS_UNCOVERED);
  for (let dirty = cache.valid ? CHECKED_CLEAN_BITS & ~clean : CHECKED_CLEAN_BITS; dirty !== 0; dirty &= dirty - 1) {
    changed |= compareDwords(m, words, CHECK_DWORDS_BY_CLEAN_BIT[31 - Math.clz32(dirty & -dirty)]!);
  }
  if (cache.valid && changed === 0) return null;
  const all = !cache.valid;
  for (let i = 0; i < VMRUN_CHECKS.length; i++) {
    if ((all || (CHECK_MASKS[i]! & changed) !== 0) && VMRUN_CHECKS[i]!.fails(v)) {
      cache.valid = false;
      return VMRUN_CHECKS[i]!.name;
    }
  }
  cache.valid = true;
  return null;
}

/** Takes the checked dwords `which` (indices into CHECK_DWORDS) into `words`; the mask of those that changed. */
function compareDwords(m: Uint32Array, words: Uint32Array, which: Int32Array): number {
  let changed = 0;
  for (let j = 0; j < which.length; j++) {
    const i = which[j]!;
    const w = m[CHECK_DWORD_INDEX[i]!]!;
    if (w !== words[i]) { words[i] = w; changed |= 1 << i; }
  }
  return changed;
}

/**
 * VMRUN of the VMCB at `vmcbPa`: returns true once the guest state is loaded and the CPU is in
 * guest mode, false after a #VMEXIT(INVALID) (the host state is back, `svm.entryFailure` names
 * the check).
 */
export function svmEnterGuest(svm: SvmSilicon, vmcbPa: number, hostNextRip: number): boolean {
  const cpu = svm.cpu;
  saveHost(svm, svm.hsave(), hostNextRip);
  const page = svm.pageOf(vmcbPa);
  const v = page.region;
  const m = v.u32;
  svm.vmcb = v;
  svm.hostCr8 = cpu.cr8;
  // Clean bits count only for the VMCB whose state this processor holds (15.15.3).
  const clean = vmcbPa === svm.cachedVmcbPa ? m[CLEAN_DW]! : 0;
  const failed = svmVmrunConsistencyCheckIncremental(v, page.checks, clean);
  svm.entryFailure = failed;
  if (failed !== null) {
    svmVmexitInvalid(svm, v);
    return false;
  }
  svm.cachedVmcbPa = vmcbPa;
  loadControl(svm, v, clean);
  loadGuest(svm, v, clean);
  svm.guest = true;
  svm.gif = true;
  // TLB: the guest's translations live under its ASID (15.16).
  cpu.setTlbTag(svm.asid);
  const tlbCtl = v.r8(VMCB.tlb_ctl);
  if (tlbCtl === TLB_CONTROL.FLUSH_ALL_ASID) cpu.flushTlb();
  else if (tlbCtl === TLB_CONTROL.FLUSH_ASID || tlbCtl === TLB_CONTROL.FLUSH_ASID_LOCAL) cpu.flushTlb(svm.asid);
  else flushIfPagingChanged(cpu, svm.asid, svm.paging);
  // EVENTINJ is delivered before the first guest instruction, from inside the run loop so that
  // a fault while delivering it can #VMEXIT like any other.
  const inj = m[EVENT_INJ_DW]!;
  if (inj & SVM_EVTINJ.VALID) {
    svm.pendingInj = inj;
    svm.pendingInjErr = m[EVENT_INJ_DW + 1]!;
    svm.pendingInjNextRip = getAddr(m, NEXT_RIP_DW);
  }
  if (svm.pendingInj !== 0 || (svm.intCtl & V_IRQ_MASK) !== 0 || cpu.pendingInterrupt >= 0 || cpu.pendingNmi) cpu.attention = true;
  return true;
}

const isDirty = (clean: number, bit: number): boolean => (clean & (1 << bit)) === 0;

/** The IOPM is 12 KiB, the MSRPM 8 KiB (15.10.1, 15.11). */
const IOPM_BYTES = 3 * 4096;
const MSRPM_BYTES = 2 * 4096;

/** A live view of [pa, pa+len) when it lies in DRAM inside one backing chunk, else null. */
function mapView(mem: PhysMemory, pa: number, len: number): Uint8Array | null {
  if (!mem.contains(pa) || !mem.contains(pa + len - 1)) return null;
  const chunk = mem.chunk(pa);
  const at = pa % chunk.length;
  return at + len <= chunk.length ? chunk.subarray(at, at + len) : null;
}

/** The control area the silicon acts on while the guest runs, read at VMRUN unless clean. */
function loadControl(svm: SvmSilicon, v: VmcbRegion, clean: number): void {
  const m = v.u32;
  if (isDirty(clean, VMCB_CLEAN.INTERCEPTS)) {
    for (let i = 0; i < 6; i++) svm.intercepts[i] = m[INTERCEPT_DW + i]!;
    svm.pauseFilterCount = v.r16(VMCB.pause_filter_count);
    const offLo = m[TSC_OFFSET_DW]!;
    const offHi = m[TSC_OFFSET_DW + 1]!;
    if (offLo !== svm.tscOffsetLo || offHi !== svm.tscOffsetHi) {
      svm.tscOffsetLo = offLo;
      svm.tscOffsetHi = offHi;
      svm.tscOffsetBig = BigInt.asIntN(64, (BigInt(offHi) << 32n) | BigInt(offLo));
    }
  }
  svm.pauseFilterLeft = svm.pauseFilterCount;
  if (isDirty(clean, VMCB_CLEAN.PERM_MAP)) {
    svm.iopmPa = v.rPa(VMCB.iopm_base_pa) - (v.r32(VMCB.iopm_base_pa) & 0xfff);
    svm.msrpmPa = v.rPa(VMCB.msrpm_base_pa) - (v.r32(VMCB.msrpm_base_pa) & 0xfff);
    svm.iopm = mapView(svm.mem, svm.iopmPa, IOPM_BYTES);
    svm.msrpm = mapView(svm.mem, svm.msrpmPa, MSRPM_BYTES);
  }
  if (isDirty(clean, VMCB_CLEAN.ASID)) svm.asid = m[ASID_DW]!;
  if (isDirty(clean, VMCB_CLEAN.INTR)) {
    svm.intCtl = m[INT_CTL_DW]!;
    svm.intVector = m[INT_VECTOR_DW]! & 0xff;
  }
  svm.npEnable = (m[NESTED_CTL_DW]! & SVM_NESTED_CTL_NP_ENABLE) !== 0;
  if (isDirty(clean, VMCB_CLEAN.NPT)) {
    svm.nCr3 = v.rPa(VMCB.nested_cr3);
    svm.gPatLo = m[G_PAT_DW]!;
    svm.gPatHi = m[G_PAT_DW + 1]!;
  }
}

/**
 * The guest state VMRUN loads (APM 15.5.1); FS, GS, TR, LDTR and the syscall MSRs are VMLOAD's.
 * Groups the clean bits mark come from what this processor kept at the last #VMEXIT.
 */
function loadGuest(svm: SvmSilicon, v: VmcbRegion, clean: number): void {
  const cpu = svm.cpu;
  const m = v.u32;
  const kept = svm.guestSeg;
  // A reload may differ from the VMCB (CS made usable): the next #VMEXIT writes all of them.
  if (isDirty(clean, VMCB_CLEAN.SEG) || isDirty(clean, VMCB_CLEAN.DT)) svm.vmcbSegsCurrent = false;
  if (isDirty(clean, VMCB_CLEAN.SEG)) {
    // New register objects: the CPU never changes one in place, and block chains go by identity.
    for (let i = 0; i < 4; i++) {
      const o = makeSegment();
      getSeg(m, SWITCHED_SEG_DW[i]!, o);
      kept[i] = o;
    }
    // CS is always usable, even with a zero attribute in real mode as some VMMs leave it.
    kept[1]!.ar &= ~AR.UNUSABLE;
  }
  const seg = cpu.seg;
  seg[0] = kept[0]!;
  seg[1] = kept[1]!;
  seg[2] = kept[2]!;
  seg[3] = kept[3]!;
  if (isDirty(clean, VMCB_CLEAN.DT)) {
    svm.guestGdtr = v.readDtr(VMCB_SEG.gdtr);
    svm.guestIdtr = v.readDtr(VMCB_SEG.idtr);
  }
  cpu.gdtr = svm.guestGdtr;
  cpu.idtr = svm.guestIdtr;
  if (isDirty(clean, VMCB_CLEAN.CR)) {
    svm.guestEfer = m[EFER_DW]!;
    svm.guestCr0 = m[CR0_DW]! | 0;
    svm.guestCr3 = v.rPa(VMCB.cr3);
    svm.guestCr4 = m[CR4_DW]!;
  }
  cpu.efer = svm.guestEfer;
  cpu.cr0 = svm.guestCr0;
  cpu.cr3 = svm.guestCr3;
  cpu.cr4 = svm.guestCr4;
  cpu.cr2 = getAddr(m, CR2_DW);
  if (isDirty(clean, VMCB_CLEAN.DR)) {
    svm.guestDr6 = m[DR6_DW]!;
    svm.guestDr7 = m[DR7_DW]!;
  }
  cpu.dr[6] = svm.guestDr6;
  cpu.dr[7] = svm.guestDr7;
  cpu.setRflags(m[RFLAGS_DW]!);
  cpu.rip = getAddr(m, RIP_DW);
  cpu.gpr[4] = m[RSP_DW]!; cpu.gprHi[4] = m[RSP_DW + 1]!;
  cpu.gpr[0] = m[RAX_DW]!; cpu.gprHi[0] = m[RAX_DW + 1]!;
  cpu.cr8 = svm.intCtl & V_TPR_MASK;
  cpu.interruptibility = m[INT_STATE_DW]! & SVM_INTERRUPT_SHADOW_MASK ? INTERRUPTIBILITY.STI : 0;
  cpu.worldSwitched();
}
