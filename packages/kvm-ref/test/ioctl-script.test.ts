import { describe, expect, it } from 'vitest';
import { kvmRefUnavailable, runIoctlScript } from '../src/index.js';
import type { IoctlStep } from '../src/index.js';

const reason = kvmRefUnavailable();
if (reason !== null) console.log(`kvm-ref ioctl-script tests skipped: ${reason}`);

// Linux's numbers (include/uapi/linux/kvm.h), as facts the script needs; the core owns the full table.
const KVM_GET_API_VERSION = 0xae00;
const KVM_CREATE_VM = 0xae01;
const KVM_CHECK_EXTENSION = 0xae03;
const KVM_GET_VCPU_MMAP_SIZE = 0xae04;
const KVM_CREATE_VCPU = 0xae41;
const KVM_SET_USER_MEMORY_REGION = 0x4020ae46;
const KVM_RUN = 0xae80;
const KVM_GET_REGS = 0x8090ae81;
const KVM_SET_REGS = 0x4090ae82;
const KVM_GET_SREGS = 0x8138ae83;
const KVM_SET_SREGS = 0x4138ae84;
const KVM_CAP_USER_MEMORY = 3;
const KVM_EXIT_IO = 2;
const EBADF = 9, EEXIST = 17, EINVAL = 22, ENOTTY = 25;

function memoryRegion(slot: number, flags: number, gpa: number, size: number): Uint8Array {
  const b = Buffer.alloc(32);
  b.writeUInt32LE(slot, 0);
  b.writeUInt32LE(flags, 4);
  b.writeBigUInt64LE(BigInt(gpa), 8);
  b.writeBigUInt64LE(BigInt(size), 16);
  return new Uint8Array(b); // userspace_addr at 24 is patched in by the helper
}

describe.skipIf(reason !== null)('ioctl scripts against /dev/kvm', () => {
  it('answers system ioctls and reports errnos for bad requests', () => {
    const r = runIoctlScript([
      { op: 'open', name: 'kvm' },
      { op: 'ioctl', fd: 'kvm', request: KVM_GET_API_VERSION, arg: 0 },
      { op: 'ioctl', fd: 'kvm', request: KVM_CHECK_EXTENSION, arg: KVM_CAP_USER_MEMORY },
      { op: 'ioctl', fd: 'kvm', request: KVM_GET_VCPU_MMAP_SIZE, arg: 0 },
      { op: 'ioctl', fd: 'kvm', request: 0xae99, arg: 0 },
      { op: 'ioctl', fd: { raw: 999 }, request: KVM_GET_API_VERSION, arg: 0 },
      { op: 'ioctl', fd: 'kvm', request: KVM_CREATE_VM, arg: 0, name: 'vm' },
      { op: 'ioctl', fd: 'vm', request: 0xae99, arg: 0 },
      { op: 'ioctl', fd: 'vm', request: KVM_CREATE_VCPU, arg: 0 },
      { op: 'ioctl', fd: 'vm', request: KVM_CREATE_VCPU, arg: 0 },
      { op: 'close', fd: 'vm' },
      { op: 'ioctl', fd: 'vm', request: KVM_CREATE_VCPU, arg: 1 },
    ]);
    expect(r.map((x) => x.ret)).toEqual([
      3, 12, 1, 12288, -EINVAL, -EBADF, 4, -ENOTTY, 5, -EEXIST, 0, -EBADF,
    ]);
  });

  it('runs a guest: memslot from a script map, SET_REGS, RUN, then kvm_run read through the vCPU mmap', () => {
    // Real mode: the reset state with CS moved to base 0, running `mov al, 0x42; out 0x10, al` at 0x1000.
    const vcpu: IoctlStep[] = [
      { op: 'open', name: 'kvm' },
      { op: 'ioctl', fd: 'kvm', request: KVM_CREATE_VM, arg: 0, name: 'vm' },
      { op: 'ioctl', fd: 'vm', request: KVM_CREATE_VCPU, arg: 0, name: 'vcpu' },
      { op: 'ioctl', fd: 'vcpu', request: KVM_GET_SREGS, arg: { buf: new Uint8Array(312) } },
    ];
    const sregs = Buffer.from(runIoctlScript(vcpu)[3]!.data!);
    expect(sregs.readBigUInt64LE(0)).toBe(0xffff0000n); // CS.base at reset (kvm_sregs.cs first)
    expect(sregs.readUInt16LE(12)).toBe(0xf000); // CS.selector
    sregs.writeBigUInt64LE(0n, 0);
    sregs.writeUInt16LE(0, 12);
    const steps: IoctlStep[] = [
      { op: 'open', name: 'kvm' },
      { op: 'ioctl', fd: 'kvm', request: KVM_CREATE_VM, arg: 0, name: 'vm' },
      { op: 'mmap', name: 'ram', size: 0x10000 },
      { op: 'write', map: 'ram', offset: 0x1000, data: new Uint8Array([0xb0, 0x42, 0xe6, 0x10]) },
      { op: 'ioctl', fd: 'vm', request: KVM_SET_USER_MEMORY_REGION, arg: { buf: memoryRegion(0, 0, 0, 0x10000), ptrs: [{ at: 24, map: 'ram' }] } },
      { op: 'ioctl', fd: 'vm', request: KVM_SET_USER_MEMORY_REGION, arg: { buf: memoryRegion(1, 0, 0x8000, 0x10000), ptrs: [{ at: 24, map: 'ram' }] } },
      { op: 'ioctl', fd: 'vm', request: KVM_CREATE_VCPU, arg: 0, name: 'vcpu' },
      { op: 'mmapFd', name: 'run', fd: 'vcpu', size: 12288 },
      { op: 'ioctl', fd: 'vcpu', request: KVM_GET_REGS, arg: { buf: new Uint8Array(144) } },
    ];
    const regs = Buffer.alloc(144);
    regs.writeBigUInt64LE(0x1000n, 128); // rip
    regs.writeBigUInt64LE(0x2n, 136); // rflags
    steps.push(
      { op: 'ioctl', fd: 'vcpu', request: KVM_SET_REGS, arg: { buf: new Uint8Array(regs) } },
      { op: 'ioctl', fd: 'vcpu', request: KVM_SET_SREGS, arg: { buf: new Uint8Array(sregs) } },
      { op: 'ioctl', fd: 'vcpu', request: KVM_RUN, arg: 0 },
      { op: 'read', map: 'run', offset: 0, length: 48 },
    );
    const r = runIoctlScript(steps);
    expect(r[4]!.ret).toBe(0);
    expect(r[5]!.ret).toBe(-EEXIST); // overlapping slot
    expect(r[8]!.ret).toBe(0);
    const reset = Buffer.from(r[8]!.data!);
    expect(reset.readBigUInt64LE(128)).toBe(0xfff0n); // RIP at reset
    expect(r[10]!.ret).toBe(0);
    expect(r[11]!.ret).toBe(0);
    const run = Buffer.from(r[12]!.data!);
    expect(run.readUInt32LE(8)).toBe(KVM_EXIT_IO); // exit_reason
    // kvm_run.io at 32: direction u8, size u8, port u16, count u32, data_offset u64
    expect([run[32], run[33], run.readUInt16LE(34), run.readUInt32LE(36)]).toEqual([1, 1, 0x10, 1]);
    const dataOffset = Number(run.readBigUInt64LE(40));
    expect(dataOffset).toBe(4096);
  });

  it('returns buffer outputs and keeps patched pointers out of the reply', () => {
    const r = runIoctlScript([
      { op: 'open', name: 'kvm' },
      { op: 'ioctl', fd: 'kvm', request: KVM_CREATE_VM, arg: 0, name: 'vm' },
      { op: 'mmap', name: 'ram', size: 0x2000 },
      { op: 'ioctl', fd: 'vm', request: KVM_SET_USER_MEMORY_REGION, arg: { buf: memoryRegion(0, 0, 0x1001, 0x1000), ptrs: [{ at: 24, map: 'ram' }] } },
      { op: 'ioctl', fd: 'vm', request: KVM_SET_USER_MEMORY_REGION, arg: { buf: memoryRegion(0, 0, 0, 0x1000), ptrs: [{ at: 24, map: 'ram', offset: 1 }] } },
    ]);
    expect(r[3]!.ret).toBe(-EINVAL); // unaligned guest_phys_addr
    expect(r[4]!.ret).toBe(-EINVAL); // unaligned userspace_addr
    expect(Buffer.from(r[4]!.data!).readBigUInt64LE(24)).toBe(0n);
  });
});
