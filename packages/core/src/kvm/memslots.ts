/**
 * Memslots and the rules of __kvm_set_memory_region (virt/kvm/kvm_main.c): create, move,
 * change flags, delete; alignment, overlap and range checks with Linux's errnos.
 */
import { PAGE_SIZE } from '@kvmts/x86';
import { ERRNO } from '../uapi/errno.js';
import { KVM_LIMITS, KVM_MEM } from '../uapi/constants.js';

export interface Memslot {
  /** The slot number as userspace gave it: as_id << 16 | id. */
  readonly slot: number;
  readonly asId: number;
  readonly baseGfn: number;
  readonly npages: number;
  readonly userspaceAddr: number;
  readonly flags: number;
  /** One bit per page while KVM_MEM_LOG_DIRTY_PAGES is set. */
  readonly dirtyBitmap: Uint8Array | null;
}

export interface UserspaceMemoryRegion {
  slot: number;
  flags: number;
  guestPhysAddr: number;
  memorySize: number;
  userspaceAddr: number;
}

/** enum kvm_mr_change. */
export const KVM_MR = { CREATE: 0, DELETE: 1, MOVE: 2, FLAGS_ONLY: 3 } as const;
export type KvmMrChange = (typeof KVM_MR)[keyof typeof KVM_MR];

const VALID_FLAGS = KVM_MEM.LOG_DIRTY_PAGES | KVM_MEM.READONLY;

export function dirtyBitmapBytes(npages: number): number {
  // kvm_dirty_bitmap_bytes: rounded up to a multiple of 64 bits.
  return Math.ceil(npages / 64) * 8;
}

export class Memslots {
  private readonly byId = new Map<number, Memslot>();
  private last: Memslot | null = null;

  /** A slot's current state, by userspace slot number. */
  get(slot: number): Memslot | undefined {
    return this.byId.get(slot);
  }

  all(): Memslot[] {
    return [...this.byId.values()].sort((a, b) => a.asId - b.asId || a.baseGfn - b.baseGfn);
  }

  /** gfn_to_memslot for address space `asId`. */
  find(gfn: number, asId = 0): Memslot | null {
    const l = this.last;
    if (l && l.asId === asId && gfn >= l.baseGfn && gfn < l.baseGfn + l.npages) return l;
    for (const s of this.byId.values()) {
      if (s.asId === asId && gfn >= s.baseGfn && gfn < s.baseGfn + s.npages) {
        this.last = s;
        return s;
      }
    }
    return null;
  }

  /**
   * Validates a KVM_SET_USER_MEMORY_REGION and, when valid, applies it. Returns the change
   * and the old slot, 'none' when nothing changes, or -errno. `maxGfn` is kvm_mmu_max_gfn.
   * Like Linux, an HVA range that is not (yet) mapped is accepted; a guest access to it fails later.
   */
  set(r: UserspaceMemoryRegion, maxGfn: number):
    { change: KvmMrChange; old: Memslot | null; slot: Memslot | null } | 'none' | number {
    if (r.flags & ~VALID_FLAGS) return -ERRNO.EINVAL;
    const asId = r.slot >>> 16;
    const id = r.slot & 0xffff;
    if (asId >= KVM_LIMITS.ADDRESS_SPACE_NUM || id >= KVM_LIMITS.USER_MEM_SLOTS) return -ERRNO.EINVAL;
    if (r.memorySize % PAGE_SIZE !== 0 || r.guestPhysAddr % PAGE_SIZE !== 0) return -ERRNO.EINVAL;
    // access_ok: page aligned and below the user address-space limit.
    if (r.userspaceAddr % PAGE_SIZE !== 0 || r.userspaceAddr + r.memorySize > 2 ** 47) return -ERRNO.EINVAL;
    if (r.guestPhysAddr + r.memorySize > 2 ** 64) return -ERRNO.EINVAL;
    const old = this.byId.get(r.slot) ?? null;
    if (r.memorySize === 0) {
      if (!old) return -ERRNO.EINVAL;
      this.byId.delete(r.slot);
      this.last = null;
      return { change: KVM_MR.DELETE, old, slot: null };
    }
    const baseGfn = r.guestPhysAddr / PAGE_SIZE;
    const npages = r.memorySize / PAGE_SIZE;
    let change: KvmMrChange;
    if (!old) {
      change = KVM_MR.CREATE;
    } else {
      if (r.userspaceAddr !== old.userspaceAddr || npages !== old.npages || (r.flags ^ old.flags) & KVM_MEM.READONLY) {
        return -ERRNO.EINVAL;
      }
      if (baseGfn !== old.baseGfn) change = KVM_MR.MOVE;
      else if (r.flags !== old.flags) change = KVM_MR.FLAGS_ONLY;
      else return 'none';
    }
    if (change === KVM_MR.CREATE || change === KVM_MR.MOVE) {
      for (const s of this.byId.values()) {
        if (s.slot === r.slot || s.asId !== asId) continue;
        if (baseGfn < s.baseGfn + s.npages && s.baseGfn < baseGfn + npages) return -ERRNO.EEXIST;
      }
    }
    // kvm_arch_prepare_memory_region: the slot must lie below the MMU's reach.
    if (baseGfn + npages - 1 > maxGfn) return -ERRNO.EINVAL;
    const logDirty = (r.flags & KVM_MEM.LOG_DIRTY_PAGES) !== 0;
    const keepBitmap = old?.dirtyBitmap && logDirty ? old.dirtyBitmap : null;
    const slot: Memslot = {
      slot: r.slot, asId, baseGfn, npages, userspaceAddr: r.userspaceAddr, flags: r.flags,
      dirtyBitmap: logDirty ? keepBitmap ?? new Uint8Array(dirtyBitmapBytes(npages)) : null,
    };
    this.byId.set(r.slot, slot);
    this.last = null;
    return { change, old, slot };
  }

  markDirty(slot: Memslot, gfn: number): void {
    const b = slot.dirtyBitmap;
    if (!b) return;
    const rel = gfn - slot.baseGfn;
    b[rel >>> 3]! |= 1 << (rel & 7);
  }
}
