import { describe, expect, it } from 'vitest';
import { CR0, CR4, EFER } from '../cpu/state.js';
import { ACCESS } from '../cpu/virt.js';
import { VEC } from '../cpu/events.js';
import { fakeGuestExt, faultOf, sysMachine } from '../../test/system-harness.js';
import { PFERR, PTE, translateLinear } from './page-walk.js';

const R = ACCESS.READ;
const W = ACCESS.WRITE;
const X = ACCESS.FETCH;
const U = ACCESS.USER;

/** 32-bit paging: page directory at 0x10000, one page table at 0x11000 for 0x00400000-0x007fffff. */
function bit32() {
  const m = sysMachine(0x1000000);
  const { cpu, mem } = m;
  mem.write32(0x10000 + 1 * 4, 0x11000 | PTE.P | PTE.RW | PTE.US);
  mem.write32(0x11000 + 5 * 4, 0x200000 | PTE.P | PTE.RW | PTE.US); // 0x405000 -> 0x200000
  mem.write32(0x11000 + 6 * 4, 0x201000 | PTE.P | PTE.US); // read-only user page
  mem.write32(0x11000 + 7 * 4, 0x202000 | PTE.P | PTE.RW); // supervisor page
  mem.write32(0x10000 + 3 * 4, 0x00c00000 | PTE.P | PTE.RW | PTE.PS); // 4 MiB page at 0xc00000
  cpu.cr3 = 0x10000;
  cpu.cr0 = CR0.PE | CR0.PG | CR0.ET;
  cpu.cr4 = CR4.PSE;
  return m;
}

describe('32-bit paging', () => {
  it('translates a 4 KiB page and sets A, then D on a write', () => {
    const { cpu, mem } = bit32();
    expect(translateLinear(cpu, 0x405123, R)).toBe(0x200123);
    expect(mem.read32(0x10004) & PTE.A).toBe(PTE.A);
    expect(mem.read32(0x11014) & (PTE.A | PTE.D)).toBe(PTE.A);
    expect(translateLinear(cpu, 0x405ffc, W)).toBe(0x200ffc);
    expect(mem.read32(0x11014) & PTE.D).toBe(PTE.D);
  });

  it('translates a 4 MiB PSE page, and ignores PS when CR4.PSE = 0', () => {
    const { cpu } = bit32();
    expect(translateLinear(cpu, 0xd23456, R)).toBe(0xd23456);
    cpu.cr4 = 0;
    // Without PSE the PDE points to a page table at 0xc00000 (zeroed): not present.
    expect(faultOf(() => translateLinear(cpu, 0xd23456, R)).code).toBe(0);
  });

  it('reports not-present faults with W/U bits and sets CR2', () => {
    const { cpu } = bit32();
    const f = faultOf(() => translateLinear(cpu, 0x800010, W | U));
    expect(f.vector).toBe(VEC.PF);
    expect(f.code).toBe(PFERR.W | PFERR.U);
    expect(cpu.cr2).toBe(0x800010);
    expect(faultOf(() => translateLinear(cpu, 0x408000, R)).code).toBe(0);
  });

  it('checks U/S and R/W, with CR0.WP deciding supervisor writes', () => {
    const { cpu } = bit32();
    expect(faultOf(() => translateLinear(cpu, 0x407000, R | U)).code).toBe(PFERR.P | PFERR.U);
    expect(faultOf(() => translateLinear(cpu, 0x406000, W | U)).code).toBe(PFERR.P | PFERR.W | PFERR.U);
    expect(translateLinear(cpu, 0x406000, W)).toBe(0x201000); // WP = 0
    cpu.cr0 |= CR0.WP;
    expect(faultOf(() => translateLinear(cpu, 0x406004, W)).code).toBe(PFERR.P | PFERR.W);
  });

  it('has no I/D bit without NX or SMEP', () => {
    const { cpu } = bit32();
    expect(faultOf(() => translateLinear(cpu, 0x408000, X)).code).toBe(0);
  });
});

/** PAE: PDPT at 0x10000 (32-byte aligned), PD at 0x11000, PT at 0x12000. */
function pae() {
  const m = sysMachine();
  const { cpu, mem } = m;
  mem.write64(0x10000 + 8, 0x11000n | 1n); // PDPTE 1: 0x40000000-0x7fffffff
  mem.write64(0x11000 + 0, 0x12000n | 7n); // 0x40000000: 4 KiB pages
  mem.write64(0x11000 + 8, 0x600000n | 0x83n); // 0x40200000: 2 MiB page, supervisor
  mem.write64(0x12000 + 2 * 8, 0x300000n | 7n); // 0x40002000
  mem.write64(0x12000 + 3 * 8, 0x300000n | 7n | (1n << 63n)); // 0x40003000, XD
  cpu.cr3 = 0x10000;
  cpu.cr4 = CR4.PAE;
  cpu.cr0 = CR0.PE | CR0.PG | CR0.ET;
  return m;
}

describe('PAE paging', () => {
  it('walks PDPTE -> PDE -> PTE and 2 MiB pages', () => {
    const { cpu, mem } = pae();
    expect(translateLinear(cpu, 0x40002abc, R)).toBe(0x300abc);
    expect(translateLinear(cpu, 0x40312345, R)).toBe(0x712345);
    expect(Number(mem.read64(0x11008) & BigInt(PTE.A))).toBe(PTE.A);
  });

  it('treats XD as reserved without EFER.NXE and enforces it with NXE', () => {
    const { cpu } = pae();
    expect(faultOf(() => translateLinear(cpu, 0x40003000, R)).code).toBe(PFERR.P | PFERR.RSVD);
    cpu.efer = EFER.NXE;
    expect(translateLinear(cpu, 0x40003000, R)).toBe(0x300000);
    expect(faultOf(() => translateLinear(cpu, 0x40003000, X | U)).code).toBe(PFERR.P | PFERR.U | PFERR.ID);
  });

  it('faults on a not-present PDPTE and on reserved 2 MiB bits', () => {
    const { cpu, mem } = pae();
    expect(faultOf(() => translateLinear(cpu, 0x1000, W)).code).toBe(PFERR.W);
    mem.write64(0x11000 + 16, 0x800000n | 0x83n | (1n << 13n)); // bit 13 of a 2 MiB PDE is reserved
    expect(faultOf(() => translateLinear(cpu, 0x40400000, R)).code).toBe(PFERR.P | PFERR.RSVD);
  });
});

/** 4-level: PML4 0x10000, PDPT 0x11000, PD 0x12000, PT 0x13000. */
function level4() {
  const m = sysMachine();
  const { cpu, mem } = m;
  mem.write64(0x10000 + 511 * 8, 0x11000n | 7n); // high half: 0xffff_ff80_0000_0000
  mem.write64(0x10000, 0x11000n | 7n);
  mem.write64(0x11000, 0x12000n | 7n);
  mem.write64(0x12000, 0x13000n | 7n);
  mem.write64(0x12000 + 8, 0x200000n | 0x87n); // 2 MiB user page at 0x200000
  mem.write64(0x13000 + 8, 0x5000n | 7n); // 0x1000 -> 0x5000
  cpu.cr3 = 0x10000;
  cpu.cr4 = CR4.PAE;
  cpu.efer = EFER.LME | EFER.LMA | EFER.NXE;
  cpu.cr0 = CR0.PE | CR0.PG | CR0.ET;
  return m;
}

describe('4-level paging', () => {
  it('translates low and sign-extended high addresses', () => {
    const { cpu } = level4();
    expect(translateLinear(cpu, 0x1234, R | U)).toBe(0x5234);
    expect(translateLinear(cpu, 0x2fffff, R | U)).toBe(0x2fffff);
    // 0xffff_ff80_0000_1234 = -2^39 + 0x1234 walks PML4 entry 511, then entries 0, 0, 1.
    expect(translateLinear(cpu, -(2 ** 39) + 0x1234, R)).toBe(0x5234);
  });

  it('reports reserved physical-address bits above MAXPHYADDR and PS in a PML4E', () => {
    const { cpu, mem } = level4();
    mem.write64(0x13000 + 16, 0x6000n | 7n | (1n << 45n)); // MAXPHYADDR is 40 for the generic model
    expect(faultOf(() => translateLinear(cpu, 0x2000, W | U)).code).toBe(PFERR.P | PFERR.RSVD | PFERR.W | PFERR.U);
    mem.write64(0x10000 + 8, 0x11000n | 0x87n);
    expect(faultOf(() => translateLinear(cpu, 2 ** 39, R)).code).toBe(PFERR.P | PFERR.RSVD);
  });

  it('reports a 1 GiB page as reserved when CPUID lacks 1 GiB pages', () => {
    const { cpu, mem } = level4();
    mem.write64(0x11000 + 8, 0x40000000n | 0x87n);
    expect(faultOf(() => translateLinear(cpu, 0x40000000, R)).code).toBe(PFERR.P | PFERR.RSVD);
  });

  it('translates every paging-structure access through the second stage in guest mode', () => {
    const { cpu, mem } = level4();
    // Guest-physical 0 maps to host-physical 0x100000: copy the tables and target page there.
    for (const a of [0x10000, 0x11000, 0x12000, 0x13000, 0x5000]) {
      mem.writeBytes(a + 0x100000, mem.readBytes(a, 0x1000));
    }
    const g = fakeGuestExt(0x100000);
    cpu.ext = g.ext;
    expect(translateLinear(cpu, 0x1010, W)).toBe(0x105010);
    const walks = g.translations.filter(([, acc]) => acc === (ACCESS.WALK | ACCESS.LINEAR_VALID | ACCESS.READ)).map(([gpa]) => gpa);
    expect(walks.slice(0, 4)).toEqual([0x10000, 0x11000, 0x12000, 0x13008]);
    const last = g.translations[g.translations.length - 1]!;
    expect(last).toEqual([0x5010, W | ACCESS.LINEAR_VALID, 0x1010]);
    // The A and D bits went to the host-physical copy.
    expect(Number(mem.read64(0x113008) & 0x60n)).toBe(0x60);
    expect(Number(mem.read64(0x13008) & 0x60n)).toBe(0);
  });

  it('passes linear = physical through the second stage with paging off', () => {
    const { cpu } = sysMachine();
    const g = fakeGuestExt(0x1000);
    cpu.ext = g.ext;
    expect(translateLinear(cpu, 0x2345, X)).toBe(0x3345);
    expect(g.translations).toEqual([[0x2345, X | ACCESS.LINEAR_VALID, 0x2345]]);
  });

  it('SMEP blocks supervisor fetches from user pages and SMAP data accesses with AC = 0', () => {
    const { cpu } = level4();
    cpu.cr4 |= CR4.SMEP | CR4.SMAP;
    expect(faultOf(() => translateLinear(cpu, 0x1000, X)).code).toBe(PFERR.P | PFERR.ID);
    expect(faultOf(() => translateLinear(cpu, 0x1000, R)).code).toBe(PFERR.P);
  });
});
