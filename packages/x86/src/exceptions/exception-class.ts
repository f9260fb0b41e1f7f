/**
 * Exception classes for the double-fault rules (SDM Vol. 3A, 7.15 "Exception and Interrupt
 * Reference", Interrupt 8: Tables 7-4 and 7-5).
 */
import { VEC } from '../cpu/events.js';

export const EXC_CLASS = { BENIGN: 0, CONTRIBUTORY: 1, PAGE_FAULT: 2, DOUBLE_FAULT: 3 } as const;

/** Table 7-4: the contributory exceptions; #PF alone in its class; everything else benign. */
const CONTRIBUTORY: readonly number[] = [VEC.DE, VEC.TS, VEC.NP, VEC.SS, VEC.GP] as const;

export function exceptionClass(vector: number): number {
  if (vector === VEC.DF) return EXC_CLASS.DOUBLE_FAULT;
  if (vector === VEC.PF) return EXC_CLASS.PAGE_FAULT;
  return CONTRIBUTORY.includes(vector) ? EXC_CLASS.CONTRIBUTORY : EXC_CLASS.BENIGN;
}

/** Table 7-5: a second exception while delivering the first becomes #DF. */
export function isDoubleFault(firstClass: number, secondClass: number): boolean {
  if (firstClass === EXC_CLASS.CONTRIBUTORY) return secondClass === EXC_CLASS.CONTRIBUTORY;
  if (firstClass === EXC_CLASS.PAGE_FAULT) return secondClass === EXC_CLASS.CONTRIBUTORY || secondClass === EXC_CLASS.PAGE_FAULT;
  return false;
}

/**
 * Fault-class exceptions (SDM Vol. 3A, Table 6-1): the handler returns to the faulting
 * instruction, and the RFLAGS image pushed for them has RF = 1 (SDM 18.3.1.1). #DB is a fault
 * only for instruction breakpoints, so it is left to the caller.
 */
const FAULT_CLASS: readonly number[] = [
  VEC.DE, VEC.BR, VEC.UD, VEC.NM, VEC.TS, VEC.NP, VEC.SS, VEC.GP, VEC.PF, VEC.MF, VEC.AC, VEC.XM, VEC.VE, VEC.CP,
] as const;
export function isFaultClass(vector: number): boolean {
  return FAULT_CLASS.includes(vector);
}
