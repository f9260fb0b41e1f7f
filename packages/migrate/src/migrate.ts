/**
 * Live migration of a running VM to another host, through the uapi only: what QEMU's
 * migration/ram.c and target/i386/kvm/kvm.c do, reduced to one VMM that owns both ends.
 *
 * 1. Pre-copy: KVM_MEM_LOG_DIRTY_PAGES on every slot, copy all memory, then rounds of
 *    KVM_GET_DIRTY_LOG while the guest keeps running, until the dirty set is small.
 * 2. Stop and copy: the VMM stops running the vCPUs; KVM_RUN with immediate_exit completes any
 *    I/O the VMM already answered; the last dirty pages, then CPUID2, SREGS, REGS, XSAVE, FPU,
 *    XCRS, MSRS, (same vendor) NESTED_STATE, VCPU_EVENTS and MP_STATE.
 * 3. Restore into a new VM on the target, and destroy the source.
 *
 * Across vendors the guest keeps the CPUID it booted with. A VM with nested state (in VMX
 * operation, or running L2) cannot cross vendors: vmcs12 is not vmcb12. That is refused before
 * anything is touched, and the VM keeps running where it is.
 */
import { KVM_MEM, KVM_STATE_NESTED, KvmError, type Host, type VcpuFd } from '@kvmts/core';
import { PAGE_SIZE } from '@kvmts/x86';
import { createVmHandle, destroyVmHandle, type VmHandle } from './vm-handle.js';
import { parseNestedState, type NestedState } from './nested-state.js';

export interface MigrationOptions {
  /** Pre-copy rounds after the first full copy, at most. */
  readonly maxRounds?: number;
  /** Stop pre-copy once a round finds at most this many dirty pages. */
  readonly dirtyThreshold?: number;
  /** Lets the guest run between pre-copy rounds (the VMM runs its vCPUs for a while, handling exits). */
  readonly runSlice?: (round: number) => void;
}

export interface MigrationStats {
  readonly from: string;
  readonly to: string;
  /** Pre-copy rounds after the first full copy. */
  readonly rounds: number;
  /** Pages copied in all, and per pass (the first full pass, each pre-copy round, then the stop-and-copy). */
  readonly pagesSent: number;
  readonly pagesPerPass: readonly number[];
  /** From stopping the vCPUs to the target being ready to run, µs. */
  readonly downtimeUs: number;
  /** The whole migration, ms. */
  readonly totalMs: number;
  /** MSRs the source had that the target refused (index, hex). */
  readonly msrsDropped: readonly string[];
}

export interface MigrationResult {
  readonly vm: VmHandle;
  readonly stats: MigrationStats;
}

/** The migration was refused; the source VM is untouched and keeps running. */
export class MigrationRefused extends Error {
  override readonly name = 'MigrationRefused';
}

const DEFAULTS = { maxRounds: 8, dirtyThreshold: 16 } as const;

export function migrateVm(src: VmHandle, target: Host, opts: MigrationOptions = {}): MigrationResult {
  const t0 = performance.now();
  const from = src.host.model.vendor;
  const to = target.model.vendor;
  const nested = src.vcpus.map(readNestedState);
  if (from !== to) {
    refuseCrossVendorNested(nested);
    src.vcpus.forEach(refuseVendorOnlyState);
  }

  setDirtyLogging(src, true);
  let dst: VmHandle | null = null;
  try {
    dst = createVmHandle(target, src.slots, src.vcpus.length);
    const passes: number[] = [copyAll(src, dst)];
    const maxRounds = opts.maxRounds ?? DEFAULTS.maxRounds;
    const threshold = opts.dirtyThreshold ?? DEFAULTS.dirtyThreshold;
    let rounds = 0;
    while (opts.runSlice && rounds < maxRounds) {
      opts.runSlice(rounds);
      rounds++;
      const n = copyDirty(src, dst);
      passes.push(n);
      if (n <= threshold) break;
    }

    const stop = performance.now();
    for (const v of src.vcpus) completePendingIo(v);
    passes.push(copyDirty(src, dst));
    const msrList = commonMsrs(src, dst);
    const msrsDropped: string[] = [];
    src.vcpus.forEach((v, i) => moveVcpuState(v, dst!.vcpus[i]!, msrList, from === to ? nested[i] ?? null : null, msrsDropped));
    const downtimeUs = (performance.now() - stop) * 1000;

    destroyVmHandle(src);
    return {
      vm: dst,
      stats: {
        from, to, rounds,
        pagesSent: passes.reduce((a, b) => a + b, 0),
        pagesPerPass: passes,
        downtimeUs,
        totalMs: performance.now() - t0,
        msrsDropped,
      },
    };
  } catch (e) {
    // Leave the source as it was: no dirty logging, no half-built target.
    if (dst) destroyVmHandle(dst);
    setDirtyLogging(src, false);
    throw e;
  }
}

function readNestedState(v: VcpuFd): NestedState | null {
  try {
    return parseNestedState(v.getNestedState());
  } catch (e) {
    // No nested support in the module (ENOTTY/EINVAL): nothing to carry.
    if (e instanceof KvmError) return null;
    throw e;
  }
}

function refuseCrossVendorNested(states: readonly (NestedState | null)[]): void {
  states.forEach((s, id) => {
    if (!s) return;
    if (s.flags & KVM_STATE_NESTED.GUEST_MODE) {
      throw new MigrationRefused(`vCPU ${id} is running a nested guest (L2): its ${s.format} state cannot move to the other vendor`);
    }
    if (s.format === 'vmx' && s.vmxonPa !== -1n) {
      throw new MigrationRefused(`vCPU ${id} is in VMX operation (VMXON at 0x${s.vmxonPa.toString(16)}): vmcs12 has no AMD equivalent`);
    }
  });
}

/** CR4.VMXE (Intel only) and EFER.SVME (AMD only): control bits the other vendor's vCPU does not have. */
const CR4_VMXE = 1n << 13n;
const EFER_SVME = 1n << 12n;

/**
 * A guest that enabled its vendor's virtualization extension (L1 between VMXOFF and the next
 * VMXON still has CR4.VMXE) holds state the other vendor cannot load: AMD's VMRUN fails with a
 * reserved CR4 bit, Intel has no EFER.SVME.
 */
function refuseVendorOnlyState(v: VcpuFd, id: number): void {
  const s = v.getSregs();
  if (s.cr4 & CR4_VMXE) throw new MigrationRefused(`vCPU ${id} has CR4.VMXE set: it uses Intel VMX, which an AMD vCPU does not have`);
  if (s.efer & EFER_SVME) throw new MigrationRefused(`vCPU ${id} has EFER.SVME set: it uses AMD SVM, which an Intel vCPU does not have`);
}

function setDirtyLogging(h: VmHandle, on: boolean): void {
  for (const s of h.slots) {
    h.vm.setUserMemoryRegion({
      slot: s.slot, guestPhysAddr: s.guestPhysAddr, memorySize: s.memorySize, userspaceAddr: s.userspaceAddr,
      flags: on ? s.flags | KVM_MEM.LOG_DIRTY_PAGES : s.flags,
    });
  }
}

/** Pages read from the source per readUser in the first full copy (fewer, larger reads). */
const CHUNK_PAGES = 64;

function readPages(src: VmHandle, slot: number, page: number, count: number): Uint8Array {
  const s = src.slots[slot]!;
  const bytes = src.proc.readUser(s.userspaceAddr + page * PAGE_SIZE, count * PAGE_SIZE);
  if (!bytes) throw new Error(`slot ${s.slot}: pages ${page}..${page + count - 1} of the source are not mapped`);
  return bytes;
}

function writePage(dst: VmHandle, slot: number, page: number, bytes: Uint8Array): void {
  const d = dst.slots[slot]!;
  if (!dst.proc.writeUser(d.userspaceAddr + page * PAGE_SIZE, bytes)) throw new Error(`slot ${d.slot}: page ${page} of the target is not mapped`);
}

/** A word at a time: this runs over every page of guest memory on each migration. */
function isZeroPage(bytes: Uint8Array): boolean {
  if (bytes.byteOffset % 4 !== 0) return bytes.every((b) => b === 0);
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length >> 2);
  for (let i = 0; i < words.length; i++) if (words[i] !== 0) return false;
  return true;
}

function copyAll(src: VmHandle, dst: VmHandle): number {
  let sent = 0;
  // Start the dirty log from here: what is written after this point is sent again.
  src.slots.forEach((s) => src.vm.getDirtyLog(s.slot, s.memorySize));
  src.slots.forEach((s, i) => {
    const pages = s.memorySize / PAGE_SIZE;
    for (let first = 0; first < pages; first += CHUNK_PAGES) {
      const n = Math.min(CHUNK_PAGES, pages - first);
      const chunk = readPages(src, i, first, n);
      for (let k = 0; k < n; k++) {
        const page = chunk.subarray(k * PAGE_SIZE, (k + 1) * PAGE_SIZE);
        // The target's fresh anonymous memory is already zero.
        if (isZeroPage(page)) continue;
        writePage(dst, i, first + k, page);
        sent++;
      }
    }
  });
  return sent;
}

function copyDirty(src: VmHandle, dst: VmHandle): number {
  let sent = 0;
  src.slots.forEach((s, i) => {
    const bitmap = src.vm.getDirtyLog(s.slot, s.memorySize);
    for (let byte = 0; byte < bitmap.length; byte++) {
      const bits = bitmap[byte]!;
      if (bits === 0) continue;
      for (let bit = 0; bit < 8; bit++) {
        if (bits & (1 << bit)) {
          const page = byte * 8 + bit;
          writePage(dst, i, page, readPages(src, i, page, 1));
          sent++;
        }
      }
    }
  });
  return sent;
}

/** KVM_RUN with immediate_exit: finishes an IN or MMIO read the VMM has answered, then returns -EINTR. */
function completePendingIo(v: VcpuFd): void {
  v.immediateExit = true;
  try {
    const exit = v.run();
    if (exit.kind !== 'Intr') throw new Error(`KVM_RUN with immediate_exit returned ${exit.kind}, not -EINTR`);
  } finally {
    v.immediateExit = false;
  }
}

/** MSRs both modules save and restore (KVM_GET_MSR_INDEX_LIST on each side). */
function commonMsrs(src: VmHandle, dst: VmHandle): number[] {
  const theirs = new Set(dst.kvm.getMsrIndexList());
  return src.kvm.getMsrIndexList().filter((i) => theirs.has(i));
}

/**
 * One KVM_GET_MSRS and one KVM_SET_MSRS for the whole list, as QEMU does. Both stop at the first
 * MSR refused: it is skipped (a get) or recorded as dropped (a set), and the rest goes on.
 */
function copyMsrs(from: VcpuFd, to: VcpuFd, msrs: readonly number[], dropped: string[]): void {
  const entries: { index: number; data: bigint }[] = [];
  for (let i = 0; i < msrs.length;) {
    const got = from.getMsrs(msrs.slice(i));
    for (const [index, data] of got) entries.push({ index, data });
    i += got.size + 1;
  }
  for (let i = 0; i < entries.length;) {
    const n = to.setMsrs(entries.slice(i));
    if (i + n < entries.length) dropped.push(`0x${entries[i + n]!.index.toString(16)}`);
    i += n + 1;
  }
}

function moveVcpuState(from: VcpuFd, to: VcpuFd, msrs: readonly number[], nested: NestedState | null, dropped: string[]): void {
  // CPUID first: KVM checks later state (CR4 bits, MSRs) against the guest's CPUID.
  to.setCpuid2(from.getCpuid2());
  to.setSregs(from.getSregs());
  to.setRegs(from.getRegs());
  moveFpuState(from, to);
  copyMsrs(from, to, msrs, dropped);
  if (nested) to.setNestedState(nested.raw);
  to.setVcpuEvents(from.getVcpuEvents());
  to.setMpState(from.getMpState());
}

/**
 * The guest FPU: KVM_SET_XSAVE carries x87, SSE, MXCSR and XSTATE_BV (QEMU's kvm_put_xsave);
 * KVM_SET_FPU after it carries the legacy fields of components XSTATE_BV marks as in their init
 * state, which the XSAVE image reports as init values, so GET_FPU reads the same on both ends.
 * XCR0 after CPUID, which bounds it (__kvm_set_xcr checks it against CPUID leaf 0xD).
 */
function moveFpuState(from: VcpuFd, to: VcpuFd): void {
  to.setXsave(from.getXsave());
  to.setFpu(from.getFpu());
  to.setXcrs(from.getXcrs());
}
