import { describe, expect, it } from 'vitest';
import { Machine } from '../src/machine.js';
import { exitStatus, runImage } from '../src/run-image.js';
import { formatRow } from '../src/trace.js';
import { FakeHost, helloScript, type FakeVcpu, type ScriptStep } from './fake-kvm.js';

const HELLO = Uint8Array.of(0xba, 0xf8, 0x03, 0x00, 0xd8, 0x04, 0x30, 0xee, 0xb0, 0x0a, 0xee, 0xf4);

function run(script: ScriptStep[], opts: Partial<Parameters<typeof runImage>[1]> = {}) {
  const host = new FakeHost(script);
  const result = runImage(host, { image: HELLO, ...opts });
  if (typeof result === 'string') throw new Error(result);
  return { result, host, vcpu: host.lastVm!.vcpu! };
}

describe('runImage', () => {
  it('runs the LWN guest: serial to the callback, no serial rows, HLT final row', () => {
    const serial: number[] = [];
    const { result, host } = run(helloScript(), { regs: { rax: 2, rbx: 2 }, onSerial: (b) => serial.push(b) });
    expect(String.fromCharCode(...serial)).toBe('4\n');
    expect(result.serial).toBe('4\n');
    expect(result.rows).toHaveLength(1);
    expect(result.final).toMatchObject({ exit: 'hlt', regs: { rax: '0xa', rbx: '0x2', rip: '0x1001', rflags: '0x2' }, sregs: { cr0: '0x60000010' } });
    expect(result.status).toBe(0);
    expect(host.lastVm!.destroyed).toBe(true);
  });

  it('loads the image at --load and sets real-mode state', () => {
    const { vcpu, host } = run(helloScript(), { load: 0x2000, entry: 0x2004 });
    expect(Array.from(host.lastVm!.memory!.bytes.subarray(0x2000, 0x2000 + HELLO.length))).toEqual(Array.from(HELLO));
    expect(vcpu.sregs.cs).toMatchObject({ selector: 0, base: 0 });
  });

  it('sets up long64 through SET_SREGS and writes the tables at the top of memory', () => {
    const { vcpu, host } = run(helloScript(), { mode: 'long64', mem: 0x400000 });
    expect(vcpu.sregs).toMatchObject({ cr0: 0x80000033, cr3: 0x3fd000, cr4: 0x20, efer: 0x500, cs: { selector: 8, l: 1 } });
    expect(host.lastVm!.memory!.bytes[0x3ff000]).toBe(0x83);
  });

  it('ends on an OUT to 0xf4 with its value as the code and the exit status', () => {
    const { result } = run([(v) => v.out(0xf4, [0x03, 0x00], 2)]);
    expect(formatRow(result.final)).toMatch(/^\{"exit":"debug_exit","code":3,"regs":\{"rax":"0x0",/);
    expect(result.status).toBe(3);
  });

  it('answers unclaimed IN with 0xff bytes and traces it', () => {
    let seen = -1;
    const { result } = run([
      (v) => ({ kind: 'io', dir: 'in', port: 0x60, size: 2, count: 1, data: v.pio.subarray(0, 2) }),
      (v) => { seen = v.pio[0]! | (v.pio[1]! << 8); return { kind: 'hlt' }; },
    ]);
    expect(seen).toBe(0xffff);
    expect(formatRow(result.rows[0]!)).toBe('{"exit":"io","dir":"in","port":96,"size":2,"count":1,"data":"ffff"}');
  });

  it('answers MMIO reads with 0xff bytes and traces writes', () => {
    const { result, vcpu } = run([
      (v) => { v.mmio.set([0x11, 0x22, 0x33, 0x44]); return { kind: 'mmio', isWrite: true, addr: 0x10000000n, len: 4, data: v.mmio.subarray(0, 4) }; },
      (v) => ({ kind: 'mmio', isWrite: false, addr: 0xfee00030n, len: 4, data: v.mmio.subarray(0, 4) }),
      () => ({ kind: 'hlt' }),
    ]);
    expect(result.rows.slice(0, 2).map(formatRow)).toEqual([
      '{"exit":"mmio","dir":"write","addr":"0x10000000","len":4,"data":"11223344"}',
      '{"exit":"mmio","dir":"read","addr":"0xfee00030","len":4,"data":"ffffffff"}',
    ]);
    expect(Array.from(vcpu.mmio.subarray(0, 4))).toEqual([0xff, 0xff, 0xff, 0xff]);
  });

  it('answers LSR polls from the UART without a trace row', () => {
    let lsr = 0;
    const { result } = run([
      (v) => ({ kind: 'io', dir: 'in', port: 0x3fd, size: 1, count: 1, data: v.pio.subarray(0, 1) }),
      (v) => { lsr = v.pio[0]!; return { kind: 'hlt' }; },
    ]);
    expect(lsr).toBe(0x60);
    expect(result.rows).toHaveLength(1);
  });

  it.each([
    [{ kind: 'shutdown' } as const, 'shutdown', 1],
    [{ kind: 'fail_entry', reason: 0x21n, cpu: 0 } as const, 'fail_entry', 1],
    [{ kind: 'internal_error', suberror: 1 } as const, 'internal_error', 1],
  ])('ends on %o with status 1', (exit, name, status) => {
    const { result } = run([() => exit]);
    expect(result.final.exit).toBe(name);
    expect(result.status).toBe(status);
  });

  it('gives the fail_entry reason in hex', () => {
    const { result } = run([() => ({ kind: 'fail_entry', reason: 0x21n, cpu: 0 })]);
    expect(formatRow(result.final)).toMatch(/^\{"exit":"fail_entry","reason":"0x21","regs"/);
  });

  it('wakes a halted guest with KVM_INTERRUPT as many times as planned', () => {
    const hlt: ScriptStep = () => ({ kind: 'hlt' });
    const { result, vcpu } = run([hlt, hlt, hlt, hlt], { irqs: { vector: 0x20, count: 3 } });
    expect((vcpu as FakeVcpu).injected).toEqual([0x20, 0x20, 0x20]);
    expect(result.final.exit).toBe('hlt');
  });

  it('waits for an interrupt window when injection is not allowed yet', () => {
    const { vcpu } = run([
      (v) => { v.readyForInterruptInjection = false; return { kind: 'hlt' }; },
      (v) => { expect(v.requestInterruptWindow).toBe(true); v.readyForInterruptInjection = true; return { kind: 'irq_window_open' }; },
      () => ({ kind: 'hlt' }),
    ], { irqs: { vector: 0x30, count: 1 } });
    expect(vcpu.injected).toEqual([0x30]);
    expect(vcpu.requestInterruptWindow).toBe(false);
  });

  it('refuses an image that does not fit', () => {
    expect(runImage(new FakeHost([]), { image: new Uint8Array(0x2000), mem: 0x2000 })).toMatch(/does not fit/);
  });
});

describe('Machine.step', () => {
  it('stops at each userspace exit, claimed or not, and reports the final row once', () => {
    const m = Machine.create(new FakeHost(helloScript()), { image: HELLO }) as Machine;
    const kinds = [m.step(), m.step(), m.step()].map((s) => [s.exit.kind, s.row === null, s.final?.exit ?? null]);
    expect(kinds).toEqual([['io', true, null], ['io', true, null], ['hlt', false, 'hlt']]);
    expect(m.exitCounts).toEqual({ io: 2, hlt: 1 });
    expect(m.done).toBe(true);
    expect(exitStatus(m.final!)).toBe(0);
  });
});
