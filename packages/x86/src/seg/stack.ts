/**
 * Stack accesses for far calls, returns and event delivery, which push and pop on stacks other
 * than the current one and must not change RSP or SS until every access succeeded.
 */
import type { VirtCpu } from '../cpu/virt.js';
import { ACCESS } from '../cpu/virt.js';
import { AR, CR0, GPR, SEG, type Segment } from '../cpu/state.js';
import { VEC } from '../cpu/events.js';
import { readLinear, writeLinear } from '../mmu/linear.js';
import { getReg64, setReg64 } from '../system/regs.js';

/** Stack address size of the current SS (64 in 64-bit mode). */
export function stackAddrSize(cpu: VirtCpu, long64: boolean, ss: Segment = cpu.seg[SEG.SS]!): 16 | 32 | 64 {
  if (long64) return 64;
  return ss.ar & AR.DB && cpu.cr0 & CR0.PE ? 32 : 16;
}

/** RSP/ESP/SP as the stack address size sees it. */
export function readSp(cpu: VirtCpu, size: 16 | 32 | 64): number {
  if (size === 64) return getReg64(cpu, GPR.RSP);
  return size === 32 ? cpu.gpr[GPR.RSP]! >>> 0 : cpu.gpr[GPR.RSP]! & 0xffff;
}

/** Writes back a stack pointer: SP only changes the low 16 bits, ESP zero-extends in long mode only via 64. */
export function writeSp(cpu: VirtCpu, size: 16 | 32 | 64, sp: number): void {
  if (size === 64) setReg64(cpu, GPR.RSP, sp);
  else if (size === 32) cpu.gpr[GPR.RSP] = sp | 0;
  else cpu.gpr[GPR.RSP] = (cpu.gpr[GPR.RSP]! & ~0xffff) | (sp & 0xffff);
}

/**
 * A cursor over a stack: pushes and pops go to memory; the caller commits `sp` when all
 * succeeded. Outside 64-bit mode every access is checked against the stack segment's limit
 * (expand-up or expand-down, SDM 5.3), raising #SS(`errorCode`).
 */
export class StackCursor {
  private readonly cpu: VirtCpu;
  private readonly base: number;
  sp: number;
  private readonly size: 16 | 32 | 64;
  /** ACCESS.USER when the accesses are made at CPL 3. */
  private readonly user: number;
  /** Lowest and highest valid offsets of the stack segment. */
  private readonly lo: number;
  private readonly hi: number;
  private readonly errorCode: number;

  constructor(cpu: VirtCpu, ss: Segment | null, sp: number, size: 16 | 32 | 64, user: number, errorCode = 0) {
    this.cpu = cpu;
    this.base = ss === null ? 0 : ss.base;
    this.sp = sp;
    this.size = size;
    this.user = user;
    this.errorCode = errorCode;
    const expandDown = ss !== null && (ss.ar & (AR.S | 0xc)) === (AR.S | 0x4);
    if (ss === null || size === 64) { this.lo = -Infinity; this.hi = Infinity; }
    else if (expandDown) { this.lo = ss.limit + 1; this.hi = ss.ar & AR.DB ? 0xffffffff : 0xffff; }
    else { this.lo = 0; this.hi = ss.limit; }
  }

  private la(sp: number, width: number): number {
    if (sp < this.lo || sp + width - 1 > this.hi) this.cpu.fault(VEC.SS, this.errorCode);
    return this.size === 64 ? sp : this.base + sp;
  }

  private wrap(sp: number): number {
    return this.size === 16 ? sp & 0xffff : this.size === 32 ? sp >>> 0 : sp;
  }

  /** Pushes a `width`-byte value (8: lo, hi halves). */
  push(width: 2 | 4 | 8, lo: number, hi = 0): void {
    this.sp = this.wrap(this.sp - width);
    const la = this.la(this.sp, width);
    const acc = ACCESS.WRITE | this.user;
    if (width === 2) writeLinear(this.cpu, la, 2, lo & 0xffff, acc);
    else {
      writeLinear(this.cpu, la, 4, lo, acc);
      if (width === 8) writeLinear(this.cpu, la + 4, 4, hi, acc);
    }
  }

  /** Pushes a signed-canonical number as 8 bytes, or its low `width` bytes. */
  pushNum(width: 2 | 4 | 8, v: number): void {
    this.push(width, v % 0x1_0000_0000 | 0, Math.floor(v / 0x1_0000_0000) | 0);
  }

  /** Pops `width` bytes; 8-byte pops return a signed number (exact for canonical values). */
  pop(width: 2 | 4 | 8): number {
    const la = this.la(this.sp, width);
    const acc = ACCESS.READ | this.user;
    let v: number;
    if (width === 2) v = readLinear(this.cpu, la, 2, acc);
    else if (width === 4) v = readLinear(this.cpu, la, 4, acc);
    else v = (readLinear(this.cpu, la + 4, 4, acc) | 0) * 0x1_0000_0000 + readLinear(this.cpu, la, 4, acc);
    this.sp = this.wrap(this.sp + width);
    return v;
  }

  skip(bytes: number): void {
    this.sp = this.wrap(this.sp + bytes);
  }
}
