import { describe, expect, it } from 'vitest';
import { parseArgs, parseNumber } from './args.js';

describe('parseArgs', () => {
  it('takes kvmts run with the contract defaults', () => {
    expect(parseArgs(['run', 'img.bin'])).toEqual({ cmd: 'run', target: 'img.bin', vendor: 'intel', json: false });
  });

  it('takes every run flag, in either spelling', () => {
    expect(parseArgs(['run', '--vendor', 'amd', 'g.bin', '--mem=0x400000', '--load', '0x7c00', '--entry', '31744', '--mode', 'long64', '--json'])).toEqual({
      cmd: 'run', target: 'g.bin', vendor: 'amd', json: true, mem: 0x400000, load: 0x7c00, entry: 0x7c00, mode: 'long64',
    });
  });

  it('takes --swap-every N for run (issue 9)', () => {
    expect(parseArgs(['run', 'pio', '--swap-every', '1'])).toEqual({ cmd: 'run', target: 'pio', vendor: 'intel', json: false, swapEvery: 1 });
    expect(parseArgs(['run', 'pio', '--swap-every=250', '--json'])).toEqual({ cmd: 'run', target: 'pio', vendor: 'intel', json: true, swapEvery: 250 });
  });

  it.each([
    [['run', 'a', '--swap-every', '0'], '--swap-every takes a count of exits (1 or more), not 0'],
    [['run', 'a', '--swap-every', '0x10'], '--swap-every takes a count of exits (1 or more), not 0x10'],
    [['--swap-every', '3'], '--swap-every does not apply to the dashboard'],
    [['run'], 'kvmts run takes one IMAGE or catalog NAME'],
    [['run', 'a', 'b'], 'kvmts run takes one IMAGE or catalog NAME'],
    [['run', 'a', '--vendor', 'via'], '--vendor must be intel or amd, not via'],
    [['run', 'a', '--mode', 'pm32'], '--mode must be real or long64, not pm32'],
    [['run', 'a', '--mem', 'lots'], '--mem takes a number (decimal, 0x hex, or K/M/G), not lots'],
    [['run', 'a', '--mem'], '--mem needs a value'],
    [['run', 'a', '--once'], '--once does not apply to run'],
    [['list', '--json'], '--json does not apply to list'],
    [['bench', 'x'], 'kvmts bench takes no arguments'],
    [['--frobnicate'], 'unknown option --frobnicate'],
    [['--guest', 'demo', 'img.bin'], 'give either --guest NAME or IMAGE, not both'],
  ])('refuses %j', (argv, message) => {
    expect(parseArgs(argv)).toBe(message);
  });

  it('opens the dashboard with no arguments, or with a vendor, guest or image', () => {
    expect(parseArgs([])).toEqual({ cmd: 'dashboard', once: false });
    expect(parseArgs(['--vendor', 'amd', '--guest', 'demo'])).toEqual({ cmd: 'dashboard', once: false, vendor: 'amd', target: 'demo' });
    expect(parseArgs(['guest.bin', '--once'])).toEqual({ cmd: 'dashboard', once: true, target: 'guest.bin' });
    expect(parseArgs(['--batch'])).toEqual({ cmd: 'dashboard', once: true });
  });

  it('takes list, bench and help', () => {
    expect(parseArgs(['list'])).toEqual({ cmd: 'list' });
    expect(parseArgs(['bench', '--json'])).toEqual({ cmd: 'bench', json: true });
    expect(parseArgs(['--help'])).toEqual({ cmd: 'help' });
  });
});

describe('parseNumber', () => {
  it.each([['0x200000', 0x200000], ['4096', 4096], ['2M', 2 * 1024 * 1024], ['4g', 4 * 1024 ** 3], ['0X10', 16]])('%s is %d', (text, value) => {
    expect(parseNumber(text)).toBe(value);
  });
  it.each(['', '-1', '1.5', '0x', 'ten', '1T'])('%j is not a number', (text) => {
    expect(parseNumber(text)).toBeNull();
  });
});
