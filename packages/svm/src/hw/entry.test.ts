import { describe, expect, it } from 'vitest';
import { STOP } from '@kvmts/x86';
import { VMCB, VMCB_CLEAN, VMCB_SEG, INTERCEPT_BIT, SVM_EXIT, TLB_CONTROL, cleanMaskAt } from './fields.js';
import { VMRUN_CHECKS, VmrunCheckCache, svmVmrunConsistencyCheck, svmVmrunConsistencyCheckIncremental } from './entry.js';
import { VmcbRegion } from './region.js';
import { rig, runGuest, exitCode, setIntercept, writeRealModeGuest, HSAVE_PA, VMCB_PA } from '../../test/harness.js';

/** One bad VMCB per consistency check (APM 15.5.1), named as the check is. */
const BREAKERS: Record<string, (v: VmcbRegion) => void> = {
  'EFER.SVME is zero': (v) => v.w64(VMCB.efer, 0),
  'CR0.CD is zero and CR0.NW is set': (v) => v.w64(VMCB.cr0, 0x20000010),
  'CR0[63:32] are not zero': (v) => v.w32(VMCB.cr0 + 4, 1),
  'any MBZ bit of CR3 is set': (v) => v.w32(VMCB.cr3 + 4, 1),
  'any MBZ bit of CR4 is set': (v) => v.w64(VMCB.cr4, 1 << 13), // VMXE does not exist on AMD
  'DR6[63:32] are not zero': (v) => v.w32(VMCB.dr6 + 4, 1),
  'DR7[63:32] are not zero': (v) => v.w32(VMCB.dr7 + 4, 1),
  'any MBZ bit of EFER is set': (v) => v.w64(VMCB.efer, 0x1000 | (1 << 20)),
  'EFER.LME and CR0.PG are both set and CR4.PAE is zero': (v) => { v.w64(VMCB.efer, 0x1500); v.w64(VMCB.cr0, 0x80000011); },
  'EFER.LME and CR0.PG are both non-zero and CR0.PE is zero': (v) => { v.w64(VMCB.efer, 0x1500); v.w64(VMCB.cr0, 0x80000010); v.w64(VMCB.cr4, 0x20); },
  'EFER.LME, CR0.PG, CR4.PAE, CS.L, and CS.D are all non-zero': (v) => {
    v.w64(VMCB.efer, 0x1500); v.w64(VMCB.cr0, 0x80000011); v.w64(VMCB.cr4, 0x20);
    v.w16(VMCB_SEG.cs + 2, 0x69b); // L and D
  },
  'the VMRUN intercept bit is clear': (v) => v.w32(VMCB.intercept_misc2, 0),
  'the MSR or IOIO intercept tables extend to a physical address that is greater than or equal to the maximum supported physical address': (v) => v.w64(VMCB.msrpm_base_pa, 2 ** 48 - 4096),
  'illegal event injection': (v) => v.w32(VMCB.event_inj, 0x80000302), // an "exception" with vector 2 (NMI)
  'ASID is equal to zero': (v) => v.w32(VMCB.asid, 0),
};

describe('VMRUN consistency checks', () => {
  it('has a test for every check', () => {
    expect(Object.keys(BREAKERS).sort()).toEqual(VMRUN_CHECKS.map((c) => c.name).sort());
  });

  for (const [name, breakIt] of Object.entries(BREAKERS)) {
    it(`fails as VMEXIT_INVALID: ${name}`, () => {
      const r = rig();
      breakIt(r.v);
      const hostRip = r.cpu.rip;
      const stop = runGuest(r, [{ len: 1, exec: () => { throw new Error('the guest must not run'); } }]);
      expect(stop).toBe(STOP.VMEXIT);
      expect(exitCode(r)).toBe(SVM_EXIT.ERR);
      expect(r.v.r32(VMCB.exit_code_hi)).toBe(0xffffffff);
      expect(r.svm.entryFailure).toBe(name);
      expect(r.svm.guest).toBe(false);
      expect(r.cpu.rip).toBe(hostRip);
      expect(r.cpu.efer & 0x1000).toBe(0x1000);
    });
  }

  it('a valid VMCB enters the guest', () => {
    const r = rig();
    let seen = false;
    runGuest(r, [{ len: 1, exec: (cpu) => { seen = true; expect(cpu.gpr[0]).toBe(0xabcd); expect(cpu.rip).toBe(0x1001); } }]);
    expect(seen).toBe(true);
    expect(r.svm.entryFailure).toBeNull();
  });
});

describe('the host save area', () => {
  it('holds the host state VMRUN saved, and #VMEXIT restores exactly that', () => {
    const r = rig();
    setIntercept(r.v, INTERCEPT_BIT.HLT);
    const host = {
      rip: r.cpu.rip, rsp: [r.cpu.gpr[4], r.cpu.gprHi[4]], rax: r.cpu.gpr[0], cr0: r.cpu.cr0, cr3: r.cpu.cr3,
      cr4: r.cpu.cr4, efer: r.cpu.efer, cs: { ...r.cpu.seg[1]! }, ss: { ...r.cpu.seg[2]! }, gdtr: { ...r.cpu.gdtr }, idtr: { ...r.cpu.idtr },
    };
    let during: Record<string, bigint> = {};
    runGuest(r, [{ len: 1, exec: (cpu) => {
      const h = r.hsave;
      during = { cr0: h.get('cr0'), cr3: h.get('cr3'), cr4: h.get('cr4'), efer: h.get('efer'), rip: h.get('rip'), rsp: h.get('rsp'), rax: h.get('rax'), cs: h.get('cs_selector'), ss: h.get('ss_selector'), gdtr: h.get('gdtr_base'), idtr: h.get('idtr_base'), rflags: h.get('rflags') };
      cpu.ext!.intercept(1 /* HLT */, 0, 0);
    } }]);
    expect(during).toEqual({
      cr0: BigInt(host.cr0 >>> 0), cr3: BigInt(host.cr3), cr4: BigInt(host.cr4), efer: BigInt(host.efer),
      rip: BigInt.asUintN(64, BigInt(host.rip)), rsp: 0xffff800000012340n, rax: 0x77n, cs: 0x10n, ss: 0x18n,
      gdtr: 0x5000n, idtr: 0x6000n, rflags: 2n,
    });
    expect(r.cpu.rip).toBe(host.rip);
    expect([r.cpu.gpr[4], r.cpu.gprHi[4]]).toEqual(host.rsp);
    expect(r.cpu.gpr[0]).toBe(host.rax);
    expect([r.cpu.cr0, r.cpu.cr3, r.cpu.cr4, r.cpu.efer]).toEqual([host.cr0, host.cr3, host.cr4, host.efer]);
    expect(r.cpu.seg[1]).toEqual(host.cs);
    expect(r.cpu.seg[2]).toEqual(host.ss);
    expect([r.cpu.gdtr, r.cpu.idtr]).toEqual([host.gdtr, host.idtr]);
    expect(r.cpu.dr[7]).toBe(0x400);
    expect(r.svm.gif).toBe(false);
    // The guest's state went back into the VMCB.
    expect(r.v.get('rip')).toBe(0x1000n);
    expect(r.v.get('rax')).toBe(0xabcdn);
    expect(r.hsave.pa).toBe(HSAVE_PA);
  });
});

describe('TLB and ASID', () => {
  it('tags the TLB with the guest ASID, flushes as TLB_CONTROL says, and returns to tag 0', () => {
    const r = rig();
    r.v.w32(VMCB.asid, 7);
    r.v.w8(VMCB.tlb_ctl, TLB_CONTROL.FLUSH_ASID);
    runGuest(r, []);
    expect(r.cpu.tlbOps).toEqual(['tag 7', 'flush 7', 'tag 0']);
    r.cpu.tlbOps.length = 0;
    r.v.w8(VMCB.tlb_ctl, TLB_CONTROL.FLUSH_ALL_ASID);
    runGuest(r, []);
    expect(r.cpu.tlbOps).toEqual(['tag 7', 'flush all', 'tag 0']);
  });
});


/** xorshift32 from a fixed seed, so a failure is reproducible. */
function xorshift32(seed: number): () => number {
  let x = seed;
  return () => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; return x >>> 0; };
}

describe('incremental consistency checks', () => {
  it("give the full check's answer after every random change of the checked fields", () => {
    const r = rig();
    const cache = new VmrunCheckCache();
    const rand = xorshift32(0x2545f491);
    const breakers = Object.values(BREAKERS);
    const dwords = [...new Set(VMRUN_CHECKS.flatMap((c) => c.deps))];
    let failures = 0;
    for (let i = 0; i < 3000; i++) {
      const choice = rand() % 4;
      if (choice === 0) breakers[rand() % breakers.length]!(r.v);
      else if (choice === 1) writeRealModeGuest(r.v); // back to valid
      else r.v.w32(dwords[rand() % dwords.length]!, rand() % 3 === 0 ? rand() : r.v.r32(dwords[0]!) & rand());
      const full = svmVmrunConsistencyCheck(r.v);
      expect(svmVmrunConsistencyCheckIncremental(r.v, cache), `step ${i}`).toBe(full);
      if (full !== null) failures++;
    }
    // Both outcomes were exercised many times.
    expect(failures).toBeGreaterThan(300);
    expect(failures).toBeLessThan(2700);
  });

  it('give the same answer when the clean bits mark the groups left unchanged (and some changed ones dirty at random)', () => {
    const r = rig();
    const cache = new VmrunCheckCache();
    const rand = xorshift32(0x1d872b41);
    const breakers = Object.values(BREAKERS);
    const dwords = [...new Set(VMRUN_CHECKS.flatMap((c) => c.deps))];
    const allClean = Object.values(VMCB_CLEAN).reduce((m: number, b) => m | (1 << b), 0);
    let failures = 0;
    let skipped = 0;
    for (let i = 0; i < 3000; i++) {
      const before = dwords.map((d) => r.v.r32(d));
      const choice = rand() % 4;
      if (choice === 0) breakers[rand() % breakers.length]!(r.v);
      else if (choice === 1) writeRealModeGuest(r.v);
      else if (choice === 2) r.v.w32(dwords[rand() % dwords.length]!, rand() % 3 === 0 ? rand() : r.v.r32(dwords[0]!) & rand());
      // As KVM keeps them: a group that changed is dirty; others are clean unless dropped at random.
      let clean = allClean & rand();
      clean |= allClean & ~rand();
      dwords.forEach((d, k) => { if (r.v.r32(d) !== before[k]) clean &= ~cleanMaskAt(d); });
      if (dwords.some((d) => cleanMaskAt(d) & clean)) skipped++;
      const full = svmVmrunConsistencyCheck(r.v);
      expect(svmVmrunConsistencyCheckIncremental(r.v, cache, clean), `step ${i}`).toBe(full);
      if (full !== null) failures++;
    }
    expect(failures).toBeGreaterThan(300);
    expect(failures).toBeLessThan(2700);
    expect(skipped).toBeGreaterThan(2000);
  });
});

describe('VMCB clean bits (APM 15.15.3)', () => {
  const ALL_CLEAN = 0xfff;
  /** What the guest sees at its first instruction: CS selector, IDTR base, CR4, the HLT intercept. */
  function seen(r: ReturnType<typeof rig>): { cs: number; idtr: number; cr4: number; hltExits: boolean } {
    let out = { cs: -1, idtr: -1, cr4: -1, hltExits: false };
    runGuest(r, [{ len: 1, exec: (cpu) => {
      out = { cs: cpu.seg[1]!.selector, idtr: cpu.idtr.base, cr4: cpu.cr4, hltExits: false };
      out.hltExits = cpu.ext!.intercept(1 /* HLT */, 0, 0);
    } }]);
    return out;
  }

  function change(v: VmcbRegion): void {
    v.w16(VMCB_SEG.cs, 0x1234);
    v.w64(VMCB_SEG.idtr + 8, 0x8000);
    v.w64(VMCB.cr4, 0x20);
    setIntercept(v, INTERCEPT_BIT.HLT);
  }

  it('a VMRUN of the VMCB the processor last ran takes the clean groups from what it kept', () => {
    const r = rig();
    expect(seen(r)).toEqual({ cs: 0, idtr: 0, cr4: 0, hltExits: false });
    change(r.v);
    r.v.w32(VMCB.clean, ALL_CLEAN);
    expect(seen(r)).toEqual({ cs: 0, idtr: 0, cr4: 0, hltExits: false });
  });

  it('loads each group whose bit is clear', () => {
    const r = rig();
    seen(r);
    change(r.v);
    r.v.w32(VMCB.clean, ALL_CLEAN & ~(1 << VMCB_CLEAN.SEG) & ~(1 << VMCB_CLEAN.INTERCEPTS));
    expect(seen(r)).toEqual({ cs: 0x1234, idtr: 0, cr4: 0, hltExits: true });
    // That #VMEXIT saved the state the guest ran with (IDTR and CR4 from the cache) back into the VMCB.
    expect([r.v.rAddr(VMCB_SEG.idtr + 8), r.v.r32(VMCB.cr4)]).toEqual([0, 0]);
    change(r.v);
    r.v.w32(VMCB.clean, ALL_CLEAN & ~(1 << VMCB_CLEAN.DT) & ~(1 << VMCB_CLEAN.CR));
    expect(seen(r)).toMatchObject({ idtr: 0x8000, cr4: 0x20 });
  });

  it('#VMEXIT writes the segment registers and tables the guest replaced', () => {
    const r = rig();
    seen(r);
    r.v.w32(VMCB.clean, ALL_CLEAN);
    // The guest loads DS (a new register object) and LGDT (a new GDTR), then HLT exits.
    runGuest(r, [{ len: 1, exec: (cpu) => {
      cpu.seg[3] = { selector: 0x40, base: 0x400, limit: 0xffff, ar: 0x93 };
      cpu.gdtr = { base: 0x5000, limit: 0x1f };
      cpu.ext!.intercept(1, 0, 0);
    } }]);
    expect([r.v.r16(VMCB_SEG.ds), r.v.rAddr(VMCB_SEG.ds + 8), r.v.rAddr(VMCB_SEG.gdtr + 8), r.v.r32(VMCB_SEG.gdtr + 4)]).toEqual([0x40, 0x400, 0x5000, 0x1f]);
    // A VMRUN that reloads the segments takes the VMCB's new DS, and the #VMEXIT after it keeps that.
    r.v.w16(VMCB_SEG.ds, 0x48);
    r.v.w32(VMCB.clean, ALL_CLEAN & ~(1 << VMCB_CLEAN.SEG));
    seen(r);
    expect([r.v.r16(VMCB_SEG.ds), r.svm.guestSeg[3]!.selector]).toEqual([0x48, 0x48]);
  });

  it('are ignored for another VMCB, and after a VMRUN that failed its checks', () => {
    const r = rig();
    seen(r);
    const other = new VmcbRegion(r.v.mem, VMCB_PA + 0x10000);
    writeRealModeGuest(other);
    change(other);
    other.w32(VMCB.clean, ALL_CLEAN);
    r.cpu.script = [{ len: 1, exec: (cpu) => { cpu.ext!.intercept(1, 0, 0); } }];
    r.svm.vmrun(other.pa);
    expect([other.r32(VMCB.exit_code), r.svm.guestSeg[1]!.selector]).toEqual([SVM_EXIT.HLT, 0x1234]);
    // Back on the first VMCB, which the processor no longer holds: everything is loaded again.
    change(r.v);
    r.v.w32(VMCB.clean, ALL_CLEAN);
    expect(seen(r)).toEqual({ cs: 0x1234, idtr: 0x8000, cr4: 0x20, hltExits: true });
    r.v.w64(VMCB.efer, 0); // EFER.SVME clear: VMEXIT_INVALID
    r.v.w32(VMCB.clean, ALL_CLEAN & ~(1 << VMCB_CLEAN.CR));
    runGuest(r, []);
    expect(exitCode(r)).toBe(SVM_EXIT.ERR);
    writeRealModeGuest(r.v);
    r.v.w32(VMCB.clean, ALL_CLEAN);
    expect(seen(r)).toEqual({ cs: 0, idtr: 0, cr4: 0, hltExits: false });
  });
});
