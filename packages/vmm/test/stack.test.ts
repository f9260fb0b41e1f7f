/** The VMM over the real stack: hosts built by createHost, guests from the catalog. */
import { describe, expect, it } from 'vitest';
import { findGuest, loadImage } from '@kvmts/guests';
import { createHost } from '../src/host.js';
import { runImage } from '../src/run-image.js';
import { formatRow } from '../src/trace.js';
import type { HostPort } from '../src/kvm-port.js';
import { Machine } from '../src/machine.js';

const VENDORS = ['intel', 'amd'] as const;
/** A broken stack gives a failed test, not a hung one: host ticks end each KVM_RUN, and these guests need a handful of exits. */
const MAX_EXITS = 10_000;

async function host(vendor: 'intel' | 'amd'): Promise<HostPort> {
  const h = await createHost(vendor);
  if (typeof h === 'string') throw new Error(h);
  return h;
}

describe.each(VENDORS)('on %s', (vendor) => {
  it('runs the LWN guest: "4\\n" on COM1, HLT with RAX = 0xa', async () => {
    const hello = findGuest('hello')!;
    const r = runImage(await host(vendor), { image: loadImage('hello'), mode: hello.mode, mem: hello.mem, load: hello.load, entry: hello.entry, regs: { rax: 2, rbx: 2 }, maxExits: MAX_EXITS });
    if (typeof r === 'string') throw new Error(r);
    expect(r.serial).toBe('4\n');
    expect(r.rows).toHaveLength(1);
    expect(r.final).toMatchObject({ exit: 'hlt', regs: { rax: '0xa', rbx: '0x2', rdx: '0x3f8' }, sregs: { cr0: '0x60000010', efer: '0x0' } });
    expect(r.status).toBe(0);
  });

  it('reports a host that says what it is', async () => {
    const h = await host(vendor);
    expect(h.info).toMatchObject({ vendor, module: vendor === 'intel' ? 'kvm_intel' : 'kvm_amd', apiVersion: 12 });
  });

  it('sets long64 up so that 64-bit code runs from the first instruction', async () => {
    // mov rax, 0x1122334455667788; out 0xf4, al
    const image = Uint8Array.of(0x48, 0xb8, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0xe6, 0xf4);
    const r = runImage(await host(vendor), { image, mode: 'long64', maxExits: MAX_EXITS });
    if (typeof r === 'string') throw new Error(r);
    expect(formatRow(r.final)).toMatch(/^\{"exit":"debug_exit","code":136,"regs":\{"rax":"0x1122334455667788",/);
    expect(r.final.sregs).toEqual({ cr0: '0x80000033', cr3: '0x1fd000', cr4: '0x20', efer: '0x500' });
    expect(r.status).toBe(136);
  });

  it('traces an unclaimed IN with 0xff bytes and an MMIO write past memory', async () => {
    // in al, 0x60; mov [0x300000], eax (an unbacked GPA: 3 MiB, memory is 2 MiB); hlt
    const image = Uint8Array.of(0xe4, 0x60, 0x89, 0x04, 0x25, 0x00, 0x00, 0x30, 0x00, 0xf4);
    const r = runImage(await host(vendor), { image, mode: 'long64', maxExits: MAX_EXITS });
    if (typeof r === 'string') throw new Error(r);
    expect(r.rows.map(formatRow)).toEqual([
      '{"exit":"io","dir":"in","port":96,"size":1,"count":1,"data":"ff"}',
      '{"exit":"mmio","dir":"write","addr":"0x300000","len":4,"data":"ff000000"}',
      expect.stringMatching(/^\{"exit":"hlt","regs":\{"rax":"0xff",/),
    ]);
  });

  it('runs a 4 GiB memslot with its tables above 2 GiB', async () => {
    const m = Machine.create(await host(vendor), { image: Uint8Array.of(0xf4), mode: 'long64', mem: 4 * 1024 ** 3 });
    if (typeof m === 'string') throw new Error(m);
    m.runToEnd(undefined, MAX_EXITS);
    expect(m.final?.exit).toBe('hlt');
    m.destroy();
  });
});
