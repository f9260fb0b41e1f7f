/**
 * The opcode maps parsed once into what the decoder needs: does the opcode take a ModRM byte,
 * which immediates follow, is it a byte operation, and its attributes.
 */
import { GROUPS, GRP7_REG_FORMS, ONE_BYTE_MAP, THREE_BYTE_38_MAP, TWO_BYTE_MAP } from './opcode-map.js';

/**
 * END: the instruction ends its decoded block (it branches, changes how code is fetched, or is
 * intercepted often). EXIT: it may end in a VM exit without ending its block (VMREAD and VMWRITE,
 * which VMCS shadowing lets L1 run in a row), so a block checks for the exit right after it.
 */
export const ATTR = { I64: 1, D64: 2, F64: 4, LOCK: 8, END: 16, EXIT: 32 } as const;

/** Immediate kinds, in encoding order: b (8), w (16), z (16/32), v (16/32/64), p (far pointer), o (moffs). */
export type ImmKind = 'b' | 'w' | 'z' | 'v' | 'p' | 'o';

export interface OpInfo {
  readonly mn: string;
  readonly operands: readonly string[];
  readonly attrs: number;
  readonly modrm: boolean;
  readonly imms: readonly ImmKind[];
  /** Operates on bytes (Eb, Gb, AL, Zb …). */
  readonly byteOp: boolean;
  /** A group: the reg field selects the entry in GROUPS[group]. */
  readonly group: keyof typeof GROUPS | null;
}

const ATTR_NAMES: Record<string, number> = { i64: ATTR.I64, d64: ATTR.D64, f64: ATTR.F64, lock: ATTR.LOCK, end: ATTR.END, exit: ATTR.EXIT };

function parseAttrs(words: readonly string[]): number {
  let a = 0;
  for (const w of words) {
    const bit = ATTR_NAMES[w];
    if (bit === undefined) throw new Error(`opcode map: unknown attribute ${w}`);
    a |= bit;
  }
  return a;
}

function immOf(operand: string): ImmKind | null {
  if (/^[IJ][bwzv]$/.test(operand)) return operand[1] as ImmKind;
  if (operand === 'Ap') return 'p';
  if (/^O[bv]$/.test(operand)) return 'o';
  return null;
}

export function parseEntry(text: string): OpInfo {
  const words = text.split(' ');
  const mn = words[0]!;
  const hasOperands = words.length > 1 && !(words[1]! in ATTR_NAMES);
  const operands = hasOperands ? words[1]!.split(',') : [];
  const attrs = parseAttrs(words.slice(hasOperands ? 2 : 1));
  const group = mn in GROUPS ? (mn as keyof typeof GROUPS) : null;
  const modrm = group !== null || mn === 'GRP7' || operands.some((o) => /^([EGSCDR][a-z]|M)/.test(o));
  const imms = operands.map(immOf).filter((k): k is ImmKind => k !== null);
  const byteOp = operands.length > 0 && /^(AL|[EGZOXY]b)$/.test(operands[0]!) || (operands[0] === 'DX' && operands[1] === 'AL')
    || (operands[0] === 'Ib' && operands[1] === 'AL') || (operands[0] === 'DX' && operands[1] === 'Xb');
  return { mn, operands, attrs, modrm, imms, byteOp, group };
}

/** A group member: its own operands when it names them (TEST's immediate), else the opcode's. */
export function parseGroupMember(text: string, parent: OpInfo): OpInfo {
  const words = text.split(' ');
  const mn = words[0]!;
  let extra = words.slice(1);
  let imms = parent.imms;
  let operands = parent.operands;
  if (extra[0] === 'I') { imms = [parent.byteOp ? 'b' : 'z']; extra = extra.slice(1); }
  else if (extra[0] !== undefined && /^M/.test(extra[0])) { operands = [extra[0]]; extra = extra.slice(1); }
  return { mn, operands, attrs: parent.attrs | parseAttrs(extra), modrm: true, imms, byteOp: parent.byteOp, group: null };
}

export const ONE_BYTE = ONE_BYTE_MAP.map(parseEntry);
export const TWO_BYTE = TWO_BYTE_MAP.map(parseEntry);
export const THREE_BYTE_38 = new Map<number, OpInfo>(
  Object.entries(THREE_BYTE_38_MAP).map(([k, v]) => [Number(k), parseEntry(v)]),
);
export const GRP7_REG = new Map<number, OpInfo>(
  Object.entries(GRP7_REG_FORMS).map(([k, v]) => [Number(k), parseEntry(v)]),
);

/** GROUP_INFO[opcodeMapIndex][reg]: the parsed group members for each group opcode. */
const groupCache = new Map<OpInfo, OpInfo[]>();
export function groupMembers(parent: OpInfo): OpInfo[] {
  let g = groupCache.get(parent);
  if (g === undefined) {
    const table = GROUPS[parent.group ?? 'GRP7'];
    g = table.map((t) => parseGroupMember(t, parent));
    groupCache.set(parent, g);
  }
  return g;
}

export const UD_INFO = parseEntry('#UD');
