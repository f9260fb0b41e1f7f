/**
 * The host state VMRUN saves and #VMEXIT restores (APM 15.5.1, 15.6), as the processor keeps it
 * from one to the other: ES, CS, SS, DS, GDTR and IDTR as the CPU held them (the register
 * objects, and the values they had, so that the next VMRUN can tell whether the save area's copy
 * is still current), then EFER, CR0, CR3, CR4, RFLAGS, RIP, RSP and RAX. The host save area holds
 * a copy, written where it changed: its format is the processor's own (15.30.4).
 */
import { makeSegment, type DescriptorTableReg, type Segment } from '@kvmts/x86';

export class HostSaved {
  /** The host save area holding the copy, or -1 before the first VMRUN (or after VM_HSAVE_PA moves). */
  pa = -1;
  readonly seg: Segment[] = [makeSegment(), makeSegment(), makeSegment(), makeSegment()];
  readonly selector = new Int32Array(4);
  readonly base = new Float64Array(4);
  /** As int32 (`limit | 0`): a compare of two int32s is cheaper than of two doubles. */
  readonly limit = new Int32Array(4);
  readonly ar = new Int32Array(4);
  gdtr: DescriptorTableReg = { base: 0, limit: 0 };
  idtr: DescriptorTableReg = { base: 0, limit: 0 };
  gdtrBase = 0;
  gdtrLimit = 0;
  idtrBase = 0;
  idtrLimit = 0;
  efer = 0;
  cr0 = 0;
  cr3 = 0;
  cr4 = 0;
  rflags = 0;
  /** The instruction after VMRUN. */
  rip = 0;
  rspLo = 0;
  rspHi = 0;
  raxLo = 0;
  raxHi = 0;
}
