import { describe, expect, it } from 'vitest';
import { kvmRefUnavailable, runImage } from '../src/index.js';

const reason = kvmRefUnavailable();
if (reason !== null) console.log(`kvm-ref image tests skipped: ${reason}`);

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

describe.skipIf(reason !== null)('images in long64 mode, as kvmts run enters them', () => {
  it('traces IN, MMIO writes and reads, and the debug exit with final registers; COM1 belongs to the VMM', () => {
    const image = new Uint8Array([
      0xb0, 0x48, // mov al, 'H'
      0x66, 0xba, 0xf8, 0x03, // mov dx, 0x3f8
      0xee, // out dx, al
      0xec, // in al, dx (COM1: claimed, no row)
      0xe4, 0x60, // in al, 0x60
      0xc7, 0x04, 0x25, 0x00, 0x00, 0x00, 0x10, 0x44, 0x33, 0x22, 0x11, // mov dword [0x10000000], 0x11223344
      0x8b, 0x04, 0x25, 0x00, 0x00, 0x00, 0x10, // mov eax, [0x10000000]
      0xbb, 0x07, 0x00, 0x00, 0x00, // mov ebx, 7
      0xb0, 0x03, // mov al, 3
      0xe6, 0xf4, // out 0xf4, al
    ]);
    const r = runImage(image);
    expect(r.lines.slice(0, 3)).toEqual([
      '{"exit":"io","dir":"in","port":96,"size":1,"count":1,"data":"ff"}',
      '{"exit":"mmio","dir":"write","addr":"0x10000000","len":4,"data":"44332211"}',
      '{"exit":"mmio","dir":"read","addr":"0x10000000","len":4,"data":"ffffffff"}',
    ]);
    const last = r.rows.at(-1)!;
    expect(last.exit).toBe('debug_exit');
    expect(last['code']).toBe(3);
    expect(last['regs']).toMatchObject({ rax: '0xffffff03', rbx: '0x7', rdx: '0x3f8', rip: `0x${(0x1000 + image.length).toString(16)}` });
    expect(last['sregs']).toEqual({ cr0: '0x80000033', cr3: '0x1fd000', cr4: '0x20', efer: '0x500' });
    expect(Buffer.from(r.serial).toString()).toBe('H');
  });

  it('ends at HLT, and at the time limit for a guest that spins', () => {
    const hlt = runImage(hex('f4'), { mem: 0x400000 });
    expect(hlt.rows).toHaveLength(1);
    expect(hlt.rows[0]).toMatchObject({ exit: 'hlt', regs: { rip: '0x1001' }, sregs: { cr3: '0x3fd000' } });
    const spin = runImage(hex('eb fe'), { timeoutMs: 300 });
    expect(spin.rows[0]).toMatchObject({ exit: 'timeout', regs: { rip: '0x1000' } });
  });

  it('honours --load and --entry', () => {
    const r = runImage(hex('90 90 e6 f4'), { load: 0x8000, entry: 0x8001 });
    expect(r.rows[0]).toMatchObject({ exit: 'debug_exit', code: 0, regs: { rip: '0x8004' } });
  });

  it('sets the registers the VMM asks for before the first run', () => {
    const r = runImage(hex('48 01 d8 e6 f4'), { regs: { rax: 0x1234, rbx: 0xffffffff00000000n } }); // add rax, rbx
    expect(r.rows[0]).toMatchObject({ exit: 'debug_exit', code: 0x34, regs: { rax: '0xffffffff00001234', rbx: '0xffffffff00000000' } });
  });
});
