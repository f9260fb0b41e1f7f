/**
 * The layout of the host state the processor keeps from VMRUN to #VMEXIT (SvmSilicon.hostSaved):
 * one number per value, the ES/CS/SS/DS segments first (selector, base, limit, access rights).
 */
export const HOST_SAVED = {
  SEG: 0, GDTR_BASE: 16, GDTR_LIMIT: 17, IDTR_BASE: 18, IDTR_LIMIT: 19, EFER: 20, CR0: 21, CR3: 22,
  CR4: 23, RFLAGS: 24, RIP: 25, RSP_LO: 26, RSP_HI: 27, RAX_LO: 28, RAX_HI: 29,
} as const;

export const HOST_SAVED_SIZE = 30;
