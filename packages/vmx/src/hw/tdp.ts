/**
 * EPT (SDM vol. 3C 29.3): the guest-physical to host-physical walk with its permissions, memory
 * types and accessed/dirty flags; EPT violations (29.3.3.2) and misconfigurations (29.3.3.1).
 * The VPID-tagged TLB itself lives in the CPU (setTlbTag/flushTlb); this walk fills it.
 */
import { ACCESS } from '@kvmts/x86';
import { MAXPHYADDR } from './caps.js';
import { EXIT_REASON, makeExitInfo, vmExit } from './exit.js';
import type { VmxSilicon } from './silicon.js';

/** EPT entry bits (SDM Tables 29-1..29-6). */
export const EPT = {
  READ: 1 << 0,
  WRITE: 1 << 1,
  EXEC: 1 << 2,
  MT_SHIFT: 3,
  IPAT: 1 << 6,
  LARGE: 1 << 7,
  ACCESSED: 1 << 8,
  DIRTY: 1 << 9,
} as const;

/** EPTP bits (SDM 25.6.11). */
export const EPTP = { MT_WB: 6, MT_UC: 0, WALK_LENGTH_4: 3 << 3, AD_ENABLE: 1 << 6 } as const;

/** EPT-violation exit qualification (SDM 28.2.1, Table 28-7). */
export const EPT_VIOLATION = {
  ACC_READ: 1 << 0,
  ACC_WRITE: 1 << 1,
  ACC_INSTR: 1 << 2,
  READABLE: 1 << 3,
  WRITABLE: 1 << 4,
  EXECUTABLE: 1 << 5,
  GVA_IS_VALID: 1 << 7,
  GVA_TRANSLATED: 1 << 8,
} as const;

const TWO32 = 4294967296;
/** Bits of an entry's high word above MAXPHYADDR and below bit 52: reserved. */
const HI_RESERVED = ((1 << (52 - 32)) - 1) & ~((1 << (MAXPHYADDR - 32)) - 1);
const LEVEL_SHIFT = [0, 4096, 2 ** 21, 2 ** 30, 2 ** 39] as const;

const badMemType = (mt: number) => mt === 2 || mt === 3 || mt === 7;

/**
 * Walks the EPT for `gpa`; returns the HPA, or VM-exits with EPT_VIOLATION / EPT_MISCONFIG.
 * `rootHpa` is the EPTP's PML4 address, `ad` whether the EPTP enables accessed/dirty flags.
 */
export function eptTranslate(s: VmxSilicon, gpa: number, access: number, linear: number): number {
  const ram = s.mem;
  let table = s.eptRoot;
  let perms = 7;
  for (let level = 4; level >= 1; level--) {
    const span = LEVEL_SHIFT[level]!;
    const idx = Math.floor(gpa / span) % 512;
    const addr = table + idx * 8;
    let lo = ram.read32(addr);
    const hi = ram.read32(addr + 4);
    const rwx = lo & 7;
    if (rwx === 0) return eptViolation(s, gpa, access, linear, 0);
    const large = (lo & EPT.LARGE) !== 0;
    const leaf = level === 1 || large;
    if ((rwx & 3) === EPT.WRITE || hi & HI_RESERVED
      || (level === 4 && lo & 0xf8)
      || (leaf && badMemType((lo >> 3) & 7))
      || (!leaf && level < 4 && lo & 0x78)
      || (large && level === 3 && lo & 0x3fffe000)
      || (large && level === 2 && lo & 0x1fe000)) {
      return eptMisconfig(s, gpa);
    }
    perms &= rwx;
    if (s.eptAd && !(lo & EPT.ACCESSED)) { lo |= EPT.ACCESSED; ram.write32(addr, lo >>> 0); }
    const frame = hi * TWO32 + ((lo & ~0xfff) >>> 0);
    if (leaf) {
      // With EPT A/D flags on, the processor's accesses to guest paging structures count as
      // writes for EPT (SDM 29.3.3.2): they need write permission and set the dirty flag.
      const write = (access & ACCESS.WRITE) !== 0 || (s.eptAd && (access & ACCESS.WALK) !== 0);
      const need = (access & (ACCESS.READ | ACCESS.WALK) ? EPT.READ : 0) | (write ? EPT.WRITE : 0) | (access & ACCESS.FETCH ? EPT.EXEC : 0);
      if ((perms & need) !== need) return eptViolation(s, gpa, write ? access | ACCESS.WRITE : access, linear, perms);
      if (write && s.eptAd && !(lo & EPT.DIRTY)) ram.write32(addr, (lo | EPT.DIRTY) >>> 0);
      return frame - (frame % span) + (gpa % span);
    }
    table = frame;
  }
  return eptMisconfig(s, gpa);
}

function eptViolation(s: VmxSilicon, gpa: number, access: number, linear: number, perms: number): never {
  let q = (access & (ACCESS.READ | ACCESS.WALK) ? EPT_VIOLATION.ACC_READ : 0)
    | (access & ACCESS.WRITE ? EPT_VIOLATION.ACC_WRITE : 0)
    | (access & ACCESS.FETCH ? EPT_VIOLATION.ACC_INSTR : 0)
    | (perms << 3);
  const info = makeExitInfo(EXIT_REASON.EPT_VIOLATION);
  if (access & ACCESS.LINEAR_VALID) {
    q |= EPT_VIOLATION.GVA_IS_VALID;
    if (!(access & ACCESS.WALK)) q |= EPT_VIOLATION.GVA_TRANSLATED;
    info.linear = linear;
  }
  info.qualification = q;
  info.gpa = gpa;
  info.atInsnStart = true;
  return vmExit(s, info);
}

function eptMisconfig(s: VmxSilicon, gpa: number): never {
  const info = makeExitInfo(EXIT_REASON.EPT_MISCONFIG);
  info.gpa = gpa;
  info.atInsnStart = true;
  return vmExit(s, info);
}
