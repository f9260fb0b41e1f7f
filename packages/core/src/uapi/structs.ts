/**
 * The uapi structs as field tables, in Linux's x86-64 layout (include/uapi/linux/kvm.h,
 * arch/x86/include/uapi/asm/kvm.h). Each table is written once; encoders, decoders and the
 * kernel's offsets are derived from them.
 */

export type Scalar = 'u8' | 'u16' | 'u32' | 'u64';
export interface StructDef {
  readonly name: string;
  readonly size: number;
  readonly fields: readonly Field[];
}
/** [name, offset, type, count?]: count makes the field an array of `type`. */
export type Field = readonly [string, number, Scalar | StructDef, number?];

const SCALAR_SIZE = { u8: 1, u16: 2, u32: 4, u64: 8 } as const;

export function fieldSize(type: Scalar | StructDef): number {
  return typeof type === 'string' ? SCALAR_SIZE[type] : type.size;
}

function def(name: string, size: number, fields: readonly Field[]): StructDef {
  return { name, size, fields };
}

export const KVM_REGS_STRUCT = def('kvm_regs', 144, [
  'rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rsp', 'rbp',
  'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip', 'rflags',
].map((n, i) => [n, i * 8, 'u64'] as const));

export const KVM_SEGMENT_STRUCT = def('kvm_segment', 24, [
  ['base', 0, 'u64'], ['limit', 8, 'u32'], ['selector', 12, 'u16'], ['type', 14, 'u8'],
  ['present', 15, 'u8'], ['dpl', 16, 'u8'], ['db', 17, 'u8'], ['s', 18, 'u8'], ['l', 19, 'u8'],
  ['g', 20, 'u8'], ['avl', 21, 'u8'], ['unusable', 22, 'u8'], ['padding', 23, 'u8'],
]);

export const KVM_DTABLE_STRUCT = def('kvm_dtable', 16, [['base', 0, 'u64'], ['limit', 8, 'u16'], ['padding', 10, 'u16', 3]]);

export const KVM_SREGS_STRUCT = def('kvm_sregs', 312, [
  ['cs', 0, KVM_SEGMENT_STRUCT], ['ds', 24, KVM_SEGMENT_STRUCT], ['es', 48, KVM_SEGMENT_STRUCT],
  ['fs', 72, KVM_SEGMENT_STRUCT], ['gs', 96, KVM_SEGMENT_STRUCT], ['ss', 120, KVM_SEGMENT_STRUCT],
  ['tr', 144, KVM_SEGMENT_STRUCT], ['ldt', 168, KVM_SEGMENT_STRUCT],
  ['gdt', 192, KVM_DTABLE_STRUCT], ['idt', 208, KVM_DTABLE_STRUCT],
  ['cr0', 224, 'u64'], ['cr2', 232, 'u64'], ['cr3', 240, 'u64'], ['cr4', 248, 'u64'], ['cr8', 256, 'u64'],
  ['efer', 264, 'u64'], ['apic_base', 272, 'u64'], ['interrupt_bitmap', 280, 'u64', 4],
]);

export const KVM_USERSPACE_MEMORY_REGION_STRUCT = def('kvm_userspace_memory_region', 32, [
  ['slot', 0, 'u32'], ['flags', 4, 'u32'], ['guest_phys_addr', 8, 'u64'], ['memory_size', 16, 'u64'],
  ['userspace_addr', 24, 'u64'],
]);

export const KVM_CPUID_ENTRY2_STRUCT = def('kvm_cpuid_entry2', 40, [
  ['function', 0, 'u32'], ['index', 4, 'u32'], ['flags', 8, 'u32'], ['eax', 12, 'u32'], ['ebx', 16, 'u32'],
  ['ecx', 20, 'u32'], ['edx', 24, 'u32'], ['padding', 28, 'u32', 3],
]);
/** Header of kvm_cpuid2; `nent` entries of kvm_cpuid_entry2 follow at offset 8. */
export const KVM_CPUID2_STRUCT = def('kvm_cpuid2', 8, [['nent', 0, 'u32'], ['padding', 4, 'u32']]);

export const KVM_MSR_ENTRY_STRUCT = def('kvm_msr_entry', 16, [['index', 0, 'u32'], ['reserved', 4, 'u32'], ['data', 8, 'u64']]);
/** Header of kvm_msrs; `nmsrs` kvm_msr_entry follow at offset 8. */
export const KVM_MSRS_STRUCT = def('kvm_msrs', 8, [['nmsrs', 0, 'u32'], ['pad', 4, 'u32']]);
/** Header of kvm_msr_list; `nmsrs` u32 indices follow at offset 4. */
export const KVM_MSR_LIST_STRUCT = def('kvm_msr_list', 4, [['nmsrs', 0, 'u32']]);

export const KVM_DIRTY_LOG_STRUCT = def('kvm_dirty_log', 16, [['slot', 0, 'u32'], ['padding1', 4, 'u32'], ['dirty_bitmap', 8, 'u64']]);

export const KVM_INTERRUPT_STRUCT = def('kvm_interrupt', 4, [['irq', 0, 'u32']]);

export const KVM_MP_STATE_STRUCT = def('kvm_mp_state', 4, [['mp_state', 0, 'u32']]);

export const KVM_TRANSLATION_STRUCT = def('kvm_translation', 24, [
  ['linear_address', 0, 'u64'], ['physical_address', 8, 'u64'], ['valid', 16, 'u8'], ['writeable', 17, 'u8'],
  ['usermode', 18, 'u8'], ['pad', 19, 'u8', 5],
]);

export const KVM_GUEST_DEBUG_STRUCT = def('kvm_guest_debug', 72, [['control', 0, 'u32'], ['pad', 4, 'u32'], ['debugreg', 8, 'u64', 8]]);

export const KVM_VCPU_EVENTS_STRUCT = def('kvm_vcpu_events', 64, [
  ['exception_injected', 0, 'u8'], ['exception_nr', 1, 'u8'], ['exception_has_error_code', 2, 'u8'],
  ['exception_pending', 3, 'u8'], ['exception_error_code', 4, 'u32'],
  ['interrupt_injected', 8, 'u8'], ['interrupt_nr', 9, 'u8'], ['interrupt_soft', 10, 'u8'], ['interrupt_shadow', 11, 'u8'],
  ['nmi_injected', 12, 'u8'], ['nmi_pending', 13, 'u8'], ['nmi_masked', 14, 'u8'], ['nmi_pad', 15, 'u8'],
  ['sipi_vector', 16, 'u32'], ['flags', 20, 'u32'],
  ['smi_smm', 24, 'u8'], ['smi_pending', 25, 'u8'], ['smi_smm_inside_nmi', 26, 'u8'], ['smi_latched_init', 27, 'u8'],
  ['reserved', 28, 'u8', 27], ['exception_has_payload', 55, 'u8'], ['exception_payload', 56, 'u64'],
]);

export const KVM_ENABLE_CAP_STRUCT = def('kvm_enable_cap', 104, [['cap', 0, 'u32'], ['flags', 4, 'u32'], ['args', 8, 'u64', 4], ['pad', 40, 'u8', 64]]);

export const KVM_FPU_STRUCT = def('kvm_fpu', 416, [
  ['fpr', 0, 'u8', 128], ['fcw', 128, 'u16'], ['fsw', 130, 'u16'], ['ftwx', 132, 'u8'], ['pad1', 133, 'u8'],
  ['last_opcode', 134, 'u16'], ['last_ip', 136, 'u64'], ['last_dp', 144, 'u64'], ['xmm', 152, 'u8', 256],
  ['mxcsr', 408, 'u32'], ['pad2', 412, 'u32'],
]);

/** struct kvm_xsave: the XSAVE image in the standard format (legacy area at 0, header at 512), 4096 bytes without KVM_CAP_XSAVE2. */
export const KVM_XSAVE_STRUCT = def('kvm_xsave', 4096, [['region', 0, 'u32', 1024]]);

export const KVM_XCR_STRUCT = def('kvm_xcr', 16, [['xcr', 0, 'u32'], ['reserved', 4, 'u32'], ['value', 8, 'u64']]);
/** struct kvm_xcrs: KVM_MAX_XCRS (16) entries, then 16 u64 of padding. */
export const KVM_XCRS_STRUCT = def('kvm_xcrs', 392, [
  ['nr_xcrs', 0, 'u32'], ['flags', 4, 'u32'], ['xcrs', 8, KVM_XCR_STRUCT, 16], ['padding', 264, 'u64', 16],
]);

export const KVM_VMX_NESTED_STATE_HDR_STRUCT = def('kvm_vmx_nested_state_hdr', 120, [
  ['vmxon_pa', 0, 'u64'], ['vmcs12_pa', 8, 'u64'], ['smm_flags', 16, 'u16'], ['pad', 18, 'u16'], ['flags', 20, 'u32'],
  ['preemption_timer_deadline', 24, 'u64'],
]);
export const KVM_SVM_NESTED_STATE_HDR_STRUCT = def('kvm_svm_nested_state_hdr', 120, [['vmcb_pa', 0, 'u64']]);
/** Header of kvm_nested_state; the hdr union is decoded by `format`, data (vmcs12 / vmcb12) follows at 128. */
export const KVM_NESTED_STATE_STRUCT = def('kvm_nested_state', 128, [
  ['flags', 0, 'u16'], ['format', 2, 'u16'], ['size', 4, 'u32'], ['hdr', 8, 'u8', 120],
]);

const IO = def('io', 16, [['direction', 0, 'u8'], ['size', 1, 'u8'], ['port', 2, 'u16'], ['count', 4, 'u32'], ['data_offset', 8, 'u64']]);
const MMIO = def('mmio', 24, [['phys_addr', 0, 'u64'], ['data', 8, 'u8', 8], ['len', 16, 'u32'], ['is_write', 20, 'u8']]);
const FAIL_ENTRY = def('fail_entry', 16, [['hardware_entry_failure_reason', 0, 'u64'], ['cpu', 8, 'u32']]);
const HW = def('hw', 8, [['hardware_exit_reason', 0, 'u64']]);
const EX = def('ex', 8, [['exception', 0, 'u32'], ['error_code', 4, 'u32']]);
const DEBUG = def('debug', 32, [['exception', 0, 'u32'], ['pad', 4, 'u32'], ['pc', 8, 'u64'], ['dr6', 16, 'u64'], ['dr7', 24, 'u64']]);
const INTERNAL = def('internal', 136, [['suberror', 0, 'u32'], ['ndata', 4, 'u32'], ['data', 8, 'u64', 16]]);
const SYSTEM_EVENT = def('system_event', 136, [['type', 0, 'u32'], ['ndata', 4, 'u32'], ['data', 8, 'u64', 16]]);
const MSR = def('msr', 24, [['error', 0, 'u8'], ['pad', 1, 'u8', 7], ['reason', 8, 'u32'], ['index', 12, 'u32'], ['data', 16, 'u64']]);
const HYPERCALL = def('hypercall', 72, [['nr', 0, 'u64'], ['args', 8, 'u64', 6], ['ret', 56, 'u64'], ['flags', 64, 'u64']]);
const TPR_ACCESS = def('tpr_access', 16, [['rip', 0, 'u64'], ['is_write', 8, 'u32'], ['pad', 12, 'u32']]);

/** The union's members all start at offset 32; each is listed as its own field. */
const KVM_RUN_EXIT_UNION_OFFSET = 32;
export const KVM_RUN_STRUCT = def('kvm_run', 2352, [
  ['request_interrupt_window', 0, 'u8'], ['immediate_exit', 1, 'u8'], ['padding1', 2, 'u8', 6],
  ['exit_reason', 8, 'u32'], ['ready_for_interrupt_injection', 12, 'u8'], ['if_flag', 13, 'u8'], ['flags', 14, 'u16'],
  ['cr8', 16, 'u64'], ['apic_base', 24, 'u64'],
  ...[HW, FAIL_ENTRY, EX, IO, DEBUG, MMIO, HYPERCALL, TPR_ACCESS, INTERNAL, SYSTEM_EVENT, MSR].map(
    (s) => [s.name, KVM_RUN_EXIT_UNION_OFFSET, s] as const),
  ['padding', KVM_RUN_EXIT_UNION_OFFSET, 'u8', 256],
  ['kvm_valid_regs', 288, 'u64'], ['kvm_dirty_regs', 296, 'u64'], ['s', 304, 'u8', 2048],
]);

/** Fields that share bytes on purpose (the kvm_run exit union); everything else must not overlap. */
export function isUnionMember(s: StructDef, field: Field): boolean {
  return s === KVM_RUN_STRUCT && field[1] === KVM_RUN_EXIT_UNION_OFFSET;
}

/** A bare __u64 argument (KVM_SET_IDENTITY_MAP_ADDR). */
export const KVM_U64_STRUCT = def('__u64', 8, [['value', 0, 'u64']]);

export const UAPI_STRUCTS = [
  KVM_U64_STRUCT,
  KVM_REGS_STRUCT, KVM_SEGMENT_STRUCT, KVM_DTABLE_STRUCT, KVM_SREGS_STRUCT, KVM_USERSPACE_MEMORY_REGION_STRUCT,
  KVM_CPUID_ENTRY2_STRUCT, KVM_CPUID2_STRUCT, KVM_MSR_ENTRY_STRUCT, KVM_MSRS_STRUCT, KVM_MSR_LIST_STRUCT,
  KVM_DIRTY_LOG_STRUCT, KVM_INTERRUPT_STRUCT, KVM_MP_STATE_STRUCT, KVM_TRANSLATION_STRUCT, KVM_GUEST_DEBUG_STRUCT,
  KVM_VCPU_EVENTS_STRUCT, KVM_ENABLE_CAP_STRUCT, KVM_FPU_STRUCT, KVM_VMX_NESTED_STATE_HDR_STRUCT,
  KVM_SVM_NESTED_STATE_HDR_STRUCT, KVM_NESTED_STATE_STRUCT, KVM_RUN_STRUCT, KVM_XSAVE_STRUCT, KVM_XCR_STRUCT, KVM_XCRS_STRUCT,
] as const;

/** A decoded struct: u8..u32 as numbers, u64 as BigInt, nested structs and arrays as such. */
export type FieldValue = number | bigint | StructValue | FieldValue[];
export interface StructValue { [name: string]: FieldValue }

/** A struct table compiled once into a flat list of field steps, so the codec does no lookups per call. */
interface Step {
  readonly name: string;
  readonly off: number;
  /** 1, 2, 4, 8 for scalars; 0 for a nested struct. */
  readonly width: number;
  readonly count: number;
  readonly stride: number;
  readonly sub: Compiled | null;
}
interface Compiled {
  readonly steps: readonly Step[];
}

const compiled = new WeakMap<StructDef, Compiled>();

function compile(s: StructDef): Compiled {
  let c = compiled.get(s);
  if (c) return c;
  c = {
    steps: s.fields.map(([name, off, t, count]) => ({
      name, off, width: typeof t === 'string' ? SCALAR_SIZE[t] : 0, count: count ?? -1, stride: fieldSize(t),
      sub: typeof t === 'string' ? null : compile(t),
    })),
  };
  compiled.set(s, c);
  return c;
}

function readOne(v: DataView, off: number, st: Step): FieldValue {
  switch (st.width) {
    case 1: return v.getUint8(off);
    case 2: return v.getUint16(off, true);
    case 4: return v.getUint32(off, true);
    case 8: return v.getBigUint64(off, true);
    default: return decodeAt(st.sub!, v, off);
  }
}

function writeOne(v: DataView, off: number, st: Step, x: FieldValue): void {
  switch (st.width) {
    case 1: v.setUint8(off, Number(x)); return;
    case 2: v.setUint16(off, Number(x), true); return;
    case 4: v.setUint32(off, Number(x) >>> 0, true); return;
    case 8: v.setBigUint64(off, BigInt.asUintN(64, typeof x === 'bigint' ? x : BigInt(x as number)), true); return;
    default: encodeAt(st.sub!, v, off, x as StructValue);
  }
}

function decodeAt(c: Compiled, v: DataView, base: number): StructValue {
  const out: StructValue = {};
  for (const st of c.steps) {
    if (st.count < 0) {
      out[st.name] = readOne(v, base + st.off, st);
    } else {
      const arr: FieldValue[] = new Array(st.count);
      for (let i = 0; i < st.count; i++) arr[i] = readOne(v, base + st.off + i * st.stride, st);
      out[st.name] = arr;
    }
  }
  return out;
}

function encodeAt(c: Compiled, v: DataView, base: number, value: Partial<StructValue>): void {
  for (const st of c.steps) {
    const x = value[st.name];
    if (x === undefined) continue;
    if (st.count < 0) {
      writeOne(v, base + st.off, st, x);
    } else {
      const arr = x as FieldValue[];
      const n = Math.min(arr.length, st.count);
      for (let i = 0; i < n; i++) writeOne(v, base + st.off + i * st.stride, st, arr[i]!);
    }
  }
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Decodes `s` from `bytes` at `offset`. Throws RangeError when the bytes are too short. */
export function decodeStruct(s: StructDef, bytes: Uint8Array, offset = 0): StructValue {
  if (bytes.byteLength < offset + s.size) throw new RangeError(`${s.name}: ${bytes.byteLength} bytes, need ${offset + s.size}`);
  return decodeAt(compile(s), view(bytes), offset);
}

/** Encodes the given fields of `value` into `bytes` (missing fields keep their bytes); a new zeroed buffer by default. */
export function encodeStruct(s: StructDef, value: Partial<StructValue>, bytes: Uint8Array = new Uint8Array(s.size), offset = 0): Uint8Array {
  if (bytes.byteLength < offset + s.size) throw new RangeError(`${s.name}: ${bytes.byteLength} bytes, need ${offset + s.size}`);
  encodeAt(compile(s), view(bytes), offset, value);
  return bytes;
}

/** Offsets of every field by dotted path ("io.port", "sregs.cs.base"), for the kernel's direct accesses. */
export function fieldOffsets(s: StructDef): ReadonlyMap<string, number> {
  const out = new Map<string, number>();
  const walk = (d: StructDef, prefix: string, base: number): void => {
    for (const [name, off, t] of d.fields) {
      out.set(prefix + name, base + off);
      if (typeof t !== 'string') walk(t, `${prefix}${name}.`, base + off);
    }
  };
  walk(s, '', 0);
  return out;
}

/** The offset of `path` in `s`; throws on a typo so a bad path fails at module load. */
export function offsetOf(s: StructDef, path: string): number {
  const o = fieldOffsets(s).get(path);
  if (o === undefined) throw new Error(`${s.name} has no field ${path}`);
  return o;
}
