/**
 * Snippets: 64-bit code run natively by the host CPU at CPL3 in long mode (DESIGN.md, "The
 * reference /dev/kvm"). One VM serves a whole batch; a snippet that faults gets its VM replaced.
 */
import { fromHex, runHelper, toHex } from './helper.js';

/**
 * The guest the helper builds (native/kvmref.c, snippet_vm_init). A model CPU that mirrors it
 * needs these facts: identity-mapped user pages (2 MiB, U/S=1) over the first 1 GiB of a
 * `memSize` memslot; CS = userCs (DPL3, L=1), SS/DS/ES/FS/GS = userDs (DPL3), FS and GS bases
 * fsBase and gsBase; CR0 = 0x80000033,
 * CR4 = 0x620 (PAE, OSFXSR, OSXMMEXCPT), EFER = 0x500 (LME, LMA); RIP = code. The helper appends
 * `endCode` (OUT endPort, AL) to each snippet, and zeroes the scratch page before each run.
 */
export const SNIPPET_LAYOUT = {
  memSize: 0x400000,
  pml4: 0x1000,
  pdpt: 0x2000,
  pd: 0x3000,
  gdt: 0x5000,
  code: 0x10000,
  codeMax: 0x8000 - 2,
  scratch: 0x20000,
  scratchSize: 0x1000,
  /** FS and GS bases point into the scratch page, so FS:/GS: operands land where results are compared. */
  fsBase: 0x20400,
  gsBase: 0x20600,
  /** A stack top inside memory and clear of everything above; pass it as RSP. */
  stackTop: 0x40000,
  endPort: 0xf4,
  endCode: [0xe6, 0xf4],
  userCs: 0x2b,
  userDs: 0x23,
  cr0: 0x80000033,
  cr4: 0x620,
  efer: 0x500,
} as const;

export interface Snippet {
  code: Uint8Array;
  /** RAX..R15 in the x86 encoding order (RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8..R15). */
  gpr: readonly bigint[];
  /**
   * Initial RFLAGS. The host runs the guest with IF=1 and IOPL=0 whatever is asked (kvm-pvm keeps
   * its own copy), so only the arithmetic flags and DF mean anything here; keep TF and AC clear.
   */
  rflags: bigint;
  /** Initial bytes of the scratch page (the rest is zero); as many bytes come back after the run. */
  scratch?: Uint8Array;
}

export interface SnippetResult {
  /**
   * `out` when the snippet reached its closing OUT; otherwise how it stopped: `shutdown` (an
   * exception: there is no IDT), `internal_error:N`, `io:PORT`, `mmio:ADDR`, `timeout`, `errno:N`.
   */
  exit: string;
  rip: bigint;
  rflags: bigint;
  gpr: bigint[];
  scratch: Uint8Array;
}

const hex = (v: bigint): string => BigInt.asUintN(64, v).toString(16);

export function snippetRequest(s: Snippet): string {
  if (s.gpr.length !== 16) throw new RangeError('a snippet needs 16 GPRs');
  if (s.code.length > SNIPPET_LAYOUT.codeMax) throw new RangeError('snippet code too long');
  const scratch = s.scratch ?? new Uint8Array(0);
  if (scratch.length > SNIPPET_LAYOUT.scratchSize) throw new RangeError('scratch larger than a page');
  return `S ${hex(s.rflags)} ${s.gpr.map(hex).join(' ')} ${toHex(s.code)} ${toHex(scratch)}`;
}

export function parseSnippetReply(line: string): SnippetResult {
  const t = line.split(' ');
  if (t[0] !== 'R') throw new Error(`kvm-ref: unexpected snippet reply: ${line}`);
  if (t.length === 2) {
    return { exit: t[1]!, rip: 0n, rflags: 0n, gpr: [], scratch: new Uint8Array(0) };
  }
  return {
    exit: t[1]!,
    rip: BigInt(`0x${t[2]}`),
    rflags: BigInt(`0x${t[3]}`),
    gpr: t.slice(4, 20).map((v) => BigInt(`0x${v}`)),
    scratch: fromHex(t[20] ?? '-'),
  };
}

/** Runs every snippet on the host CPU, in order, in one helper process. */
export function runSnippets(list: readonly Snippet[]): SnippetResult[] {
  if (list.length === 0) return [];
  const lines = runHelper(`${list.map(snippetRequest).join('\n')}\n`);
  if (lines.length !== list.length) throw new Error(`kvm-ref: ${lines.length} replies to ${list.length} snippets`);
  return lines.map(parseSnippetReply);
}
