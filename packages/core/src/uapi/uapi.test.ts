import { describe, expect, it } from 'vitest';
import { KVM, KVM_IOCTLS, ioctlInfo } from './ioctls.js';
import {
  UAPI_STRUCTS, KVM_RUN_STRUCT, KVM_SREGS_STRUCT, decodeStruct, encodeStruct, fieldSize, isUnionMember, offsetOf,
  type StructDef,
} from './structs.js';
import { KVM_CAP } from './caps.js';
import { ERRNO, errnoName } from './errno.js';

describe('ioctl request numbers', () => {
  it('match include/uapi/linux/kvm.h', () => {
    expect(KVM.KVM_GET_API_VERSION).toBe(0xae00);
    expect(KVM.KVM_CREATE_VM).toBe(0xae01);
    expect(KVM.KVM_GET_MSR_INDEX_LIST).toBe(0xc004ae02);
    expect(KVM.KVM_GET_VCPU_MMAP_SIZE).toBe(0xae04);
    expect(KVM.KVM_GET_SUPPORTED_CPUID).toBe(0xc008ae05);
    expect(KVM.KVM_CREATE_VCPU).toBe(0xae41);
    expect(KVM.KVM_GET_DIRTY_LOG).toBe(0x4010ae42);
    expect(KVM.KVM_SET_USER_MEMORY_REGION).toBe(0x4020ae46);
    expect(KVM.KVM_SET_TSS_ADDR).toBe(0xae47);
    expect(KVM.KVM_SET_IDENTITY_MAP_ADDR).toBe(0x4008ae48);
    expect(KVM.KVM_RUN).toBe(0xae80);
    expect(KVM.KVM_GET_REGS).toBe(0x8090ae81);
    expect(KVM.KVM_SET_REGS).toBe(0x4090ae82);
    expect(KVM.KVM_GET_SREGS).toBe(0x8138ae83);
    expect(KVM.KVM_SET_SREGS).toBe(0x4138ae84);
    expect(KVM.KVM_TRANSLATE).toBe(0xc018ae85);
    expect(KVM.KVM_INTERRUPT).toBe(0x4004ae86);
    expect(KVM.KVM_GET_MSRS).toBe(0xc008ae88);
    expect(KVM.KVM_SET_MSRS).toBe(0x4008ae89);
    expect(KVM.KVM_SET_CPUID2).toBe(0x4008ae90);
    expect(KVM.KVM_GET_CPUID2).toBe(0xc008ae91);
    expect(KVM.KVM_GET_MP_STATE).toBe(0x8004ae98);
    expect(KVM.KVM_NMI).toBe(0xae9a);
    expect(KVM.KVM_SET_GUEST_DEBUG).toBe(0x4048ae9b);
    expect(KVM.KVM_GET_VCPU_EVENTS).toBe(0x8040ae9f);
    expect(KVM.KVM_ENABLE_CAP).toBe(0x4068aea3);
    expect(KVM.KVM_GET_NESTED_STATE).toBe(0xc080aebe);
    expect(KVM.KVM_SET_NESTED_STATE).toBe(0x4080aebf);
    expect(KVM.KVM_GET_FPU).toBe(0x81a0ae8c);
  });

  it('are unique and map back to their table row', () => {
    const seen = new Set<number>();
    for (const [name] of KVM_IOCTLS) {
      expect(seen.has(KVM[name])).toBe(false);
      seen.add(KVM[name]);
      expect(ioctlInfo(KVM[name])?.name).toBe(name);
    }
    expect(ioctlInfo(0xdeadbeef)).toBeUndefined();
  });
});

describe('struct tables', () => {
  const check = (s: StructDef): void => {
    const ranges: [number, number, string][] = [];
    for (const f of s.fields) {
      const [name, off, t, count] = f;
      const end = off + fieldSize(t) * (count ?? 1);
      expect(end, `${s.name}.${name}`).toBeLessThanOrEqual(s.size);
      if (typeof t === 'string') expect(off % fieldSize(t), `${s.name}.${name} alignment`).toBe(0);
      if (!isUnionMember(s, f) && name !== 'padding') ranges.push([off, end, name]);
    }
    ranges.sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < ranges.length; i++) {
      expect(ranges[i]![0], `${s.name}: ${ranges[i - 1]![2]} overlaps ${ranges[i]![2]}`).toBeGreaterThanOrEqual(ranges[i - 1]![1]);
    }
  };

  for (const s of UAPI_STRUCTS) {
    it(`${s.name}: fields lie inside the struct, aligned, without overlap, and round-trip`, () => {
      check(s);
      // Fill every byte with a pattern; decode then encode must reproduce it.
      const bytes = Uint8Array.from({ length: s.size }, (_, i) => (i * 37 + 11) & 0xff);
      const decoded = decodeStruct(s, bytes);
      expect(decodeStruct(s, encodeStruct(s, decoded))).toEqual(decoded);
      // Structs whose fields cover every byte reproduce them exactly.
      const covered = s.fields.reduce((n, [, , t, c]) => n + fieldSize(t) * (c ?? 1), 0);
      if (s !== KVM_RUN_STRUCT && covered === s.size) expect(encodeStruct(s, decoded)).toEqual(bytes);
    });
  }

  it('has the Linux sizes and offsets', () => {
    expect(KVM_SREGS_STRUCT.size).toBe(312);
    expect(offsetOf(KVM_SREGS_STRUCT, 'interrupt_bitmap')).toBe(280);
    expect(offsetOf(KVM_SREGS_STRUCT, 'ss.selector')).toBe(132);
    expect(offsetOf(KVM_RUN_STRUCT, 'exit_reason')).toBe(8);
    expect(offsetOf(KVM_RUN_STRUCT, 'io.data_offset')).toBe(40);
    expect(offsetOf(KVM_RUN_STRUCT, 'mmio.len')).toBe(48);
    expect(offsetOf(KVM_RUN_STRUCT, 'fail_entry.cpu')).toBe(40);
    expect(offsetOf(KVM_RUN_STRUCT, 'internal.data')).toBe(40);
    expect(offsetOf(KVM_RUN_STRUCT, 'kvm_valid_regs')).toBe(288);
    expect(() => offsetOf(KVM_RUN_STRUCT, 'io.nope')).toThrow();
  });

  it('refuses short buffers', () => {
    expect(() => decodeStruct(KVM_SREGS_STRUCT, new Uint8Array(311))).toThrow(RangeError);
  });
});

describe('capabilities and errnos', () => {
  it('use Linux numbers', () => {
    expect(KVM_CAP.NR_VCPUS).toBe(9);
    expect(KVM_CAP.READONLY_MEM).toBe(81);
    expect(KVM_CAP.IMMEDIATE_EXIT).toBe(136);
    expect(KVM_CAP.NESTED_STATE).toBe(157);
    expect(KVM_CAP.X86_USER_SPACE_MSR).toBe(188);
    expect(ERRNO.ENOTTY).toBe(25);
    expect(errnoName(-22)).toBe('EINVAL');
  });
});
