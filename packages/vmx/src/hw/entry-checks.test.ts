import { describe, it, expect } from 'vitest';
import { ENTRY_CHECKS, fullEntryCheck, incrementalEntryCheck } from './entry.js';
import { VMCS, VMCS_FIELDS, vmcsFieldWidth, VMCS_WIDTH } from './fields.js';
import { VMX_STATUS, VMXERR } from './instructions.js';
import { EXIT_REASON, VMX_EXIT_REASONS_FAILED_VMENTRY } from './exit.js';
import { makeVmxCpu } from '../../test/fake-cpu.js';
import { loadValidVmcs } from '../../test/valid-vmcs.js';
import type { VmxSilicon } from './silicon.js';

type Mutation = (vmx: VmxSilicon) => void;
const w32 = (n: keyof typeof VMCS, v: number): Mutation => (vmx) => { vmx.vmwrite32(VMCS[n], v); };
const wn = (n: keyof typeof VMCS, v: number): Mutation => (vmx) => { vmx.vmwriteNum(VMCS[n], v); };
const w64 = (n: keyof typeof VMCS, v: bigint): Mutation => (vmx) => { vmx.vmwrite64(VMCS[n], v); };
const or32 = (n: keyof typeof VMCS, bits: number): Mutation => (vmx) => { vmx.vmwrite32(VMCS[n], (vmx.vmread32(VMCS[n]) | bits) >>> 0); };
const andNot32 = (n: keyof typeof VMCS, bits: number): Mutation => (vmx) => { vmx.vmwrite32(VMCS[n], vmx.vmread32(VMCS[n]) & ~bits); };
const all = (...m: Mutation[]): Mutation => (vmx) => m.forEach((f) => f(vmx));
const PROC_IO_BITMAPS = 1 << 25;
const BIG = 2 ** 47;

/** For each check, one bad field (or combination) that makes it the first check to fail. */
const MUTATIONS: Record<string, Mutation> = {
  'pin-based controls reserved bits': or32('PIN_BASED_VM_EXEC_CONTROL', 1 << 8),
  'processor-based controls reserved bits': or32('CPU_BASED_VM_EXEC_CONTROL', 1 << 0),
  'secondary controls reserved bits': or32('SECONDARY_VM_EXEC_CONTROL', 1 << 30),
  'CR3-target count': w32('CR3_TARGET_COUNT', 5),
  'I/O bitmap addresses': all(or32('CPU_BASED_VM_EXEC_CONTROL', PROC_IO_BITMAPS), w64('IO_BITMAP_A', 0x1234n)),
  'MSR bitmap address': all(or32('CPU_BASED_VM_EXEC_CONTROL', 1 << 28), w64('MSR_BITMAP', 1n << 50n)),
  'NMI exiting and virtual NMIs': all(andNot32('PIN_BASED_VM_EXEC_CONTROL', 1 << 3), or32('PIN_BASED_VM_EXEC_CONTROL', 1 << 5)),
  'NMI-window exiting requires virtual NMIs': or32('CPU_BASED_VM_EXEC_CONTROL', 1 << 22),
  'VPID nonzero': w32('VIRTUAL_PROCESSOR_ID', 0),
  'EPT pointer': w64('EPT_POINTER', 0x20000n | 0x1en | 0x100n),
  'unrestricted guest requires EPT': andNot32('SECONDARY_VM_EXEC_CONTROL', 1 << 1),
  'VM-exit controls reserved bits': andNot32('VM_EXIT_CONTROLS', 1 << 0),
  'save preemption timer requires the timer': or32('VM_EXIT_CONTROLS', 1 << 22),
  'VM-exit MSR-store address': all(w32('VM_EXIT_MSR_STORE_COUNT', 1), w64('VM_EXIT_MSR_STORE_ADDR', 0x1008n)),
  'VM-exit MSR-load address': all(w32('VM_EXIT_MSR_LOAD_COUNT', 1), w64('VM_EXIT_MSR_LOAD_ADDR', 0x1004n)),
  'VM-entry controls reserved bits': or32('VM_ENTRY_CONTROLS', 1 << 31),
  'VM-entry interruption-information type': w32('VM_ENTRY_INTR_INFO_FIELD', (0x80000000 | (2 << 8) | 3) >>> 0),
  'VM-entry interruption-information deliver-error-code': w32('VM_ENTRY_INTR_INFO_FIELD', (0x80000000 | (3 << 8) | 13) >>> 0),
  'VM-entry interruption-information reserved bits': w32('VM_ENTRY_INTR_INFO_FIELD', (0x80000000 | (1 << 20) | 0x20) >>> 0),
  'VM-entry exception error code': all(w32('VM_ENTRY_INTR_INFO_FIELD', (0x80000000 | 0x800 | (3 << 8) | 13) >>> 0), w32('VM_ENTRY_EXCEPTION_ERROR_CODE', 0x10000)),
  'VM-entry instruction length': all(w32('VM_ENTRY_INTR_INFO_FIELD', (0x80000000 | (4 << 8) | 0x80) >>> 0), w32('VM_ENTRY_INSTRUCTION_LEN', 16)),
  'VM-entry MSR-load address': all(w32('VM_ENTRY_MSR_LOAD_COUNT', 2), w64('VM_ENTRY_MSR_LOAD_ADDR', 0x1001n)),
  'host CR0 fixed bits': wn('HOST_CR0', 0x80050032),
  'host CR4 fixed bits': wn('HOST_CR4', 0x02a0),
  'host CR3 within physical-address width': wn('HOST_CR3', 2 ** 47),
  'host SYSENTER_ESP/EIP canonical': wn('HOST_IA32_SYSENTER_EIP', BIG),
  'host IA32_PAT': all(or32('VM_EXIT_CONTROLS', 1 << 19), w64('HOST_IA32_PAT', 0x0007040600070402n)),
  'host IA32_EFER': w64('HOST_IA32_EFER', 0x101n),
  'host selector RPL and TI zero': w32('HOST_DS_SELECTOR', 0x1b),
  'host CS selector nonzero': w32('HOST_CS_SELECTOR', 0),
  'host TR selector nonzero': w32('HOST_TR_SELECTOR', 0),
  'host SS selector nonzero outside 64-bit mode': () => { throw new Error('needs a 32-bit host'); },
  'host FS/GS/TR/GDTR/IDTR bases canonical': wn('HOST_GDTR_BASE', BIG),
  'host address-space size': all(andNot32('VM_EXIT_CONTROLS', 1 << 9), w64('HOST_IA32_EFER', 0n)),
  'host CR4.PAE and RIP for the host address-space size': wn('HOST_RIP', BIG),
  'guest CR0 fixed bits': wn('GUEST_CR0', 0x80000013),
  'guest CR0.PG requires CR0.PE': all(wn('GUEST_CR0', 0x80000032)),
  'guest CR4 fixed bits': wn('GUEST_CR4', 0x0020),
  'guest IA-32e mode requires CR0.PG and CR4.PAE': wn('GUEST_CR4', 0x2000),
  'guest CR4.PCIDE requires IA-32e mode': all(andNot32('VM_ENTRY_CONTROLS', 1 << 9), wn('GUEST_CR4', 0x22020)),
  'guest CR3 within physical-address width': wn('GUEST_CR3', 2 ** 50),
  'guest DR7 bits 63:32 zero': all(or32('VM_ENTRY_CONTROLS', 1 << 2), wn('GUEST_DR7', 2 ** 33)),
  'guest SYSENTER_ESP/EIP canonical': wn('GUEST_SYSENTER_ESP', -BIG - 4096),
  'guest IA32_PAT': all(or32('VM_ENTRY_CONTROLS', 1 << 14), w64('GUEST_IA32_PAT', 0x0307040600070406n)),
  'guest IA32_EFER': w64('GUEST_IA32_EFER', 0x100n),
  'guest TR TI flag zero': w32('GUEST_TR_SELECTOR', 4),
  'guest LDTR TI flag zero': all(w32('GUEST_LDTR_AR_BYTES', 0x82), w32('GUEST_LDTR_SELECTOR', 0x0c)),
  'guest SS.RPL equals CS.RPL': all(andNot32('SECONDARY_VM_EXEC_CONTROL', 1 << 7), w32('GUEST_SS_SELECTOR', 0x13)),
  'guest TR/LDTR bases canonical': wn('GUEST_TR_BASE', BIG),
  'guest CS base bits 63:32 zero': wn('GUEST_CS_BASE', 2 ** 32),
  'guest SS base bits 63:32 zero': wn('GUEST_SS_BASE', 2 ** 32),
  'guest CS type': w32('GUEST_CS_AR_BYTES', 0xa091),
  'guest CS S=1 and present': w32('GUEST_CS_AR_BYTES', 0xa01b),
  'guest CS DPL': w32('GUEST_CS_AR_BYTES', 0xa0bb),
  'guest CS access-rights reserved bits': w32('GUEST_CS_AR_BYTES', 0xa19b),
  'guest CS limit consistent with G': w32('GUEST_CS_LIMIT', 0xfffff000),
  'guest CS.L and CS.D/B': w32('GUEST_CS_AR_BYTES', 0xe09b),
  'guest SS type': w32('GUEST_SS_AR_BYTES', 0xc091 + 0x0a),
  'guest SS DPL': all(andNot32('SECONDARY_VM_EXEC_CONTROL', 1 << 7), w32('GUEST_SS_AR_BYTES', 0xc0b3), w32('GUEST_CS_AR_BYTES', 0xa09f)),
  'guest SS S=1, present, reserved bits, limit': w32('GUEST_SS_AR_BYTES', 0xc013),
  'guest TR type': w32('GUEST_TR_AR_BYTES', 0x83),
  'guest TR S=0, present, usable, reserved bits, limit': w32('GUEST_TR_AR_BYTES', 0x0b),
  'guest LDTR type, S=0, present, reserved bits, limit': w32('GUEST_LDTR_AR_BYTES', 0x83),
  'guest GDTR/IDTR bases canonical': wn('GUEST_IDTR_BASE', BIG),
  'guest GDTR/IDTR limit bits 31:16 zero': w32('GUEST_GDTR_LIMIT', 0x10000),
  'guest RIP': wn('GUEST_RIP', BIG),
  'guest RFLAGS reserved bits': wn('GUEST_RFLAGS', 0x8002),
  'guest RFLAGS.VM': wn('GUEST_RFLAGS', 0x20002),
  'guest RFLAGS.IF for external-interrupt injection': w32('VM_ENTRY_INTR_INFO_FIELD', 0x80000020),
  'guest activity state': w32('GUEST_ACTIVITY_STATE', 4),
  'guest interruptibility state': w32('GUEST_INTERRUPTIBILITY_INFO', 3),
  'guest pending debug exceptions': wn('GUEST_PENDING_DBG_EXCEPTIONS', 0x10),
  'VMCS link pointer': w64('VMCS_LINK_POINTER', 0x5000n),
};
for (const seg of ['DS', 'ES', 'FS', 'GS'] as const) {
  MUTATIONS[`guest ${seg} base bits 63:32 zero`] = wn(`GUEST_${seg}_BASE`, seg === 'FS' || seg === 'GS' ? BIG : 2 ** 32);
  MUTATIONS[`guest ${seg} type accessed and readable`] = w32(`GUEST_${seg}_AR_BYTES`, 0xc092);
  MUTATIONS[`guest ${seg} S=1`] = w32(`GUEST_${seg}_AR_BYTES`, 0xc083);
  MUTATIONS[`guest ${seg} DPL >= RPL`] = all(andNot32('SECONDARY_VM_EXEC_CONTROL', 1 << 7), w32(`GUEST_${seg}_SELECTOR`, 0x13));
  MUTATIONS[`guest ${seg} present`] = w32(`GUEST_${seg}_AR_BYTES`, 0xc013);
  MUTATIONS[`guest ${seg} access-rights reserved bits`] = w32(`GUEST_${seg}_AR_BYTES`, 0xc193);
  MUTATIONS[`guest ${seg} limit consistent with G`] = w32(`GUEST_${seg}_LIMIT`, 0x100000);
}

function fresh() {
  const m = makeVmxCpu();
  loadValidVmcs(m.vmx, m.mem, m.cpu);
  return m;
}

describe('VM-entry checks', () => {
  it('the valid VMCS passes every check', () => {
    const { vmx } = fresh();
    expect(fullEntryCheck(vmx.vmcs, { hostLma: true })).toBeNull();
  });

  it('every check has a test below', () => {
    const untested = ENTRY_CHECKS.map((c) => c.name).filter((n) => !(n in MUTATIONS));
    expect(untested).toEqual([]);
  });

  const named = ENTRY_CHECKS.filter((c) => c.name !== 'host SS selector nonzero outside 64-bit mode');
  it.each(named.map((c) => [c.name, c.cls] as const))('%s', (name, cls) => {
    const { vmx, cpu } = fresh();
    MUTATIONS[name]!(vmx);
    const status = vmx.vmlaunch();
    expect(vmx.lastFailedCheck?.name).toBe(name);
    if (cls === 'control') {
      expect(status).toBe(VMX_STATUS.FAIL_VALID);
      expect(vmx.vmread32(VMCS.VM_INSTRUCTION_ERROR)).toBe(VMXERR.ENTRY_INVALID_CONTROL_FIELD);
    } else if (cls === 'host') {
      expect(status).toBe(VMX_STATUS.FAIL_VALID);
      expect(vmx.vmread32(VMCS.VM_INSTRUCTION_ERROR)).toBe(VMXERR.ENTRY_INVALID_HOST_STATE_FIELD);
    } else {
      expect(status).toBe(VMX_STATUS.SUCCEED);
      expect(vmx.vmread32(VMCS.VM_EXIT_REASON)).toBe((VMX_EXIT_REASONS_FAILED_VMENTRY | EXIT_REASON.INVALID_STATE) >>> 0);
      expect(vmx.vmreadNum(VMCS.EXIT_QUALIFICATION)).toBe(name === 'VMCS link pointer' ? 4 : 0);
    }
    expect(vmx.guest).toBe(false);
    expect(cpu.getRflags() & 1).toBe(0);
  });

  it('host SS selector nonzero outside 64-bit mode', () => {
    const { vmx } = fresh();
    vmx.vmwrite32(VMCS.VM_EXIT_CONTROLS, vmx.vmread32(VMCS.VM_EXIT_CONTROLS) & ~(1 << 9));
    vmx.vmwrite32(VMCS.VM_ENTRY_CONTROLS, vmx.vmread32(VMCS.VM_ENTRY_CONTROLS) & ~(1 << 9));
    vmx.vmwrite64(VMCS.HOST_IA32_EFER, 0n);
    vmx.vmwrite32(VMCS.HOST_SS_SELECTOR, 0);
    // On a processor outside IA-32e mode (SDM 27.2.4), with a 32-bit host.
    expect(fullEntryCheck(vmx.vmcs, { hostLma: false })?.name).toBe('host SS selector nonzero outside 64-bit mode');
  });

  it('a valid VMCS enters the guest and marks the VMCS launched', () => {
    const { vmx, cpu } = fresh();
    let sawGuest = false;
    cpu.onRun = () => { sawGuest = vmx.guest && cpu.rip === 0x1000 && cpu.cr3 === 0x1fd000; };
    expect(vmx.vmlaunch()).toBe(VMX_STATUS.SUCCEED);
    expect(sawGuest).toBe(true);
    expect(vmx.vmlaunch()).toBe(VMX_STATUS.FAIL_VALID);
    expect(vmx.vmread32(VMCS.VM_INSTRUCTION_ERROR)).toBe(VMXERR.VMLAUNCH_NONCLEAR_VMCS);
  });
});

describe('incremental VM-entry checks agree with the full check', () => {
  // A small deterministic PRNG, so a failure replays.
  let seed = 0x2545f491;
  const rnd = () => { seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5; return (seed >>> 0) / 2 ** 32; };
  const mutations = Object.values(MUTATIONS).filter((_, i) => Object.keys(MUTATIONS)[i] !== 'host SS selector nonzero outside 64-bit mode');

  it('on 2000 random sequences of field writes and entries', () => {
    const { vmx } = fresh();
    const snapshot = () => [Int32Array.from(vmx.vmcs.lo), Int32Array.from(vmx.vmcs.hi)] as const;
    const good = snapshot();
    let passedLma: boolean | null = null;
    for (let round = 0; round < 2000; round++) {
      const r = rnd();
      if (r < 0.3) {
        mutations[Math.floor(rnd() * mutations.length)]!(vmx);
      } else if (r < 0.6) {
        // Random value into a random field.
        const i = Math.floor(rnd() * VMCS_FIELDS.length);
        const w = vmcsFieldWidth(VMCS_FIELDS[i]![1]);
        vmx.vmcs.writeHalves(i, (rnd() * 2 ** 32) >>> 0, w === VMCS_WIDTH.NATURAL || w === VMCS_WIDTH.U64 ? (rnd() < 0.5 ? 0 : -1) : 0);
      } else if (r < 0.7) {
        // Back to a good state through ordinary writes.
        for (let i = 0; i < VMCS_FIELDS.length; i++) vmx.vmcs.writeHalves(i, good[0][i]!, good[1][i]!);
      }
      // The processor doing the entry is mostly in IA-32e mode; the context checks re-run when that changed.
      const ctx = { hostLma: rnd() < 0.9 };
      const full = fullEntryCheck(vmx.vmcs, ctx);
      const inc = incrementalEntryCheck(vmx.vmcs, ctx, ctx.hostLma !== passedLma);
      expect(inc?.name ?? null).toBe(full?.name ?? null);
      if (inc === null) {
        vmx.vmcs.clearDirty();
        passedLma = ctx.hostLma;
      }
    }
  });

  it('each check reads only the fields it lists, on the valid VMCS and after every mutation', () => {
    for (const mutate of [(): void => {}, ...mutations]) {
      const { vmx } = fresh();
      mutate(vmx);
      const v = vmx.vmcs;
      const orig = { lo: v.lo, hi: v.hi };
      let reads = new Set<number>();
      const spy = (arr: Int32Array) => new Proxy(arr, {
        get(t, p) {
          if (typeof p === 'string' && /^\d+$/.test(p)) reads.add(Number(p));
          const x = Reflect.get(t, p) as unknown;
          return typeof x === 'function' ? (x as (...a: unknown[]) => unknown).bind(t) : x;
        },
      });
      Object.defineProperty(v, 'lo', { value: spy(orig.lo), configurable: true });
      Object.defineProperty(v, 'hi', { value: spy(orig.hi), configurable: true });
      for (const chk of ENTRY_CHECKS) {
        reads = new Set<number>();
        chk.ok(v, { hostLma: true });
        for (const f of reads) expect(chk.deps, `${chk.name} reads ${VMCS_FIELDS[f]![0]}`).toContain(f);
      }
      Object.defineProperty(v, 'lo', { value: orig.lo, configurable: true });
      Object.defineProperty(v, 'hi', { value: orig.hi, configurable: true });
    }
  });
});
