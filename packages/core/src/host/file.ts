/** A kernel file object behind an fd (struct file), with the refcount fget/fput keep. */
import type { Process } from './process.js';

/** An ioctl argument: an integer, the struct's bytes, or a user pointer (an HVA number). */
export type IoctlArg = number | Uint8Array | undefined;

export interface KFile {
  readonly kind: 'kvm' | 'kvm-vm' | 'kvm-vcpu' | 'kvm-stats';
  /** fds and mappings that hold this file. */
  refs: number;
  ioctl(proc: Process, request: number, arg: IoctlArg): number;
  /** The bytes a MAP_SHARED mapping of [offset, offset+len) shows, or -errno. */
  mmap?(offset: number, len: number): Uint8Array | number;
  /** pread: up to `len` bytes at `offset`, or -errno. */
  read?(offset: number, len: number): Uint8Array | number;
  /** The last reference is gone (the file's ->release). */
  release(): void;
}

export function fget(f: KFile): KFile {
  f.refs++;
  return f;
}

export function fput(f: KFile): void {
  if (--f.refs === 0) f.release();
}
