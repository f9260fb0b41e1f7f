import { describe, expect, it } from 'vitest';
import { CATALOG, findGuest, serialMatches } from './catalog.js';
import { hasImage, loadImage } from './images.js';

describe('catalog', () => {
  it('has unique names, each with a committed image that fits its memory', () => {
    const names = CATALOG.map((g) => g.name);
    expect(new Set(names).size).toBe(names.length);
    for (const g of CATALOG) {
      expect(hasImage(g.name), g.name).toBe(true);
      expect(g.load + loadImage(g.name).length, g.name).toBeLessThan(g.mem - 0x4000);
    }
  });

  it('holds the guests the issue asks for', () => {
    for (const name of ['hello', 'modes', 'alu', 'shift', 'muldiv', 'string', 'stack', 'bitops', 'exceptions', 'mmio', 'pio', 'smc', 'timer-irq', 'demo']) {
      expect(findGuest(name), name).toBeDefined();
    }
    expect(CATALOG.filter((g) => g.kind === 'bench').map((g) => g.name)).toContain('loop64_10000000');
  });

  it('gives the hello guest the LWN registers and output', () => {
    const hello = findGuest('hello');
    expect(hello?.regs).toEqual({ rax: 2, rbx: 2 });
    expect(hello?.expect).toEqual({ exit: 'hlt', serial: { exact: '4\n' } });
    expect([...loadImage('hello')]).toEqual([0xba, 0xf8, 0x03, 0x00, 0xd8, 0x04, 0x30, 0xee, 0xb0, 0x0a, 0xee, 0xf4]);
  });

  it('loads bench images as boot sectors at 0x7c00, in real mode unless 64-bit', () => {
    for (const g of CATALOG.filter((r) => r.kind === 'bench')) {
      expect(loadImage(g.name).length).toBe(512);
      expect([g.load, g.entry]).toEqual([0x7c00, 0x7c00]);
      expect(g.mode).toBe(g.name.includes('64') ? 'long64' : 'real');
    }
  });

  it('states a final exit for everything but the demo, and a code for debug exits', () => {
    for (const g of CATALOG) {
      if (g.kind === 'demo') expect(g.expect.exit).toBeUndefined();
      else expect(g.expect.exit, g.name).toBeDefined();
      expect(g.expect.exit === 'debug_exit', g.name).toBe(g.expect.code !== undefined);
    }
  });

  it('matches serial output exactly, by substring or by pattern', () => {
    expect(serialMatches({ exact: '4\n' }, '4\n')).toBe(true);
    expect(serialMatches({ exact: '4\n' }, '4\n4\n')).toBe(false);
    expect(serialMatches({ includes: 'SUMMARY: 3 tests, 0 failures\n' }, 'PASS: a\nSUMMARY: 3 tests, 0 failures\n')).toBe(true);
    expect(serialMatches({ pattern: '^S[0-9A-F]{8}\\n$' }, 'S0000000D\n')).toBe(true);
    expect(serialMatches({ pattern: '^S[0-9A-F]{8}\\n$' }, 'S0000000d\n')).toBe(false);
  });

  it('refuses names with no image', () => {
    expect(hasImage('../package')).toBe(false);
    expect(() => loadImage('no-such-guest')).toThrow(/no guest image/);
  });
});
