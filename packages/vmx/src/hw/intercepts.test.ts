import { describe, it, expect } from 'vitest';
import { makeIntrInfo, EVENT_TYPE, VEC } from '@kvmts/x86';
import { vmxEvent, vmxInsnInfo } from './intercepts.js';
import { FIELD } from './fields.js';
import { makeVmxCpu, StopError } from '../../test/fake-cpu.js';
import { loadValidVmcs } from '../../test/valid-vmcs.js';

function guestSilicon() {
  const m = makeVmxCpu();
  loadValidVmcs(m.vmx, m.mem, m.cpu);
  m.vmx.guest = true;
  return m;
}

/** Whether delivering `intrInfo` with `code` VM-exits. */
function exits(vmx: ReturnType<typeof guestSilicon>['vmx'], intrInfo: number, code: number): boolean {
  try {
    vmxEvent(vmx, intrInfo, code);
    return false;
  } catch (e) {
    if (e instanceof StopError) return true;
    throw e;
  }
}

describe('exception bitmap and PFEC_MASK/MATCH (SDM 26.2)', () => {
  const pf = makeIntrInfo(VEC.PF, EVENT_TYPE.HW_EXCEPTION, true);

  it('#PF exits when bit 14 is set and (code & MASK) == MATCH', () => {
    const { vmx } = guestSilicon();
    vmx.exceptionBitmap = 1 << VEC.PF;
    vmx.pfecMask = 0x2;
    vmx.pfecMatch = 0x2;
    expect(exits(vmx, pf, 0x3)).toBe(true);
    expect(exits(vmx, pf, 0x1)).toBe(false);
  });

  it('with bit 14 clear the sense reverses: #PF exits when (code & MASK) != MATCH', () => {
    const { vmx } = guestSilicon();
    vmx.exceptionBitmap = 0;
    vmx.pfecMask = 0x2;
    vmx.pfecMatch = 0x2;
    expect(exits(vmx, pf, 0x1)).toBe(true);
    expect(exits(vmx, pf, 0x3)).toBe(false);
  });

  it('a #PF exit reports the faulting address and the error code', () => {
    const { vmx, cpu } = guestSilicon();
    vmx.exceptionBitmap = 1 << VEC.PF;
    cpu.cr2 = 0xdead000;
    expect(exits(vmx, pf, 0x6)).toBe(true);
    expect(vmx.vmcs.readNum(FIELD.EXIT_QUALIFICATION)).toBe(0xdead000);
    expect(vmx.vmcs.read32(FIELD.VM_EXIT_INTR_ERROR_CODE)).toBe(6);
    expect(vmx.vmcs.read32(FIELD.VM_EXIT_INTR_INFO)).toBe(pf);
  });

  it('software interrupts (INT n) never exit; NMIs exit with NMI exiting', () => {
    const { vmx } = guestSilicon();
    vmx.exceptionBitmap = 0xffffffff;
    expect(exits(vmx, makeIntrInfo(0x80, EVENT_TYPE.SOFT_INTR, false), -1)).toBe(false);
    vmx.pin = 0;
    expect(exits(vmx, makeIntrInfo(2, EVENT_TYPE.NMI, false), -1)).toBe(false);
    vmx.pin = 1 << 3;
    expect(exits(vmx, makeIntrInfo(2, EVENT_TYPE.NMI, false), -1)).toBe(true);
  });
});

describe('VM-exit instruction information (SDM Tables 28-14, 28-15)', () => {
  it('encodes a memory operand with base, index, scale, segment, address size and reg2', () => {
    const info = vmxInsnInfo({ isReg: false, reg1: 0, reg2: 9, seg: 3, base: 5, index: -1, scale: 2, addrSize: 64, opSize: 64, disp: 8, offset: 0 }, true);
    expect(info).toBe((2 | (2 << 7) | (3 << 15) | (1 << 22) | (5 << 23) | (9 << 28)) >>> 0);
  });

  it('encodes a register operand in bits 6:3 with bit 10 set', () => {
    const info = vmxInsnInfo({ isReg: true, reg1: 12, reg2: 1, seg: 0, base: -1, index: -1, scale: 0, addrSize: 64, opSize: 64, disp: 0, offset: 0 }, true);
    expect(info).toBe(((12 << 3) | (2 << 7) | (1 << 10) | (1 << 28)) >>> 0);
  });
});
