/**
 * Sources and images cannot drift: rebuild every image with the machine's gcc and ld into a
 * temporary directory and compare the bytes with the committed ones.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { buildAll } from '../scripts/build.mjs';
import { CATALOG, imagePath } from '../src/index.js';

function toolMissing(): string | null {
  for (const tool of ['gcc', 'ld', 'objcopy']) {
    try {
      execFileSync(tool, ['--version'], { stdio: 'ignore' });
    } catch {
      return `${tool} is not installed`;
    }
  }
  return null;
}

const missing = toolMissing();
if (missing) console.log(`images.test.ts skipped: ${missing}`);

describe.skipIf(missing !== null)('committed images', () => {
  it('are exactly what the sources build to', () => {
    const out = mkdtempSync(join(tmpdir(), 'kvmts-images-'));
    try {
      const built = buildAll(out);
      const committed = readdirSync(fileURLToPath(new URL('../images/', import.meta.url))).filter((f) => f.endsWith('.bin'));
      expect(built.map((n) => `${n}.bin`).sort()).toEqual(committed.sort());
      for (const name of built) {
        const fresh = readFileSync(join(out, `${name}.bin`));
        expect(fresh.equals(readFileSync(imagePath(name))), `${name}.bin differs from its sources: run npm run build:guests`).toBe(true);
      }
      expect(built.sort()).toEqual(CATALOG.map((g) => g.name).sort());
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 120_000);
});
