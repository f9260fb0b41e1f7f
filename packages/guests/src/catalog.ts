/**
 * The guest catalog: every bundled guest, how to run it (DESIGN.md's `kvmts run` contract) and
 * what it must produce. Tests, `kvmts list`/`kvmts run NAME`, the dashboard and the
 * conformance suite all read this one table. Images are built by scripts/build.mjs into
 * images/NAME.bin; add a guest there and here (README.md).
 */

/** `real`: CS=0, IP=entry, flat 16-bit. `long64`: the KVM selftests' long mode set-up. */
export type GuestMode = 'real' | 'long64';
/** `test`: self-checking, ends on its own. `demo`: runs until stopped. `bench`: an anchor workload. */
export type GuestKind = 'test' | 'demo' | 'bench';
export type FinalExitKind = 'hlt' | 'debug_exit' | 'shutdown' | 'fail_entry' | 'internal_error';

/** One userspace exit of the `kvmts run --json` trace, without the final row. */
export type ExpectedTraceRow =
  | { readonly exit: 'io'; readonly dir: 'in' | 'out'; readonly port: number; readonly size: number; readonly count: number; readonly data: string }
  | { readonly exit: 'mmio'; readonly dir: 'read' | 'write'; readonly addr: string; readonly len: number; readonly data: string };

/** The serial output (COM1), exactly, or a part of it, or a regular expression over all of it. */
export type SerialExpectation =
  | { readonly exact: string }
  | { readonly includes: string }
  | { readonly pattern: string };

export interface Expectation {
  /** The final exit; absent for guests that never end. */
  readonly exit?: FinalExitKind;
  /** debug_exit: the value written to port 0xf4. */
  readonly code?: number;
  readonly serial: SerialExpectation;
  /** The exits the VMM does not claim, in order (serial and port 0xf4 are claimed). */
  readonly trace?: readonly ExpectedTraceRow[];
}

/** Interrupts the VMM injects with KVM_INTERRUPT: at every HLT exit, `count` times or forever. */
export interface IrqPlan {
  readonly vector: number;
  readonly every: 'hlt';
  readonly count?: number;
}

export interface CatalogEntry {
  readonly name: string;
  readonly kind: GuestKind;
  readonly mode: GuestMode;
  /** Bytes of the one memslot at GPA 0. */
  readonly mem: number;
  readonly load: number;
  readonly entry: number;
  /** What the guest demonstrates. */
  readonly shows: string;
  /** Registers the VMM sets before the first KVM_RUN (after the mode set-up). */
  readonly regs?: { readonly [reg: string]: number };
  readonly irqs?: IrqPlan;
  readonly expect: Expectation;
  /** Why runs may differ between vendors (the guest reads the vendor), if they may. */
  readonly vendorDependent?: string;
  /**
   * The virtualization extension the guest itself uses (an L1 hypervisor): it runs only on that
   * vendor's CPU, and not on CPUs without it (QEMU's TCG, the machine's /dev/kvm).
   */
  readonly requires?: 'vmx' | 'svm';
  /**
   * True where the machine's /dev/kvm can run the guest as a reference (DESIGN.md): 64-bit code
   * entered in long64 mode that neither loads descriptor tables nor changes paging.
   */
  readonly reference?: boolean;
}

const MEM = 0x200000;
const LOAD = 0x1000;
const BOOT_SECTOR = 0x7c00;
const REPORT = 'self-checking with report(): PASS/FAIL lines, a SUMMARY, exit status 0 through port 0xf4';

const summary = (tests: number): SerialExpectation => ({ includes: `SUMMARY: ${tests} tests, 0 failures\n` });

/** The anchors' guest.S/guest64.S write 'S', run, then print EAX as 8 hex digits. */
const loopResult: Readonly<Record<number, string>> = { 1000: 'D0186A0B', 1000000: '4C7E56C8', 10000000: '8570DE7C' };

/**
 * The reference /dev/kvm runs 64-bit code at CPL0 through its instruction emulator, about 3000
 * times slower than natively: the long loops would take minutes there.
 */
const REFERENCE_MAX_ITERS = 100000;

function bench(name: string, bits: 16 | 32 | 64, serial: SerialExpectation, shows: string, vendorDependent?: string, iters = 0): CatalogEntry {
  return {
    name,
    kind: 'bench',
    mode: bits === 64 ? 'long64' : 'real',
    mem: MEM,
    load: BOOT_SECTOR,
    entry: BOOT_SECTOR,
    shows: `${shows} (${bits === 32 ? 'switches to 32-bit protected mode first' : `${bits}-bit`}; /work/shared/bench)`,
    // The 16/32-bit workloads end with the isa-debug-exit write of 0; the 64-bit ones halt.
    expect: bits === 64 ? { exit: 'hlt', serial } : { exit: 'debug_exit', code: 0, serial },
    ...(vendorDependent !== undefined && { vendorDependent }),
    ...(bits === 64 && iters <= REFERENCE_MAX_ITERS && { reference: true }),
  };
}

function benchRows(): CatalogEntry[] {
  const rows: CatalogEntry[] = [];
  for (const bits of [16, 32, 64] as const) {
    for (const iters of [1000, 1000000, 10000000]) {
      rows.push(bench(`loop${bits}_${iters}`, bits, { exact: `S${loopResult[iters]}\n` }, `the 7-instruction ALU loop, ${iters} iterations`, undefined, iters));
    }
    rows.push(bench(`out${bits}`, bits, { exact: 'S00004F4B\n' }, '100000 OUTs to port 0x510, each a round trip to userspace'));
    rows.push(bench(`cpuid${bits}`, bits, { pattern: '^S[0-9A-F]{8}\\n$' }, '100000 CPUIDs (leaf 0), each an exit handled in the kernel',
      'prints CPUID leaf 0 EAX, the highest basic leaf of the modelled CPU'));
    rows.push(bench(`hlt${bits}`, bits, { exact: 'S00000000\n' }, 'nothing but the exit: VM creation and one run'));
  }
  return rows;
}

function test(name: string, mode: GuestMode, shows: string, serial: SerialExpectation, extra: Partial<CatalogEntry> = {}): CatalogEntry {
  return { name, kind: 'test', mode, mem: MEM, load: LOAD, entry: LOAD, shows, expect: { exit: 'debug_exit', code: 0, serial }, ...extra };
}

const instructionClass = (name: string, what: string, tests64: number, tests32: number): CatalogEntry[] => [
  test(name, 'long64', `${what}, 64-bit (entered in long64 mode); ${REPORT}`, summary(tests64)),
  test(`${name}32`, 'real', `${what}, 32-bit protected mode with paging (the runtime boots from real mode); ${REPORT}`, summary(tests32)),
];

export const CATALOG: readonly CatalogEntry[] = [
  {
    name: 'hello',
    kind: 'test',
    mode: 'real',
    mem: MEM,
    load: LOAD,
    entry: LOAD,
    shows: 'the LWN "Using the KVM API" guest: RAX=2 and RBX=2 from the VMM, add, print the digit on COM1, HLT',
    regs: { rax: 2, rbx: 2 },
    expect: { exit: 'hlt', serial: { exact: '4\n' } },
  },
  test('modes', 'real', 'a mode tour: real mode, 32-bit protected mode, PAE paging and long mode, each proven (CR0.PE, EFER.LMA, a 64-bit add, a 1 GiB alias)',
    { exact: 'real mode\nprotected mode\nlong mode\npaging: 1 GiB alias reads physical memory\n' }),
  test('realmode', 'real', 'real mode itself: DS:offset and [BX+SI+disp] addressing, 66/67 prefixes, a far call into another segment, INT and #DE through the guest\'s IVT with their frames',
    { exact: ['DS:offset addressing', '[BX+SI+disp] addressing', 'operand-size prefix', 'address-size prefix', 'far call into another segment',
      'INT through the IVT, with its frame', '#DE through the IVT, at the faulting IP'].map((t) => `PASS: ${t}\n`).join('') }),
  ...instructionClass('alu', 'ADD/ADC/SUB/SBB/CMP/logic/INC/DEC/NEG/NOT with exact flags, MOVZX/MOVSX, SETcc, CMOVcc, XCHG, XADD, CMPXCHG(8B), DAA/DAS in 32-bit', 40, 38),
  ...instructionClass('shift', 'SHL/SHR/SAR/ROL/ROR/RCL/RCR/SHLD/SHRD, count masking, zero counts, OF on 1-bit shifts', 22, 19),
  ...instructionClass('muldiv', 'MUL/IMUL in 1, 2 and 3 operands, DIV/IDIV at 8, 32 and 64 bits', 14, 12),
  ...instructionClass('string', 'MOVS/STOS/LODS/SCAS/CMPS with REP/REPE/REPNE, forwards and backwards', 10, 10),
  ...instructionClass('stack', 'PUSH/POP forms, PUSHF/POPF, ENTER/LEAVE, CALL/RET imm16, far RET, PUSHA/POPA in 32-bit', 8, 10),
  ...instructionClass('bitops', 'BT/BTS/BTR/BTC on registers and bit strings, BSF/BSR, POPCNT/LZCNT/TZCNT, BSWAP', 21, 18),
  test('exceptions', 'real', `#DE, #UD, #GP (selector and 0), #PF with error code and CR2 (not present, write, CR0.WP), #BP, INTO, #NP, and #DF through a bad IDT entry, all through the guest's own IDT, in long mode; ${REPORT}`, summary(15)),
  test('exceptions32', 'real', `the same exceptions in 32-bit protected mode with paging, where INTO raises #OF; ${REPORT}`, summary(15)),
  {
    ...test('mmio', 'long64', 'MMIO to an unbacked address: writes and reads of 1, 2, 4 and 8 bytes and a read-modify-write, each a KVM_EXIT_MMIO; reads see 0xff bytes', { exact: 'mmio: ok\n' }),
    expect: {
      exit: 'debug_exit',
      code: 0,
      serial: { exact: 'mmio: ok\n' },
      trace: [
        { exit: 'mmio', dir: 'write', addr: '0x10000000', len: 1, data: '11' },
        { exit: 'mmio', dir: 'write', addr: '0x10000010', len: 2, data: '1122' },
        { exit: 'mmio', dir: 'write', addr: '0x10000020', len: 4, data: '11223344' },
        { exit: 'mmio', dir: 'write', addr: '0x10000030', len: 8, data: '1122334455667788' },
        { exit: 'mmio', dir: 'read', addr: '0x10000000', len: 1, data: 'ff' },
        { exit: 'mmio', dir: 'read', addr: '0x10000010', len: 2, data: 'ffff' },
        { exit: 'mmio', dir: 'read', addr: '0x10000020', len: 4, data: 'ffffffff' },
        { exit: 'mmio', dir: 'read', addr: '0x10000030', len: 8, data: 'ffffffffffffffff' },
        { exit: 'mmio', dir: 'read', addr: '0x10000040', len: 4, data: 'ffffffff' },
        { exit: 'mmio', dir: 'write', addr: '0x10000040', len: 4, data: '00000000' },
      ],
    },
    reference: true,
  },
  {
    ...test('pio', 'long64', 'port I/O to unclaimed ports: OUT and IN of 1, 2 and 4 bytes by DX and by immediate, REP OUTSB/OUTSW (an exit per iteration) and REP INSB/INSL (one exit each, read ahead)', { exact: 'pio: ok\n' }),
    expect: {
      exit: 'debug_exit',
      code: 0,
      serial: { exact: 'pio: ok\n' },
      trace: [
        { exit: 'io', dir: 'out', port: 0x510, size: 1, count: 1, data: '11' },
        { exit: 'io', dir: 'out', port: 0x510, size: 2, count: 1, data: '1122' },
        { exit: 'io', dir: 'out', port: 0x510, size: 4, count: 1, data: '11223344' },
        { exit: 'io', dir: 'out', port: 0x80, size: 1, count: 1, data: '11' },
        { exit: 'io', dir: 'in', port: 0x510, size: 1, count: 1, data: 'ff' },
        { exit: 'io', dir: 'in', port: 0x510, size: 2, count: 1, data: 'ffff' },
        { exit: 'io', dir: 'in', port: 0x510, size: 4, count: 1, data: 'ffffffff' },
        { exit: 'io', dir: 'in', port: 0x80, size: 1, count: 1, data: 'ff' },
        // Linux's emulator exits once per REP OUTS iteration, but reads REP INS ahead in one exit.
        { exit: 'io', dir: 'out', port: 0x510, size: 1, count: 1, data: '41' },
        { exit: 'io', dir: 'out', port: 0x510, size: 1, count: 1, data: '42' },
        { exit: 'io', dir: 'out', port: 0x510, size: 1, count: 1, data: '43' },
        { exit: 'io', dir: 'out', port: 0x510, size: 1, count: 1, data: '44' },
        { exit: 'io', dir: 'out', port: 0x510, size: 2, count: 1, data: '6162' },
        { exit: 'io', dir: 'out', port: 0x510, size: 2, count: 1, data: '6364' },
        { exit: 'io', dir: 'in', port: 0x510, size: 1, count: 4, data: 'ffffffff' },
        { exit: 'io', dir: 'in', port: 0x510, size: 4, count: 2, data: 'ffffffffffffffff' },
      ],
    },
    reference: true,
  },
  test('paging', 'real', `4-level paging from the guest's side: accessed and dirty bits, remapping a PTE with INVLPG, NX with EFER.NXE (#PF with I/D, CR2 and RIP at the target); ${REPORT}`, summary(9)),
  test('usermode', 'real', `CPL3: IRETQ and SYSRET into user code, SYSCALL back (RCX, R11), INT through DPL3 and DPL0 gates (RSP0 switch, #GP with the gate index), HLT and OUT as #GP(0), a supervisor page as #PF with U/S; ${REPORT}`, summary(18)),
  test('tasks32', 'real', 'hardware task switches in 32-bit protected mode, each a TASK_SWITCH exit that kvm_task_switch completes: JMP to a 32-bit and to a 16-bit TSS and back, CALL through a GDT task gate and IRET back (NT, the link field, busy bits, CR0.TS, CR3 and the address space from the new TSS, the EIPs the old TSSs keep), INT n and INT3 through IDT task gates, #GP and #DF through task gates with their error codes on the new stack, #TS raised in the new task after the commit point, an interrupt from the VMM through a task gate; PASS/FAIL lines, the failure count through port 0xf4',
    { exact: [
      "PASS: paging: the boot task's address space",
      "PASS: JMP: the new task's registers come from its TSS",
      'PASS: JMP: TR is the new TSS',
      'PASS: JMP: NT clear in the new task',
      'PASS: JMP: the old TSS is no longer busy',
      'PASS: JMP: the new TSS is busy',
      'PASS: JMP: CR3 from the new TSS',
      'PASS: JMP: the new task sees its own address space',
      "PASS: JMP back: the old task's registers come from its TSS",
      'PASS: JMP back: EBP as it was',
      'PASS: JMP: the old TSS holds the EIP after the JMP',
      "PASS: JMP back: task B's TSS holds the EIP after its JMP",
      "PASS: JMP back: CR3 from the old task's TSS",
      "PASS: JMP back: the old task's address space again",
      'PASS: CR0.TS set by the task switch',
      "PASS: 16-bit TSS: the task's BX saved in its TSS",
      'PASS: 16-bit TSS: its IP after the JMP back',
      'PASS: 16-bit TSS: back in the 32-bit task with its registers',
      'PASS: 16-bit TSS: no longer busy',
      'PASS: CALL through a task gate: NT set in the called task',
      "PASS: CALL: the link field names the caller's TSS",
      "PASS: CALL: the caller's TSS stays busy",
      "PASS: CALL: the caller's TSS holds the EIP after the CALL",
      'PASS: IRET: back in the caller with its registers',
      'PASS: IRET: NT clear in the caller',
      "PASS: IRET: the nested task's TSS is no longer busy",
      "PASS: IRET: TR is the caller's TSS",
      'PASS: INT n through a task gate: NT set in the new task',
      "PASS: INT n: the caller's TSS holds the EIP after the INT",
      'PASS: INT n through a task gate: IRET returns to the caller',
      "PASS: INT3: the caller's TSS holds the EIP after INT3",
      'PASS: INT3 through a task gate: IRET returns to the caller',
      '#GP error code 0000018a',
      "PASS: #GP: the old task's EIP is the faulting instruction",
      "PASS: #GP through a task gate: error code 0x18a on the new task's stack",
      '#DF error code 00000000',
      "PASS: #DF: the old task's EIP is the INT that began it",
      "PASS: #DF through a task gate: error code 0 on the new task's stack",
      'PASS: #DF: its task ran once',
      '#TS error code 00000010',
      'PASS: #TS in the new task: error code is its CS selector',
      "PASS: #TS: delivered in the new task (the handler's link names it)",
      'PASS: external interrupt through a task gate: task F ran once (the event is not injected again)',
      "PASS: external interrupt: the interrupted task's TSS holds the EIP after HLT",
      'tasks32: done',
    ].map((l) => `${l}\n`).join('') }, { irqs: { vector: 0x48, every: 'hlt', count: 1 } }),
  test('smc', 'long64', `self-modifying code: a patched hot function, a store into the next instruction, code rewritten in a data page; ${REPORT}`, summary(7)),
  test('nested-vmx-basic', 'long64', `nested VMX: an L1 hypervisor does VMXON, VMCLEAR, VMPTRLD, VMWRITEs a whole VMCS and VMLAUNCHes a 64-bit L2 whose CPUID, VMCALL, OUT to a port in L1's I/O bitmap, RDMSR in L1's MSR bitmap and HLT exit to L1 (VMREAD of the exit fields, VMRESUME), while its COM1 writes pass through L1 to the VMM; ${REPORT}`,
    { pattern: '^PASS: [\\s\\S]*\\nL2: hello through COM1, not intercepted by L1\\n[\\s\\S]*SUMMARY: 24 tests, 0 failures\\n$' },
    { vendorDependent: 'Intel VMX: L1 executes VMX instructions, which are #UD on an AMD vCPU', requires: 'vmx' }),
  test('nested-vmx-fail', 'long64', `nested VMX: an L1 hypervisor's deliberate mistakes (VMXON twice, VMPTRLD of a bad revision, of the VMXON region and of a misaligned address, VMWRITE to a read-only field, VMREAD of an unsupported one, VMRESUME of a clear VMCS, VMLAUNCH of a launched one, bad controls, bad host state, bad guest state found by L0 and by the silicon) each answered as the SDM says: VMfailInvalid, VMfailValid with its error number, or an entry-failure exit; ${REPORT}`,
    summary(38), { vendorDependent: 'Intel VMX: L1 executes VMX instructions, which are #UD on an AMD vCPU', requires: 'vmx' }),
  test('nested-vmx-cpuid', 'long64', `nested VMX, the nested.cpuid benchmark's workload: 2000 CPUIDs in L2, each reflected to L1, whose exit loop VMREADs, VMWRITEs GUEST_RIP and VMRESUMEs; ${REPORT}`,
    summary(4), { vendorDependent: 'Intel VMX: L1 executes VMX instructions, which are #UD on an AMD vCPU', requires: 'vmx' }),
  test('nested-vmx-shadow', 'long64', `nested VMX, heavy VMREAD/VMWRITE traffic: 200 L2 CPUID exits, on each of which L1 VMREADs 12 fields and VMWRITEs 3, checking every value; with L0's VMCS shadowing, 10 of those 15 accesses per exit run without an exit; ${REPORT}`,
    summary(4), { vendorDependent: 'Intel VMX: L1 executes VMX instructions, which are #UD on an AMD vCPU', requires: 'vmx' }),
  test('nested-vmx-ept', 'long64', `nested EPT: L1 gives L2 its own EPT with one page unmapped and one read-only; L2's read and write fault to L1 as EPT violations (address, access, permissions), L1 maps the page elsewhere and grants the write, INVEPTs, and L2 goes on; L0 runs L2 on EPT02 built from EPT12 and its own map of L1; ${REPORT}`,
    summary(14), { vendorDependent: 'Intel VMX: L1 executes VMX instructions, which are #UD on an AMD vCPU', requires: 'vmx' }),
  test('nested-vmx-irq', 'long64', `nested VMX and interrupts: L2 halts with interrupts on, L0 handles the HLT, the VMM injects vector 0x20, and because L1 set external-interrupt exiting with acknowledge-on-exit the interrupt becomes a VM exit to L1 carrying the vector; L1 resumes L2; ${REPORT}`,
    summary(10), { irqs: { vector: 0x20, every: 'hlt', count: 1 }, vendorDependent: 'Intel VMX: L1 executes VMX instructions, which are #UD on an AMD vCPU', requires: 'vmx' }),
  test('nested-vmx-msr', 'long64', `nested VMX, vmcs12's MSR lists: the VM-entry MSR-load list gives L2 its KERNEL_GS_BASE and SYSENTER_ESP, the VM-exit MSR-store list catches what L2 wrote, the VM-exit MSR-load list restores L1's; an entry list naming FS_BASE is a VM-entry failure (reason 34, the entry's 1-based index), a misaligned list VMfailValid(7); ${REPORT}`,
    summary(19), { vendorDependent: 'Intel VMX: L1 executes VMX instructions, which are #UD on an AMD vCPU', requires: 'vmx' }),
  test('nested-vmx-timer', 'long64', `nested VMX, the VMX-preemption timer for L1's guest: a spinning L2 comes back to L1 with exit reason 52 once its timer of 1000 (rate 5) has run out, a CPUID exit saves what is left of a timer of 100000, and without the save control the field keeps L1's value; ${REPORT}`,
    summary(16), { vendorDependent: 'Intel VMX: L1 executes VMX instructions, which are #UD on an AMD vCPU', requires: 'vmx' }),
  test('nested-vmx-ept-ad', 'long64', `nested EPT with accessed and dirty flags (EPTP bit 6, offered in IA32_VMX_EPT_VPID_CAP): after L2 reads one page and writes another, L1 finds the accessed flag in the EPT12 entries of every level on those paths and the dirty flag only on the written page; cleared, INVEPTed and read again, the page is accessed but not dirty; L2's own page walk counts as a write (a read-only PML4 page in EPT12 is an EPT violation for a write); a reserved EPTP bit is VMfailValid(7); ${REPORT}`,
    summary(24), { vendorDependent: 'Intel VMX: L1 executes VMX instructions, which are #UD on an AMD vCPU', requires: 'vmx' }),
  test('nested-vmx-sync', 'long64', `nested VMX, the guest state L2 seldom changes: L2 loads a null ES, a smaller GDT limit and a new GS base, and L1's VMREADs see them; L1's VMWRITEs of those fields reach L2 on VMRESUME; a VMWRITE of an unrelated field leaves L2's own ES alone; after VMCLEAR vmcs12 in L1's memory holds L2's last values; ${REPORT}`,
    summary(20), { vendorDependent: 'Intel VMX: L1 executes VMX instructions, which are #UD on an AMD vCPU', requires: 'vmx' }),
  test('timer-irq', 'real', 'interrupts from the VMM: KVM_INTERRUPT of vector 0x20 at each HLT exit, counted by an IDT handler that checks RIP and IF',
    { exact: '10 interrupts\nPASS: interrupts counted\nPASS: each arrived right after HLT\nPASS: IF set before, clear in the handler\nSUMMARY: 3 tests, 0 failures\n' },
    { irqs: { vector: 0x20, every: 'hlt', count: 10 } }),
  {
    name: 'demo',
    kind: 'demo',
    mode: 'real',
    mem: MEM,
    load: LOAD,
    entry: LOAD,
    shows: 'for the dashboard: a banner, then primes by trial division, every 50th printed with a spinner, a HLT after each print and a timer interrupt to wake it; never ends',
    irqs: { vector: 0x20, every: 'hlt' },
    // The start of an endless output: the banner, then the 50th and 100th primes, one tick apart.
    expect: { serial: { pattern: '^kvmts demo: primes by trial division, a timer tick at every HLT\\n/ prime #50 = 229   ticks 0\\n- prime #100 = 541   ticks 1\\n' } },
  },
  ...benchRows(),
];

export function findGuest(name: string): CatalogEntry | undefined {
  return CATALOG.find((g) => g.name === name);
}

/** Does the serial output meet the expectation? */
export function serialMatches(expect: SerialExpectation, output: string): boolean {
  if ('exact' in expect) return output === expect.exact;
  if ('includes' in expect) return output.includes(expect.includes);
  return new RegExp(expect.pattern).test(output);
}
