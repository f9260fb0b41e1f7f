/**
 * Assembles test programs with the GNU assembler (Intel syntax) at test time, cached by source.
 * `hasAssembler` is false where binutils are missing; tests that need it skip.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function which(cmd: string): boolean {
  try { execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }); return true; } catch { return false; }
}

export const hasAssembler = which('as') && which('objcopy');

const cacheDir = join(tmpdir(), 'kvmts-x86-asm');

/** Assembles `source` for `bits` (16, 32 or 64) at origin `org`; returns the flat bytes. */
export function assemble(source: string, bits: 16 | 32 | 64 = 64, org = 0x1000): Uint8Array {
  const text = `.intel_syntax noprefix\n.code${bits}\n.org 0\n${source}\n`;
  const key = createHash('sha1').update(`${bits}:${org}:${text}`).digest('hex');
  mkdirSync(cacheDir, { recursive: true });
  const bin = join(cacheDir, `${key}.bin`);
  if (!existsSync(bin)) {
    const src = join(cacheDir, `${key}.s`);
    const obj = join(cacheDir, `${key}.o`);
    const elf = join(cacheDir, `${key}.elf`);
    writeFileSync(src, text);
    execFileSync('as', [bits === 64 ? '--64' : '--32', '-o', obj, src]);
    execFileSync('ld', [bits === 64 ? '-melf_x86_64' : '-melf_i386', `-Ttext=0x${org.toString(16)}`, '-o', elf, obj]);
    execFileSync('objcopy', ['-O', 'binary', '-j', '.text', elf, bin]);
  }
  return new Uint8Array(readFileSync(bin));
}
