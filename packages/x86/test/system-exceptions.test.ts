/**
 * Exception frames, differential: the exceptions64 guest (assembled at test time) runs on our
 * Cpu and, where /dev/kvm is usable, on the host CPU through @kvmts/kvm-ref. Every report the
 * guest makes (vector, error code, the pushed frame, the stack the handler ran on, CR2) must
 * agree; the expected frames are also spelled out so the test means something without KVM.
 * (The reference helper's KVM reports INT n as an emulation failure: that part is ours only.)
 */
import { describe, expect, it } from 'vitest';
import { kvmRefUnavailable, runImage } from '@kvmts/kvm-ref';
import { STOP } from '../src/cpu/virt.js';
import { buildGuest, guestToolsMissing } from './system-guest-build.js';
import { longMode } from './helpers.js';

const REPORT = 0xe9;
/** Words per report: vector, error code, RIP, CS, RFLAGS, RSP, SS, address of the pushed RIP, SS in the handler, CR2. */
const WORDS = 10;
const NO_CODE = 0xffff;

function group(words: number[]): number[][] {
  const out: number[][] = [];
  for (let i = 0; i + WORDS <= words.length; i += WORDS) out.push(words.slice(i, i + WORDS));
  return out;
}

const missing = guestToolsMissing();
if (missing !== null) console.log(`system-exceptions guest test skipped: ${missing}`);
const kvm = kvmRefUnavailable();
if (kvm !== null) console.log(`system-exceptions: no comparison with /dev/kvm: ${kvm}`);

describe.skipIf(missing !== null)('exception frames in IA-32e mode', () => {
  // The reference helper's KVM cannot run INT n, so the comparison uses a build without it.
  const built = missing === null ? buildGuest('exceptions64.S', ['WITH_INT']) : null;
  const builtNoInt = missing === null ? buildGuest('exceptions64.S') : null;

  function runOurs(image: Uint8Array): { reports: number[][]; reason: number } {
    const m = longMode(image, 0x1000, 0x200000);
    const reason = m.cpu.run(1_000_000);
    const words = m.outs.filter(([port]) => port === REPORT).map(([, , v]) => v >>> 0);
    return { reports: group(words), reason };
  }

  it('matches the frames the SDM prescribes', () => {
    const { reports, reason } = runOurs(built!.image);
    const s = built!.sym;
    expect(reason).toBe(STOP.HLT);
    const RF = 0x10000;
    const K = 0xe000;
    // [vector, code, rip, cs, rflags & ~arith, rsp, ss, &rip on the handler's stack, handler ss, cr2]
    const cr2 = 0x51010;
    const expected = [
      [0, NO_CODE, s('i_de'), 0x08, RF | 0x2, K, 0x10, K - 40, 0x10, 0],
      [0x82, NO_CODE, s('i_int') + 2, 0x08, 0x2, K, 0x10, K - 40, 0x10, 0],
      [6, NO_CODE, s('i_ud'), 0x08, RF | 0x2, K, 0x10, K - 40, 0x10, 0],
      [13, 0, s('i_gp'), 0x08, RF | 0x2, K, 0x10, K - 40, 0x10, 0],
      [14, 0x2, s('i_pf'), 0x08, RF | 0x2, K, 0x10, K - 40, 0x10, cr2],
      [14, 0x5, s('u_read_sup'), 0x3b, RF | 0x202, 0xb000, 0x23, 0x9000 - 40, 0, 0x50008],
      [14, 0x7, s('u_write_ro'), 0x3b, RF | 0x202, 0xb000, 0x23, 0x9000 - 40, 0, 0x52004],
      [0x80, NO_CODE, s('u_int80') + 2, 0x3b, 0x202, 0xb000, 0x23, 0x9000 - 40, 0, 0x52004],
      [13, 0x81 * 8 + 2, s('u_int81'), 0x3b, RF | 0x202, 0xb000, 0x23, 0x9000 - 40, 0, 0x52004],
      [13, 0, s('u_hlt'), 0x3b, RF | 0x202, 0xb000, 0x23, 0x9000 - 40, 0, 0x52004],
      [8, 0, s('i_df'), 0x08, RF | 0x2, K, 0x10, 0xa000 - 40, 0x10, 0x52004],
    ];
    // Arithmetic flags depend on the instructions before each fault; compare the system bits.
    const sysBits = (r: number[]) => r.map((v, i) => (i === 4 ? v & ~0x8d5 : v));
    expect(reports.map(sysBits)).toEqual(expected);
  });

  it.skipIf(kvm !== null)('agrees with the host CPU through /dev/kvm', () => {
    const ours = runOurs(builtNoInt!.image).reports;
    const res = runImage(builtNoInt!.image, { mem: 0x200000 });
    const words = res.rows
      .filter((r) => r.exit === 'io' && r['port'] === REPORT)
      .map((r) => {
        const hex = String(r['data']);
        return parseInt(hex.match(/../g)!.reverse().join(''), 16) >>> 0;
      });
    expect(res.rows[res.rows.length - 1]!.exit).toBe('hlt');
    expect(ours.length).toBe(8);
    expect(ours).toEqual(group(words));
  });
});
