/**
 * The kernel's runs of VMREADs and VMWRITEs (vmreadRows/vmwriteRows) against the instruction
 * sequences they stand for: same values, same truncation, same dirty marks, same failures.
 */
import { describe, it, expect } from 'vitest';
import { RFLAGS } from '@kvmts/x86';
import { VMCS_FIELDS, FIELD, FIELD_COUNT, VMCS_WIDTH, vmcsFieldWidth } from './fields.js';
import { VMXERR, VMX_STATUS, vmreadRows, vmwriteRows } from './instructions.js';
import { makeVmxCpu, FaultError } from '../../test/fake-cpu.js';
import { loadValidVmcs, VMCS_PA } from '../../test/valid-vmcs.js';

/** One row of each width, guest and read-only ones among them. */
const ROWS = Int16Array.from([FIELD.GUEST_ES_SELECTOR, FIELD.EPT_POINTER, FIELD.VM_EXIT_REASON, FIELD.GUEST_RIP, FIELD.GUEST_CS_AR_BYTES,
  FIELD.TSC_OFFSET, FIELD.EXIT_QUALIFICATION]);

/** A value with every bit of both halves in use, different per row. */
const full = (row: number): [number, number] => [(0x89abcdef ^ row) | 0, (0x01234567 + row) | 0];

function loaded(opts = {}): ReturnType<typeof makeVmxCpu> {
  const t = makeVmxCpu(opts);
  loadValidVmcs(t.vmx, t.mem, t.cpu);
  return t;
}

describe('vmreadRows', () => {
  it('gives each row what a full-width VMREAD of its encoding gives, in the arrays at the row', () => {
    const { vmx } = loaded();
    for (const row of ROWS) vmx.vmwriteNum(VMCS_FIELDS[row]![1], -0x1234_5678_9ab);
    const lo = new Int32Array(FIELD_COUNT).fill(7);
    const hi = new Int32Array(FIELD_COUNT).fill(7);
    expect(vmreadRows(vmx, ROWS, ROWS.length, lo, hi)).toBe(VMX_STATUS.SUCCEED);
    for (const row of ROWS) {
      const enc = VMCS_FIELDS[row]![1];
      const v = vmx.vmread64(enc);
      expect([row, lo[row]! >>> 0, hi[row]! >>> 0]).toEqual([row, Number(v & 0xffffffffn), Number(v >> 32n)]);
    }
    // Rows not asked for are left alone.
    expect(lo[FIELD.GUEST_RSP]).toBe(7);
  });

  it('fails as its VMREADs would: VMfailInvalid without a current VMCS, #UD outside VMX operation', () => {
    const { vmx, cpu } = loaded();
    vmx.vmclear(VMCS_PA);
    const lo = new Int32Array(FIELD_COUNT);
    expect(vmreadRows(vmx, ROWS, ROWS.length, lo, lo)).toBe(VMX_STATUS.FAIL_INVALID);
    expect(cpu.getRflags() & RFLAGS.CF).toBe(RFLAGS.CF);
    vmx.vmxoff();
    expect(() => vmreadRows(vmx, ROWS, ROWS.length, lo, lo)).toThrow(FaultError);
  });
});

describe('vmwriteRows', () => {
  it('leaves the VMCS as the VMWRITE sequence does: truncated to each width, only changed fields dirty', () => {
    const a = loaded();
    const b = loaded();
    const lo = new Int32Array(FIELD_COUNT);
    const hi = new Int32Array(FIELD_COUNT);
    for (const row of ROWS) [lo[row], hi[row]] = full(row);
    // GUEST_RIP keeps its value: neither side may mark it dirty.
    [lo[FIELD.GUEST_RIP], hi[FIELD.GUEST_RIP]] = [a.vmx.vmread32(VMCS_FIELDS[FIELD.GUEST_RIP]![1]), 0];
    a.vmx.vmcs.clearDirty();
    b.vmx.vmcs.clearDirty();
    expect(vmwriteRows(a.vmx, ROWS, ROWS.length, lo, hi)).toBe(VMX_STATUS.SUCCEED);
    for (const row of ROWS) {
      const enc = VMCS_FIELDS[row]![1];
      const w = vmcsFieldWidth(enc);
      b.vmx.vmwrite64(enc, (BigInt(hi[row]! >>> 0) << 32n) | BigInt(lo[row]! >>> 0));
      const expectLo = w === VMCS_WIDTH.U16 ? lo[row]! & 0xffff : lo[row]!;
      const expectHi = w === VMCS_WIDTH.U16 || w === VMCS_WIDTH.U32 ? 0 : hi[row]!;
      expect([row, a.vmx.vmcs.lo[row], a.vmx.vmcs.hi[row]]).toEqual([row, expectLo, expectHi]);
      expect([row, b.vmx.vmcs.lo[row], b.vmx.vmcs.hi[row]]).toEqual([row, expectLo, expectHi]);
    }
    const dirty = (t: typeof a): number[] => [...t.vmx.vmcs.dirtyList.subarray(0, t.vmx.vmcs.dirtyCount)].sort((x, y) => x - y);
    expect(dirty(a)).toEqual(dirty(b));
    expect(dirty(a)).not.toContain(FIELD.GUEST_RIP);
    expect(dirty(a)).toContain(FIELD.EPT_POINTER);
  });

  it('without VMWRITE to any field, a read-only row fails alone with error 13 and the status is the last VMWRITE\'s', () => {
    const { vmx, cpu } = loaded({ vmwriteAnyField: false });
    const lo = new Int32Array(FIELD_COUNT);
    const hi = new Int32Array(FIELD_COUNT);
    lo[FIELD.GUEST_ES_SELECTOR] = 0x28;
    lo[FIELD.VM_EXIT_REASON] = 12;
    lo[FIELD.GUEST_RIP] = 0x4000;
    const exitReason = vmx.vmread32(VMCS_FIELDS[FIELD.VM_EXIT_REASON]![1]);
    const rows = Int16Array.from([FIELD.GUEST_ES_SELECTOR, FIELD.VM_EXIT_REASON, FIELD.GUEST_RIP]);
    expect(vmwriteRows(vmx, rows, rows.length, lo, hi)).toBe(VMX_STATUS.SUCCEED);
    expect(vmx.vmcs.lo[FIELD.GUEST_ES_SELECTOR]).toBe(0x28);
    expect(vmx.vmcs.lo[FIELD.GUEST_RIP]).toBe(0x4000);
    expect(vmx.vmread32(VMCS_FIELDS[FIELD.VM_EXIT_REASON]![1])).toBe(exitReason);
    expect(vmx.vmread32(VMCS_FIELDS[FIELD.VM_INSTRUCTION_ERROR]![1])).toBe(VMXERR.VMWRITE_READ_ONLY_VMCS_COMPONENT);
    // Ending on the read-only row: VMfailValid is what RFLAGS say.
    const last = Int16Array.from([FIELD.GUEST_RIP, FIELD.VM_EXIT_REASON]);
    expect(vmwriteRows(vmx, last, last.length, lo, hi)).toBe(VMX_STATUS.FAIL_VALID);
    expect(cpu.getRflags() & (RFLAGS.CF | RFLAGS.ZF)).toBe(RFLAGS.ZF);
  });
});
