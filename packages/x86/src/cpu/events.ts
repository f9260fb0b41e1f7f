/**
 * Event types in the VMX interruption-information layout (SDM 25.8.3, 25.9.2). The CPU uses
 * this encoding internally for anything it delivers; the SVM silicon converts to EVENTINJ.
 */
export const EVENT_TYPE = {
  EXT_INTR: 0,
  NMI: 2,
  HW_EXCEPTION: 3,
  SOFT_INTR: 4,
  PRIV_SW_EXCEPTION: 5,
  SW_EXCEPTION: 6,
} as const;

export const INTR_INFO = {
  VECTOR_MASK: 0xff,
  TYPE_SHIFT: 8,
  TYPE_MASK: 0x700,
  DELIVER_CODE: 1 << 11,
  NMI_UNBLOCK_IRET: 1 << 12,
  VALID: 1 << 31,
} as const;

/** Exception vectors (SDM Vol. 3A, Table 6-1). */
export const VEC = {
  DE: 0, DB: 1, NMI: 2, BP: 3, OF: 4, BR: 5, UD: 6, NM: 7, DF: 8, TS: 10, NP: 11, SS: 12, GP: 13,
  PF: 14, MF: 16, AC: 17, MC: 18, XM: 19, VE: 20, CP: 21,
} as const;

export function makeIntrInfo(vector: number, type: number, errorCodeValid: boolean): number {
  return ((vector & 0xff) | (type << 8) | (errorCodeValid ? INTR_INFO.DELIVER_CODE : 0) | INTR_INFO.VALID) >>> 0;
}
