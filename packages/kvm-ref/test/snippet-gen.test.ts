import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { generateFaultingSnippets, generateSnippets, kvmRefUnavailable, runSnippets } from '../src/index.js';

const reason = kvmRefUnavailable();
if (reason !== null) console.log(`kvm-ref generator-on-host test skipped: ${reason}`);

// iced-x86 (hoisted from the dashboard's dependencies) checks the encoder: the bytes of each
// snippet must decode to exactly the instructions the generator printed, one for one.
type Iced = typeof import('iced-x86');
const iced = createRequire(import.meta.url)('iced-x86') as Iced;

function disassemble(code: Uint8Array): string[] {
  const decoder = new iced.Decoder(64, code, iced.DecoderOptions.None);
  decoder.ip = 0x10000n;
  const formatter = new iced.Formatter(iced.FormatterSyntax.Intel);
  const out: string[] = [];
  while (decoder.canDecode) {
    const insn = decoder.decode();
    out.push(insn.isInvalid ? '(bad)' : formatter.format(insn));
    insn.free();
  }
  decoder.free();
  formatter.free();
  return out;
}

const mnemonic = (text: string): string => text.replace(/^(rep|repe|repne) /, '').split(' ')[0]!
  .replace(/^(movs|stos|lods|cmps|scas)[bwdq]$/, '$1');

describe('the snippet generator', () => {
  it('is reproducible from its seed', () => {
    const a = generateSnippets(7, 50);
    const b = generateSnippets(7, 50);
    const c = generateSnippets(8, 50);
    expect(a.map((g) => g.asm)).toEqual(b.map((g) => g.asm));
    expect(a.map((g) => g.snippet.gpr)).toEqual(b.map((g) => g.snippet.gpr));
    expect(a.map((g) => g.asm)).not.toEqual(c.map((g) => g.asm));
  });

  it('draws only from the classes asked for, and never repeats a whole snippet', () => {
    const div = generateSnippets(3, 200, { classes: ['div'], maxInsns: 1 });
    expect(div.every((g) => /^i?div /.test(g.asm.at(-1)!))).toBe(true);
    const all = generateSnippets(4, 2000).map((g) => `${g.asm.join(';')} ${g.snippet.gpr.join(',')}`);
    expect(new Set(all).size).toBe(all.length);
  });

  it('encodes what it prints: the bytes decode to the same instructions', () => {
    for (const g of generateSnippets(1, 2000)) {
      const dis = disassemble(g.snippet.code);
      const context = `${g.asm.join('; ')}\n  decoded: ${dis.join('; ')}`;
      expect(dis.length, context).toBe(g.asm.length);
      expect(dis.map(mnemonic), context).toEqual(g.asm.map(mnemonic));
    }
  });

  it.skipIf(reason !== null)('makes code the host CPU runs to the end without faulting', () => {
    const gen = generateSnippets(2, 3000);
    const results = runSnippets(gen.map((g) => g.snippet));
    const bad = results.flatMap((r, i) => (r.exit === 'out' ? [] : [`${r.exit}: ${gen[i]!.asm.join('; ')}`]));
    expect(bad).toEqual([]);
  });

  it.skipIf(reason !== null)('makes faulting snippets that stop the host at the faulting instruction', () => {
    const gen = generateFaultingSnippets(5, 400);
    const results = runSnippets(gen.map((g) => g.snippet));
    const bad = results.flatMap((r, i) => {
      const g = gen[i]!;
      return r.exit === 'shutdown' && r.rip === BigInt(g.faultRip) ? [] : [`${r.exit} at 0x${r.rip.toString(16)}, expected 0x${g.faultRip.toString(16)}: ${g.asm.join('; ')}`];
    });
    expect(bad).toEqual([]);
  });
});
