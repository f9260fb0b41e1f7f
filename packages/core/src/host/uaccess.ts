/**
 * copy_from_user / copy_to_user for an ioctl argument: either the struct's own bytes handed in
 * by the caller, or a user pointer into the process's address space. Both fail with EFAULT.
 */
import type { Process } from './process.js';
import type { IoctlArg } from './file.js';

export class UserArg {
  private readonly proc: Process;
  private readonly arg: IoctlArg;

  constructor(proc: Process, arg: IoctlArg) {
    this.proc = proc;
    this.arg = arg;
  }

  /** copy_from_user of `len` bytes at `off`, or null (EFAULT). */
  read(off: number, len: number): Uint8Array | null {
    const a = this.arg;
    if (a instanceof Uint8Array) return off + len <= a.byteLength ? a.slice(off, off + len) : null;
    if (typeof a !== 'number' || a <= 0) return null;
    return this.proc.readUser(a + off, len);
  }

  /** copy_to_user; false means EFAULT. */
  write(off: number, bytes: Uint8Array): boolean {
    const a = this.arg;
    if (a instanceof Uint8Array) {
      if (off + bytes.byteLength > a.byteLength) return false;
      a.set(bytes, off);
      return true;
    }
    if (typeof a !== 'number' || a <= 0) return false;
    return this.proc.writeUser(a + off, bytes);
  }
}
