import { describe, expect, it } from 'vitest';
import { finalRow, formatRow, ioRow, mmioRow } from './trace.js';
import { hex } from './hex.js';
import { KVM_REGS_FIELDS, type KvmRegs } from './kvm-port.js';
import { resetSregs } from '../test/fake-kvm.js';

describe('trace rows', () => {
  it('formats an OUT as DESIGN.md shows it', () => {
    expect(formatRow(ioRow('out', 0x3f8, 1, 1, Uint8Array.of(0x34)))).toBe('{"exit":"io","dir":"out","port":1016,"size":1,"count":1,"data":"34"}');
  });

  it('formats an MMIO write with data in memory order', () => {
    expect(formatRow(mmioRow(true, 0x10000000n, Uint8Array.of(0x44, 0x33, 0x22, 0x11)))).toBe('{"exit":"mmio","dir":"write","addr":"0x10000000","len":4,"data":"44332211"}');
  });

  it('puts code before regs and sregs in the final row, in kvm_regs order', () => {
    const regs = Object.fromEntries(KVM_REGS_FIELDS.map((n, i) => [n, BigInt(i)])) as KvmRegs;
    regs.rip = 0xffffffff80001000n;
    const line = formatRow(finalRow('debug_exit', regs, { ...resetSregs(), cr0: 0x80000033, cr3: 0x1fd000, efer: 0x500 }, { code: 3 }));
    expect(line).toBe(
      '{"exit":"debug_exit","code":3,"regs":{"rax":"0x0","rbx":"0x1","rcx":"0x2","rdx":"0x3","rsi":"0x4","rdi":"0x5","rsp":"0x6","rbp":"0x7",' +
      '"r8":"0x8","r9":"0x9","r10":"0xa","r11":"0xb","r12":"0xc","r13":"0xd","r14":"0xe","r15":"0xf","rip":"0xffffffff80001000","rflags":"0x11"},' +
      '"sregs":{"cr0":"0x80000033","cr3":"0x1fd000","cr4":"0x0","efer":"0x500"}}',
    );
  });

  it('shows signed canonical numbers as their 64-bit pattern', () => {
    expect(hex(-(2 ** 47))).toBe('0xffff800000000000');
    expect(hex(0)).toBe('0x0');
  });
});
