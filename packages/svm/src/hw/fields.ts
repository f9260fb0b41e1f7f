/**
 * The VMCB layout: APM vol. 2, Appendix B "Layout of VMCB" (Table B-1 control area, Table B-2
 * state save area), spelled as Linux's arch/x86/include/asm/svm.h spells the members.
 *
 * Written once; the accessors in region.ts, the inspector groups and the field sweep test are
 * derived from it. A 64-bit field is read and written as two 32-bit halves on the hot path.
 */

/** [name, byte offset in the VMCB page, size in bytes, inspector group] */
export const VMCB_FIELDS = [
  // ---- control area (Table B-1) ----
  ['intercept_cr', 0x000, 4, 'intercepts'],
  ['intercept_dr', 0x004, 4, 'intercepts'],
  ['intercept_exceptions', 0x008, 4, 'intercepts'],
  ['intercept_misc1', 0x00c, 4, 'intercepts'],
  ['intercept_misc2', 0x010, 4, 'intercepts'],
  ['intercept_misc3', 0x014, 4, 'intercepts'],
  ['pause_filter_thresh', 0x03c, 2, 'intercepts'],
  ['pause_filter_count', 0x03e, 2, 'intercepts'],
  ['iopm_base_pa', 0x040, 8, 'control'],
  ['msrpm_base_pa', 0x048, 8, 'control'],
  ['tsc_offset', 0x050, 8, 'control'],
  ['asid', 0x058, 4, 'control'],
  ['tlb_ctl', 0x05c, 1, 'control'],
  ['int_ctl', 0x060, 4, 'interrupts'],
  ['int_vector', 0x064, 4, 'interrupts'],
  ['int_state', 0x068, 4, 'interrupts'],
  ['exit_code', 0x070, 4, 'exit'],
  ['exit_code_hi', 0x074, 4, 'exit'],
  ['exit_info_1', 0x078, 8, 'exit'],
  ['exit_info_2', 0x080, 8, 'exit'],
  ['exit_int_info', 0x088, 4, 'exit'],
  ['exit_int_info_err', 0x08c, 4, 'exit'],
  ['nested_ctl', 0x090, 8, 'control'],
  ['avic_vapic_bar', 0x098, 8, 'control'],
  ['ghcb_gpa', 0x0a0, 8, 'control'],
  ['event_inj', 0x0a8, 4, 'interrupts'],
  ['event_inj_err', 0x0ac, 4, 'interrupts'],
  ['nested_cr3', 0x0b0, 8, 'control'],
  ['virt_ext', 0x0b8, 8, 'control'],
  ['clean', 0x0c0, 4, 'control'],
  ['next_rip', 0x0c8, 8, 'exit'],
  ['insn_len', 0x0d0, 1, 'exit'],
  ['avic_backing_page', 0x0e0, 8, 'control'],
  ['avic_logical_id', 0x0f0, 8, 'control'],
  ['avic_physical_id', 0x0f8, 8, 'control'],
  ['vmsa_pa', 0x108, 8, 'control'],
  // ---- state save area (Table B-2), at 0x400 ----
  ['es_selector', 0x400, 2, 'segments'], ['es_attrib', 0x402, 2, 'segments'], ['es_limit', 0x404, 4, 'segments'], ['es_base', 0x408, 8, 'segments'],
  ['cs_selector', 0x410, 2, 'segments'], ['cs_attrib', 0x412, 2, 'segments'], ['cs_limit', 0x414, 4, 'segments'], ['cs_base', 0x418, 8, 'segments'],
  ['ss_selector', 0x420, 2, 'segments'], ['ss_attrib', 0x422, 2, 'segments'], ['ss_limit', 0x424, 4, 'segments'], ['ss_base', 0x428, 8, 'segments'],
  ['ds_selector', 0x430, 2, 'segments'], ['ds_attrib', 0x432, 2, 'segments'], ['ds_limit', 0x434, 4, 'segments'], ['ds_base', 0x438, 8, 'segments'],
  ['fs_selector', 0x440, 2, 'segments'], ['fs_attrib', 0x442, 2, 'segments'], ['fs_limit', 0x444, 4, 'segments'], ['fs_base', 0x448, 8, 'segments'],
  ['gs_selector', 0x450, 2, 'segments'], ['gs_attrib', 0x452, 2, 'segments'], ['gs_limit', 0x454, 4, 'segments'], ['gs_base', 0x458, 8, 'segments'],
  ['gdtr_limit', 0x464, 4, 'segments'], ['gdtr_base', 0x468, 8, 'segments'],
  ['ldtr_selector', 0x470, 2, 'segments'], ['ldtr_attrib', 0x472, 2, 'segments'], ['ldtr_limit', 0x474, 4, 'segments'], ['ldtr_base', 0x478, 8, 'segments'],
  ['idtr_limit', 0x484, 4, 'segments'], ['idtr_base', 0x488, 8, 'segments'],
  ['tr_selector', 0x490, 2, 'segments'], ['tr_attrib', 0x492, 2, 'segments'], ['tr_limit', 0x494, 4, 'segments'], ['tr_base', 0x498, 8, 'segments'],
  ['cpl', 0x4cb, 1, 'registers'],
  ['efer', 0x4d0, 8, 'registers'],
  ['cr4', 0x548, 8, 'registers'],
  ['cr3', 0x550, 8, 'registers'],
  ['cr0', 0x558, 8, 'registers'],
  ['dr7', 0x560, 8, 'registers'],
  ['dr6', 0x568, 8, 'registers'],
  ['rflags', 0x570, 8, 'registers'],
  ['rip', 0x578, 8, 'registers'],
  ['rsp', 0x5d8, 8, 'registers'],
  ['rax', 0x5f8, 8, 'registers'],
  ['star', 0x600, 8, 'msrs'],
  ['lstar', 0x608, 8, 'msrs'],
  ['cstar', 0x610, 8, 'msrs'],
  ['sfmask', 0x618, 8, 'msrs'],
  ['kernel_gs_base', 0x620, 8, 'msrs'],
  ['sysenter_cs', 0x628, 8, 'msrs'],
  ['sysenter_esp', 0x630, 8, 'msrs'],
  ['sysenter_eip', 0x638, 8, 'msrs'],
  ['cr2', 0x640, 8, 'registers'],
  ['g_pat', 0x668, 8, 'msrs'],
  ['dbgctl', 0x670, 8, 'msrs'],
] as const;

export type VmcbFieldName = (typeof VMCB_FIELDS)[number][0];
export type VmcbGroup = (typeof VMCB_FIELDS)[number][3];

/** Byte offset of each field, derived from the table. */
export const VMCB = Object.fromEntries(VMCB_FIELDS.map(([n, off]) => [n, off])) as { readonly [K in VmcbFieldName]: number };
export const VMCB_SIZE = Object.fromEntries(VMCB_FIELDS.map(([n, , size]) => [n, size])) as { readonly [K in VmcbFieldName]: 1 | 2 | 4 | 8 };

export const VMCB_CONTROL_AREA_SIZE = 0x400;
export const VMCB_SAVE_AREA_OFFSET = 0x400;

/** Segment registers in VMCB order with their save-area offsets (vmcb_seg: selector, attrib, limit, base). */
export const VMCB_SEG = { es: 0x400, cs: 0x410, ss: 0x420, ds: 0x430, fs: 0x440, gs: 0x450, gdtr: 0x460, ldtr: 0x470, idtr: 0x480, tr: 0x490 } as const;

/** The segments VMRUN and #VMEXIT switch, in the CPU's order (ES, CS, SS, DS): their VMCB offsets. */
export const SWITCHED_SEG = [VMCB_SEG.es, VMCB_SEG.cs, VMCB_SEG.ss, VMCB_SEG.ds] as const;

/** The intercept vectors as 32-bit words (svm.h: INTERCEPT_CR0_READ = 0, … MAX_INTERCEPT). */
export const INTERCEPT_WORD = { CR: 0, DR: 1, EXCEPTION: 2, WORD3: 3, WORD4: 4, WORD5: 5 } as const;

/** Bit numbers of the intercepts in word 3 (misc1) and word 4 (misc2), as svm.h numbers them (bit n of word w = 32w + n). */
export const INTERCEPT_BIT = {
  // word 3
  INTR: 96, NMI: 97, SMI: 98, INIT: 99, VINTR: 100, SELECTIVE_CR0: 101, STORE_IDTR: 102,
  STORE_GDTR: 103, STORE_LDTR: 104, STORE_TR: 105, LOAD_IDTR: 106, LOAD_GDTR: 107, LOAD_LDTR: 108,
  LOAD_TR: 109, RDTSC: 110, RDPMC: 111, PUSHF: 112, POPF: 113, CPUID: 114, RSM: 115, IRET: 116,
  INTN: 117, INVD: 118, PAUSE: 119, HLT: 120, INVLPG: 121, INVLPGA: 122, IOIO_PROT: 123,
  MSR_PROT: 124, TASK_SWITCH: 125, FERR_FREEZE: 126, SHUTDOWN: 127,
  // word 4
  VMRUN: 128, VMMCALL: 129, VMLOAD: 130, VMSAVE: 131, STGI: 132, CLGI: 133, SKINIT: 134,
  RDTSCP: 135, ICEBP: 136, WBINVD: 137, MONITOR: 138, MWAIT: 139, MWAIT_COND: 140, XSETBV: 141,
  RDPRU: 142,
  // word 5
  INVPCID: 162,
} as const;

/** SVM_EXIT_* (APM Appendix C, svm.h). READ_CRn = READ_CR0 + n, EXCP_BASE + vector, … */
export const SVM_EXIT = {
  READ_CR0: 0x000, WRITE_CR0: 0x010, READ_DR0: 0x020, WRITE_DR0: 0x030, EXCP_BASE: 0x040,
  INTR: 0x060, NMI: 0x061, SMI: 0x062, INIT: 0x063, VINTR: 0x064, CR0_SEL_WRITE: 0x065,
  IDTR_READ: 0x066, GDTR_READ: 0x067, LDTR_READ: 0x068, TR_READ: 0x069, IDTR_WRITE: 0x06a,
  GDTR_WRITE: 0x06b, LDTR_WRITE: 0x06c, TR_WRITE: 0x06d, RDTSC: 0x06e, RDPMC: 0x06f,
  PUSHF: 0x070, POPF: 0x071, CPUID: 0x072, RSM: 0x073, IRET: 0x074, SWINT: 0x075, INVD: 0x076,
  PAUSE: 0x077, HLT: 0x078, INVLPG: 0x079, INVLPGA: 0x07a, IOIO: 0x07b, MSR: 0x07c,
  TASK_SWITCH: 0x07d, FERR_FREEZE: 0x07e, SHUTDOWN: 0x07f, VMRUN: 0x080, VMMCALL: 0x081,
  VMLOAD: 0x082, VMSAVE: 0x083, STGI: 0x084, CLGI: 0x085, SKINIT: 0x086, RDTSCP: 0x087,
  ICEBP: 0x088, WBINVD: 0x089, MONITOR: 0x08a, MWAIT: 0x08b, MWAIT_COND: 0x08c, XSETBV: 0x08d,
  RDPRU: 0x08e, INVPCID: 0x0a2, NPF: 0x400,
  /** VMEXIT_INVALID: the VMRUN consistency checks failed (exit_code = -1). */
  ERR: -1,
} as const;

/** int_ctl (svm.h V_TPR_MASK …). */
export const V_TPR_MASK = 0x0f;
export const V_IRQ_MASK = 1 << 8;
export const V_GIF_MASK = 1 << 9;
export const V_INTR_PRIO_SHIFT = 16;
export const V_INTR_PRIO_MASK = 0x0f << 16;
export const V_IGN_TPR_MASK = 1 << 20;
export const V_INTR_MASKING_MASK = 1 << 24;

/** int_state. */
export const SVM_INTERRUPT_SHADOW_MASK = 1 << 0;

/** nested_ctl. */
export const SVM_NESTED_CTL_NP_ENABLE = 1 << 0;

/** tlb_ctl (TLB_CONTROL). */
export const TLB_CONTROL = { DO_NOTHING: 0, FLUSH_ALL_ASID: 1, FLUSH_ASID: 3, FLUSH_ASID_LOCAL: 7 } as const;

/** EVENTINJ and EXITINTINFO (APM 15.20): vector 7:0, type 10:8, EV 11, V 31; error code in the next dword. */
export const SVM_EVTINJ = {
  VEC_MASK: 0xff,
  TYPE_SHIFT: 8,
  TYPE_MASK: 7 << 8,
  TYPE_INTR: 0 << 8,
  TYPE_NMI: 2 << 8,
  TYPE_EXEPT: 3 << 8,
  TYPE_SOFT: 4 << 8,
  VALID_ERR: 1 << 11,
  VALID: 1 << 31,
} as const;

/** IOIO exit_info_1 (APM 15.10.2, Figure 15-2). */
export const SVM_IOIO = {
  TYPE_MASK: 1, // 1 = IN
  STR_MASK: 1 << 2,
  REP_MASK: 1 << 3,
  SIZE_SHIFT: 4, // SZ8 bit 4, SZ16 bit 5, SZ32 bit 6
  ASIZE_SHIFT: 7, // A16 bit 7, A32 bit 8, A64 bit 9
  SEG_SHIFT: 10,
  PORT_SHIFT: 16,
} as const;

/** The VMCB clean bits (APM 15.15.3). */
export const VMCB_CLEAN = {
  INTERCEPTS: 0, PERM_MAP: 1, ASID: 2, INTR: 3, NPT: 4, CR: 5, DR: 6, DT: 7, SEG: 8, CR2: 9, LBR: 10, AVIC: 11,
} as const;

/** The fields each VMCB clean bit covers (APM 15.15.3, Table 15-9); a field in none is loaded at every VMRUN. */
export const VMCB_CLEAN_FIELDS: readonly (readonly [number, readonly VmcbFieldName[]])[] = [
  [VMCB_CLEAN.INTERCEPTS, ['intercept_cr', 'intercept_dr', 'intercept_exceptions', 'intercept_misc1', 'intercept_misc2',
    'intercept_misc3', 'tsc_offset', 'pause_filter_thresh', 'pause_filter_count']],
  [VMCB_CLEAN.PERM_MAP, ['iopm_base_pa', 'msrpm_base_pa']],
  [VMCB_CLEAN.ASID, ['asid']],
  [VMCB_CLEAN.INTR, ['int_ctl', 'int_vector']],
  [VMCB_CLEAN.NPT, ['nested_cr3', 'g_pat']],
  [VMCB_CLEAN.CR, ['cr0', 'cr3', 'cr4', 'efer']],
  [VMCB_CLEAN.DR, ['dr6', 'dr7']],
  [VMCB_CLEAN.DT, ['gdtr_limit', 'gdtr_base', 'idtr_limit', 'idtr_base']],
  [VMCB_CLEAN.SEG, ['es_selector', 'es_attrib', 'es_limit', 'es_base', 'cs_selector', 'cs_attrib', 'cs_limit', 'cs_base',
    'ss_selector', 'ss_attrib', 'ss_limit', 'ss_base', 'ds_selector', 'ds_attrib', 'ds_limit', 'ds_base', 'cpl']],
  [VMCB_CLEAN.CR2, ['cr2']],
  [VMCB_CLEAN.LBR, ['dbgctl']],
];

/** The clean bit (as a mask) covering the VMCB byte at `off`, or 0. */
export function cleanMaskAt(off: number): number {
  for (const [bit, names] of VMCB_CLEAN_FIELDS) {
    for (const n of names) if (off >= VMCB[n] && off < VMCB[n] + VMCB_SIZE[n]) return 1 << bit;
  }
  return 0;
}

/** The #NPF exit_info_1 bits beyond the page-fault error code (APM 15.25.6). */
export const NPF_INFO = {
  P: 1 << 0, RW: 1 << 1, US: 1 << 2, RSV: 1 << 3, ID: 1 << 4,
  /** In the high dword: bit 32 "final GPA translation", bit 33 "guest page-table walk". */
  HI_FINAL: 1 << 0,
  HI_WALK: 1 << 1,
} as const;
