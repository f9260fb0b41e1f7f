import { describe, expect, it } from 'vitest';
import { INTERCEPT, IO_INFO, STOP, VIRT_OP, EVENT_TYPE, makeIntrInfo, type InterceptKind } from '@kvmts/x86';
import { INTERCEPT_BIT, SVM_EXIT, VMCB, V_IRQ_MASK, V_INTR_MASKING_MASK, V_IGN_TPR_MASK } from './fields.js';
import { rig, runGuest, exitCode, info1, info2, setIntercept, IOPM_PA, MSRPM_PA, type Rig } from '../../test/harness.js';
import type { Step } from '../../test/fake-cpu.js';

const op = (kind: InterceptKind, a = 0, b = 0, len = 2): Step => ({ len, exec: (cpu) => cpu.ext!.intercept(kind, a, b) });
const virt = (o: number, len = 3): Step => ({ len, exec: (cpu) => cpu.ext!.execute(o as never, cpu.operand) });
const nop: Step = { len: 1, exec: () => {} };

/** Runs [nop, step] with `bit` intercepted; the exit must be at the step (RIP 0x1001) with next_rip after it. */
function expectInsnExit(bit: number, step: Step, code: number): Rig {
  const r = rig();
  setIntercept(r.v, bit);
  expect(runGuest(r, [nop, step, nop])).toBe(STOP.VMEXIT);
  expect(exitCode(r)).toBe(code);
  expect(r.v.get('rip')).toBe(0x1001n);
  expect(r.v.get('next_rip')).toBe(BigInt(0x1001 + step.len));
  return r;
}

describe('instruction intercepts', () => {
  const simple: [string, number, InterceptKind, number][] = [
    ['CPUID', INTERCEPT_BIT.CPUID, INTERCEPT.CPUID, SVM_EXIT.CPUID],
    ['HLT', INTERCEPT_BIT.HLT, INTERCEPT.HLT, SVM_EXIT.HLT],
    ['RDTSC', INTERCEPT_BIT.RDTSC, INTERCEPT.RDTSC, SVM_EXIT.RDTSC],
    ['PAUSE', INTERCEPT_BIT.PAUSE, INTERCEPT.PAUSE, SVM_EXIT.PAUSE],
    ['SHUTDOWN', INTERCEPT_BIT.SHUTDOWN, INTERCEPT.SHUTDOWN, SVM_EXIT.SHUTDOWN],
    ['WBINVD', INTERCEPT_BIT.WBINVD, INTERCEPT.WBINVD, SVM_EXIT.WBINVD],
    ['XSETBV', INTERCEPT_BIT.XSETBV, INTERCEPT.XSETBV, SVM_EXIT.XSETBV],
  ];
  for (const [name, bit, kind, code] of simple) {
    it(`${name} exits with its code when intercepted, and not otherwise`, () => {
      expectInsnExit(bit, op(kind), code);
      // Not intercepted: the guest runs past it to the end of the script, which exits as INTR.
      const r = rig();
      runGuest(r, [op(kind)]);
      expect(exitCode(r)).toBe(SVM_EXIT.INTR);
      expect(r.v.get('rip')).toBe(0x1002n);
    });
  }

  it('INVLPG reports the linear address in EXITINFO1 (decode assists)', () => {
    const r = expectInsnExit(INTERCEPT_BIT.INVLPG, op(INTERCEPT.INVLPG, -0x10000), SVM_EXIT.INVLPG);
    expect(info1(r)).toBe(0xffffffffffff0000n);
  });

  it('MOV CR3 read/write and MOV DR7 report the GPR with bit 63 set', () => {
    let r = expectInsnExit(3, op(INTERCEPT.CR_READ, 3, 5), SVM_EXIT.READ_CR0 + 3);
    expect(info1(r)).toBe((1n << 63n) | 5n);
    r = expectInsnExit(16 + 4, op(INTERCEPT.CR_WRITE, 4, 9), SVM_EXIT.WRITE_CR0 + 4);
    expect(info1(r)).toBe((1n << 63n) | 9n);
    r = expectInsnExit(32 + 16 + 7, op(INTERCEPT.DR_WRITE, 7, 2), SVM_EXIT.WRITE_DR0 + 7);
    expect(info1(r)).toBe((1n << 63n) | 2n);
    r = expectInsnExit(32 + 6, op(INTERCEPT.DR_READ, 6, 1), SVM_EXIT.READ_DR0 + 6);
    expect(info1(r)).toBe((1n << 63n) | 1n);
  });

  it('the selective CR0 intercept exits on a change beyond TS/MP only', () => {
    const r = rig();
    setIntercept(r.v, INTERCEPT_BIT.SELECTIVE_CR0);
    runGuest(r, [
      { len: 3, exec: (cpu) => { expect(cpu.ext!.crWrite(0, 0x1a, 0x10)).toBe(0x1a); } }, // TS|MP: no exit
      { len: 3, exec: (cpu) => cpu.ext!.crWrite(0, 0x11, 0x10) },
    ]);
    expect(exitCode(r)).toBe(SVM_EXIT.CR0_SEL_WRITE);
    expect(r.v.get('rip')).toBe(0x1003n);
  });

  it('PAUSE filter: only the count-th PAUSE exits', () => {
    const r = rig();
    setIntercept(r.v, INTERCEPT_BIT.PAUSE);
    r.v.w16(VMCB.pause_filter_count, 3);
    runGuest(r, [op(INTERCEPT.PAUSE), op(INTERCEPT.PAUSE), op(INTERCEPT.PAUSE), nop]);
    expect(exitCode(r)).toBe(SVM_EXIT.PAUSE);
    expect(r.v.get('rip')).toBe(0x1004n);
  });

  const svmInsns: [string, number, number][] = [
    ['VMRUN', VIRT_OP.VMRUN, SVM_EXIT.VMRUN],
    ['VMMCALL', VIRT_OP.VMMCALL, SVM_EXIT.VMMCALL],
    ['VMLOAD', VIRT_OP.VMLOAD, SVM_EXIT.VMLOAD],
    ['VMSAVE', VIRT_OP.VMSAVE, SVM_EXIT.VMSAVE],
    ['STGI', VIRT_OP.STGI, SVM_EXIT.STGI],
    ['CLGI', VIRT_OP.CLGI, SVM_EXIT.CLGI],
    ['INVLPGA', VIRT_OP.INVLPGA, SVM_EXIT.INVLPGA],
  ];
  for (const [name, o, code] of svmInsns) {
    it(`${name} in the guest exits with ${code.toString(16)}`, () => {
      const r = rig();
      // Every SVM instruction needs the guest's EFER.SVME (set in the harness's guest) and CR0.PE.
      r.v.w64(VMCB.cr0, 0x11);
      setIntercept(r.v, code - 0x80 + 128);
      runGuest(r, [nop, virt(o)]);
      expect(exitCode(r)).toBe(code);
      expect(r.v.get('rip')).toBe(0x1001n);
      expect(r.v.get('next_rip')).toBe(0x1004n);
    });
  }

  it('VMMCALL without its intercept is #UD', () => {
    const r = rig();
    runGuest(r, [nop, virt(VIRT_OP.VMMCALL)]);
    expect(r.cpu.faults.map((f) => f.vector)).toEqual([6]);
  });
});

describe('IOIO through the IOPM (APM 15.10)', () => {
  it('encodes OUT DX, AL: port, SZ8, A16, and the next RIP in EXITINFO2', () => {
    const r = rig();
    setIntercept(r.v, INTERCEPT_BIT.IOIO_PROT);
    r.cpu.bus.ram.write8(IOPM_PA + (0x3f8 >> 3), 1 << (0x3f8 & 7));
    r.cpu.operand = { ...r.cpu.operand, addrSize: 16 };
    runGuest(r, [nop, op(INTERCEPT.IO, 0x3f8, 1, 1)]);
    expect(exitCode(r)).toBe(SVM_EXIT.IOIO);
    expect(info1(r)).toBe(BigInt((0x3f8 << 16) | (1 << 4) | (1 << 7)));
    expect(info2(r)).toBe(0x1002n);
  });

  it('encodes REP INSW with the segment and A32, and checks every byte of a wide port access', () => {
    const r = rig();
    setIntercept(r.v, INTERCEPT_BIT.IOIO_PROT);
    r.cpu.bus.ram.write8(IOPM_PA + (0x61 >> 3), 1 << (0x61 & 7)); // only the second byte of port 0x60..0x61
    r.cpu.operand = { ...r.cpu.operand, addrSize: 32, seg: 0 };
    runGuest(r, [op(INTERCEPT.IO, 0x60, 2 | IO_INFO.IN | IO_INFO.STRING | IO_INFO.REP, 2)]);
    expect(info1(r)).toBe(BigInt((0x60 << 16) | 1 | 4 | 8 | (1 << 5) | (1 << 8) | (0 << 10)));
  });

  it('lets a port through when its IOPM bit is clear', () => {
    const r = rig();
    setIntercept(r.v, INTERCEPT_BIT.IOIO_PROT);
    runGuest(r, [op(INTERCEPT.IO, 0x80, 1)]);
    expect(exitCode(r)).toBe(SVM_EXIT.INTR);
  });

  it('reads the IOPM live wherever it lies: across a 2 MiB boundary of the backing store too', () => {
    for (const iopm of [IOPM_PA, 0x1ff000]) {
      const r = rig();
      setIntercept(r.v, INTERCEPT_BIT.IOIO_PROT);
      r.v.w64(VMCB.iopm_base_pa, iopm);
      const exitsOn = (port: number): boolean => {
        r.cpu.bus.ram.write8(iopm + (port >> 3), 1 << (port & 7));
        runGuest(r, [op(INTERCEPT.IO, port, 1)]);
        r.cpu.bus.ram.write8(iopm + (port >> 3), 0);
        return exitCode(r) === SVM_EXIT.IOIO;
      };
      // Port 0x9000's bit is in the IOPM's second page (past the boundary in the second case).
      expect([exitsOn(0x3f8), exitsOn(0x9000)], `IOPM at 0x${iopm.toString(16)}`).toEqual([true, true]);
    }
  });
});

describe('MSR through the MSRPM (APM 15.11)', () => {
  it('exits on the read or write bit of the MSR, with EXITINFO1 0 or 1', () => {
    const r = rig();
    setIntercept(r.v, INTERCEPT_BIT.MSR_PROT);
    // LSTAR 0xc0000082: range 2 at byte 0x800, 2 bits per MSR; intercept its writes only.
    const bit = 0x800 * 8 + 0x82 * 2 + 1;
    r.cpu.bus.ram.write8(MSRPM_PA + (bit >> 3), 1 << (bit & 7));
    runGuest(r, [op(INTERCEPT.MSR_READ, 0xc0000082 | 0), op(INTERCEPT.MSR_WRITE, 0xc0000082 | 0)]);
    expect(exitCode(r)).toBe(SVM_EXIT.MSR);
    expect(info1(r)).toBe(1n);
    expect(r.v.get('rip')).toBe(0x1002n);
  });

  it('always exits for an MSR outside the three ranges', () => {
    const r = rig();
    setIntercept(r.v, INTERCEPT_BIT.MSR_PROT);
    runGuest(r, [op(INTERCEPT.MSR_READ, 0x40000000)]);
    expect(exitCode(r)).toBe(SVM_EXIT.MSR);
    expect(info1(r)).toBe(0n);
  });
});

describe('exceptions and interrupts', () => {
  it('an intercepted #GP exits with the error code in EXITINFO1, at the faulting instruction', () => {
    const r = rig();
    setIntercept(r.v, 64 + 13);
    runGuest(r, [nop, { len: 2, exec: (cpu) => { cpu.rip = cpu.insnStart; cpu.ext!.event(makeIntrInfo(13, EVENT_TYPE.HW_EXCEPTION, true), 0x18); } }]);
    expect(exitCode(r)).toBe(SVM_EXIT.EXCP_BASE + 13);
    expect(info1(r)).toBe(0x18n);
    expect(r.v.get('rip')).toBe(0x1001n);
  });

  it('an intercepted #PF reports the address in EXITINFO2', () => {
    const r = rig();
    setIntercept(r.v, 64 + 14);
    runGuest(r, [{ len: 2, exec: (cpu) => { cpu.cr2 = 0xdead000; cpu.ext!.event(makeIntrInfo(14, EVENT_TYPE.HW_EXCEPTION, true), 2); } }]);
    expect(exitCode(r)).toBe(SVM_EXIT.EXCP_BASE + 14);
    expect([info1(r), info2(r)]).toEqual([2n, 0xdead000n]);
  });

  it('a physical interrupt exits as INTR when intercepted, without acknowledging it', () => {
    const r = rig();
    setIntercept(r.v, INTERCEPT_BIT.INTR);
    runGuest(r, [nop, { len: 1, exec: (cpu) => cpu.raiseInterrupt(0xec) }, nop, nop]);
    expect(exitCode(r)).toBe(SVM_EXIT.INTR);
    expect(r.v.get('rip')).toBe(0x1002n);
    expect(r.cpu.pendingInterrupt).toBe(0xec);
  });

  it('an NMI exits as NMI when intercepted', () => {
    const r = rig();
    setIntercept(r.v, INTERCEPT_BIT.NMI);
    runGuest(r, [{ len: 1, exec: (cpu) => cpu.raiseNmi() }, nop]);
    expect(exitCode(r)).toBe(SVM_EXIT.NMI);
  });

  it('V_IRQ with the VINTR intercept exits once the guest has IF=1 and no shadow', () => {
    const r = rig();
    setIntercept(r.v, INTERCEPT_BIT.VINTR);
    r.v.w32(VMCB.int_ctl, V_INTR_MASKING_MASK | V_IRQ_MASK | V_IGN_TPR_MASK | (0xf << 16));
    runGuest(r, [nop, nop, { len: 1, exec: (cpu) => { cpu.rflags |= 0x200; } }, nop, nop]);
    expect(exitCode(r)).toBe(SVM_EXIT.VINTR);
    expect(r.v.get('rip')).toBe(0x1003n);
  });

  it('V_IRQ without the intercept delivers int_vector into the guest and clears V_IRQ', () => {
    const r = rig();
    r.v.w32(VMCB.int_ctl, V_INTR_MASKING_MASK | V_IRQ_MASK | V_IGN_TPR_MASK);
    r.v.w32(VMCB.int_vector, 0x30);
    r.v.w64(VMCB.rflags, 0x202);
    setIntercept(r.v, INTERCEPT_BIT.HLT);
    runGuest(r, [nop, op(INTERCEPT.HLT)]);
    expect(r.cpu.injected).toEqual([{ info: makeIntrInfo(0x30, EVENT_TYPE.EXT_INTR, false), err: -1, len: 0 }]);
    expect(r.v.r32(VMCB.int_ctl) & V_IRQ_MASK).toBe(0);
  });

  it('EVENTINJ is delivered before the first guest instruction', () => {
    const r = rig();
    r.v.w32(VMCB.event_inj, 0x80000b0d); // #GP with an error code
    r.v.w32(VMCB.event_inj_err, 0x1234);
    runGuest(r, [nop]);
    expect(r.cpu.injected).toEqual([{ info: 0x80000b0d, err: 0x1234, len: 0 }]);
  });

  it('an injected INTn (type SOFT) returns to next_rip, as the instruction would', () => {
    const r = rig();
    r.v.w32(VMCB.event_inj, 0x80000421); // INT 0x21
    r.v.w64(VMCB.next_rip, 0x1002);
    runGuest(r, [nop]);
    expect(r.cpu.injected).toEqual([{ info: makeIntrInfo(0x21, EVENT_TYPE.SOFT_INTR, false), err: -1, len: 2 }]);
  });

  it('an injected #BP or #OF (type EXCEPTION) is INT3/INTO: a software exception returning to next_rip', () => {
    for (const [vector, next] of [[3, 0x1001], [4, 0x1003]] as const) {
      const r = rig();
      r.v.w32(VMCB.event_inj, 0x80000300 | vector);
      r.v.w64(VMCB.next_rip, next);
      runGuest(r, [nop]);
      expect(r.cpu.injected).toEqual([{ info: makeIntrInfo(vector, EVENT_TYPE.SW_EXCEPTION, false), err: -1, len: next - 0x1000 }]);
    }
  });

  it('an injected event whose delivery faults is no longer pending: the next exit reports what the CPU vectors, and exception intercepts work again', () => {
    const r = rig();
    r.v.w32(VMCB.event_inj, 0x80000481); // INT 0x81, say through a DPL0 gate from CPL3: #GP
    r.v.w64(VMCB.next_rip, 0x1002);
    r.cpu.injectEvent = (info, err, len) => {
      r.cpu.injected.push({ info, err, len });
      r.cpu.ext!.event(info, err); // the injected event itself: not intercepted
      r.cpu.fault(13, 0x81 * 8 + 2);
    };
    setIntercept(r.v, 64 + 13);
    // The fault unwinds the fake CPU's run (STOP.BUDGET), which VMRUN turns into an INTR exit.
    runGuest(r, [nop]);
    expect(exitCode(r)).toBe(SVM_EXIT.INTR);
    expect(r.v.r32(VMCB.exit_int_info)).toBe(0);
    // The #GP it raised is intercepted like any other.
    r.cpu.injectEvent = (info, err, len) => { r.cpu.injected.push({ info, err, len }); };
    r.v.w32(VMCB.event_inj, 0);
    runGuest(r, [{ len: 2, exec: (cpu) => cpu.ext!.event(makeIntrInfo(13, EVENT_TYPE.HW_EXCEPTION, true), 0x40a) }]);
    expect(exitCode(r)).toBe(SVM_EXIT.EXCP_BASE + 13);
    expect(info1(r)).toBe(0x40an);
  });

  it('other injected exceptions ignore next_rip', () => {
    const r = rig();
    r.v.w32(VMCB.event_inj, 0x80000306); // #UD
    r.v.w64(VMCB.next_rip, 0x1005);
    runGuest(r, [nop]);
    expect(r.cpu.injected).toEqual([{ info: makeIntrInfo(6, EVENT_TYPE.HW_EXCEPTION, false), err: -1, len: 0 }]);
  });
});

describe('GIF', () => {
  it('holds INTR while GIF=0 and releases it at STGI', () => {
    const r = rig();
    r.svm.clgi();
    r.cpu.raiseInterrupt(0x20);
    r.cpu.script = [nop];
    r.cpu.run(1);
    expect(r.cpu.pendingInterrupt).toBe(-1);
    expect(r.svm.heldInterrupt).toBe(0x20);
    r.svm.stgi();
    expect(r.cpu.pendingInterrupt).toBe(0x20);
  });

  it('VMRUN sets GIF and #VMEXIT clears it', () => {
    const r = rig();
    r.svm.clgi();
    let inGuest = false;
    runGuest(r, [{ len: 1, exec: () => { inGuest = r.svm.gif; } }]);
    expect(inGuest).toBe(true);
  });
});
