/**
 * VMX non-root operation (SDM vol. 3C chapter 26): which instructions and events cause VM exits
 * (26.1, 26.2), and how each exit's qualification and instruction information are encoded
 * (28.2.1, Tables 28-1..28-8; 28.2.5, Tables 28-9..28-15).
 */
import {
  INTERCEPT, IO_INFO, DESC_OP, INTR_INFO, EVENT_TYPE, VEC, VIRT_OP, RFLAGS, GPR, CR0, EFER, SEG, AR, type InsnOperand, type VirtOp,
} from '@kvmts/x86';
import { CPU_BASED, SECONDARY_EXEC, PIN_BASED } from './caps.js';
import { FIELD as F } from './fields.js';
import { EXIT_REASON, makeExitInfo, vmExit, vmExitInsn, type ExitInfo } from './exit.js';
import type { VmxSilicon } from './silicon.js';

/** Control-register-access exit qualification (Table 28-3). */
export const CR_ACCESS = { MOV_TO_CR: 0, MOV_FROM_CR: 1, CLTS: 2, LMSW: 3 } as const;
/** I/O-instruction exit qualification (Table 28-5). */
export const IO_QUAL = { IN: 1 << 3, STRING: 1 << 4, REP: 1 << 5, IMM: 1 << 6, PORT_SHIFT: 16 } as const;

const ADDR_SIZE: Readonly<Record<number, number>> = { 16: 0, 32: 1, 64: 2 };

/** VM-exit instruction information for memory/register operands (Tables 28-11, 28-14, 28-15). */
export function vmxInsnInfo(op: InsnOperand, withReg2: boolean): number {
  let info = op.scale & 3;
  info |= (ADDR_SIZE[op.addrSize] ?? 0) << 7;
  if (op.isReg) {
    info |= 1 << 10;
    info |= (op.reg1 & 0xf) << 3;
  } else {
    info |= (op.seg & 7) << 15;
    info |= op.index < 0 ? 1 << 22 : (op.index & 0xf) << 18;
    info |= op.base < 0 ? 1 << 27 : (op.base & 0xf) << 23;
  }
  if (withReg2) info |= (op.reg2 & 0xf) << 28;
  return info >>> 0;
}

function insnExit(s: VmxSilicon, reason: number, qualification = 0, insnInfo = -1): true {
  const info = makeExitInfo(reason, qualification);
  info.insnLen = s.cpu.insnLength;
  info.insnInfo = insnInfo;
  info.atInsnStart = true;
  return vmExitInsn(s, info);
}

const VMX_OP_EXIT: Readonly<Record<number, number>> = {
  [VIRT_OP.VMCALL]: EXIT_REASON.VMCALL,
  [VIRT_OP.VMLAUNCH]: EXIT_REASON.VMLAUNCH,
  [VIRT_OP.VMRESUME]: EXIT_REASON.VMRESUME,
  [VIRT_OP.VMXOFF]: EXIT_REASON.VMOFF,
  [VIRT_OP.VMREAD]: EXIT_REASON.VMREAD,
  [VIRT_OP.VMWRITE]: EXIT_REASON.VMWRITE,
  [VIRT_OP.VMPTRLD]: EXIT_REASON.VMPTRLD,
  [VIRT_OP.VMCLEAR]: EXIT_REASON.VMCLEAR,
  [VIRT_OP.VMXON]: EXIT_REASON.VMON,
  [VIRT_OP.VMPTRST]: EXIT_REASON.VMPTRST,
  [VIRT_OP.INVEPT]: EXIT_REASON.INVEPT,
  [VIRT_OP.INVVPID]: EXIT_REASON.INVVPID,
  [VIRT_OP.VMFUNC]: EXIT_REASON.VMFUNC,
};

/** A VMX instruction in non-root operation: every one of them exits unconditionally (SDM 26.1.2). */
export function vmxInstructionExit(s: VmxSilicon, op: VirtOp, operand: InsnOperand): void {
  const reason = VMX_OP_EXIT[op];
  if (reason === undefined) return s.cpu.fault(VEC.UD);
  // The #UD conditions come before the exit (SDM 31.3): real and virtual-8086 mode, compatibility mode.
  const cpu = s.cpu;
  if (op !== VIRT_OP.VMCALL && op !== VIRT_OP.VMFUNC
    && (!(cpu.cr0 & CR0.PE) || cpu.getRflags() & RFLAGS.VM || (cpu.efer & EFER.LMA && !(cpu.seg[SEG.CS]!.ar & AR.L)))) cpu.fault(VEC.UD);
  const noOperand = op === VIRT_OP.VMCALL || op === VIRT_OP.VMLAUNCH || op === VIRT_OP.VMRESUME || op === VIRT_OP.VMXOFF || op === VIRT_OP.VMFUNC;
  if (noOperand) { insnExit(s, reason); return; }
  const withReg2 = op === VIRT_OP.VMREAD || op === VIRT_OP.VMWRITE || op === VIRT_OP.INVEPT || op === VIRT_OP.INVVPID;
  insnExit(s, reason, operand.isReg ? 0 : operand.disp, vmxInsnInfo(operand, withReg2));
}

function bitmapBit(s: VmxSilicon, base: number, bit: number): boolean {
  return (s.mem.read8(base + (bit >>> 3)) & (1 << (bit & 7))) !== 0;
}

/** SDM 26.1.3 "Instructions That Cause VM Exits Conditionally": I/O. */
function ioExits(s: VmxSilicon, port: number, size: number): boolean {
  if (!(s.proc & CPU_BASED.USE_IO_BITMAPS)) return (s.proc & CPU_BASED.UNCOND_IO_EXITING) !== 0;
  for (let p = port; p < port + size; p++) {
    if (p > 0xffff) return true; // wraps around the I/O space
    if (bitmapBit(s, p < 0x8000 ? s.ioBitmapA : s.ioBitmapB, p & 0x7fff)) return true;
  }
  return false;
}

/** The MSR bitmap (SDM 25.6.9): read-low, read-high, write-low, write-high quarters of 1 KiB. */
function msrExits(s: VmxSilicon, msr: number, write: boolean): boolean {
  if (!(s.proc & CPU_BASED.USE_MSR_BITMAPS)) return true;
  const m = msr >>> 0;
  let quarter: number;
  if (m <= 0x1fff) quarter = 0;
  else if (m >= 0xc0000000 && m <= 0xc0001fff) quarter = 1024;
  else return true;
  return bitmapBit(s, s.msrBitmap + quarter + (write ? 2048 : 0), m & 0x1fff);
}

function gpr64(s: VmxSilicon, r: number): number {
  return s.cpu.gprHi[r]! * 4294967296 + (s.cpu.gpr[r]! >>> 0);
}

function crWriteExits(s: VmxSilicon, cr: number, gpr: number): boolean {
  const value = s.cpu.gpr[gpr]! | 0;
  if (cr === 0) return ((value ^ s.cr0Shadow) & s.cr0Mask) !== 0;
  if (cr === 4) return ((value ^ s.cr4Shadow) & s.cr4Mask) !== 0;
  if (cr === 3) {
    if (!(s.proc & CPU_BASED.CR3_LOAD_EXITING)) return false;
    const v = gpr64(s, gpr);
    const n = s.vmcs.read32(F.CR3_TARGET_COUNT);
    for (let i = 0; i < n; i++) if (s.vmcs.readNum(F.CR3_TARGET_VALUE0 + i) === v) return false;
    return true;
  }
  if (cr === 8) return (s.proc & CPU_BASED.CR8_LOAD_EXITING) !== 0;
  return false;
}

function crReadExits(s: VmxSilicon, cr: number): boolean {
  if (cr === 3) return (s.proc & CPU_BASED.CR3_STORE_EXITING) !== 0;
  if (cr === 8) return (s.proc & CPU_BASED.CR8_STORE_EXITING) !== 0;
  return false;
}

/** LMSW (SDM 26.1.3): exits if it would set a host-owned PE the shadow has clear, or change a host-owned MP/EM/TS. */
function lmswExits(s: VmxSilicon, src: number): boolean {
  const m = s.cr0Mask;
  const sh = s.cr0Shadow;
  if (m & 1 && !(sh & 1) && src & 1) return true;
  return ((src ^ sh) & m & 0xe) !== 0;
}

/** VirtExtension.intercept: decides and, when the event exits, fills the exit information; true when it exited. */
export function vmxIntercept(s: VmxSilicon, kind: number, a: number, b: number): boolean {
  const proc = s.proc;
  const proc2 = s.proc2;
  switch (kind) {
    case INTERCEPT.CPUID: return insnExit(s, EXIT_REASON.CPUID);
    case INTERCEPT.INVD: return insnExit(s, EXIT_REASON.INVD);
    case INTERCEPT.XSETBV: return insnExit(s, EXIT_REASON.XSETBV);
    case INTERCEPT.SHUTDOWN: return vmExitInsn(s, makeExitInfo(EXIT_REASON.TRIPLE_FAULT));
    case INTERCEPT.INIT: return vmExitInsn(s, makeExitInfo(EXIT_REASON.INIT_SIGNAL));
    case INTERCEPT.HLT: return (proc & CPU_BASED.HLT_EXITING) !== 0 && insnExit(s, EXIT_REASON.HLT);
    case INTERCEPT.INVLPG: return (proc & CPU_BASED.INVLPG_EXITING) !== 0 && insnExit(s, EXIT_REASON.INVLPG, a);
    case INTERCEPT.RDPMC: return (proc & CPU_BASED.RDPMC_EXITING) !== 0 && insnExit(s, EXIT_REASON.RDPMC);
    case INTERCEPT.RDTSC: return (proc & CPU_BASED.RDTSC_EXITING) !== 0 && insnExit(s, EXIT_REASON.RDTSC);
    case INTERCEPT.RDTSCP:
      if (!(proc2 & SECONDARY_EXEC.ENABLE_RDTSCP)) s.cpu.fault(VEC.UD);
      return (proc & CPU_BASED.RDTSC_EXITING) !== 0 && insnExit(s, EXIT_REASON.RDTSCP);
    case INTERCEPT.PAUSE: return (proc & CPU_BASED.PAUSE_EXITING) !== 0 && insnExit(s, EXIT_REASON.PAUSE_INSTRUCTION);
    case INTERCEPT.MWAIT: return (proc & CPU_BASED.MWAIT_EXITING) !== 0 && insnExit(s, EXIT_REASON.MWAIT_INSTRUCTION);
    case INTERCEPT.MONITOR: return (proc & CPU_BASED.MONITOR_EXITING) !== 0 && insnExit(s, EXIT_REASON.MONITOR_INSTRUCTION);
    case INTERCEPT.WBINVD: return (proc2 & SECONDARY_EXEC.WBINVD_EXITING) !== 0 && insnExit(s, EXIT_REASON.WBINVD);
    case INTERCEPT.INVPCID:
      if (!(proc2 & SECONDARY_EXEC.ENABLE_INVPCID)) s.cpu.fault(VEC.UD);
      return (proc & CPU_BASED.INVLPG_EXITING) !== 0
        && insnExit(s, EXIT_REASON.INVPCID, s.cpu.operand.disp, vmxInsnInfo(s.cpu.operand, true));
    case INTERCEPT.DESC_TABLE: {
      if (!(proc2 & SECONDARY_EXEC.DESC)) return false;
      // Tables 28-10/28-11: instruction identity in bits 29:28.
      const gdtIdt = a <= DESC_OP.LIDT;
      const ident = a & 3; // SGDT/SLDT 0, SIDT/STR 1, LGDT/LLDT 2, LIDT/LTR 3
      const info = (vmxInsnInfo(s.cpu.operand, false) & ~(0xf << 28)) | (ident << 28);
      return insnExit(s, gdtIdt ? EXIT_REASON.GDTR_IDTR : EXIT_REASON.LDTR_TR, s.cpu.operand.isReg ? 0 : s.cpu.operand.disp, info >>> 0);
    }
    case INTERCEPT.IO: return ioExits(s, a & 0xffff, b & IO_INFO.SIZE_MASK) && ioExit(s, a & 0xffff, b);
    case INTERCEPT.MSR_READ: return msrExits(s, a, false) && insnExit(s, EXIT_REASON.MSR_READ);
    case INTERCEPT.MSR_WRITE: return msrExits(s, a, true) && insnExit(s, EXIT_REASON.MSR_WRITE);
    case INTERCEPT.CR_WRITE:
      return crWriteExits(s, a, b) && insnExit(s, EXIT_REASON.CR_ACCESS, a | (CR_ACCESS.MOV_TO_CR << 4) | (b << 8));
    case INTERCEPT.CR_READ:
      return crReadExits(s, a) && insnExit(s, EXIT_REASON.CR_ACCESS, a | (CR_ACCESS.MOV_FROM_CR << 4) | (b << 8));
    case INTERCEPT.CLTS:
      return (s.cr0Mask & 8 & s.cr0Shadow) !== 0 && insnExit(s, EXIT_REASON.CR_ACCESS, CR_ACCESS.CLTS << 4);
    case INTERCEPT.LMSW:
      return lmswExits(s, a) && insnExit(s, EXIT_REASON.CR_ACCESS, (CR_ACCESS.LMSW << 4) | (b ? 1 << 6 : 0) | ((a & 0xffff) << 16));
    case INTERCEPT.DR_READ:
    case INTERCEPT.DR_WRITE:
      return (proc & CPU_BASED.MOV_DR_EXITING) !== 0
        && insnExit(s, EXIT_REASON.DR_ACCESS, (a & 7) | (kind === INTERCEPT.DR_READ ? 1 << 4 : 0) | (b << 8));
    case INTERCEPT.TASK_SWITCH:
      // Task switches always exit (SDM 26.1.2); qualification Table 28-2: selector 15:0, source 31:30.
      return insnExit(s, EXIT_REASON.TASK_SWITCH, (a & 0xffff) | ((b & 3) << 30));
    case INTERCEPT.RDRAND: return (proc2 & SECONDARY_EXEC.RDRAND_EXITING) !== 0 && insnExit(s, EXIT_REASON.RDRAND);
    case INTERCEPT.RDSEED: return (proc2 & SECONDARY_EXEC.RDSEED_EXITING) !== 0 && insnExit(s, EXIT_REASON.RDSEED);
    default:
      return false;
  }
}

/** The I/O-instruction exit: qualification (Table 28-5), and for string I/O the linear address and instruction information. */
function ioExit(s: VmxSilicon, port: number, b: number): true {
  const q = ((b & IO_INFO.SIZE_MASK) - 1) | (b & IO_INFO.IN ? IO_QUAL.IN : 0) | (b & IO_INFO.STRING ? IO_QUAL.STRING : 0)
    | (b & IO_INFO.REP ? IO_QUAL.REP : 0) | (b & IO_INFO.IMM ? IO_QUAL.IMM : 0) | (port << IO_QUAL.PORT_SHIFT);
  const info = makeExitInfo(EXIT_REASON.IO_INSTRUCTION, q >>> 0);
  info.insnLen = s.cpu.insnLength;
  info.atInsnStart = true;
  if (b & IO_INFO.STRING) {
    const op = s.cpu.operand;
    const inS = (b & IO_INFO.IN) !== 0;
    const seg = inS ? 0 : op.seg;
    const reg = gpr64(s, inS ? GPR.RDI : GPR.RSI);
    const off = op.addrSize === 64 ? reg : reg % 2 ** op.addrSize;
    info.linear = s.cpu.seg[seg]!.base + off;
    info.insnInfo = ((ADDR_SIZE[op.addrSize] ?? 0) << 7) | (seg << 15);
  }
  return vmExitInsn(s, info);
}

/** VirtExtension.event: exceptions through the exception bitmap and PFEC mask/match, NMIs and external interrupts (SDM 26.2). */
export function vmxEvent(s: VmxSilicon, intrInfo: number, errorCode: number): void {
  const type = (intrInfo & INTR_INFO.TYPE_MASK) >> INTR_INFO.TYPE_SHIFT;
  const vector = intrInfo & INTR_INFO.VECTOR_MASK;
  let reason: number;
  if (type === EVENT_TYPE.EXT_INTR) {
    if (!(s.pin & PIN_BASED.EXT_INTR_MASK)) return;
    reason = EXIT_REASON.EXTERNAL_INTERRUPT;
  } else if (type === EVENT_TYPE.NMI) {
    if (!(s.pin & PIN_BASED.NMI_EXITING)) return;
    reason = EXIT_REASON.EXCEPTION_NMI;
  } else if (type === EVENT_TYPE.HW_EXCEPTION || type === EVENT_TYPE.SW_EXCEPTION || type === EVENT_TYPE.PRIV_SW_EXCEPTION) {
    let exits = (s.exceptionBitmap & (1 << vector)) !== 0;
    if (vector === VEC.PF) exits = exits === (((errorCode & s.pfecMask) >>> 0) === (s.pfecMatch >>> 0));
    if (!exits) return;
    reason = EXIT_REASON.EXCEPTION_NMI;
  } else {
    return;
  }
  const info: ExitInfo = makeExitInfo(reason);
  if (reason === EXIT_REASON.EXCEPTION_NMI) {
    info.intrInfo = intrInfo | INTR_INFO.VALID;
    info.intrErrorCode = intrInfo & INTR_INFO.DELIVER_CODE ? errorCode : 0;
    if (type === EVENT_TYPE.SW_EXCEPTION || type === EVENT_TYPE.PRIV_SW_EXCEPTION) {
      info.insnLen = s.cpu.insnLength;
      info.atInsnStart = true;
    }
    // Table 28-1: #PF reports the faulting linear address (the CPU passes it in CR2's place); #DB the
    // DR6-like conditions of this #DB alone (B0-B3, BD, BS), not DR6's sticky bits.
    if (vector === VEC.PF) info.qualification = s.cpu.cr2;
    else if (vector === VEC.DB) info.qualification = s.cpu.debugConditions & 0x600f;
  } else if (s.exitCtl & (1 << 15)) {
    info.intrInfo = (intrInfo & 0xff) | INTR_INFO.VALID;
    s.cpu.pendingInterrupt = -1;
  }
  vmExit(s, info);
}

/** RFLAGS.IF and the interrupt shadow, for the interrupt window (SDM 26.7.5). */
export function interruptWindowOpen(s: VmxSilicon): boolean {
  return (s.cpu.getRflags() & RFLAGS.IF) !== 0 && (s.cpu.interruptibility & 3) === 0;
}
