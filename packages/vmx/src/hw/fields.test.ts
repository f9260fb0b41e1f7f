import { describe, it, expect } from 'vitest';
import { VMCS_FIELDS, FIELD, VMCS, VMCS_WIDTH, VMCS_TYPE, vmcsFieldWidth, vmcsFieldType, vmcsFieldIndex, VMCS_MAX_INDEX } from './fields.js';
import { VMXERR, VMX_STATUS } from './instructions.js';
import { makeVmxCpu } from '../../test/fake-cpu.js';
import { loadValidVmcs } from '../../test/valid-vmcs.js';

const WIDTH_BYTES = [2, 8, 4, 8] as const;

describe('VMCS field table', () => {
  it('has unique names, encodings and vmcs12 offsets', () => {
    expect(new Set(VMCS_FIELDS.map((f) => f[0])).size).toBe(VMCS_FIELDS.length);
    expect(new Set(VMCS_FIELDS.map((f) => f[1])).size).toBe(VMCS_FIELDS.length);
    const offs = VMCS_FIELDS.map((f) => f[2]).filter((o) => o !== null);
    expect(new Set(offs).size).toBe(offs.length);
  });

  it('derives width and type from the encoding (SDM Table 25-21)', () => {
    expect(vmcsFieldWidth(VMCS.GUEST_ES_SELECTOR)).toBe(VMCS_WIDTH.U16);
    expect(vmcsFieldWidth(VMCS.EPT_POINTER)).toBe(VMCS_WIDTH.U64);
    expect(vmcsFieldWidth(VMCS.VM_EXIT_REASON)).toBe(VMCS_WIDTH.U32);
    expect(vmcsFieldWidth(VMCS.GUEST_RIP)).toBe(VMCS_WIDTH.NATURAL);
    expect(vmcsFieldType(VMCS.VM_EXIT_REASON)).toBe(VMCS_TYPE.READ_ONLY);
    expect(vmcsFieldType(VMCS.HOST_RIP)).toBe(VMCS_TYPE.HOST);
    expect(vmcsFieldType(VMCS.GUEST_RIP)).toBe(VMCS_TYPE.GUEST);
    expect(vmcsFieldType(VMCS.PIN_BASED_VM_EXEC_CONTROL)).toBe(VMCS_TYPE.CONTROL);
    expect(VMCS.GUEST_RIP).toBe(0x681e);
    expect(VMCS.VMCS_LINK_POINTER).toBe(0x2800);
    expect(VMCS_MAX_INDEX).toBe(0x19);
  });

  it('vmcs12 offsets are aligned to the field width, as vmcs12.h packs them', () => {
    for (const [name, enc, off] of VMCS_FIELDS) {
      if (off === null) continue;
      const w = vmcsFieldWidth(enc);
      expect(off % WIDTH_BYTES[w]!, name).toBe(0);
    }
    expect(VMCS_FIELDS[FIELD.GUEST_RIP]![2]).toBe(544);
    expect(VMCS_FIELDS[FIELD.GUEST_PML_INDEX]![2]).toBe(996);
  });

  it('accepts the high access only for 64-bit fields', () => {
    expect(vmcsFieldIndex(VMCS.EPT_POINTER + 1)).toBe(FIELD.EPT_POINTER);
    expect(vmcsFieldIndex(VMCS.GUEST_RIP + 1)).toBe(-1);
    expect(vmcsFieldIndex(VMCS.GUEST_ES_LIMIT + 1)).toBe(-1);
    expect(vmcsFieldIndex(0x8000)).toBe(-1);
  });
});

describe('VMREAD/VMWRITE round trip at every field width', () => {
  const { cpu, vmx, mem } = makeVmxCpu();
  loadValidVmcs(vmx, mem, cpu);
  it.each(VMCS_FIELDS.map((f) => [f[0], f[1]] as const))('%s', (_name, enc) => {
    const w = vmcsFieldWidth(enc);
    expect(vmx.vmwrite64(enc, 0x1234_5678_9abc_def0n)).toBe(VMX_STATUS.SUCCEED);
    const expected = w === VMCS_WIDTH.U16 ? 0xdef0n : w === VMCS_WIDTH.U32 ? 0x9abc_def0n : 0x1234_5678_9abc_def0n;
    expect(vmx.vmread64(enc)).toBe(expected);
    if (w === VMCS_WIDTH.U64) {
      expect(vmx.vmread32(enc + 1)).toBe(0x1234_5678);
      expect(vmx.vmwrite32(enc + 1, 0xcafe)).toBe(VMX_STATUS.SUCCEED);
      expect(vmx.vmread64(enc)).toBe(0xcafe_9abc_def0n);
    }
    expect(vmx.vmwriteNum(enc, -2)).toBe(VMX_STATUS.SUCCEED);
    if (w === VMCS_WIDTH.NATURAL || w === VMCS_WIDTH.U64) expect(vmx.vmreadNum(enc)).toBe(-2);
  });
});

describe('VMREAD/VMWRITE errors', () => {
  it('an unsupported component fails with error 12', () => {
    const { cpu, vmx, mem } = makeVmxCpu();
    loadValidVmcs(vmx, mem, cpu);
    expect(vmx.vmwrite32(0x4ffe, 1)).toBe(VMX_STATUS.FAIL_VALID);
    expect(vmx.vmread32(VMCS.VM_INSTRUCTION_ERROR)).toBe(VMXERR.UNSUPPORTED_VMCS_COMPONENT);
    vmx.vmread32(0x6c18);
    expect(vmx.vmread32(VMCS.VM_INSTRUCTION_ERROR)).toBe(12);
    expect(cpu.getRflags() & 0x40).toBe(0); // the last VMREAD succeeded: ZF clear
  });

  it('VMWRITE to a read-only field fails with error 13 unless IA32_VMX_MISC[29]', () => {
    const { cpu, vmx, mem } = makeVmxCpu({ vmwriteAnyField: false });
    loadValidVmcs(vmx, mem, cpu);
    expect(vmx.vmwrite32(VMCS.VM_EXIT_REASON, 5)).toBe(VMX_STATUS.FAIL_VALID);
    expect(cpu.getRflags() & 0x41).toBe(0x40); // VMfailValid: ZF=1, CF=0
    expect(vmx.vmread32(VMCS.VM_INSTRUCTION_ERROR)).toBe(VMXERR.VMWRITE_READ_ONLY_VMCS_COMPONENT);
    expect(vmx.rdmsr(0x485)! & (1n << 29n)).toBe(0n);
    const any = makeVmxCpu();
    loadValidVmcs(any.vmx, any.mem, any.cpu);
    expect(any.vmx.vmwrite32(VMCS.VM_EXIT_REASON, 5)).toBe(VMX_STATUS.SUCCEED);
    expect(any.vmx.vmread32(VMCS.VM_EXIT_REASON)).toBe(5);
  });

  it('without a current VMCS, VMREAD fails invalid (CF=1)', () => {
    const { vmx, cpu, mem } = makeVmxCpu();
    loadValidVmcs(vmx, mem, cpu);
    vmx.vmclear(0x11000);
    expect(vmx.vmread32(VMCS.GUEST_RIP)).toBe(0);
    expect(vmx.lastStatus).toBe(VMX_STATUS.FAIL_INVALID);
    expect(cpu.getRflags() & 1).toBe(1);
  });
});
