/**
 * The VMCS field table (SDM vol. 3C, Appendix B "Field Encoding in VMCS"), written once.
 *
 * Each row: name (SDM / Linux `vmx.h` spelling), encoding, the field's byte offset in KVM's
 * `struct vmcs12` (`arch/x86/kvm/vmx/vmcs12.h`, null when vmcs12 has no slot for it), and its
 * VMCS-shadowing class from `vmcs_shadow_fields.h` ('ro', 'rw' or null). Width, type and the
 * read-only class are derived from the encoding bits (SDM 25.11.2, Table 25-21):
 * bit 0 access type (1 = high half of a 64-bit field), 9:1 index, 11:10 type
 * (0 control, 1 VM-exit information (read-only), 2 guest state, 3 host state),
 * 14:13 width (0 16-bit, 1 64-bit, 2 32-bit, 3 natural width).
 */
export const VMCS_FIELDS = [
  // name                              encoding  vmcs12 offset  shadow
  // 16-bit control
  ['VIRTUAL_PROCESSOR_ID',               0x0000, 960, null],
  ['POSTED_INTR_NV',                     0x0002, 962, null],
  // 16-bit guest state
  ['GUEST_ES_SELECTOR',                  0x0800, 964, null],
  ['GUEST_CS_SELECTOR',                  0x0802, 966, null],
  ['GUEST_SS_SELECTOR',                  0x0804, 968, null],
  ['GUEST_DS_SELECTOR',                  0x0806, 970, null],
  ['GUEST_FS_SELECTOR',                  0x0808, 972, null],
  ['GUEST_GS_SELECTOR',                  0x080a, 974, null],
  ['GUEST_LDTR_SELECTOR',                0x080c, 976, null],
  ['GUEST_TR_SELECTOR',                  0x080e, 978, null],
  ['GUEST_INTR_STATUS',                  0x0810, 980, 'rw'],
  ['GUEST_PML_INDEX',                    0x0812, 996, 'rw'],
  // 16-bit host state
  ['HOST_ES_SELECTOR',                   0x0c00, 982, null],
  ['HOST_CS_SELECTOR',                   0x0c02, 984, null],
  ['HOST_SS_SELECTOR',                   0x0c04, 986, null],
  ['HOST_DS_SELECTOR',                   0x0c06, 988, null],
  ['HOST_FS_SELECTOR',                   0x0c08, 990, 'rw'],
  ['HOST_GS_SELECTOR',                   0x0c0a, 992, 'rw'],
  ['HOST_TR_SELECTOR',                   0x0c0c, 994, null],
  // 64-bit control
  ['IO_BITMAP_A',                        0x2000, 40, null],
  ['IO_BITMAP_B',                        0x2002, 48, null],
  ['MSR_BITMAP',                         0x2004, 56, null],
  ['VM_EXIT_MSR_STORE_ADDR',             0x2006, 64, null],
  ['VM_EXIT_MSR_LOAD_ADDR',              0x2008, 72, null],
  ['VM_ENTRY_MSR_LOAD_ADDR',             0x200a, 80, null],
  ['PML_ADDRESS',                        0x200e, 312, null],
  ['TSC_OFFSET',                         0x2010, 88, null],
  ['VIRTUAL_APIC_PAGE_ADDR',             0x2012, 96, null],
  ['APIC_ACCESS_ADDR',                   0x2014, 104, null],
  ['POSTED_INTR_DESC_ADDR',              0x2016, 112, null],
  ['VM_FUNCTION_CONTROL',                0x2018, 296, null],
  ['EPT_POINTER',                        0x201a, 120, null],
  ['EOI_EXIT_BITMAP0',                   0x201c, 128, null],
  ['EOI_EXIT_BITMAP1',                   0x201e, 136, null],
  ['EOI_EXIT_BITMAP2',                   0x2020, 144, null],
  ['EOI_EXIT_BITMAP3',                   0x2022, 152, null],
  ['EPTP_LIST_ADDRESS',                  0x2024, 304, null],
  ['VMREAD_BITMAP',                      0x2026, 280, null],
  ['VMWRITE_BITMAP',                     0x2028, 288, null],
  ['XSS_EXIT_BITMAP',                    0x202c, 160, null],
  ['TSC_MULTIPLIER',                     0x2032, null, null],
  // 64-bit read-only data
  ['GUEST_PHYSICAL_ADDRESS',             0x2400, 168, 'ro'],
  // 64-bit guest state
  ['VMCS_LINK_POINTER',                  0x2800, 176, null],
  ['GUEST_IA32_DEBUGCTL',                0x2802, 184, null],
  ['GUEST_IA32_PAT',                     0x2804, 192, null],
  ['GUEST_IA32_EFER',                    0x2806, 200, null],
  ['GUEST_IA32_PERF_GLOBAL_CTRL',        0x2808, 208, null],
  ['GUEST_PDPTR0',                       0x280a, 216, null],
  ['GUEST_PDPTR1',                       0x280c, 224, null],
  ['GUEST_PDPTR2',                       0x280e, 232, null],
  ['GUEST_PDPTR3',                       0x2810, 240, null],
  ['GUEST_BNDCFGS',                      0x2812, 248, null],
  // 64-bit host state
  ['HOST_IA32_PAT',                      0x2c00, 256, null],
  ['HOST_IA32_EFER',                     0x2c02, 264, null],
  ['HOST_IA32_PERF_GLOBAL_CTRL',         0x2c04, 272, null],
  // 32-bit control
  ['PIN_BASED_VM_EXEC_CONTROL',          0x4000, 744, null],
  ['CPU_BASED_VM_EXEC_CONTROL',          0x4002, 748, 'rw'],
  ['EXCEPTION_BITMAP',                   0x4004, 752, 'rw'],
  ['PAGE_FAULT_ERROR_CODE_MASK',         0x4006, 756, null],
  ['PAGE_FAULT_ERROR_CODE_MATCH',        0x4008, 760, null],
  ['CR3_TARGET_COUNT',                   0x400a, 764, null],
  ['VM_EXIT_CONTROLS',                   0x400c, 768, null],
  ['VM_EXIT_MSR_STORE_COUNT',            0x400e, 772, null],
  ['VM_EXIT_MSR_LOAD_COUNT',             0x4010, 776, null],
  ['VM_ENTRY_CONTROLS',                  0x4012, 780, null],
  ['VM_ENTRY_MSR_LOAD_COUNT',            0x4014, 784, null],
  ['VM_ENTRY_INTR_INFO_FIELD',           0x4016, 788, 'rw'],
  ['VM_ENTRY_EXCEPTION_ERROR_CODE',      0x4018, 792, 'rw'],
  ['VM_ENTRY_INSTRUCTION_LEN',           0x401a, 796, 'rw'],
  ['TPR_THRESHOLD',                      0x401c, 800, 'rw'],
  ['SECONDARY_VM_EXEC_CONTROL',          0x401e, 804, null],
  ['PLE_GAP',                            0x4020, null, null],
  ['PLE_WINDOW',                         0x4022, null, null],
  // 32-bit read-only data
  ['VM_INSTRUCTION_ERROR',               0x4400, 808, null],
  ['VM_EXIT_REASON',                     0x4402, 812, 'ro'],
  ['VM_EXIT_INTR_INFO',                  0x4404, 816, 'ro'],
  ['VM_EXIT_INTR_ERROR_CODE',            0x4406, 820, 'ro'],
  ['IDT_VECTORING_INFO_FIELD',           0x4408, 824, 'ro'],
  ['IDT_VECTORING_ERROR_CODE',           0x440a, 828, 'ro'],
  ['VM_EXIT_INSTRUCTION_LEN',            0x440c, 832, 'ro'],
  ['VMX_INSTRUCTION_INFO',               0x440e, 836, null],
  // 32-bit guest state
  ['GUEST_ES_LIMIT',                     0x4800, 840, null],
  ['GUEST_CS_LIMIT',                     0x4802, 844, null],
  ['GUEST_SS_LIMIT',                     0x4804, 848, null],
  ['GUEST_DS_LIMIT',                     0x4806, 852, null],
  ['GUEST_FS_LIMIT',                     0x4808, 856, null],
  ['GUEST_GS_LIMIT',                     0x480a, 860, null],
  ['GUEST_LDTR_LIMIT',                   0x480c, 864, null],
  ['GUEST_TR_LIMIT',                     0x480e, 868, null],
  ['GUEST_GDTR_LIMIT',                   0x4810, 872, null],
  ['GUEST_IDTR_LIMIT',                   0x4812, 876, null],
  ['GUEST_ES_AR_BYTES',                  0x4814, 880, null],
  ['GUEST_CS_AR_BYTES',                  0x4816, 884, 'ro'],
  ['GUEST_SS_AR_BYTES',                  0x4818, 888, 'ro'],
  ['GUEST_DS_AR_BYTES',                  0x481a, 892, null],
  ['GUEST_FS_AR_BYTES',                  0x481c, 896, null],
  ['GUEST_GS_AR_BYTES',                  0x481e, 900, null],
  ['GUEST_LDTR_AR_BYTES',                0x4820, 904, null],
  ['GUEST_TR_AR_BYTES',                  0x4822, 908, null],
  ['GUEST_INTERRUPTIBILITY_INFO',        0x4824, 912, 'rw'],
  ['GUEST_ACTIVITY_STATE',               0x4826, 916, null],
  ['GUEST_SYSENTER_CS',                  0x482a, 920, null],
  ['VMX_PREEMPTION_TIMER_VALUE',         0x482e, 928, 'rw'],
  // 32-bit host state
  ['HOST_IA32_SYSENTER_CS',              0x4c00, 924, null],
  // natural-width control
  ['CR0_GUEST_HOST_MASK',                0x6000, 344, 'rw'],
  ['CR4_GUEST_HOST_MASK',                0x6002, 352, null],
  ['CR0_READ_SHADOW',                    0x6004, 360, 'rw'],
  ['CR4_READ_SHADOW',                    0x6006, 368, 'rw'],
  ['CR3_TARGET_VALUE0',                  0x6008, 376, null],
  ['CR3_TARGET_VALUE1',                  0x600a, 384, null],
  ['CR3_TARGET_VALUE2',                  0x600c, 392, null],
  ['CR3_TARGET_VALUE3',                  0x600e, 400, null],
  // natural-width read-only data
  ['EXIT_QUALIFICATION',                 0x6400, 408, 'ro'],
  ['IO_RCX',                             0x6402, null, null],
  ['IO_RSI',                             0x6404, null, null],
  ['IO_RDI',                             0x6406, null, null],
  ['IO_RIP',                             0x6408, null, null],
  ['GUEST_LINEAR_ADDRESS',               0x640a, 416, 'ro'],
  // natural-width guest state
  ['GUEST_CR0',                          0x6800, 424, 'rw'],
  ['GUEST_CR3',                          0x6802, 432, 'rw'],
  ['GUEST_CR4',                          0x6804, 440, 'rw'],
  ['GUEST_ES_BASE',                      0x6806, 448, null],
  ['GUEST_CS_BASE',                      0x6808, 456, null],
  ['GUEST_SS_BASE',                      0x680a, 464, null],
  ['GUEST_DS_BASE',                      0x680c, 472, null],
  ['GUEST_FS_BASE',                      0x680e, 480, null],
  ['GUEST_GS_BASE',                      0x6810, 488, null],
  ['GUEST_LDTR_BASE',                    0x6812, 496, null],
  ['GUEST_TR_BASE',                      0x6814, 504, null],
  ['GUEST_GDTR_BASE',                    0x6816, 512, null],
  ['GUEST_IDTR_BASE',                    0x6818, 520, null],
  ['GUEST_DR7',                          0x681a, 528, null],
  ['GUEST_RSP',                          0x681c, 536, 'rw'],
  ['GUEST_RIP',                          0x681e, 544, 'rw'],
  ['GUEST_RFLAGS',                       0x6820, 552, 'rw'],
  ['GUEST_PENDING_DBG_EXCEPTIONS',       0x6822, 560, null],
  ['GUEST_SYSENTER_ESP',                 0x6824, 568, null],
  ['GUEST_SYSENTER_EIP',                 0x6826, 576, null],
  // natural-width host state
  ['HOST_CR0',                           0x6c00, 584, null],
  ['HOST_CR3',                           0x6c02, 592, null],
  ['HOST_CR4',                           0x6c04, 600, null],
  ['HOST_FS_BASE',                       0x6c06, 608, 'rw'],
  ['HOST_GS_BASE',                       0x6c08, 616, 'rw'],
  ['HOST_TR_BASE',                       0x6c0a, 624, null],
  ['HOST_GDTR_BASE',                     0x6c0c, 632, null],
  ['HOST_IDTR_BASE',                     0x6c0e, 640, null],
  ['HOST_IA32_SYSENTER_ESP',             0x6c10, 648, null],
  ['HOST_IA32_SYSENTER_EIP',             0x6c12, 656, null],
  ['HOST_RSP',                           0x6c14, 664, null],
  ['HOST_RIP',                           0x6c16, 672, null],
] as const satisfies readonly (readonly [string, number, number | null, 'ro' | 'rw' | null])[];

export type VmcsFieldName = (typeof VMCS_FIELDS)[number][0];

/** Field widths from encoding bits 14:13. */
export const VMCS_WIDTH = { U16: 0, U64: 1, U32: 2, NATURAL: 3 } as const;
/** Field types from encoding bits 11:10. */
export const VMCS_TYPE = { CONTROL: 0, READ_ONLY: 1, GUEST: 2, HOST: 3 } as const;

export function vmcsFieldWidth(encoding: number): number {
  return (encoding >> 13) & 3;
}
export function vmcsFieldType(encoding: number): number {
  return (encoding >> 10) & 3;
}
/** True for the "high" access of a 64-bit field (encoding bit 0). */
export function vmcsFieldIsHigh(encoding: number): boolean {
  return (encoding & 1) === 1;
}

/** Encoding by name: `VMCS.GUEST_RIP === 0x681e`. */
export const VMCS = Object.fromEntries(VMCS_FIELDS.map(([n, e]) => [n, e])) as { readonly [K in VmcsFieldName]: number };

/**
 * Field index (row in VMCS_FIELDS) by encoding with bit 0 cleared, or -1: a flat lookup so
 * VMREAD/VMWRITE cost one typed-array load. Encodings are below 2^15 (bits 31:15 must be 0).
 */
export const FIELD_INDEX: Int16Array = (() => {
  const t = new Int16Array(0x8000).fill(-1);
  VMCS_FIELDS.forEach(([, e], i) => { t[e] = i; });
  return t;
})();

/** Field index by name: `FIELD.GUEST_RIP` is the row of GUEST_RIP. */
export const FIELD = Object.fromEntries(VMCS_FIELDS.map(([n], i) => [n, i])) as { readonly [K in VmcsFieldName]: number };

export const FIELD_COUNT = VMCS_FIELDS.length;

/** Width and type of every row, derived once. */
export const FIELD_WIDTH: Uint8Array = Uint8Array.from(VMCS_FIELDS, ([, e]) => vmcsFieldWidth(e));
export const FIELD_TYPE: Uint8Array = Uint8Array.from(VMCS_FIELDS, ([, e]) => vmcsFieldType(e));

/** The index of the field `encoding` accesses (either half of a 64-bit field), or -1 if unsupported. */
export function vmcsFieldIndex(encoding: number): number {
  if (encoding < 0 || encoding > 0x7fff) return -1;
  const hi = encoding & 1;
  const i = FIELD_INDEX[encoding & ~1]!;
  if (i < 0) return -1;
  // Only 64-bit fields have a high access.
  if (hi === 1 && FIELD_WIDTH[i] !== VMCS_WIDTH.U64) return -1;
  return i;
}

/** The highest index (encoding bits 9:1) of any supported field, for IA32_VMX_VMCS_ENUM. */
export const VMCS_MAX_INDEX = Math.max(...VMCS_FIELDS.map(([, e]) => (e >> 1) & 0x1ff));
