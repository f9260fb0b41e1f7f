/**
 * The on-chip VMCS set (SDM 25.11.1): VMPTRLD of an active VMCS only makes it current, VMCLEAR
 * writes it back and drops it, the least recently current one is written back when a ninth is
 * loaded, and each VMCS keeps its own dirty set, so an entry after switching VMCSs still runs the
 * checks its own unchecked writes need.
 */
import { describe, it, expect } from 'vitest';
import { VMCS, FIELD, FIELD_COUNT } from './fields.js';
import { VMX_STATUS, VMXERR } from './instructions.js';
import { VMCS_REGION, VMCS_CACHE_ENTRIES } from './region.js';
import { VMCS_REVISION_ID } from './caps.js';
import { makeVmxCpu, makeRegion } from '../../test/fake-cpu.js';
import { loadValidVmcs, writeValidVmcs, VMCS_PA } from '../../test/valid-vmcs.js';

/** Where row `row`'s bits 31:0 are in the region (bits 63:32 follow all the rows' low halves). */
const slot = (hpa: number, row: number): number => hpa + VMCS_REGION.DATA + row * 4;
const OTHER = 0x40000;

function withTwo(): ReturnType<typeof makeVmxCpu> {
  const t = makeVmxCpu();
  loadValidVmcs(t.vmx, t.mem, t.cpu);
  makeRegion(t.mem, OTHER, VMCS_REVISION_ID);
  t.vmx.vmclear(OTHER);
  return t;
}

describe('the on-chip VMCS set', () => {
  it('VMPTRLD of an active VMCS switches to its on-chip data without reading the region', () => {
    const { vmx, mem } = withTwo();
    vmx.vmwriteNum(VMCS.GUEST_RIP, 0x1234);
    expect(vmx.vmptrld(OTHER)).toBe(VMX_STATUS.SUCCEED);
    vmx.vmwriteNum(VMCS.GUEST_RIP, 0x5678);
    // The region in DRAM still has what VMCLEAR/VMPTRLD left there: the data is on chip.
    expect(mem.read32(slot(VMCS_PA, FIELD.GUEST_RIP))).toBe(0);
    mem.write32(slot(VMCS_PA, FIELD.GUEST_RIP), 0xdead);
    expect(vmx.vmptrld(VMCS_PA)).toBe(VMX_STATUS.SUCCEED);
    expect(vmx.vmptrst()).toBe(VMCS_PA);
    expect(vmx.vmreadNum(VMCS.GUEST_RIP)).toBe(0x1234);
    vmx.vmptrld(OTHER);
    expect(vmx.vmreadNum(VMCS.GUEST_RIP)).toBe(0x5678);
  });

  it('VMCLEAR writes the data and a clear launch state back, and makes no VMCS current when it was current', () => {
    const { vmx, mem } = withTwo();
    expect(vmx.vmlaunch()).toBe(VMX_STATUS.SUCCEED);
    vmx.vmwriteNum(VMCS.GUEST_RIP, 0x2468);
    vmx.vmwriteNum(VMCS.GUEST_FS_BASE, 0x1234_5678_9abc);
    expect(vmx.vmclear(VMCS_PA)).toBe(VMX_STATUS.SUCCEED);
    expect(vmx.vmptrst()).toBe(-1);
    expect(mem.read32(slot(VMCS_PA, FIELD.GUEST_RIP))).toBe(0x2468);
    expect(mem.read32(slot(VMCS_PA, FIELD.GUEST_FS_BASE))).toBe(0x56789abc);
    expect(mem.read32(slot(VMCS_PA, FIELD_COUNT + FIELD.GUEST_FS_BASE))).toBe(0x1234);
    expect(mem.read8(VMCS_PA + VMCS_REGION.LAUNCH_STATE)).toBe(0);
    // Read in again: the values come from the region, and VMRESUME needs a launch first.
    vmx.vmptrld(VMCS_PA);
    expect(vmx.vmreadNum(VMCS.GUEST_RIP)).toBe(0x2468);
    expect(vmx.vmreadNum(VMCS.GUEST_FS_BASE)).toBe(0x1234_5678_9abc);
    expect(vmx.vmresume()).toBe(VMX_STATUS.FAIL_VALID);
    expect(vmx.vmread32(VMCS.VM_INSTRUCTION_ERROR)).toBe(VMXERR.VMRESUME_NONLAUNCHED_VMCS);
  });

  it(`a VMPTRLD beyond ${VMCS_CACHE_ENTRIES} active VMCSs writes back the least recently current one`, () => {
    const { vmx, mem } = makeVmxCpu();
    makeRegion(mem, 0x10000, VMCS_REVISION_ID);
    vmx.vmxon(0x10000);
    const regions = Array.from({ length: VMCS_CACHE_ENTRIES + 1 }, (_, k) => makeRegion(mem, 0x100000 + k * 0x1000, VMCS_REVISION_ID));
    regions.forEach((r, k) => {
      vmx.vmclear(r);
      vmx.vmptrld(r);
      vmx.vmwrite32(VMCS.GUEST_ES_SELECTOR, 0x100 + k);
    });
    // The first one went back to DRAM when the ninth came in; the second is still on chip only.
    expect(mem.read32(slot(regions[0]!, FIELD.GUEST_ES_SELECTOR))).toBe(0x100);
    expect(mem.read32(slot(regions[1]!, FIELD.GUEST_ES_SELECTOR))).toBe(0);
    regions.forEach((r, k) => {
      vmx.vmptrld(r);
      expect(vmx.vmread32(VMCS.GUEST_ES_SELECTOR)).toBe(0x100 + k);
    });
    // VMXOFF writes every active VMCS back.
    vmx.vmxoff();
    regions.forEach((r, k) => expect(mem.read32(slot(r, FIELD.GUEST_ES_SELECTOR))).toBe(0x100 + k));
  });

  it('each VMCS keeps its dirty set: a bad write before a switch still fails the entry after it', () => {
    const { vmx } = withTwo();
    vmx.vmptrld(OTHER);
    writeValidVmcs(vmx);
    vmx.vmptrld(VMCS_PA);
    expect(vmx.vmlaunch()).toBe(VMX_STATUS.SUCCEED);
    vmx.vmwriteNum(VMCS.HOST_CR0, 0x80050032); // CR0.PE clear: a host-state check fails
    vmx.vmptrld(OTHER);
    expect(vmx.vmlaunch()).toBe(VMX_STATUS.SUCCEED);
    vmx.vmptrld(VMCS_PA);
    expect(vmx.vmresume()).toBe(VMX_STATUS.FAIL_VALID);
    expect(vmx.vmread32(VMCS.VM_INSTRUCTION_ERROR)).toBe(VMXERR.ENTRY_INVALID_HOST_STATE_FIELD);
    expect(vmx.lastFailedCheck?.name).toBe('host CR0 fixed bits');
    // And the controls decoded for the other VMCS are not reused for this one.
    vmx.vmwriteNum(VMCS.HOST_CR0, 0x80050033);
    vmx.vmwrite32(VMCS.EXCEPTION_BITMAP, 1 << 14);
    expect(vmx.vmresume()).toBe(VMX_STATUS.SUCCEED);
    expect(vmx.exceptionBitmap).toBe(1 << 14);
    vmx.vmptrld(OTHER);
    expect(vmx.vmresume()).toBe(VMX_STATUS.SUCCEED);
    expect(vmx.exceptionBitmap).toBe(0);
  });
});
