/** kvm_cpuid2 in and out of user memory: KVM_GET_SUPPORTED_CPUID, KVM_SET_CPUID2, KVM_GET_CPUID2. */
import type { UserArg } from '../host/uaccess.js';
import { ERRNO } from '../uapi/errno.js';
import { KVM_LIMITS } from '../uapi/constants.js';
import { KVM_CPUID_ENTRY2_STRUCT, KVM_CPUID2_STRUCT, decodeStruct, encodeStruct } from '../uapi/structs.js';
import type { CpuidEntry } from '../x86/cpuid.js';

const HDR = KVM_CPUID2_STRUCT.size;
const ENT = KVM_CPUID_ENTRY2_STRUCT.size;

function readNent(u: UserArg): number | null {
  const h = u.read(0, HDR);
  return h ? new DataView(h.buffer).getUint32(0, true) : null;
}

function writeNent(u: UserArg, n: number): boolean {
  return u.write(0, encodeStruct(KVM_CPUID2_STRUCT, { nent: n }));
}

/**
 * Copies `entries` out and writes the count to nent. Too small an nent is E2BIG; for
 * KVM_GET_SUPPORTED_CPUID (`supported`) so is an nent of 0, even with nothing to report.
 */
export function encodeCpuidEntries(u: UserArg, entries: readonly CpuidEntry[], supported: boolean): number {
  const nent = readNent(u);
  if (nent === null) return -ERRNO.EFAULT;
  if (supported && nent < 1) return -ERRNO.E2BIG;
  // Neither ioctl writes nent back on E2BIG.
  if (nent < entries.length) return -ERRNO.E2BIG;
  const body = new Uint8Array(ENT * entries.length);
  entries.forEach((e, i) => encodeStruct(KVM_CPUID_ENTRY2_STRUCT, { ...e }, body, i * ENT));
  if (!u.write(HDR, body)) return -ERRNO.EFAULT;
  return writeNent(u, entries.length) ? 0 : -ERRNO.EFAULT;
}

/** KVM_SET_CPUID2's input: the entries, or -errno (E2BIG past KVM_MAX_CPUID_ENTRIES). */
export function decodeCpuidEntries(u: UserArg): CpuidEntry[] | number {
  const nent = readNent(u);
  if (nent === null) return -ERRNO.EFAULT;
  if (nent > KVM_LIMITS.MAX_CPUID_ENTRIES) return -ERRNO.E2BIG;
  const body = u.read(HDR, ENT * nent);
  if (!body) return -ERRNO.EFAULT;
  const out: CpuidEntry[] = [];
  for (let i = 0; i < nent; i++) {
    const d = decodeStruct(KVM_CPUID_ENTRY2_STRUCT, body, i * ENT);
    out.push({ function: d['function'] as number, index: d['index'] as number, flags: d['flags'] as number,
      eax: d['eax'] as number, ebx: d['ebx'] as number, ecx: d['ecx'] as number, edx: d['edx'] as number });
  }
  return out;
}
