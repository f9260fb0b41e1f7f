/** Assembles a system-test guest from test/system-guests with GNU as/ld, linked at 0x1000. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface GuestImage {
  image: Uint8Array;
  /** Address of a symbol (throws for an unknown name, so a typo cannot pass as 0). */
  sym(name: string): number;
}

/** Why guests cannot be built here, or null. */
export function guestToolsMissing(): string | null {
  for (const tool of ['as', 'ld', 'objcopy', 'nm']) {
    try { execFileSync(tool, ['--version'], { stdio: 'ignore' }); } catch { return `${tool} not found`; }
  }
  return null;
}

export function buildGuest(file: string, defines: string[] = []): GuestImage {
  const source = fileURLToPath(new URL(`./system-guests/${file}`, import.meta.url));
  const dir = mkdtempSync(join(tmpdir(), 'kvmts-guest-'));
  try {
    const obj = join(dir, 'g.o');
    const elf = join(dir, 'g.elf');
    const bin = join(dir, 'g.bin');
    execFileSync('as', ['--64', ...defines.flatMap((d) => ['--defsym', `${d}=1`]), '-o', obj, source]);
    execFileSync('ld', ['-m', 'elf_x86_64', '-Ttext=0x1000', '-o', elf, obj]);
    execFileSync('objcopy', ['-O', 'binary', elf, bin]);
    const syms = new Map<string, number>();
    for (const line of execFileSync('nm', [elf], { encoding: 'utf8' }).split('\n')) {
      const [addr, , name] = line.trim().split(/\s+/);
      if (addr !== undefined && name !== undefined) syms.set(name, parseInt(addr, 16));
    }
    return {
      image: readFileSync(bin),
      sym(name: string): number {
        const v = syms.get(name);
        if (v === undefined) throw new Error(`no symbol ${name} in ${file}`);
        return v;
      },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
