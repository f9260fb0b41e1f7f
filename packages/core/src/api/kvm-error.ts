/** The typed façade's one error: an ioctl returned -errno. */
import { errnoName } from '../uapi/errno.js';

export class KvmError extends Error {
  readonly errno: number;
  readonly ioctl: string;

  constructor(ioctl: string, ret: number) {
    super(`${ioctl}: ${errnoName(ret)} (${-ret})`);
    this.name = 'KvmError';
    this.errno = -ret;
    this.ioctl = ioctl;
  }
}

/** Throws KvmError for a negative return; passes the value through otherwise. */
export function check(ioctl: string, ret: number): number {
  if (ret < 0) throw new KvmError(ioctl, ret);
  return ret;
}

/** 0 when `call` succeeds, else the errno of its KvmError (other exceptions go on up): for probing calls. */
export function errnoOf(call: () => unknown): number {
  try {
    call();
    return 0;
  } catch (e) {
    if (e instanceof KvmError) return e.errno;
    throw e;
  }
}
