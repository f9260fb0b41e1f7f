import { describe, expect, it } from 'vitest';
import { kvmRefUnavailable, runSnippets, SNIPPET_LAYOUT } from '../src/index.js';
import type { Snippet } from '../src/index.js';

const reason = kvmRefUnavailable();
if (reason !== null) console.log(`kvm-ref snippet tests skipped: ${reason}`);

const RAX = 0, RCX = 1, RBX = 3, RSP = 4, RSI = 6, RDI = 7, R15 = 15;
const CF = 1n, ZF = 0x40n, SF = 0x80n, OF = 0x800n;

function snippet(code: number[], init: Partial<Record<number, bigint>> = {}, rflags = 0x2n, scratch?: number[]): Snippet {
  const gpr = Array.from({ length: 16 }, (_, i) => init[i] ?? 0n);
  gpr[RSP] = init[RSP] ?? BigInt(SNIPPET_LAYOUT.stackTop);
  return { code: new Uint8Array(code), gpr, rflags, ...(scratch ? { scratch: new Uint8Array(scratch) } : {}) };
}

describe.skipIf(reason !== null)('snippets on the host CPU', () => {
  it('runs ALU code and reports every GPR, RIP after the closing OUT, and the flags', () => {
    // mov rax, -1; add rax, 1  -> 0, CF=1 ZF=1
    const [r] = runSnippets([snippet([0x48, 0xc7, 0xc0, 0xff, 0xff, 0xff, 0xff, 0x48, 0x83, 0xc0, 0x01], { [RBX]: 0x1234n })]);
    expect(r!.exit).toBe('out');
    expect(r!.gpr[RAX]).toBe(0n);
    expect(r!.gpr[RBX]).toBe(0x1234n);
    expect(r!.rip).toBe(BigInt(SNIPPET_LAYOUT.code + 11 + SNIPPET_LAYOUT.endCode.length));
    expect(r!.rflags & (CF | ZF | SF | OF)).toBe(CF | ZF);
  });

  it('loads and stores through the scratch page and the stack', () => {
    const scratch = BigInt(SNIPPET_LAYOUT.scratch);
    const [load, store, stack] = runSnippets([
      snippet([0x48, 0x8b, 0x07], { [RDI]: scratch }, 0x2n, [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]), // mov rax,[rdi]
      snippet([0x48, 0x89, 0x4f, 0x02], { [RDI]: scratch, [RCX]: 0xa1b2c3d4e5f60718n }, 0x2n, new Array(12).fill(0)), // mov [rdi+2],rcx
      snippet([0x50, 0x41, 0x5f], { [RAX]: 0xdeadbeefn }), // push rax; pop r15
    ]);
    expect(load!.gpr[RAX]).toBe(0x8877665544332211n);
    expect(Buffer.from(store!.scratch).toString('hex')).toBe('00001807f6e5d4c3b2a10000');
    expect(stack!.gpr[R15]).toBe(0xdeadbeefn);
    expect(stack!.gpr[RSP]).toBe(BigInt(SNIPPET_LAYOUT.stackTop));
  });

  it('runs string instructions with REP', () => {
    const s = BigInt(SNIPPET_LAYOUT.scratch);
    // rep movsb, 4 bytes from scratch to scratch+0x10
    const [r] = runSnippets([snippet([0xf3, 0xa4], { [RCX]: 4n, [RSI]: s, [RDI]: s + 0x10n }, 0x2n, [1, 2, 3, 4, ...new Array(16).fill(0)])]);
    expect(r!.gpr[RCX]).toBe(0n);
    expect(r!.gpr[RSI]).toBe(s + 4n);
    expect([...r!.scratch.slice(0x10, 0x14)]).toEqual([1, 2, 3, 4]);
  });

  it('reports a faulting snippet and recovers for the next one', () => {
    const [ud, div, after] = runSnippets([
      snippet([0x0f, 0x0b]), // ud2
      snippet([0x48, 0xf7, 0xf1]), // div rcx with rcx = 0
      snippet([0x48, 0xff, 0xc0], { [RAX]: 41n }), // inc rax
    ]);
    expect(ud!.exit).toBe('shutdown');
    expect(ud!.rip).toBe(BigInt(SNIPPET_LAYOUT.code));
    expect(div!.exit).toBe('shutdown');
    expect(after!.exit).toBe('out');
    expect(after!.gpr[RAX]).toBe(42n);
  });

  it('runs thousands of snippets in one process', () => {
    const list = Array.from({ length: 3000 }, (_, i) => snippet([0x48, 0x01, 0xd8], { [RAX]: BigInt(i), [RBX]: 7n })); // add rax,rbx
    const t0 = performance.now();
    const out = runSnippets(list);
    const ms = performance.now() - t0;
    expect(out.every((r, i) => r.exit === 'out' && r.gpr[RAX] === BigInt(i) + 7n)).toBe(true);
    expect(ms).toBeLessThan(20_000);
  });
});
