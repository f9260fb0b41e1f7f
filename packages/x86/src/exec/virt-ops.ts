/**
 * VMX and SVM instructions: decoded here, executed by the vendor's silicon through
 * cpu.ext.execute(). A CPU without virtualization silicon raises #UD (SDM Vol. 3C 31.3;
 * APM Vol. 2, 15.4).
 */
import type { Cpu } from '../cpu/cpu.js';
import { VEC } from '../cpu/events.js';
import { VIRT_OP, type VirtOp } from '../cpu/virt.js';
import type { Binder } from '../decode/binders.js';
import type { Handler, Insn } from '../decode/insn.js';
import { REP } from '../decode/insn.js';
import { fillOperand } from './operand.js';

/**
 * Hands the instruction to the silicon. VMREAD and VMWRITE are only this: they change a VMCS, a
 * register or memory, and RFLAGS, never the mode the CPU runs in, so nothing cached from that
 * mode is recomputed. One that exits does so through the extension, whose VM exit recomputes it.
 */
function vmcsAccessInsn(cpu: Cpu, i: Insn): void {
  const ext = cpu.ext;
  if (ext === null) cpu.fault(VEC.UD);
  fillOperand(cpu, i);
  cpu.syncFlags();
  ext.execute(i.aux as VirtOp, cpu.operand);
}

/** The other VMX and SVM instructions may change the mode (VMLAUNCH, VMRUN, VMXOFF…). */
function virtInsn(cpu: Cpu, i: Insn): void {
  vmcsAccessInsn(cpu, i);
  // One that ended in a VM exit did not execute: the exit has already set up the host's context.
  if (!cpu.aborted) cpu.stateChanged();
}

function ud(cpu: Cpu): void {
  cpu.fault(VEC.UD);
}

function op(code: VirtOp, memoryOnly = false): Binder {
  return (i) => {
    if (memoryOnly && i.rm >= 0) return ud;
    i.aux = code;
    return virtInsn;
  };
}

function vmcsAccess(i: Insn, code: VirtOp): Handler {
  if (i.prefix66 || i.rep !== REP.NONE) return ud;
  i.aux = code;
  return vmcsAccessInsn;
}

export const VIRT_BINDERS: Record<string, Binder> = {
  VMCALL: op(VIRT_OP.VMCALL),
  VMLAUNCH: op(VIRT_OP.VMLAUNCH),
  VMRESUME: op(VIRT_OP.VMRESUME),
  VMXOFF: op(VIRT_OP.VMXOFF),
  VMFUNC: op(VIRT_OP.VMFUNC),
  VMREAD: (i) => vmcsAccess(i, VIRT_OP.VMREAD),
  VMWRITE: (i) => vmcsAccess(i, VIRT_OP.VMWRITE),
  // 0F C7 /6: VMPTRLD (no prefix), VMCLEAR (66), VMXON (F3).
  VMPTRLD: (i) => {
    if (i.rm >= 0) return ud;
    i.aux = i.prefix66 ? VIRT_OP.VMCLEAR : i.rep === REP.REPE ? VIRT_OP.VMXON : VIRT_OP.VMPTRLD;
    return virtInsn;
  },
  VMPTRST: op(VIRT_OP.VMPTRST, true),
  INVEPT: (i) => (!i.prefix66 || i.rm >= 0 ? ud : op(VIRT_OP.INVEPT)(i, undefined as never)),
  INVVPID: (i) => (!i.prefix66 || i.rm >= 0 ? ud : op(VIRT_OP.INVVPID)(i, undefined as never)),
  VMRUN: op(VIRT_OP.VMRUN),
  VMMCALL: op(VIRT_OP.VMMCALL),
  VMLOAD: op(VIRT_OP.VMLOAD),
  VMSAVE: op(VIRT_OP.VMSAVE),
  STGI: op(VIRT_OP.STGI),
  CLGI: op(VIRT_OP.CLGI),
  SKINIT: op(VIRT_OP.SKINIT),
  INVLPGA: op(VIRT_OP.INVLPGA),
};
