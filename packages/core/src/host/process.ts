/**
 * A VMM process: its fd table, its user address space (mmap), and the signals that interrupt
 * KVM_RUN. Anonymous memory is backed by host frames allocated on first touch, as a page fault
 * would; a MAP_SHARED mapping of a vCPU fd shows the kernel's own kvm_run bytes.
 */
import { PAGE_SIZE } from '@kvmts/x86';
import { ERRNO } from '../uapi/errno.js';
import { fget, fput, type IoctlArg, type KFile } from './file.js';
import type { Host } from './host.js';

export const PROT = { NONE: 0, READ: 1, WRITE: 2, EXEC: 4 } as const;
export const MAP = { SHARED: 0x01, PRIVATE: 0x02, FIXED: 0x10, ANONYMOUS: 0x20 } as const;

/** The first address mmap hands out, as a 64-bit process's mmap_base would be. */
const MMAP_BASE = 0x7f00_0000_0000;

interface Vma {
  start: number;
  len: number;
  prot: number;
  /** Anonymous: page index -> HPA, filled on first touch. */
  frames: Map<number, number> | null;
  /** Shared file mapping: the bytes and the file that keeps them alive. */
  bytes: Uint8Array | null;
  file: KFile | null;
}

export class Process {
  readonly pid: number;
  private readonly fds = new Map<number, KFile>();
  private readonly vmas: Vma[] = [];
  private nextMmap = MMAP_BASE;
  /** A signal is pending (pthread_kill of the vCPU thread, or an alarm that fired). */
  signalPending = false;
  /** Guest instructions left before SIGALRM, or Infinity. */
  alarmInstructions = Infinity;

  readonly host: Host;

  constructor(host: Host, pid: number) {
    this.host = host;
    this.pid = pid;
  }

  open(path: string): number {
    const f = this.host.openDevice(path);
    if (typeof f === 'number') return f;
    return this.installFd(f);
  }

  /** fd_install: the lowest free fd from 3, holding one reference. */
  installFd(f: KFile): number {
    let fd = 3;
    while (this.fds.has(fd)) fd++;
    this.fds.set(fd, f);
    return fd;
  }

  /** pread(fd, len, offset). */
  pread(fd: number, len: number, offset: number): Uint8Array | number {
    const f = this.fds.get(fd);
    if (!f) return -ERRNO.EBADF;
    return f.read ? f.read(offset, len) : -ERRNO.EINVAL;
  }

  close(fd: number): number {
    const f = this.fds.get(fd);
    if (!f) return -ERRNO.EBADF;
    this.fds.delete(fd);
    fput(f);
    return 0;
  }

  /** The file behind an fd, for tests and the dashboard. */
  file(fd: number): KFile | undefined {
    return this.fds.get(fd);
  }

  ioctl(fd: number, request: number, arg?: IoctlArg): number {
    const f = this.fds.get(fd);
    if (!f) return -ERRNO.EBADF;
    // The file stays alive for the call even if another path closes the fd meanwhile.
    fget(f);
    try {
      return f.ioctl(this, request, arg);
    } catch (e) {
      this.host.log(`ioctl 0x${(request >>> 0).toString(16)} on ${f.kind}: model bug: ${String(e)}`);
      return -ERRNO.EIO;
    } finally {
      fput(f);
    }
  }

  /** mmap(NULL, len, prot, flags, fd, offset): an HVA, or -errno. */
  mmap(len: number, prot: number, flags: number, fd = -1, offset = 0): number {
    if (len <= 0 || offset % PAGE_SIZE !== 0) return -ERRNO.EINVAL;
    const size = Math.ceil(len / PAGE_SIZE) * PAGE_SIZE;
    let vma: Vma;
    if (flags & MAP.ANONYMOUS) {
      vma = { start: 0, len: size, prot, frames: new Map(), bytes: null, file: null };
    } else {
      const f = this.fds.get(fd);
      if (!f) return -ERRNO.EBADF;
      if (!f.mmap) return -ERRNO.ENODEV;
      const bytes = f.mmap(offset, size);
      if (typeof bytes === 'number') return bytes;
      vma = { start: 0, len: size, prot, frames: null, bytes, file: fget(f) };
    }
    vma.start = this.nextMmap;
    this.nextMmap += size + PAGE_SIZE; // a guard page between mappings
    this.vmas.push(vma);
    return vma.start;
  }

  munmap(addr: number, len: number): number {
    if (addr % PAGE_SIZE !== 0 || len <= 0) return -ERRNO.EINVAL;
    const i = this.vmas.findIndex((v) => v.start === addr);
    if (i < 0) return 0;
    const v = this.vmas[i]!;
    if (Math.ceil(len / PAGE_SIZE) * PAGE_SIZE < v.len) return -ERRNO.EINVAL; // partial unmaps are not modelled
    this.vmas.splice(i, 1);
    if (v.frames) for (const hpa of v.frames.values()) this.host.freePage(hpa);
    if (v.file) fput(v.file);
    return 0;
  }

  private vmaAt(hva: number): Vma | undefined {
    for (const v of this.vmas) if (hva >= v.start && hva < v.start + v.len) return v;
    return undefined;
  }

  /** access_ok plus a mapping: true when [hva, hva+len) lies in mapped memory. */
  isMapped(hva: number, len: number): boolean {
    let a = hva;
    const end = hva + len;
    while (a < end) {
      const v = this.vmaAt(a);
      if (!v) return false;
      a = v.start + v.len;
    }
    return true;
  }

  /**
   * get_user_pages for one page of anonymous memory: the HPA backing `hva`, allocating the
   * frame on first touch; -1 when unmapped, not anonymous, or out of memory.
   */
  hvaToHpa(hva: number): number {
    const v = this.vmaAt(hva);
    if (!v || !v.frames) return -1;
    const page = Math.floor((hva - v.start) / PAGE_SIZE);
    let hpa = v.frames.get(page);
    if (hpa === undefined) {
      hpa = this.host.allocPage();
      if (hpa < 0) return -1;
      v.frames.set(page, hpa);
    }
    return hpa + ((hva - v.start) % PAGE_SIZE);
  }

  /** The VMM reading its own memory; null when any byte is unmapped. */
  readUser(hva: number, len: number): Uint8Array | null {
    const out = new Uint8Array(len);
    return this.copyUser(hva, len, (v, a, n, done) => {
      if (v.bytes) out.set(v.bytes.subarray(a - v.start, a - v.start + n), done);
      else if (v.frames && !v.frames.has(Math.floor((a - v.start) / PAGE_SIZE))) {
        // An anonymous page never touched reads as the shared zero page: no frame is allocated.
      } else {
        const hpa = this.hvaToHpa(a);
        if (hpa < 0) return false;
        out.set(this.host.mem.readBytes(hpa, n), done);
      }
      return true;
    }) ? out : null;
  }

  /** The VMM writing its own memory; false when any byte is unmapped. */
  writeUser(hva: number, bytes: Uint8Array): boolean {
    return this.copyUser(hva, bytes.byteLength, (v, a, n, done) => {
      const src = bytes.subarray(done, done + n);
      if (v.bytes) v.bytes.set(src, a - v.start);
      else {
        const hpa = this.hvaToHpa(a);
        if (hpa < 0) return false;
        this.host.mem.writeBytes(hpa, src);
      }
      return true;
    });
  }

  /** A direct view of a shared file mapping (the kvm_run page), or null. */
  mappedBytes(hva: number, len: number): Uint8Array | null {
    const v = this.vmaAt(hva);
    if (!v?.bytes || hva + len > v.start + v.len) return null;
    return v.bytes.subarray(hva - v.start, hva - v.start + len);
  }

  private copyUser(hva: number, len: number, step: (v: Vma, a: number, n: number, done: number) => boolean): boolean {
    if (!this.isMapped(hva, len)) return false;
    let done = 0;
    while (done < len) {
      const a = hva + done;
      const v = this.vmaAt(a)!;
      const n = Math.min(len - done, PAGE_SIZE - (a % PAGE_SIZE), v.start + v.len - a);
      if (!step(v, a, n, done)) return false;
      done += n;
    }
    return true;
  }

  /** pthread_kill of the vCPU thread: the current or next KVM_RUN returns -EINTR with KVM_EXIT_INTR. */
  kick(): void {
    this.signalPending = true;
  }

  /** A signal after `instructions` more guest instructions, as QEMU's timers kick a vCPU. */
  setAlarm(instructions: number): void {
    this.alarmInstructions = instructions;
  }

  /** Accounts guest instructions run on this process's behalf; fires the alarm when due. */
  chargeInstructions(n: number): void {
    if (this.alarmInstructions === Infinity) return;
    this.alarmInstructions -= n;
    if (this.alarmInstructions <= 0) {
      this.alarmInstructions = Infinity;
      this.signalPending = true;
    }
  }

  /** The kernel consumed the signal (KVM_RUN returned -EINTR). */
  takeSignal(): boolean {
    const s = this.signalPending;
    this.signalPending = false;
    return s;
  }

  /** exit(): every fd and mapping is released. */
  exit(): void {
    for (const fd of [...this.fds.keys()]) this.close(fd);
    for (const v of [...this.vmas]) this.munmap(v.start, v.len);
  }
}
