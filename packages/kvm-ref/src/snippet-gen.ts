/**
 * Random but valid 64-bit instruction sequences for CPU differential tests: every sequence runs
 * at CPL3 in the snippet VM (snippets.ts) without faulting, and says which arithmetic flags it
 * leaves undefined (SDM Vol. 2 / APM Vol. 3 "Flags affected"), so a comparison can ignore them.
 *
 * Conventions that keep sequences fault-free: RSP is the stack and R15 the scratch page's base,
 * so neither is ever a destination; memory operands are [R15 + disp8]; pops only follow pushes;
 * DIV/IDIV operands are conditioned first so no #DE can happen; shift and SHLD counts are known
 * when generated, so their undefined flags are too. A flag left undefined is "poisoned": an
 * instruction that would read it (ADC, SETcc, LAHF, ...) is preceded by a CMP that redefines all six.
 */
import { SNIPPET_LAYOUT } from './snippets.js';
import type { Snippet } from './snippets.js';

export const FLAG = { CF: 0x1, PF: 0x4, AF: 0x10, ZF: 0x40, SF: 0x80, DF: 0x400, OF: 0x800 } as const;
const { CF, PF, AF, ZF, SF, OF } = FLAG;
export const ARITH = CF | PF | AF | ZF | SF | OF;
/** The flags a differential test compares: the six arithmetic flags and DF. */
export const COMPARED_FLAGS = ARITH | FLAG.DF;

const RSP = 4;
const R15 = 15;
type Size = 8 | 16 | 32 | 64;

const NAMES: Record<Size, readonly string[]> = {
  64: ['rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'],
  32: ['eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi', 'r8d', 'r9d', 'r10d', 'r11d', 'r12d', 'r13d', 'r14d', 'r15d'],
  16: ['ax', 'cx', 'dx', 'bx', 'sp', 'bp', 'si', 'di', 'r8w', 'r9w', 'r10w', 'r11w', 'r12w', 'r13w', 'r14w', 'r15w'],
  8: ['al', 'cl', 'dl', 'bl', 'spl', 'bpl', 'sil', 'dil', 'r8b', 'r9b', 'r10b', 'r11b', 'r12b', 'r13b', 'r14b', 'r15b'],
};
const LEGACY_HIGH8 = ['al', 'cl', 'dl', 'bl', 'ah', 'ch', 'dh', 'bh'] as const;

/** What an instruction does to the arithmetic flags: reads, defines, leaves undefined. */
interface FlagEffect {
  reads?: number;
  writes?: number;
  undef?: number;
}

/** Condition codes (SDM Table B-1) and the flags each reads. */
const CC = [
  ['o', OF], ['no', OF], ['b', CF], ['ae', CF], ['e', ZF], ['ne', ZF], ['be', CF | ZF], ['a', CF | ZF],
  ['s', SF], ['ns', SF], ['p', PF], ['np', PF], ['l', SF | OF], ['ge', SF | OF], ['le', ZF | SF | OF], ['g', ZF | SF | OF],
] as const;

/** ALU group (opcode base = 8 * index; /digit in 80/81/83): name and flag effect. */
const ALU = [
  ['add', { writes: ARITH }], ['or', { writes: ARITH & ~AF, undef: AF }],
  ['adc', { reads: CF, writes: ARITH }], ['sbb', { reads: CF, writes: ARITH }],
  ['and', { writes: ARITH & ~AF, undef: AF }], ['sub', { writes: ARITH }],
  ['xor', { writes: ARITH & ~AF, undef: AF }], ['cmp', { writes: ARITH }],
] as const satisfies readonly (readonly [string, FlagEffect])[];

/** Shift group C0/C1/D0-D3 /digit. */
const SHIFT = ['rol', 'ror', 'rcl', 'rcr', 'shl', 'shr', null, 'sar'] as const;

/** xoshiro128** (Blackman and Vigna), seeded through splitmix32: reproducible, 32-bit, no BigInt. */
export class Rng {
  private readonly s = new Uint32Array(4);
  constructor(seed: number) {
    let z = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      z = (z + 0x9e3779b9) >>> 0;
      let t = z;
      t = Math.imul(t ^ (t >>> 16), 0x85ebca6b);
      t = Math.imul(t ^ (t >>> 13), 0xc2b2ae35);
      this.s[i] = t ^ (t >>> 16);
    }
  }
  u32(): number {
    const s = this.s;
    const r = Math.imul(rotl(Math.imul(s[1]!, 5), 7), 9) >>> 0;
    const t = s[1]! << 9;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return r;
  }
  int(n: number): number {
    return this.u32() % n;
  }
  bool(): boolean {
    return (this.u32() & 1) === 1;
  }
  pick<T>(list: readonly T[]): T {
    return list[this.int(list.length)]!;
  }
  u64(): bigint {
    return (BigInt(this.u32()) << 32n) | BigInt(this.u32());
  }
  /** A register value biased towards edge cases: 0, ±1, sign boundaries, small numbers. */
  value(): bigint {
    switch (this.int(8)) {
      case 0: return this.pick([0n, 1n, 0xffffffffffffffffn, 0x8000000000000000n, 0x7fffffffffffffffn, 0x80n, 0x7fn, 0xffn, 0x8000n, 0xffffn, 0x80000000n, 0xffffffffn, 0x7fffffffn]);
      case 1: return BigInt(this.int(256));
      case 2: return BigInt.asUintN(64, -BigInt(this.int(256)));
      case 3: return BigInt(this.u32());
      default: return this.u64();
    }
  }
}

/** Register or [R15 + disp8] operand in the ModRM r/m field. */
/**
 * A ModRM r/m operand: a register, [R15 + disp8] (optionally under a segment override that 64-bit
 * mode ignores, or with a 0x67 prefix: [R15D + disp8]), or FS:/GS:[disp32] (absolute, the segment
 * base supplying the scratch address).
 */
type Rm = { reg: number } | { disp: number; seg?: SegOverride; abs?: boolean; addr32?: boolean };
type SegOverride = keyof typeof SEG_PREFIX;
const SEG_PREFIX = { es: 0x26, cs: 0x2e, ss: 0x36, ds: 0x3e, fs: 0x64, gs: 0x65 } as const;

interface Insn {
  bytes: number[];
  text: string;
}

export interface GeneratedSnippet {
  snippet: Snippet;
  /** One line per instruction, Intel syntax. */
  asm: string[];
  /** Arithmetic flags left undefined at the end; compare RFLAGS under COMPARED_FLAGS & ~undefinedFlags. */
  undefinedFlags: number;
}

const rotl = (x: number, k: number): number => (x << k) | (x >>> (32 - k));
const hex = (v: number | bigint): string => `0x${v.toString(16)}`;
const le = (v: bigint, bytes: number): number[] =>
  Array.from({ length: bytes }, (_, i) => Number((BigInt.asUintN(64, v) >> BigInt(8 * i)) & 0xffn));

class Builder {
  readonly insns: Insn[] = [];
  poisoned = 0;
  pushed = 0;
  readonly rng: Rng;
  constructor(rng: Rng) {
    this.rng = rng;
  }

  emit(bytes: number[], text: string, fx: FlagEffect = {}): void {
    if ((fx.reads ?? 0) & this.poisoned) this.defineFlags();
    this.insns.push({ bytes, text });
    this.poisoned = (this.poisoned & ~(fx.writes ?? 0)) | (fx.undef ?? 0);
  }

  /** cmp <reg>, imm32: all six flags defined again, from live data. */
  private defineFlags(): void {
    const r = this.gpr();
    const imm = BigInt.asIntN(32, BigInt(this.rng.u32()));
    this.insns.push({ bytes: encode({ size: 64, op: [0x81], reg: 7, rm: { reg: r }, imm: le(imm, 4) }), text: `cmp ${NAMES[64][r]}, ${imm}` });
    this.poisoned = 0;
  }

  /** Bytes emitted so far: where the next instruction starts, relative to the snippet. */
  get offset(): number {
    return this.insns.reduce((n, x) => n + x.bytes.length, 0);
  }

  /** A GPR that may be written: anything but RSP and R15. */
  gpr(): number {
    const r = this.rng.int(14);
    return r >= RSP ? r + 1 : r;
  }

  size(): Size {
    return this.rng.pick([8, 16, 32, 64] as const);
  }

  /** A register or memory operand; memory stays within the first 0x80 bytes of scratch. */
  rm(memOk = true): Rm {
    if (!memOk || this.rng.int(4) !== 0) return { reg: this.gpr() };
    switch (this.rng.int(7)) {
      case 0: return { disp: this.rng.int(0x78), seg: this.rng.pick(['es', 'cs', 'ss', 'ds'] as const) };
      case 1: return { disp: this.rng.int(0x1f8), seg: this.rng.pick(['fs', 'gs'] as const), abs: true };
      case 2: return { disp: this.rng.int(0x78), addr32: true };
      default: return { disp: this.rng.int(0x78) };
    }
  }
}

interface Encoding {
  size: Size;
  op: number[];
  /** ModRM.reg: a register number or an opcode extension. */
  reg: number;
  rm: Rm;
  imm?: number[];
  /** Mandatory prefix (F2/F3) before REX. */
  mandatory?: number;
  /** Force a REX prefix, so 8-bit registers 4-7 mean SPL..DIL, not AH..BH. */
  rex?: boolean;
}

function needsRex(e: Encoding): boolean {
  const b = 'disp' in e.rm ? (e.rm.abs ? 0 : 1) : e.rm.reg >> 3;
  return e.size === 64 || e.reg >= 8 || b !== 0 || e.rex === true;
}

function encode(e: Encoding): number[] {
  const out: number[] = [];
  if ('disp' in e.rm && e.rm.seg) out.push(SEG_PREFIX[e.rm.seg]);
  if ('disp' in e.rm && e.rm.addr32) out.push(0x67);
  if (e.size === 16) out.push(0x66);
  if (e.mandatory !== undefined) out.push(e.mandatory);
  if (needsRex(e)) {
    const b = 'disp' in e.rm ? (e.rm.abs ? 0 : 1) : (e.rm.reg >> 3) & 1;
    out.push(0x40 | (e.size === 64 ? 8 : 0) | (((e.reg >> 3) & 1) << 2) | b);
  }
  out.push(...e.op);
  if ('disp' in e.rm && e.rm.abs) out.push(0x04 | ((e.reg & 7) << 3), 0x25, ...le(BigInt(e.rm.disp), 4));
  else if ('disp' in e.rm) out.push(0x40 | ((e.reg & 7) << 3) | (R15 & 7), e.rm.disp);
  else out.push(0xc0 | ((e.reg & 7) << 3) | (e.rm.reg & 7));
  if (e.imm) out.push(...e.imm);
  return out;
}

/** How an operand is spelled, given whether the instruction carries a REX prefix. */
function opText(size: Size, rm: Rm, rex: boolean): string {
  if ('disp' in rm) {
    const seg = rm.seg ? `${rm.seg}:` : '';
    const base = rm.abs ? '' : rm.addr32 ? 'r15d+' : 'r15+';
    return `${['byte', 'word', 'dword', 'qword'][Math.log2(size) - 3]} ${seg}[${base}${hex(rm.disp)}]`;
  }
  return regText(size, rm.reg, rex);
}

function regText(size: Size, r: number, rex: boolean): string {
  return size === 8 && !rex ? LEGACY_HIGH8[r]! : NAMES[size][r]!;
}

/**
 * Picks the 8-bit register pair for a reg/rm instruction: either both legacy (AH..BH allowed,
 * no REX possible) or REX form (SPL excluded: it is RSP).
 */
function reg8Pair(b: Builder, rm: Rm): { reg: number; rm: Rm; rex: boolean } {
  const legacy = !('disp' in rm) && b.rng.bool();
  const r8 = (): number => (legacy ? b.rng.int(8) : b.gpr());
  if (legacy) return { reg: r8(), rm: { reg: r8() }, rex: false };
  return { reg: r8(), rm, rex: true };
}

/** Emits a reg/rm instruction of `size`, choosing 8-bit register spellings consistently. */
function regRm(b: Builder, size: Size, op: number[], text: (dst: string, src: string) => string, fx: FlagEffect, regIsDest: boolean, memOk = true): void {
  let rm = b.rm(memOk);
  let reg = b.gpr();
  let rex = false;
  if (size === 8) ({ reg, rm, rex } = reg8Pair(b, rm));
  const e: Encoding = { size, op, reg, rm, rex };
  const r = regText(size, reg, needsRex(e));
  const m = opText(size, rm, needsRex(e));
  emitMaybeLocked(b, encode(e), regIsDest ? text(r, m) : text(m, r), fx, !regIsDest && 'disp' in rm);
}

/** The instructions that take a LOCK prefix with a memory destination (SDM Vol. 3A 9.1.2.2). */
const LOCKABLE = new Set(['add', 'adc', 'and', 'btc', 'btr', 'bts', 'cmpxchg', 'dec', 'inc', 'neg', 'not', 'or', 'sbb', 'sub', 'xor', 'xadd', 'xchg']);

/** Emits, with a LOCK prefix a third of the time when the instruction and its memory operand allow one. */
function emitMaybeLocked(b: Builder, bytes: number[], text: string, fx: FlagEffect, memDest: boolean): void {
  if (memDest && LOCKABLE.has(text.split(' ')[0]!) && b.rng.int(3) === 0) b.emit([0xf0, ...bytes], `lock ${text}`, fx);
  else b.emit(bytes, text, fx);
}

/** An r/m-only instruction (opcode extension in ModRM.reg). */
function rmOnly(b: Builder, size: Size, op: number[], ext: number, text: (m: string) => string, fx: FlagEffect, imm?: number[]): void {
  let operand = b.rm();
  // 8-bit registers: legacy spelling (AH..BH possible) or REX spelling (SPL excluded: it is RSP).
  const legacy = size === 8 && !('disp' in operand) && b.rng.bool();
  if (legacy) operand = { reg: b.rng.int(8) };
  const e: Encoding = { size, op, reg: ext, rm: operand, rex: size === 8 && !legacy, ...(imm ? { imm } : {}) };
  emitMaybeLocked(b, encode(e), text(opText(size, operand, needsRex(e))), fx, 'disp' in operand);
}

const opc8 = (size: Size, op8: number): number[] => [size === 8 ? op8 : op8 + 1];
const immFor = (b: Builder, size: Size): { bytes: number[]; text: string } => {
  const n = size === 8 ? 1 : size === 16 ? 2 : 4;
  const v = BigInt.asIntN(n * 8, b.rng.value());
  return { bytes: le(v, n), text: `${v}` };
};

function genAlu(b: Builder): void {
  const [name, fx] = b.rng.pick(ALU);
  const i = ALU.findIndex(([n]) => n === name);
  const size = b.size();
  switch (b.rng.int(5)) {
    case 0: regRm(b, size, opc8(size, i * 8), (d, s) => `${name} ${d}, ${s}`, fx, false); break;
    case 1: regRm(b, size, opc8(size, i * 8 + 2), (d, s) => `${name} ${d}, ${s}`, fx, true); break;
    case 2: {
      const imm = immFor(b, size);
      rmOnly(b, size, [size === 8 ? 0x80 : 0x81], i, (m) => `${name} ${m}, ${imm.text}`, fx, imm.bytes);
      break;
    }
    case 3: {
      if (size === 8) { genAlu(b); return; }
      const v = BigInt.asIntN(8, BigInt(b.rng.u32()));
      rmOnly(b, size, [0x83], i, (m) => `${name} ${m}, ${v}`, fx, le(v, 1));
      break;
    }
    default: {
      // The accumulator forms: AL/AX/EAX/RAX, imm.
      const imm = immFor(b, size);
      const pre = [...(size === 16 ? [0x66] : []), ...(size === 64 ? [0x48] : [])];
      b.emit([...pre, i * 8 + (size === 8 ? 4 : 5), ...imm.bytes], `${name} ${NAMES[size][0]}, ${imm.text}`, fx);
    }
  }
}

function genTest(b: Builder): void {
  const size = b.size();
  const fx = { writes: ARITH & ~AF, undef: AF };
  if (b.rng.bool()) regRm(b, size, opc8(size, 0x84), (d, s) => `test ${d}, ${s}`, fx, false);
  else {
    const imm = immFor(b, size);
    rmOnly(b, size, opc8(size, 0xf6), 0, (m) => `test ${m}, ${imm.text}`, fx, imm.bytes);
  }
}

function genUnary(b: Builder): void {
  const size = b.size();
  const [name, op, ext, fx] = b.rng.pick([
    ['not', 0xf6, 2, {}], ['neg', 0xf6, 3, { writes: ARITH }],
    ['inc', 0xfe, 0, { writes: ARITH & ~CF }], ['dec', 0xfe, 1, { writes: ARITH & ~CF }],
  ] as const);
  rmOnly(b, size, opc8(size, op), ext, (m) => `${name} ${m}`, fx);
}

/** A shift count for `size` and how the flags come out (SDM "SAL/SAR/SHL/SHR", "RCL/RCR/ROL/ROR"). */
function shiftCount(b: Builder, size: Size, kind: string): { count: number; fx: FlagEffect } {
  const mask = size === 64 ? 63 : 31;
  let count: number;
  for (;;) {
    count = b.rng.pick([0, 1, 1, 2, size - 1, size, size + 1, b.rng.int(64), b.rng.int(size), 32, 33, 63]) & 0xff;
    const m = count & mask;
    // RCL/RCR of 8/16 bits rotate by count mod 9/17; a masked count that is a multiple of that is odd territory.
    if ((kind === 'rcl' || kind === 'rcr') && size < 32 && m !== 0 && m % (size + 1) === 0) continue;
    break;
  }
  const m = count & mask;
  if (m === 0) return { count, fx: {} };
  const of = m === 1 ? OF : 0;
  if (kind === 'rol' || kind === 'ror') return { count, fx: { writes: CF | of, undef: OF & ~of } };
  if (kind === 'rcl' || kind === 'rcr') return { count, fx: { reads: CF, writes: CF | of, undef: OF & ~of } };
  const cfUndef = (kind === 'shl' || kind === 'shr') && m >= size ? CF : 0;
  return { count, fx: { writes: (CF | SF | ZF | PF | of) & ~cfUndef, undef: AF | (OF & ~of) | cfUndef } };
}

function genShift(b: Builder): void {
  const size = b.size();
  const ext = b.rng.pick([0, 1, 2, 3, 4, 5, 7] as const);
  const name = SHIFT[ext]!;
  const { count, fx } = shiftCount(b, size, name);
  const form = b.rng.int(3);
  if (form === 0 || (form === 1 && count !== 1)) {
    rmOnly(b, size, opc8(size, 0xc0), ext, (m) => `${name} ${m}, ${count}`, fx, [count]);
  } else if (form === 1) {
    rmOnly(b, size, opc8(size, 0xd0), ext, (m) => `${name} ${m}, 1`, fx);
  } else {
    // Shifting CL itself by CL is fine: the count is read before the result is written.
    b.emit([0xb1, count], `mov cl, ${count}`);
    rmOnly(b, size, opc8(size, 0xd2), ext, (m) => `${name} ${m}, cl`, fx);
  }
}

function genDoubleShift(b: Builder): void {
  const size = b.rng.pick([16, 32, 64] as const);
  const left = b.rng.bool();
  const name = left ? 'shld' : 'shrd';
  // Counts above 15 leave a 16-bit result undefined: keep them out.
  const count = size === 16 ? b.rng.int(16) : b.rng.pick([0, 1, 2, b.rng.int(size), size - 1, b.rng.int(256)]);
  const m = count & (size === 64 ? 63 : 31);
  const of = m === 1 ? OF : 0;
  const fx: FlagEffect = m === 0 ? {} : { writes: CF | SF | ZF | PF | of, undef: AF | (OF & ~of) };
  if (b.rng.bool()) {
    regRm(b, size, [0x0f, left ? 0xa4 : 0xac], (d, s) => `${name} ${d}, ${s}, ${count}`, fx, false);
    b.insns.at(-1)!.bytes.push(count);
  } else {
    b.emit([0xb1, count], `mov cl, ${count}`);
    // Keep CL out of the operands, so the count stays the one just loaded.
    const dst: Rm = b.rng.int(4) === 0 ? { disp: b.rng.int(0x78) } : { reg: pickNot(b, [1]) };
    const src = pickNot(b, [1]);
    const e: Encoding = { size, op: [0x0f, left ? 0xa5 : 0xad], reg: src, rm: dst };
    b.emit(encode(e), `${name} ${opText(size, dst, true)}, ${NAMES[size][src]}, cl`, fx);
  }
}

function pickNot(b: Builder, avoid: number[]): number {
  for (;;) {
    const r = b.gpr();
    if (!avoid.includes(r)) return r;
  }
}

function genMul(b: Builder): void {
  const size = b.size();
  const fx = { writes: CF | OF, undef: SF | ZF | AF | PF };
  switch (b.rng.int(4)) {
    case 0: rmOnly(b, size, opc8(size, 0xf6), 4, (m) => `mul ${m}`, fx); break;
    case 1: rmOnly(b, size, opc8(size, 0xf6), 5, (m) => `imul ${m}`, fx); break;
    case 2: {
      const s = size === 8 ? 32 : size;
      regRm(b, s, [0x0f, 0xaf], (d, x) => `imul ${d}, ${x}`, fx, true);
      break;
    }
    default: {
      const s = size === 8 ? 64 : size;
      const short = b.rng.bool();
      const v = BigInt.asIntN(short ? 8 : s === 16 ? 16 : 32, b.rng.value());
      regRm(b, s, [short ? 0x6b : 0x69], (d, x) => `imul ${d}, ${x}, ${v}`, fx, true);
      b.insns.at(-1)!.bytes.push(...le(v, short ? 1 : s === 16 ? 2 : 4));
    }
  }
}

/** DIV/IDIV, after conditioning the dividend and divisor so the quotient fits (no #DE). */
function genDiv(b: Builder): void {
  const size = b.size();
  const signed = b.rng.bool();
  const name = signed ? 'idiv' : 'div';
  const divisor = pickNot(b, [0, 2]);
  const d = regText(size, divisor, true);
  const rexB = (divisor >> 3) & 1;
  const rexFor = (s: Size): number[] => (s === 64 || rexB || s === 8 ? [0x40 | (s === 64 ? 8 : 0) | rexB] : []);
  const p16 = size === 16 ? [0x66] : [];
  // Dividend: RDX:RAX sign- or zero-extended from RAX (AX from AL for 8 bits).
  if (size === 8) {
    if (signed) b.emit([0x66, 0x98], 'cbw');
    else b.emit([0x0f, 0xb6, 0xc0], 'movzx eax, al');
  } else if (signed) {
    b.emit([...p16, ...(size === 64 ? [0x48] : []), 0x99], size === 16 ? 'cwd' : size === 32 ? 'cdq' : 'cqo');
  } else {
    b.emit([0x31, 0xd2], 'xor edx, edx', { writes: ARITH & ~AF, undef: AF });
  }
  // Divisor: positive and nonzero (shr by 1, then or 1), so |quotient| <= |dividend| fits.
  const op8 = (o: number): number[] => [size === 8 ? o : o + 1];
  b.emit([...p16, ...rexFor(size), ...op8(0xd0), 0xe8 | (divisor & 7)], `shr ${d}, 1`, { writes: CF | SF | ZF | PF | OF, undef: AF });
  b.emit([...p16, ...rexFor(size), 0x83 - (size === 8 ? 3 : 0), 0xc8 | (divisor & 7), 1], `or ${d}, 1`, { writes: ARITH & ~AF, undef: AF });
  b.emit([...p16, ...rexFor(size), ...op8(0xf6), (signed ? 0xf8 : 0xf0) | (divisor & 7)], `${name} ${d}`, { undef: ARITH });
}

function genBitScan(b: Builder): void {
  const size = b.rng.pick([16, 32, 64] as const);
  const [name, mandatory, op, fx] = b.rng.pick([
    ['bsf', undefined, 0xbc, { writes: ZF, undef: CF | OF | SF | AF | PF }],
    ['bsr', undefined, 0xbd, { writes: ZF, undef: CF | OF | SF | AF | PF }],
    ['tzcnt', 0xf3, 0xbc, { writes: CF | ZF, undef: OF | SF | AF | PF }],
    ['lzcnt', 0xf3, 0xbd, { writes: CF | ZF, undef: OF | SF | AF | PF }],
    ['popcnt', 0xf3, 0xb8, { writes: ARITH }],
  ] as const);
  const rm = b.rm();
  const reg = b.gpr();
  const e: Encoding = { size, op: [0x0f, op], reg, rm, ...(mandatory ? { mandatory } : {}) };
  b.emit(encode(e), `${name} ${NAMES[size][reg]}, ${opText(size, rm, true)}`, fx);
}

function genBitTest(b: Builder): void {
  const size = b.rng.pick([16, 32, 64] as const);
  const ext = b.rng.int(4);
  const name = ['bt', 'bts', 'btr', 'btc'][ext]!;
  const fx = { writes: CF, undef: OF | SF | AF | PF };
  if (b.rng.bool()) {
    const bit = b.rng.int(256);
    rmOnly(b, size, [0x0f, 0xba], 4 + ext, (m) => `${name} ${m}, ${bit}`, fx, [bit]);
  } else if (b.rng.bool()) {
    regRm(b, size, [0x0f, 0xa3 + ext * 8], (d, s) => `${name} ${d}, ${s}`, fx, false, false);
  } else {
    // On memory a register offset addresses a bit string, signed: keep it within the scratch page.
    const bit = b.rng.int(0x1000) - 0x200;
    const r = pickNot(b, []);
    b.emit([0x48 | (r >> 3), 0xc7, 0xc0 | (r & 7), ...le(BigInt(bit), 4)], `mov ${NAMES[64][r]}, ${bit}`);
    const disp = 0x40 + b.rng.int(0x38); // disp8 stays positive; with the offset, within [0, 0x240)
    const e: Encoding = { size, op: [0x0f, 0xa3 + ext * 8], reg: r, rm: { disp } };
    emitMaybeLocked(b, encode(e), `${name} ${opText(size, { disp }, true)}, ${NAMES[size][r]}`, fx, true);
  }
}

function genCondition(b: Builder): void {
  const cc = b.rng.int(16);
  const [suffix, reads] = CC[cc]!;
  if (b.rng.bool()) rmOnly(b, 8, [0x0f, 0x90 + cc], 0, (m) => `set${suffix} ${m}`, { reads });
  else {
    const size = b.rng.pick([16, 32, 64] as const);
    regRm(b, size, [0x0f, 0x40 + cc], (d, s) => `cmov${suffix} ${d}, ${s}`, { reads }, true);
  }
}

function genExchange(b: Builder): void {
  const size = b.size();
  switch (b.rng.int(4)) {
    case 3: {
      // 90+r: XCHG with the accumulator (r = 0 would be NOP, or with REX.B, R8)
      if (size === 8) { genExchange(b); return; }
      const r = 1 + b.rng.int(14);
      if (r === RSP) { genExchange(b); return; }
      const rex = (size === 64 ? 8 : 0) | (r >> 3);
      b.emit([...(size === 16 ? [0x66] : []), ...(rex ? [0x40 | rex] : []), 0x90 + (r & 7)], `xchg ${NAMES[size][0]}, ${NAMES[size][r]}`);
      break;
    }
    case 0: regRm(b, size, opc8(size, 0x86), (d, s) => `xchg ${d}, ${s}`, {}, false); break;
    case 1: regRm(b, size, [0x0f, size === 8 ? 0xc0 : 0xc1], (d, s) => `xadd ${d}, ${s}`, { writes: ARITH }, false); break;
    default: regRm(b, size, [0x0f, size === 8 ? 0xb0 : 0xb1], (d, s) => `cmpxchg ${d}, ${s}`, { writes: ARITH }, false);
  }
}

function genMove(b: Builder): void {
  const size = b.size();
  switch (b.rng.int(7)) {
    case 0: regRm(b, size, opc8(size, 0x88), (d, s) => `mov ${d}, ${s}`, {}, false); break;
    case 1: regRm(b, size, opc8(size, 0x8a), (d, s) => `mov ${d}, ${s}`, {}, true); break;
    case 2: {
      const r = b.gpr();
      const v = b.rng.value();
      if (b.rng.bool()) b.emit([0x48 | (r >> 3), 0xb8 + (r & 7), ...le(v, 8)], `mov ${NAMES[64][r]}, ${hex(v)}`);
      else b.emit([...(r >= 8 ? [0x41] : []), 0xb8 + (r & 7), ...le(v, 4)], `mov ${NAMES[32][r]}, ${hex(v & 0xffffffffn)}`);
      break;
    }
    case 3: {
      const src = b.rng.pick([8, 16] as const);
      const dst = b.rng.pick(src === 8 ? [16, 32, 64] as const : [32, 64] as const);
      const signed = b.rng.bool();
      const op = [0x0f, (signed ? 0xbe : 0xb6) + (src === 16 ? 1 : 0)];
      // The source's width is in the opcode; encode with the destination's size, print with both.
      const rm = b.rm();
      const reg = b.gpr();
      // A REX prefix always, so an 8-bit source register spells SPL..DIL, never AH..BH.
      const e: Encoding = { size: dst, op, reg, rm, rex: true };
      b.emit(encode(e), `${signed ? 'movsx' : 'movzx'} ${NAMES[dst][reg]}, ${opText(src, rm, true)}`);
      break;
    }
    case 4: {
      const rm = b.rm();
      const reg = b.gpr();
      b.emit(encode({ size: 64, op: [0x63], reg, rm }), `movsxd ${NAMES[64][reg]}, ${opText(32, rm, true)}`);
      break;
    }
    case 5: {
      const imm = immFor(b, size);
      rmOnly(b, size, opc8(size, 0xc6), 0, (m) => `mov ${m}, ${imm.text}`, {}, imm.bytes);
      break;
    }
    default: {
      const [bytes, text] = b.rng.pick([
        [[0x66, 0x98], 'cbw'], [[0x98], 'cwde'], [[0x48, 0x98], 'cdqe'],
        [[0x66, 0x99], 'cwd'], [[0x99], 'cdq'], [[0x48, 0x99], 'cqo'],
      ] as const);
      b.emit([...bytes], text);
    }
  }
}

function genLea(b: Builder): void {
  const size = b.rng.pick([16, 32, 64] as const);
  const addr32 = b.rng.int(4) === 0;
  const reg = b.gpr();
  const base = b.rng.int(16);
  let index = b.rng.int(16);
  if (index === RSP) index = 12; // SIB index 100b without REX.X means none; use R12 instead
  const scale = b.rng.int(4);
  const disp = BigInt.asIntN(32, BigInt(b.rng.u32()));
  const rex = (size === 64 ? 8 : 0) | (((reg >> 3) & 1) << 2) | (((index >> 3) & 1) << 1) | ((base >> 3) & 1);
  const bytes = [...(addr32 ? [0x67] : []), ...(size === 16 ? [0x66] : []), ...(rex ? [0x40 | rex] : []), 0x8d,
    0x84 | ((reg & 7) << 3), (scale << 6) | ((index & 7) << 3) | (base & 7), ...le(disp, 4)];
  const an = addr32 ? NAMES[32] : NAMES[64];
  b.emit(bytes, `lea ${NAMES[size][reg]}, [${an[base]}+${an[index]}*${1 << scale}${disp < 0n ? '' : '+'}${disp}]`);
}

function genFlagOps(b: Builder): void {
  const [bytes, text, fx] = b.rng.pick([
    [[0xf8], 'clc', { writes: CF }], [[0xf9], 'stc', { writes: CF }], [[0xf5], 'cmc', { reads: CF, writes: CF }],
    [[0x9f], 'lahf', { reads: SF | ZF | AF | PF | CF }], [[0x9e], 'sahf', { writes: SF | ZF | AF | PF | CF }],
  ] as const);
  b.emit([...bytes], text, fx);
}

function genBswap(b: Builder): void {
  const r = b.gpr();
  const wide = b.rng.bool();
  const rex = (wide ? 8 : 0) | (r >> 3);
  b.emit([...(rex ? [0x40 | rex] : []), 0x0f, 0xc8 + (r & 7)], `bswap ${(wide ? NAMES[64] : NAMES[32])[r]}`);
}

function genStack(b: Builder): void {
  if (b.pushed > 0 && b.rng.bool()) {
    const r = b.gpr();
    const disp = b.rng.int(0x78);
    if (b.rng.int(4) === 0) b.emit([0x41, 0x8f, 0x47, disp], `pop qword [r15+${hex(disp)}]`);
    else b.emit([...(r >= 8 ? [0x41] : []), 0x58 + (r & 7)], `pop ${NAMES[64][r]}`);
    b.pushed--;
    return;
  }
  if (b.pushed >= 16) return;
  switch (b.rng.int(4)) {
    case 0: {
      const r = b.rng.int(16);
      b.emit([...(r >= 8 ? [0x41] : []), 0x50 + (r & 7)], `push ${NAMES[64][r]}`);
      break;
    }
    case 3: {
      const disp = b.rng.int(0x78);
      b.emit([0x41, 0xff, 0x77, disp], `push qword [r15+${hex(disp)}]`);
      break;
    }
    case 1: {
      const v = BigInt.asIntN(8, BigInt(b.rng.u32()));
      b.emit([0x6a, ...le(v, 1)], `push ${v}`);
      break;
    }
    default: {
      const v = BigInt.asIntN(32, BigInt(b.rng.u32()));
      b.emit([0x68, ...le(v, 4)], `push ${v}`);
    }
  }
  b.pushed++;
}

function genString(b: Builder): void {
  const size = b.size();
  const [name, op8, compares, usesSi, usesDi] = b.rng.pick([
    ['movs', 0xa4, false, true, true], ['stos', 0xaa, false, false, true], ['lods', 0xac, false, true, false],
    ['cmps', 0xa6, true, true, true], ['scas', 0xae, true, false, true],
  ] as const);
  const count = b.rng.int(6);
  const rep = b.rng.int(3); // 0: none, 1: REP/REPE, 2: REPNE (compares only)
  const prefix = rep === 0 ? [] : rep === 2 && compares ? [0xf2] : [0xf3];
  const down = b.rng.bool();
  b.emit([down ? 0xfd : 0xfc], down ? 'std' : 'cld');
  const si = 0x100 + b.rng.int(0x300);
  const di = 0x100 + b.rng.int(0x300);
  if (usesSi) b.emit([0x49, 0x8d, 0xb7, ...le(BigInt(si), 4)], `lea rsi, [r15+${hex(si)}]`);
  if (usesDi) b.emit([0x49, 0x8d, 0xbf, ...le(BigInt(di), 4)], `lea rdi, [r15+${hex(di)}]`);
  if (prefix.length) b.emit([0xb9, ...le(BigInt(count), 4)], `mov ecx, ${count}`);
  const sizePrefix = size === 16 ? [0x66] : [];
  const rexW = size === 64 ? [0x48] : [];
  const fx: FlagEffect = compares && (prefix.length === 0 || count > 0) ? { writes: ARITH } : {};
  const suffix = { 8: 'b', 16: 'w', 32: 'd', 64: 'q' }[size];
  const pre = prefix.length === 0 ? '' : prefix[0] === 0xf2 ? 'repne ' : compares ? 'repe ' : 'rep ';
  b.emit([...sizePrefix, ...prefix, ...rexW, size === 8 ? op8 : op8 + 1], `${pre}${name}${suffix}`, fx);
}

/** A filler that a taken branch skips: `mov r32, imm32` (5 or 6 bytes). */
function filler(b: Builder): Insn {
  const r = b.gpr();
  const v = b.rng.u32();
  return { bytes: [...(r >= 8 ? [0x41] : []), 0xb8 + (r & 7), ...le(BigInt(v), 4)], text: `mov ${NAMES[32][r]}, ${hex(v)}` };
}

/** Forward branches only (Jcc, JMP, LOOPcc, JRCXZ, CALL): taken or not, they never loop. */
function genBranch(b: Builder): void {
  const skip = filler(b);
  const n = skip.bytes.length;
  const kind = b.rng.int(6);
  if (kind === 0 || kind === 1) {
    const cc = b.rng.int(16);
    const [suffix, reads] = CC[cc]!;
    const near = kind === 1;
    b.emit(near ? [0x0f, 0x80 + cc, ...le(BigInt(n), 4)] : [0x70 + cc, n], `j${suffix} ${near ? 'near ' : ''}+${n}`, { reads });
  } else if (kind === 2) {
    const near = b.rng.bool();
    b.emit(near ? [0xe9, ...le(BigInt(n), 4)] : [0xeb, n], `jmp ${near ? 'near ' : ''}+${n}`);
  } else if (kind === 3) {
    const [op, name, reads] = b.rng.pick([[0xe2, 'loop', 0], [0xe1, 'loope', ZF], [0xe0, 'loopne', ZF]] as const);
    if (b.rng.bool()) {
      const c = b.rng.int(3); // around 1, so LOOP both falls through and jumps
      b.emit([0xb9, ...le(BigInt(c), 4)], `mov ecx, ${c}`);
    }
    b.emit([op, n], `${name} +${n}`, { reads });
  } else if (kind === 4) {
    const wide = b.rng.bool();
    if (b.rng.bool()) b.emit([0x31, 0xc9], 'xor ecx, ecx', { writes: ARITH & ~AF, undef: AF });
    b.emit([...(wide ? [] : [0x67]), 0xe3, n], `${wide ? 'jrcxz' : 'jecxz'} +${n}`);
  } else {
    // call the next instruction, then pop the return address it pushed
    const r = b.gpr();
    b.emit([0xe8, 0, 0, 0, 0], 'call +0');
    b.emit([...(r >= 8 ? [0x41] : []), 0x58 + (r & 7)], `pop ${NAMES[64][r]}`);
    return;
  }
  b.insns.push(skip);
}

/** CMPXCHG8B/CMPXCHG16B on the scratch page; half the time EDX:EAX is loaded to match first. */
function genCmpxchg8b16b(b: Builder): void {
  const wide = b.rng.bool();
  const disp = wide ? 16 * b.rng.int(7) : b.rng.int(0x70);
  if (b.rng.bool()) {
    const w = wide ? 0x49 : 0x41;
    const d = wide ? 8 : 4;
    b.emit([w, 0x8b, 0x47, disp], `mov ${wide ? 'rax' : 'eax'}, [r15+${hex(disp)}]`);
    b.emit([w, 0x8b, 0x57, disp + d], `mov ${wide ? 'rdx' : 'edx'}, [r15+${hex(disp + d)}]`);
  }
  b.emit([wide ? 0x49 : 0x41, 0x0f, 0xc7, 0x4f, disp], `${wide ? 'cmpxchg16b' : 'cmpxchg8b'} [r15+${hex(disp)}]`, { writes: ZF });
}

/** XLAT: AL = [RBX + AL], with RBX pointed at the scratch page. */
function genXlat(b: Builder): void {
  const off = b.rng.int(0x700);
  b.emit([0x49, 0x8d, 0x9f, ...le(BigInt(off), 4)], `lea rbx, [r15+${hex(off)}]`);
  b.emit([0xd7], 'xlat byte [rbx]');
}

/** ENTER with nesting level 0 or 1 (higher levels read the caller's frames), then LEAVE. */
function genEnterLeave(b: Builder): void {
  const size = b.rng.int(0x200);
  const level = b.rng.int(2);
  b.emit([0xc8, ...le(BigInt(size), 2), level], `enter ${hex(size)}, ${level}`);
  b.emit([0xc9], 'leave');
}

/** The NOP forms (SDM Table 4-12 "Recommended Multi-Byte Sequence of NOP"), and PAUSE. */
function genNop(b: Builder): void {
  const [bytes, text] = b.rng.pick([
    [[0x90], 'nop'], [[0x66, 0x90], 'xchg ax, ax'], [[0x0f, 0x1f, 0x00], 'nop dword [rax]'],
    [[0x0f, 0x1f, 0x40, 0x00], 'nop dword [rax+0]'], [[0x0f, 0x1f, 0x44, 0x00, 0x00], 'nop dword [rax+rax*1+0]'],
    [[0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00], 'nop word [rax+rax*1+0]'], [[0x0f, 0x1f, 0x80, 0, 0, 0, 0], 'nop dword [rax+0]'],
    [[0x66, 0x2e, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0], 'nop word cs:[rax+rax*1+0]'], [[0xf3, 0x90], 'pause'],
  ] as const);
  b.emit([...bytes], text);
}

/** RIP-relative operands aimed at the scratch page: MOV load/store, LEA, and ALU ops that read no flag. */
function genRipRelative(b: Builder): void {
  const size = b.size();
  const target = SNIPPET_LAYOUT.scratch + b.rng.int(0x700);
  const reg = b.gpr();
  const kind = b.rng.int(4);
  const alu = b.rng.pick([0, 1, 4, 5, 6, 7] as const); // add or and sub xor cmp
  const [op, text, fx] = kind === 0 ? [opc8(size, 0x8a), 'mov', {}]
    : kind === 1 ? [opc8(size, 0x88), 'mov', {}]
    : kind === 2 ? [[0x8d], 'lea', {}]
    : [opc8(size, alu * 8), ALU[alu]![0], ALU[alu]![1]];
  const s = kind === 2 && size === 8 ? 64 : size;
  const rex = (s === 64 ? 8 : 0) | (((reg >> 3) & 1) << 2);
  const head = [...(s === 16 ? [0x66] : []), ...(rex || s === 8 ? [0x40 | rex] : []), ...op, 0x05 | ((reg & 7) << 3)];
  const end = SNIPPET_LAYOUT.code + b.offset + head.length + 4;
  const mem = `${['byte', 'word', 'dword', 'qword'][Math.log2(s) - 3]} [rip+${hex(target - end)}]`;
  const r = NAMES[s][reg]!;
  b.emit([...head, ...le(BigInt(target - end), 4)], kind === 0 || kind === 2 ? `${text} ${r}, ${mem}` : `${text} ${mem}, ${r}`, fx);
}

/** Instruction classes: name, generator, weight in a mixed sequence. */
const GENERATORS = [
  ['alu', genAlu, 6], ['test', genTest, 1], ['unary', genUnary, 2], ['shift', genShift, 4],
  ['shld-shrd', genDoubleShift, 2], ['mul', genMul, 2], ['div', genDiv, 2], ['bit-scan', genBitScan, 2],
  ['bit-test', genBitTest, 2], ['setcc-cmovcc', genCondition, 2], ['exchange', genExchange, 2],
  ['move', genMove, 3], ['lea', genLea, 1], ['flag-ops', genFlagOps, 1], ['bswap', genBswap, 1],
  ['stack', genStack, 2], ['string', genString, 2], ['branch', genBranch, 2], ['cmpxchg8b-16b', genCmpxchg8b16b, 1],
  ['xlat', genXlat, 1], ['enter-leave', genEnterLeave, 1], ['nop', genNop, 1], ['rip-relative', genRipRelative, 1],
] as const satisfies readonly (readonly [string, (b: Builder) => void, number])[];

export type InsnClass = (typeof GENERATORS)[number][0];
export const INSN_CLASSES: readonly InsnClass[] = GENERATORS.map(([name]) => name);

export interface GenerateOptions {
  /** Instruction classes per snippet: 1 to maxInsns (default 4). */
  maxInsns?: number;
  /** Draw only from these classes (default: all, by weight). */
  classes?: readonly InsnClass[];
}

/** `count` snippets from `seed`. Same seed and options, same snippets. */
export function generateSnippets(seed: number, count: number, opts: GenerateOptions = {}): GeneratedSnippet[] {
  const rng = new Rng(seed);
  const pool = GENERATORS.filter(([name]) => opts.classes?.includes(name) ?? true);
  const total = pool.reduce((s, [, , w]) => s + w, 0);
  const pick = (): ((b: Builder) => void) => {
    let n = rng.int(total);
    for (const [, g, w] of pool) {
      if (n < w) return g;
      n -= w;
    }
    return pool[0]![1];
  };
  const out: GeneratedSnippet[] = [];
  for (let i = 0; i < count; i++) {
    const b = new Builder(rng);
    const n = 1 + rng.int(opts.maxInsns ?? 4);
    for (let k = 0; k < n; k++) pick()(b);
    const gpr = Array.from({ length: 16 }, () => rng.value());
    gpr[RSP] = BigInt(SNIPPET_LAYOUT.stackTop);
    gpr[R15] = BigInt(SNIPPET_LAYOUT.scratch);
    const rflags = BigInt((rng.u32() & COMPARED_FLAGS) | 0x2);
    const scratch = new Uint8Array(0x800);
    for (let k = 0; k < scratch.length; k += 4) new DataView(scratch.buffer).setUint32(k, rng.u32(), true);
    const code = new Uint8Array(b.insns.flatMap((x) => x.bytes));
    out.push({ snippet: { code, gpr, rflags, scratch }, asm: b.insns.map((x) => x.text), undefinedFlags: b.poisoned });
  }
  return out;
}

/**
 * Instructions that fault at CPL3 in 64-bit mode, each with the vector the manuals give. The
 * host then reports a shutdown with RIP at the instruction (there is no IDT to deliver through).
 * Left out: what depends on IOPL (CLI, STI, IN; the host runs the guest at IOPL 0), on the host's
 * own tables (segment loads, SGDT/STR, CPUID), and software interrupts, whose RIP on a failed
 * delivery is not architectural.
 */
const FAULTS = [
  ['ud2', [0x0f, 0x0b], 'UD'], ['push es', [0x06], 'UD'], ['pop es', [0x07], 'UD'], ['push cs', [0x0e], 'UD'],
  ['push ss', [0x16], 'UD'], ['pop ss', [0x17], 'UD'], ['push ds', [0x1e], 'UD'], ['pop ds', [0x1f], 'UD'],
  ['daa', [0x27], 'UD'], ['das', [0x2f], 'UD'], ['aaa', [0x37], 'UD'], ['aas', [0x3f], 'UD'],
  ['pusha', [0x60], 'UD'], ['popa', [0x61], 'UD'], ['(82) add al, 0', [0x82, 0xc0, 0x00], 'UD'],
  ['call far ptr', [0x9a, 0, 0, 0, 0, 0, 0], 'UD'], ['into', [0xce], 'UD'], ['aam', [0xd4, 0x0a], 'UD'],
  ['aad', [0xd5, 0x0a], 'UD'], ['salc', [0xd6], 'UD'], ['jmp far ptr', [0xea, 0, 0, 0, 0, 0, 0], 'UD'],
  ['(0f 04)', [0x0f, 0x04], 'UD'], ['ud0 eax, eax', [0x0f, 0xff, 0xc0], 'UD'], ['ud1 eax, eax', [0x0f, 0xb9, 0xc0], 'UD'],
  ['lock nop', [0xf0, 0x90], 'UD'], ['lock add eax, eax', [0xf0, 0x01, 0xc0], 'UD'],
  ['hlt', [0xf4], 'GP'], ['mov rax, cr0', [0x0f, 0x20, 0xc0], 'GP'], ['mov cr0, rax', [0x0f, 0x22, 0xc0], 'GP'],
  ['lgdt [rax]', [0x0f, 0x01, 0x10], 'GP'], ['lidt [rax]', [0x0f, 0x01, 0x18], 'GP'], ['ltr ax', [0x0f, 0x00, 0xd8], 'GP'],
  ['invlpg [rax]', [0x0f, 0x01, 0x38], 'GP'], ['wrmsr', [0x0f, 0x30], 'GP'], ['rdmsr', [0x0f, 0x32], 'GP'],
  ['clts', [0x0f, 0x06], 'GP'], ['wbinvd', [0x0f, 0x09], 'GP'], ['invd', [0x0f, 0x08], 'GP'],
  ['mov rax, dr0', [0x0f, 0x21, 0xc0], 'GP'], ['sysret', [0x0f, 0x07], 'GP'], ['swapgs', [0x0f, 0x01, 0xf8], 'GP'],
  ['rdpmc', [0x0f, 0x33], 'GP'],
  ['16-byte instruction', [...new Array<number>(15).fill(0x66), 0x90], 'GP'],
  ['div by zero', [0x31, 0xc9, 0xf7, 0xf1], 'DE'],
  ['idiv overflow', [0x48, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x48, 0x99, 0x48, 0xc7, 0xc1, 0xff, 0xff, 0xff, 0xff, 0x48, 0xf7, 0xf9], 'DE'],
  ['non-canonical load', [0x48, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x48, 0x8b, 0x00], 'GP'],
  ['load beyond the mapped 1 GiB', [0x48, 0x8b, 0x04, 0x25, 0, 0, 0, 0x40], 'PF'],
  ['misaligned cmpxchg16b', [0x49, 0x0f, 0xc7, 0x4f, 0x01], 'GP'],
] as const;

export interface FaultingSnippet extends GeneratedSnippet {
  /** The exception the last instruction raises: UD, GP, DE or PF. */
  vector: string;
  /** Where the faulting instruction starts (the RIP both CPUs must stop at). */
  faultRip: number;
}

/**
 * Snippets that end in a faulting instruction after 0-2 instructions from the classes above. The
 * fault tables' multi-instruction entries (`div by zero`, ...) fault on their last instruction.
 */
export function generateFaultingSnippets(seed: number, count: number): FaultingSnippet[] {
  const prefixes = generateSnippets(seed, count, { maxInsns: 2 });
  const rng = new Rng(seed ^ 0x5eed);
  return prefixes.map((g, i) => {
    const [text, bytes, vector] = FAULTS[i % FAULTS.length]!;
    const keepPrefix = rng.int(3) !== 0;
    const prefix = keepPrefix ? g.snippet.code : new Uint8Array(0);
    const code = new Uint8Array([...prefix, ...bytes]);
    const last = FAULT_LAST_INSN[text] ?? 0;
    return {
      snippet: { ...g.snippet, code },
      asm: [...(keepPrefix ? g.asm : []), text],
      undefinedFlags: ARITH,
      vector,
      faultRip: SNIPPET_LAYOUT.code + prefix.length + last,
    };
  });
}

/** Offset of the faulting instruction inside the FAULTS entries that set up registers first. */
const FAULT_LAST_INSN: Readonly<Record<string, number>> = {
  'div by zero': 2, 'idiv overflow': 19, 'non-canonical load': 10,
};
