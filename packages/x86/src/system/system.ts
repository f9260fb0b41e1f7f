import type { VirtCpu, InsnOperand } from '../cpu/virt.js';
import { VEC } from '../cpu/events.js';

type Cpu = VirtCpu;
export function cpuidInsn(cpu: Cpu): void { cpu.fault(VEC.UD); }
export function rdmsrInsn(cpu: Cpu): void { cpu.fault(VEC.UD); }
export function wrmsrInsn(cpu: Cpu): void { cpu.fault(VEC.UD); }
export function rdtscInsn(cpu: Cpu, withAux: boolean): void { void withAux; cpu.fault(VEC.UD); }
export function hltInsn(cpu: Cpu): void { cpu.fault(VEC.UD); }
export function cliInsn(cpu: Cpu): void { cpu.fault(VEC.UD); }
export function stiInsn(cpu: Cpu): void { cpu.fault(VEC.UD); }
export function cltsInsn(cpu: Cpu): void { cpu.fault(VEC.UD); }
export function movToCr(cpu: Cpu, cr: number, gpr: number): void { void cr; void gpr; cpu.fault(VEC.UD); }
export function movFromCr(cpu: Cpu, cr: number, gpr: number): void { void cr; void gpr; cpu.fault(VEC.UD); }
export function movToDr(cpu: Cpu, dr: number, gpr: number): void { void dr; void gpr; cpu.fault(VEC.UD); }
export function movFromDr(cpu: Cpu, dr: number, gpr: number): void { void dr; void gpr; cpu.fault(VEC.UD); }
export function lmswInsn(cpu: Cpu, value: number, isMem: boolean): void { void value; void isMem; cpu.fault(VEC.UD); }
export function smswValue(cpu: Cpu): number { return cpu.cr0 & 0xffff; }
export function invlpgInsn(cpu: Cpu, la: number): void { void la; cpu.fault(VEC.UD); }
export function descTableInsn(cpu: Cpu, op: number, operand: InsnOperand): void { void op; void operand; cpu.fault(VEC.UD); }
export function syscallInsn(cpu: Cpu): void { cpu.fault(VEC.UD); }
export function sysretInsn(cpu: Cpu, opSize: 32 | 64): void { void opSize; cpu.fault(VEC.UD); }
export function sysenterInsn(cpu: Cpu): void { cpu.fault(VEC.UD); }
export function sysexitInsn(cpu: Cpu, opSize: 32 | 64): void { void opSize; cpu.fault(VEC.UD); }
export function swapgsInsn(cpu: Cpu): void { cpu.fault(VEC.UD); }
export function checkIoPermission(cpu: Cpu, port: number, size: number): void { void port; void size; cpu.fault(VEC.UD); }
export function rdmsrValue(cpu: Cpu, index: number): bigint { void index; return cpu.fault(VEC.GP, 0); }
export function wrmsrValue(cpu: Cpu, index: number, value: bigint): void { void index; void value; cpu.fault(VEC.GP, 0); }
