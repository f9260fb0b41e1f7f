/**
 * The instruction decoder (SDM Vol. 2, chapter 2): prefixes, REX, opcode maps, ModRM/SIB for
 * 16-, 32- and 64-bit addressing, displacements and immediates. It only decodes; the handler
 * it binds (decode/binders.ts) does the work when the instruction runs.
 */
import type { Cpu } from '../cpu/cpu.js';
import { SEG } from '../cpu/state.js';
import { Insn, REP } from './insn.js';
import {
  ATTR, GRP7_REG, ONE_BYTE, THREE_BYTE_38, TWO_BYTE, UD_INFO, groupMembers, type OpInfo,
} from './opcode-info.js';
import { bindHandler, gp0Handler } from './binders.js';

const MAX_INSN_LENGTH = 15;

const LEGACY_PREFIX = Uint8Array.from({ length: 256 }, (_, b) =>
  [0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x66, 0x67, 0xf0, 0xf2, 0xf3].includes(b) ? 1 : 0);

class TooLong { }
const TOO_LONG = new TooLong();

/** 16-bit addressing (SDM Vol. 2, Table 2-1): base and index per r/m. */
const MODRM16_BASE = [3, 3, 5, 5, 6, 7, 5, 3] as const; // BX BX BP BP SI DI BP BX
const MODRM16_INDEX = [6, 7, 6, 7, -1, -1, -1, -1] as const; // SI DI SI DI

/** Resolves a byte register number: without REX, 4-7 are AH, CH, DH, BH (16-19). */
function byteReg(r: number, rex: boolean): number {
  return !rex && r >= 4 && r < 8 ? r + 12 : r;
}

/**
 * Decodes the instruction at CS:`rip` for a code segment of `codeSize` bits. Faults raised while
 * fetching (#PF, #GP for the CS limit) propagate to the caller.
 */
export function decodeInsn(cpu: Cpu, rip: number, codeSize: number): Insn {
  let pos = 0;
  const fetch = (): number => {
    if (pos >= MAX_INSN_LENGTH) throw TOO_LONG;
    return cpu.fetchCode(rip + pos++);
  };
  const i = new Insn(gp0Handler);
  try {
    decodeInto(i, fetch, codeSize);
  } catch (e) {
    if (e !== TOO_LONG) throw e;
    i.exec = gp0Handler;
    i.endsBlock = true;
    pos = MAX_INSN_LENGTH;
  }
  i.len = pos;
  return i;
}

function decodeInto(i: Insn, fetch: () => number, codeSize: number): void {
  const long64 = codeSize === 64;
  let has66 = false;
  let has67 = false;
  let rex = 0;
  let b: number;
  for (;;) {
    b = fetch();
    if (long64 && (b & 0xf0) === 0x40) { rex = b; continue; }
    if (!LEGACY_PREFIX[b]) break;
    rex = 0; // a REX before a legacy prefix is ignored
    switch (b) {
      case 0x66: has66 = true; break;
      case 0x67: has67 = true; break;
      case 0xf0: i.lock = true; break;
      case 0xf2: i.rep = REP.REPNE; break;
      case 0xf3: i.rep = REP.REPE; break;
      case 0x64: case 0x65: i.seg = b - 0x60; i.segOverride = true; break; // FS GS
      default: i.seg = (b >> 3) & 3; i.segOverride = true; break; // 26 2E 36 3E: ES CS SS DS
    }
  }
  const hasRex = rex !== 0;
  const rexW = (rex & 8) !== 0;
  const rexR = (rex & 4) << 1;
  const rexX = (rex & 2) << 2;
  const rexB = (rex & 1) << 3;
  i.prefix66 = has66;

  let info: OpInfo;
  let opcode = b;
  if (b === 0x0f) {
    opcode = fetch();
    info = TWO_BYTE[opcode]!;
    if (info.mn === 'ESC38') { opcode = fetch(); info = THREE_BYTE_38.get(opcode) ?? UD_INFO; }
  } else {
    info = ONE_BYTE[b]!;
    // 63: ARPL outside 64-bit mode, MOVSXD in it.
    if (b === 0x63 && long64) info = MOVSXD_INFO;
  }

  // Sizes.
  i.addrSize = long64 ? (has67 ? 32 : 64) : (codeSize === 16) !== has67 ? 16 : 32;
  let opSize = long64 ? (rexW ? 64 : has66 ? 16 : 32) : (codeSize === 16) !== has66 ? 16 : 32;

  let mod = 3;
  let rm = 0;
  if (info.modrm) {
    const modrm = fetch();
    i.modrmByte = modrm;
    mod = modrm >> 6;
    const reg = (modrm >> 3) & 7;
    rm = modrm & 7;
    i.op = reg;
    i.reg = reg | rexR;
    if (info.mn === 'GRP7' && mod === 3 && reg !== 4 && reg !== 6) info = GRP7_REG.get(modrm) ?? UD_INFO;
    else if (info.mn === 'GRP15') info = mod === 3 ? groupMembers(info)[reg]! : reg === 7 ? CLFLUSH_INFO : UD_INFO;
    else if (info.group !== null) info = groupMembers(info)[reg]!;
    if (mod === 3 || info.operands[0]?.startsWith('R') || info.operands[1]?.startsWith('R')) i.rm = rm | rexB; // MOV CR/DR ignore mod
    else decodeMemory(i, fetch, mod, rm, rexB, rexX, long64);
  } else if (info.operands.length > 0 && info.operands[0]!.startsWith('Z')) {
    i.reg = (opcode & 7) | rexB;
  }
  if (info.mn === 'JCC' || info.mn === 'CMOVCC' || info.mn === 'SETCC') i.op = opcode & 0xf;

  if ((info.attrs & ATTR.I64) !== 0 && long64) info = UD_INFO;
  if (long64 && (info.attrs & ATTR.F64) !== 0) opSize = 64;
  else if (long64 && (info.attrs & ATTR.D64) !== 0) opSize = has66 ? 16 : 64;
  if (info.byteOp) {
    opSize = 8;
    i.reg = byteReg(i.reg, hasRex);
    if (i.rm >= 0) i.rm = byteReg(i.rm, hasRex);
  }
  i.opSize = opSize;

  info.imms.forEach((k, n) => readImm(i, fetch, k, info, n));

  if (i.lock && ((info.attrs & ATTR.LOCK) === 0 || i.rm >= 0)) info = UD_INFO;
  i.endsBlock = (info.attrs & ATTR.END) !== 0 || info === UD_INFO;
  i.mayExit = (info.attrs & ATTR.EXIT) !== 0;
  i.mayWrite = (info.modrm && i.rm < 0) || info.operands.some((o) => /^[OXY]/.test(o)) || IMPLICIT_WRITES.has(info.mn);
  i.exec = bindHandler(i, info);
}

/** Instructions that store to memory without a memory operand in ModRM (the stack, interrupt frames). */
const IMPLICIT_WRITES = new Set(['PUSH', 'PUSHSEG', 'PUSHA', 'PUSHF', 'CALL', 'CALLN', 'CALLF', 'ENTER', 'INT', 'INT3', 'INTO', 'INT1']);

const MOVSXD_INFO: OpInfo = { mn: 'MOVSXD', operands: ['Gv', 'Ed'], attrs: 0, modrm: true, imms: [], byteOp: false, group: null };
const CLFLUSH_INFO: OpInfo = { mn: 'NOP', operands: ['Mb'], attrs: 0, modrm: true, imms: [], byteOp: false, group: null };

function decodeMemory(
  i: Insn, fetch: () => number, mod: number, rm: number, rexB: number, rexX: number, long64: boolean,
): void {
  let ss = false;
  if (i.addrSize === 16) {
    if (mod === 0 && rm === 6) {
      i.disp = signed16(fetch() | (fetch() << 8));
    } else {
      i.base = MODRM16_BASE[rm]!;
      i.index = MODRM16_INDEX[rm]!;
      ss = i.base === 5;
      if (mod === 1) i.disp = signed8(fetch());
      else if (mod === 2) i.disp = signed16(fetch() | (fetch() << 8));
    }
  } else {
    let base = rm;
    if (rm === 4) {
      const sib = fetch();
      i.scale = sib >> 6;
      const index = ((sib >> 3) & 7) | rexX;
      if (index !== 4) i.index = index;
      base = sib & 7;
      if (base === 5 && mod === 0) { i.disp = fetch32(fetch); base = -1; }
    } else if (rm === 5 && mod === 0) {
      i.disp = fetch32(fetch);
      base = -1;
      if (long64) i.ripRel = true;
    }
    if (base >= 0) {
      i.base = base | rexB;
      ss = i.base === 4 || i.base === 5; // rSP and rBP (not R12, R13) default to SS
    }
    if (mod === 1) i.disp = signed8(fetch());
    else if (mod === 2) i.disp = fetch32(fetch);
  }
  if (!i.segOverride) i.seg = ss ? SEG.SS : SEG.DS;
}

function readImm(i: Insn, fetch: () => number, k: string, info: OpInfo, n: number): void {
  const size = i.opSize;
  switch (k) {
    case 'b': {
      const v = fetch();
      if (n === 1) { i.imm2 = v; return; } // ENTER's nesting level
      if (info.mn === 'JCC' || info.mn === 'JMP' || info.mn.startsWith('LOOP') || info.mn === 'JCXZ') { i.imm = signed8(v); return; }
      if (SIGN_EXTENDED_IB.has(info.mn) && size !== 8) setImm(i, signed8(v), size);
      else i.imm = v;
      return;
    }
    case 'w':
      i.imm = fetch() | (fetch() << 8);
      return;
    case 'z': {
      const v = size === 16 ? signed16(fetch() | (fetch() << 8)) : fetch32(fetch);
      if (info.mn === 'JCC' || info.mn === 'JMP' || info.mn === 'CALL') { i.imm = v; return; }
      setImm(i, v, size);
      return;
    }
    case 'v':
      if (size === 64) { i.imm = fetch32(fetch) >>> 0; i.immHi = fetch32(fetch); }
      else setImm(i, size === 16 ? fetch() | (fetch() << 8) : fetch32(fetch), size);
      return;
    case 'p':
      i.imm = i.opSize === 16 ? fetch() | (fetch() << 8) : fetch32(fetch) >>> 0;
      i.imm2 = fetch() | (fetch() << 8);
      return;
    default: { // moffs: a displacement of the address size, no base or index
      if (i.addrSize === 64) { const lo = fetch32(fetch) >>> 0; i.disp = fetch32(fetch) * 4294967296 + lo; }
      else i.disp = i.addrSize === 16 ? fetch() | (fetch() << 8) : fetch32(fetch) >>> 0;
      if (!i.segOverride) i.seg = SEG.DS;
      i.rm = -1;
    }
  }
}

/** Ib operands that the SDM sign-extends to the operand size. */
const SIGN_EXTENDED_IB = new Set(['ADD', 'OR', 'ADC', 'SBB', 'AND', 'SUB', 'XOR', 'CMP', 'IMUL3', 'PUSH']);

function setImm(i: Insn, v: number, size: number): void {
  if (size === 64) { i.imm = v >>> 0; i.immHi = v < 0 ? -1 : 0; }
  else i.imm = size === 8 ? v & 0xff : size === 16 ? v & 0xffff : v >>> 0;
}

function fetch32(fetch: () => number): number {
  return fetch() | (fetch() << 8) | (fetch() << 16) | (fetch() << 24);
}

function signed8(v: number): number {
  return (v << 24) >> 24;
}

function signed16(v: number): number {
  return (v << 16) >> 16;
}
