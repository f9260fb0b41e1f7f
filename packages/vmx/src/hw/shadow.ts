/**
 * VMCS shadowing (SDM 25.10 "Software Use of Virtual-Machine Control Structures", 25.6.15 the
 * VMREAD/VMWRITE bitmaps, and the non-root branches of VMREAD/VMWRITE in chapter 31): with the
 * "VMCS shadowing" control set, a VMREAD or VMWRITE in VMX non-root operation whose field has a
 * clear bit in the VMREAD (VMWRITE) bitmap does not exit; it reads (writes) the shadow VMCS the
 * VMCS link pointer references, in memory.
 */
import { VIRT_OP, RFLAGS, type InsnOperand, type VirtOp } from '@kvmts/x86';
import { FIELD, FIELD_WIDTH, VMCS_WIDTH, vmcsFieldIndex } from './fields.js';
import { SECONDARY_EXEC } from './caps.js';
import { VMCS_REGION } from './region.js';
import type { VmxSilicon } from './silicon.js';

const ARITH_FLAGS = RFLAGS.CF | RFLAGS.PF | RFLAGS.AF | RFLAGS.ZF | RFLAGS.SF | RFLAGS.OF;
const VMXERR_UNSUPPORTED_VMCS_COMPONENT = 12;

const counts = new WeakMap<VmxSilicon, number>();

/** VMREADs and VMWRITEs this CPU served from a shadow VMCS instead of exiting. */
export function shadowAccessCount(s: VmxSilicon): number {
  return counts.get(s) ?? 0;
}

function setFlags(s: VmxSilicon, set: number): void {
  s.cpu.setRflags((s.cpu.getRflags() & ~ARITH_FLAGS) | set);
}

/** The field slot of row `i` in the shadow VMCS region at `hpa`. */
function slot(hpa: number, i: number): number {
  return hpa + VMCS_REGION.DATA + i * 8;
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
  counts.set(s, shadowAccessCount(s) + 1);
  const i = vmcsFieldIndex(enc);
  if (i < 0) {
    // The error goes where L1 will VMREAD it: the shadow VMCS's VM-instruction error field.
    s.mem.write32(slot(link, FIELD.VM_INSTRUCTION_ERROR), VMXERR_UNSUPPORTED_VMCS_COMPONENT);
    s.mem.write32(slot(link, FIELD.VM_INSTRUCTION_ERROR) + 4, 0);
    setFlags(s, RFLAGS.ZF);
    return true;
  }
  const a = slot(link, i);
  const high = (enc & 1) === 1;
  if (read) {
    const lo = high ? s.mem.read32(a + 4) : s.mem.read32(a);
    const hi = high ? 0 : s.mem.read32(a + 4);
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
    if (high) s.mem.write32(a + 4, lo >>> 0);
    else if (w === VMCS_WIDTH.U16 || w === VMCS_WIDTH.U32) {
      s.mem.write32(a, w === VMCS_WIDTH.U16 ? lo & 0xffff : lo >>> 0);
      s.mem.write32(a + 4, 0);
    } else {
      s.mem.write32(a, lo >>> 0);
      s.mem.write32(a + 4, hi >>> 0);
    }
  }
  setFlags(s, 0);
  return true;
}
