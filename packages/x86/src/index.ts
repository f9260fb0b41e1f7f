export { PhysMemory, PAGE_SIZE, PAGE_SHIFT, CHUNK_SIZE, CHUNK_SHIFT } from './mem/phys-memory.js';
export { Bus, OPEN_BUS } from './bus.js';
export type { MmioHandler, PortHandler, BusFallback } from './bus.js';
export {
  CpuState, SEG, GPR, AR, CR0, CR4, EFER, RFLAGS, ACTIVITY, INTERRUPTIBILITY, makeSegment,
} from './cpu/state.js';
export type { Segment, SegIndex, DescriptorTableReg } from './cpu/state.js';
export { EVENT_TYPE, INTR_INFO, VEC, makeIntrInfo } from './cpu/events.js';
export { VIRT_OP, INTERCEPT, IO_INFO, DESC_OP, ACCESS, STOP } from './cpu/virt.js';
export type {
  VirtOp, InsnOperand, InterceptKind, StopReason, VirtExtension, CpuModel, VirtCpu,
} from './cpu/virt.js';
export { Cpu } from './cpu/cpu.js';
export type { CpuOptions } from './cpu/cpu.js';
export { genericModel } from './cpu/generic-model.js';
export { runCpuLoop, makeBenchCpu } from './bench/cpu-loop.js';
export type { CpuLoopMode } from './bench/cpu-loop.js';
export { translateLinear, pagingMode, PAGING_MODE, PFERR, PTE } from './mmu/page-walk.js';
export { readLinear, writeLinear } from './mmu/linear.js';
export { deliverEvent, iret } from './exceptions/deliver.js';
export { EXC_CLASS, exceptionClass, isDoubleFault, isFaultClass } from './exceptions/exception-class.js';
export { loadSegment, farJump, farCall, farReturn } from './seg/segments.js';
export { readDescriptor, descAr } from './seg/descriptor.js';
export { TASK_SOURCE, switchTasks } from './seg/task-switch.js';
export type { TaskSource } from './seg/task-switch.js';
export { decodeInsn } from './decode/decoder.js';
export { rdmsrValue, wrmsrValue, readTsc } from './system/msr.js';
export { MSR, MSR_TABLE, MSR_CHECK } from './system/msr-table.js';
export type { MsrInfo } from './system/msr-table.js';
export { setCr0, setCr3, setCr4, cr4Allowed } from './system/control-regs.js';
