/**
 * VMCS shadowing (SDM 25.10 "Software Use of Virtual-Machine Control Structures", 25.6.15 the
 * VMREAD/VMWRITE bitmaps, and the non-root branches of VMREAD/VMWRITE in chapter 31): with the
 * "VMCS shadowing" control set, a VMREAD or VMWRITE in VMX non-root operation whose field has a
 * clear bit in the VMREAD (VMWRITE) bitmap does not exit; it reads (writes) the shadow VMCS the
 * VMCS link pointer references, in memory.
 */
import { VIRT_OP, RFLAGS, type InsnOperand, type VirtOp } from '@kvmts/x86';
import { FIELD, FIELD_COUNT, FIELD_WIDTH, VMCS_WIDTH, vmcsFieldIndex } from './fields.js';
import { SECONDARY_EXEC } from './caps.js';
import { vmcsRegionSlots } from './region.js';
import type { VmxSilicon } from './silicon.js';

const ARITH_FLAGS = RFLAGS.CF | RFLAGS.PF | RFLAGS.AF | RFLAGS.ZF | RFLAGS.SF | RFLAGS.OF;
const VMXERR_UNSUPPORTED_VMCS_COMPONENT = 12;

/** Per CPU: how many VMREADs and VMWRITEs it served from a shadow VMCS, and the last shadow VMCS's field slots in DRAM (a region never moves, so its view is kept). */
interface ShadowState { accesses: number; hpa: number; slots: Int32Array | null }
const states = new WeakMap<VmxSilicon, ShadowState>();
/** The last CPU that made a shadowed access and its state: consecutive accesses come from one CPU, and find it without a WeakMap lookup. */
let lastCpu: VmxSilicon | null = null;
let lastState: ShadowState | null = null;

function stateOf(s: VmxSilicon): ShadowState {
  if (s === lastCpu) return lastState!;
  let st = states.get(s);
  if (st === undefined) {
    st = { accesses: 0, hpa: -1, slots: null };
    states.set(s, st);
  }
  lastCpu = s;
  lastState = st;
  return st;
}

/** VMREADs and VMWRITEs this CPU served from a shadow VMCS instead of exiting. */
export function shadowAccessCount(s: VmxSilicon): number {
  return s === lastCpu ? lastState!.accesses : states.get(s)?.accesses ?? 0;
}

function setFlags(s: VmxSilicon, set: number): void {
  const f = s.cpu.getRflags();
  // VMsucceed after VMsucceed finds the flags as they must be.
  if ((f & ARITH_FLAGS) !== set) s.cpu.setRflags((f & ~ARITH_FLAGS) | set);
}

function dramSlots(s: VmxSilicon, st: ShadowState, hpa: number): Int32Array {
  if (st.slots === null || st.hpa !== hpa) {
    st.slots = vmcsRegionSlots(s.mem, hpa);
    st.hpa = hpa;
  }
  return st.slots;
}

/**
 * Row `i` of the shadow VMCS at `hpa`: the on-chip copy when that VMCS is active on this
 * processor (software normally VMCLEARs it first, as Linux does), else its region in DRAM.
 * Returned in `at` as [array of bits 31:0, its index, array of bits 63:32, its index].
 */
type Slot = [Int32Array, number, Int32Array, number];
const at: Slot = [new Int32Array(0), 0, new Int32Array(0), 0];
function shadowSlot(s: VmxSilicon, st: ShadowState, hpa: number, i: number, write: boolean): Slot {
  const chip = s.vmcsCache.find(hpa);
  if (chip !== undefined) {
    if (write) chip.markDirty(i);
    at[0] = chip.lo; at[1] = i; at[2] = chip.hi; at[3] = i;
  } else {
    const slots = dramSlots(s, st, hpa);
    if (write) s.mem.noteWrite(hpa, 4096);
    at[0] = slots; at[1] = i; at[2] = slots; at[3] = FIELD_COUNT + i;
  }
  return at;
}

/**
 * Tries the shadow path for a VMREAD/VMWRITE in non-root operation. Returns false when the
 * instruction must exit (shadowing off, encoding beyond bit 14, bitmap bit set), true when it
 * completed here (VMsucceed, VMfailInvalid without a link pointer, VMfailValid(12)).
 */
export function vmcsShadowAccess(s: VmxSilicon, op: VirtOp, operand: InsnOperand): boolean {
  if (!(s.proc2 & SECONDARY_EXEC.SHADOW_VMCS)) return false;
  const cpu = s.cpu;
  const long = operand.opSize === 64;
  const enc = cpu.gpr[operand.reg2]! >>> 0;
  if ((long && cpu.gprHi[operand.reg2] !== 0) || enc > 0x7fff) return false;
  const read = op === VIRT_OP.VMREAD;
  const bitmap = s.vmcs.readNum(read ? FIELD.VMREAD_BITMAP : FIELD.VMWRITE_BITMAP);
  if (s.mem.read8(bitmap + (enc >>> 3)) & (1 << (enc & 7))) return false;
  const link = s.vmcs.readNum(FIELD.VMCS_LINK_POINTER);
  if (link === -1) { setFlags(s, RFLAGS.CF); return true; }
  const st = stateOf(s);
  st.accesses++;
  const i = vmcsFieldIndex(enc);
  if (i < 0) {
    // The error goes where L1 will VMREAD it: the shadow VMCS's VM-instruction error field.
    const slot = shadowSlot(s, st, link, FIELD.VM_INSTRUCTION_ERROR, true);
    slot[0][slot[1]] = VMXERR_UNSUPPORTED_VMCS_COMPONENT;
    slot[2][slot[3]] = 0;
    setFlags(s, RFLAGS.ZF);
    return true;
  }
  // The slot's parts read one by one: destructuring would go through the array iterator.
  const slot = shadowSlot(s, st, link, i, !read);
  const loArr = slot[0];
  const l = slot[1];
  const hiArr = slot[2];
  const h = slot[3];
  const high = (enc & 1) === 1;
  if (read) {
    const lo = high ? hiArr[h]! : loArr[l]!;
    const hi = high ? 0 : hiArr[h]!;
    if (operand.isReg) {
      cpu.gpr[operand.reg1] = lo | 0;
      cpu.gprHi[operand.reg1] = long ? hi | 0 : 0;
    } else {
      cpu.writeMem(operand.seg, operand.offset, 4, lo >>> 0);
      if (long) cpu.writeMem(operand.seg, operand.offset + 4, 4, hi >>> 0);
    }
  } else {
    let lo: number;
    let hi = 0;
    if (operand.isReg) {
      lo = cpu.gpr[operand.reg1]! >>> 0;
      if (long) hi = cpu.gprHi[operand.reg1]! >>> 0;
    } else {
      lo = cpu.readMem(operand.seg, operand.offset, 4);
      if (long) hi = cpu.readMem(operand.seg, operand.offset + 4, 4);
    }
    const w = FIELD_WIDTH[i];
    if (high) hiArr[h] = lo;
    else if (w === VMCS_WIDTH.U16 || w === VMCS_WIDTH.U32) {
      loArr[l] = w === VMCS_WIDTH.U16 ? lo & 0xffff : lo;
      hiArr[h] = 0;
    } else {
      loArr[l] = lo;
      hiArr[h] = hi;
    }
  }
  setFlags(s, 0);
  return true;
}
