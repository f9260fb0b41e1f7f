/** kvm_mmu_page_fault for TDP (arch/x86/kvm/mmu/mmu.c): a guest-physical fault the vendor reports. */
import type { KvmVcpu, ExitResult } from '../x86/kvm-types.js';
import { KVM_REQ } from '../x86/kvm-types.js';
import { KVM_MEM } from '../uapi/constants.js';
import { ERRNO } from '../uapi/errno.js';
import { PFERR, kvmMakeRequest, toVcpu } from '../x86/x86.js';
import { EMULTYPE, kvmEmulateInstruction } from '../x86/emulate.js';

const PAGE = 4096;

/**
 * Resolves a TDP fault at `gpa` (PFERR_* error code): maps the memslot page into the EPT/NPT
 * tables (kvm_tdp_mmu_map), or emulates the instruction when the GPA is MMIO (no memslot, or a
 * write to a read-only slot). Under dirty logging a read maps the page read-only, and a write
 * marks the page dirty and maps it writable.
 */
export function kvmMmuPageFault(vcpu: KvmVcpu, gpa: number, errorCode: number, _insn?: Uint8Array): ExitResult {
  const v = toVcpu(vcpu);
  const vm = v.kvm;
  const gfn = Math.floor(gpa / PAGE);
  v.stat['pf_taken']!++;
  const slot = vm.memslots.find(gfn);
  const write = (errorCode & PFERR.WRITE) !== 0;
  if (!slot) {
    if (vm.mmu.mapMmio(gfn)) v.stat['pf_mmio_spte_created']!++;
    return kvmEmulateInstruction(vcpu, EMULTYPE.PF);
  }
  if (write && slot.flags & KVM_MEM.READONLY) return kvmEmulateInstruction(vcpu, EMULTYPE.PF);
  const existing = vm.mmu.lookup(gfn);
  if (existing && !existing.mmio && (existing.writable || !write)) {
    // Another path already fixed it; make sure no stale translation causes the fault again.
    v.stat['pf_spurious']!++;
    kvmMakeRequest(KVM_REQ.TLB_FLUSH_CURRENT, vcpu);
    return 'resume';
  }
  const hpa = vm.proc.hvaToHpa(slot.userspaceAddr + (gfn - slot.baseGfn) * PAGE);
  if (hpa < 0) {
    // kvm_handle_error_pfn: the memslot's HVA is not backed; KVM_RUN fails with -EFAULT.
    v.runErrno = -ERRNO.EFAULT;
    return 'userspace';
  }
  const writable = !(slot.flags & KVM_MEM.READONLY) && (!slot.dirtyBitmap || write);
  if (writable && slot.dirtyBitmap) vm.memslots.markDirty(slot, gfn);
  if (!vm.mmu.map(gfn, hpa, writable)) {
    v.runErrno = -ERRNO.ENOMEM;
    return 'userspace';
  }
  if (existing) kvmMakeRequest(KVM_REQ.TLB_FLUSH_CURRENT, vcpu);
  v.stat['pf_fixed']!++;
  return 'resume';
}
