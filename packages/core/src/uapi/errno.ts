/** The errno values ioctls return negated (include/uapi/asm-generic/errno-base.h, errno.h). */
export const ERRNO = {
  EPERM: 1, ENOENT: 2, EINTR: 4, EIO: 5, ENXIO: 6, E2BIG: 7, EBADF: 9, EAGAIN: 11, ENOMEM: 12,
  EFAULT: 14, EBUSY: 16, EEXIST: 17, EINVAL: 22, ENOTTY: 25, ENOSPC: 28, EOPNOTSUPP: 95, ENODEV: 19,
} as const;
export type ErrnoName = keyof typeof ERRNO;

const BY_NUMBER = new Map<number, ErrnoName>(Object.entries(ERRNO).map(([k, v]) => [v, k as ErrnoName]));

/** "EINVAL" for 22 or -22; "E?" + n for numbers not in the table. */
export function errnoName(n: number): string {
  return BY_NUMBER.get(Math.abs(n)) ?? `E?${Math.abs(n)}`;
}
