import { describe, it, expect } from 'vitest';
import { ACTIVITY, GPR, SEG, STOP, VEC, makeSegment } from '@kvmts/x86';
import { EXIT_REASON, CPU_BASED, PIN_BASED, SECONDARY_EXEC, VM_ENTRY, VM_EXIT, VMCS, FIELD } from '../src/index.js';
import { makeBare, setControl, MSR_BITMAP, IO_BITMAP_A, EPT_PT, EPT_PML4, GUEST_HPA } from './bare.js';

const CR0_PE = 1, CR0_ET = 1 << 4, CR0_NE = 1 << 5, CR0_PG = 0x80000000;
const CR4_PSE = 1 << 4, CR4_VMXE = 1 << 13;
const EPTP_AD = 1 << 6;

const HLT = [0xf4];

describe('VM exits from small real-mode guests (unrestricted guest, EPT)', () => {
  it('CPUID: reason 10, instruction length 2, RIP at the instruction, host state back', () => {
    const b = makeBare();
    b.poke(0x1000, [0x90, 0x0f, 0xa2]);
    expect(b.enter()).toBe(EXIT_REASON.CPUID);
    expect(b.r32('VM_EXIT_INSTRUCTION_LEN')).toBe(2);
    expect(b.rn('GUEST_RIP')).toBe(0x1001);
    expect(b.cpu.rip).toBe(0x7000);
    expect(b.cpu.cr3).toBe(0x8000);
    expect(b.vmx.guest).toBe(false);
    expect(b.cpu.gpr[GPR.RSP]).toBe(0x6ff0);
  });

  it('HLT with HLT exiting: reason 12', () => {
    const b = makeBare();
    b.poke(0x1000, HLT);
    expect(b.enter()).toBe(EXIT_REASON.HLT);
    expect(b.r32('VM_EXIT_INSTRUCTION_LEN')).toBe(1);
  });

  it('VMCALL: reason 18, even in real mode', () => {
    const b = makeBare();
    b.poke(0x1000, [0x0f, 0x01, 0xc1]);
    expect(b.enter()).toBe(EXIT_REASON.VMCALL);
    expect(b.r32('VM_EXIT_INSTRUCTION_LEN')).toBe(3);
  });

  it('RDTSC: reason 16 with RDTSC exiting; otherwise the TSC offset is added', () => {
    const b = makeBare();
    b.poke(0x1000, [0x0f, 0x31, 0xf4]);
    setControl(b, 'CPU_BASED_VM_EXEC_CONTROL', CPU_BASED.RDTSC_EXITING);
    expect(b.enter()).toBe(EXIT_REASON.RDTSC);
    const c = makeBare();
    c.poke(0x1000, [0x0f, 0x31, 0xf4]);
    setControl(c, 'CPU_BASED_VM_EXEC_CONTROL', CPU_BASED.USE_TSC_OFFSETTING);
    c.vmx.vmwrite64(0x2010, 0x1_0000_0000n);
    const before = c.cpu.icount;
    expect(c.enter()).toBe(EXIT_REASON.HLT);
    expect(c.cpu.ext).toBe(c.vmx);
    // RDTSC ran as the first guest instruction: TSC = icount at that point + offset.
    expect(b.cpu.gprHi[GPR.RDX]).toBe(0);
    expect(c.rn('GUEST_RIP')).toBe(0x1002);
    void before;
  });

  it('PAUSE with PAUSE exiting: reason 40', () => {
    const b = makeBare();
    b.poke(0x1000, [0xf3, 0x90]);
    setControl(b, 'CPU_BASED_VM_EXEC_CONTROL', CPU_BASED.PAUSE_EXITING);
    expect(b.enter()).toBe(EXIT_REASON.PAUSE_INSTRUCTION);
  });

  it('OUT with unconditional I/O exiting: reason 30 and the I/O qualification', () => {
    const b = makeBare();
    b.poke(0x1000, [0xba, 0xf8, 0x03, 0xb0, 0x41, 0xee]); // mov dx,0x3f8; mov al,'A'; out dx,al
    expect(b.enter()).toBe(EXIT_REASON.IO_INSTRUCTION);
    expect(b.rn('EXIT_QUALIFICATION')).toBe((0x3f8 << 16) | 0); // size 1, OUT, DX
    expect(b.rn('GUEST_RIP')).toBe(0x1005);
  });

  it('IN with the I/O bitmaps: only ports whose bit is set exit', () => {
    const b = makeBare();
    b.poke(0x1000, [0xe4, 0x60, 0xe4, 0x61]); // in al,0x60; in al,0x61
    setControl(b, 'CPU_BASED_VM_EXEC_CONTROL', CPU_BASED.USE_IO_BITMAPS, CPU_BASED.UNCOND_IO_EXITING);
    b.mem.write8(IO_BITMAP_A + (0x61 >> 3), 1 << (0x61 & 7));
    expect(b.enter()).toBe(EXIT_REASON.IO_INSTRUCTION);
    expect(b.rn('EXIT_QUALIFICATION')).toBe((0x61 << 16) | (1 << 6) | (1 << 3));
    expect(b.rn('GUEST_RIP')).toBe(0x1002);
  });

  it('RDMSR/WRMSR through the MSR bitmap: reasons 31 and 32', () => {
    const b = makeBare();
    // mov ecx,0x1b; rdmsr ; mov ecx,0x174; wrmsr
    b.poke(0x1000, [0x66, 0xb9, 0x1b, 0, 0, 0, 0x0f, 0x32, 0x66, 0xb9, 0x74, 0x01, 0, 0, 0x0f, 0x30]);
    setControl(b, 'CPU_BASED_VM_EXEC_CONTROL', CPU_BASED.USE_MSR_BITMAPS);
    b.mem.write8(MSR_BITMAP + (0x1b >> 3), 1 << (0x1b & 7));
    expect(b.enter()).toBe(EXIT_REASON.MSR_READ);
    expect(b.rn('GUEST_RIP')).toBe(0x1006);
    b.wn('GUEST_RIP', 0x1008);
    b.mem.write8(MSR_BITMAP + 2048 + (0x174 >> 3), 1 << (0x174 & 7));
    expect(b.enter()).toBe(EXIT_REASON.MSR_WRITE);
    expect(b.rn('GUEST_RIP')).toBe(0x100e);
  });

  it('IA32_PAT: the guest gets GUEST_IA32_PAT at entry, its WRMSR is saved at the exit, the host gets HOST_IA32_PAT back', () => {
    const b = makeBare();
    // mov ecx,0x277 ; rdmsr ; cpuid ; mov eax,0x04040404 ; mov edx,0x05050505 ; wrmsr ; cpuid
    b.poke(0x1000, [0x66, 0xb9, 0x77, 0x02, 0, 0, 0x0f, 0x32, 0x0f, 0xa2,
      0x66, 0xb8, 0x04, 0x04, 0x04, 0x04, 0x66, 0xba, 0x05, 0x05, 0x05, 0x05, 0x0f, 0x30, 0x0f, 0xa2]);
    setControl(b, 'CPU_BASED_VM_EXEC_CONTROL', CPU_BASED.USE_MSR_BITMAPS); // an all-zero bitmap: PAT accesses do not exit
    setControl(b, 'VM_ENTRY_CONTROLS', VM_ENTRY.LOAD_IA32_PAT);
    setControl(b, 'VM_EXIT_CONTROLS', VM_EXIT.SAVE_IA32_PAT | VM_EXIT.LOAD_IA32_PAT);
    b.vmx.vmwrite64(VMCS.GUEST_IA32_PAT, 0x0001000600070406n);
    b.vmx.vmwrite64(VMCS.HOST_IA32_PAT, 0x0606060606060606n);
    expect(b.enter()).toBe(EXIT_REASON.CPUID);
    expect([b.cpu.gpr[GPR.RAX]! >>> 0, b.cpu.gpr[GPR.RDX]! >>> 0]).toEqual([0x00070406, 0x00010006]);
    expect([b.cpu.patLo >>> 0, b.cpu.patHi >>> 0]).toEqual([0x06060606, 0x06060606]);
    b.wn('GUEST_RIP', 0x100a);
    expect(b.enter()).toBe(EXIT_REASON.CPUID);
    expect(b.vmx.vmread64(VMCS.GUEST_IA32_PAT)).toBe(0x0505050504040404n);
    expect(b.vmx.fieldsChangedAtLastExit()).toContain(FIELD.GUEST_IA32_PAT);
    expect([b.cpu.patLo >>> 0, b.cpu.patHi >>> 0]).toEqual([0x06060606, 0x06060606]);
  });

  it('the MSR-load and MSR-store lists go through WRMSR and RDMSR: LSTAR reaches its register; a reserved PAT type fails the entry at its index', () => {
    const b = makeBare();
    b.poke(0x1000, [0x0f, 0xa2]);
    const LOAD = 0x5000, STORE = 0x5100, LSTAR = 0xc0000082;
    b.mem.write32(LOAD, LSTAR); b.mem.write64(LOAD + 8, 0xffff800000401000n);
    b.mem.write32(LOAD + 16, 0x277); b.mem.write64(LOAD + 24, 0x0000000000000606n);
    b.mem.write32(STORE, LSTAR); b.mem.write32(STORE + 16, 0x277);
    b.vmx.vmwrite64(VMCS.VM_ENTRY_MSR_LOAD_ADDR, BigInt(LOAD));
    b.w32('VM_ENTRY_MSR_LOAD_COUNT', 2);
    b.vmx.vmwrite64(VMCS.VM_EXIT_MSR_STORE_ADDR, BigInt(STORE));
    b.w32('VM_EXIT_MSR_STORE_COUNT', 2);
    expect(b.enter()).toBe(EXIT_REASON.CPUID);
    expect(b.cpu.lstar).toBe(-(2 ** 47) + 0x401000);
    expect(b.mem.read64(STORE + 8)).toBe(0xffff800000401000n);
    expect(b.mem.read64(STORE + 24)).toBe(0x0000000000000606n);
    // PAT type 2 is reserved: WRMSR would #GP, so entry 2 of the list fails the VM entry.
    b.mem.write64(LOAD + 24, 0x0000000000000602n);
    expect(b.enter()).toBe((0x80000000 | EXIT_REASON.MSR_LOAD_FAIL) >>> 0);
    expect(b.rn('EXIT_QUALIFICATION')).toBe(2);
    // SDM 27.8: the failed entry loaded host state, as a VM exit does.
    expect(b.cpu.rip).toBe(0x7000);
    expect(b.cpu.seg[SEG.CS]!.selector).toBe(0x10);
  });

  it('a VM exit whose MSR-store or host MSR-load list fails is a VMX abort: indicator 1 or 4 in the VMCS region, then shutdown', () => {
    for (const [list, index, value, indicator] of [
      ['store', 0x9e, 0n, 1], // IA32_SMBASE: readable only in SMM
      ['load', 0x277, 0x02n, 4], // a reserved PAT type: WRMSR would #GP
    ] as const) {
      const b = makeBare();
      b.poke(0x1000, [0x0f, 0xa2]);
      const LIST = 0x5000;
      b.mem.write32(LIST, index);
      b.mem.write64(LIST + 8, value);
      b.vmx.vmwrite64(list === 'store' ? VMCS.VM_EXIT_MSR_STORE_ADDR : VMCS.VM_EXIT_MSR_LOAD_ADDR, BigInt(LIST));
      b.w32(list === 'store' ? 'VM_EXIT_MSR_STORE_COUNT' : 'VM_EXIT_MSR_LOAD_COUNT', 1);
      expect(b.mem.read32(b.vmx.vmcs.hpa + 4), list).toBe(0);
      // VMLAUNCH itself: after a store failure the CPU aborts in guest state, where no VMREAD could run.
      b.vmx.vmlaunch();
      expect(b.mem.read32(b.vmx.vmcs.hpa + 4), list).toBe(indicator);
      expect(b.cpu.activity, list).toBe(ACTIVITY.SHUTDOWN);
      expect(b.vmx.guest, list).toBe(false);
    }
  });

  it('a VM entry that fails on its MSR-load list ends in a VMX abort too when the VM-exit MSR-load list then fails (SDM 27.8)', () => {
    const b = makeBare();
    b.poke(0x1000, [0x0f, 0xa2]);
    const ENTRY_LIST = 0x5000, EXIT_LIST = 0x5100;
    b.mem.write32(ENTRY_LIST, 0x277); b.mem.write64(ENTRY_LIST + 8, 0x02n); // a reserved PAT type
    b.mem.write32(EXIT_LIST, 0x277); b.mem.write64(EXIT_LIST + 8, 0x02n);
    b.vmx.vmwrite64(VMCS.VM_ENTRY_MSR_LOAD_ADDR, BigInt(ENTRY_LIST));
    b.w32('VM_ENTRY_MSR_LOAD_COUNT', 1);
    b.vmx.vmwrite64(VMCS.VM_EXIT_MSR_LOAD_ADDR, BigInt(EXIT_LIST));
    b.w32('VM_EXIT_MSR_LOAD_COUNT', 1);
    b.vmx.vmlaunch();
    expect(b.vmx.vmcs.lo[FIELD.VM_EXIT_REASON]! >>> 0).toBe((0x80000000 | EXIT_REASON.MSR_LOAD_FAIL) >>> 0);
    expect(b.mem.read32(b.vmx.vmcs.hpa + 4)).toBe(4);
    expect(b.cpu.activity).toBe(ACTIVITY.SHUTDOWN);
  });

  it('MOV to CR0 touching a host-owned bit: reason 28; reads see the read shadow', () => {
    const b = makeBare();
    // mov eax,cr0 ; mov ebx,eax ; or al,1 ; mov cr0,eax
    b.poke(0x1000, [0x0f, 0x20, 0xc0, 0x66, 0x89, 0xc3, 0x0c, 0x01, 0x0f, 0x22, 0xc0]);
    b.wn('CR0_GUEST_HOST_MASK', 0x80000021);
    b.wn('CR0_READ_SHADOW', 0x10);
    expect(b.enter()).toBe(EXIT_REASON.CR_ACCESS);
    expect(b.rn('EXIT_QUALIFICATION')).toBe(0); // CR0, MOV to CR, EAX
    expect(b.cpu.ext).toBe(b.vmx);
    expect(b.rn('GUEST_RIP')).toBe(0x1008);
  });

  it('MOV to DR7 with MOV-DR exiting: reason 29', () => {
    const b = makeBare();
    b.poke(0x1000, [0x0f, 0x23, 0xfb]); // mov dr7,ebx
    setControl(b, 'CPU_BASED_VM_EXEC_CONTROL', CPU_BASED.MOV_DR_EXITING);
    expect(b.enter()).toBe(EXIT_REASON.DR_ACCESS);
    expect(b.rn('EXIT_QUALIFICATION')).toBe(7 | (3 << 8));
  });

  it('an EPT violation reports the access, the GPA and the guest-linear address', () => {
    const b = makeBare();
    // mov ax,0x2000; mov ds,ax; mov byte [0x10],0x55
    b.poke(0x1000, [0xb8, 0x00, 0x20, 0x8e, 0xd8, 0xc6, 0x06, 0x10, 0x00, 0x55]);
    expect(b.enter()).toBe(EXIT_REASON.EPT_VIOLATION);
    expect(b.rn('GUEST_PHYSICAL_ADDRESS')).toBe(0x20010);
    expect(b.rn('GUEST_LINEAR_ADDRESS')).toBe(0x20010);
    const q = b.rn('EXIT_QUALIFICATION');
    expect(q & 0x3f).toBe(0x2); // a write, to a not-present entry
    expect(q & 0x180).toBe(0x180); // linear address valid, final translation
    expect(b.rn('GUEST_RIP')).toBe(0x1005);
  });

  it('with EPT A/D flags, a page walk access to a guest page table is a write: a read-only EPT page faults, a writable one turns dirty', () => {
    // 32-bit protected mode with 4 MiB pages: one page directory at GPA 0x3000 maps 0-4 MiB.
    const setUp = () => {
      const b = makeBare();
      b.poke(0x3000, [0x83 | 0x20, 0x00, 0x00, 0x00]); // PDE 0: present, writable, accessed, PS
      b.poke(0x1000, [0xf4]); // hlt
      for (const sr of ['CS', 'SS', 'DS', 'ES', 'FS', 'GS'] as const) {
        b.w32(`GUEST_${sr}_LIMIT`, 0xffffffff);
        b.w32(`GUEST_${sr}_AR_BYTES`, sr === 'CS' ? 0xc09b : 0xc093);
        b.w32(`GUEST_${sr}_SELECTOR`, sr === 'CS' ? 0x8 : 0x10);
      }
      b.wn('GUEST_CR0', (CR0_PE | CR0_PG | CR0_ET | CR0_NE) >>> 0);
      b.wn('GUEST_CR4', CR4_PSE | CR4_VMXE);
      b.wn('GUEST_CR3', 0x3000);
      b.wn('EPT_POINTER', EPT_PML4 | 0x1e | EPTP_AD); // WB, 4 levels, A/D flags on
      return b;
    };
    const ro = setUp();
    ro.mem.write32(EPT_PT + 3 * 8, (GUEST_HPA + 0x3000) | 1 | (6 << 3)); // the page directory: read-only
    expect(ro.enter()).toBe(EXIT_REASON.EPT_VIOLATION);
    expect(ro.rn('GUEST_PHYSICAL_ADDRESS')).toBe(0x3000);
    const q = ro.rn('EXIT_QUALIFICATION');
    expect(q & 0x3).toBe(0x3); // the walk's read, counted as a write
    expect(q & 0x38).toBe(0x8); // the entry allowed reads only
    expect(q & 0x180).toBe(0x80); // linear address valid; not the final translation
    const rw = setUp();
    expect(rw.enter()).toBe(EXIT_REASON.HLT);
    expect(rw.mem.read32(EPT_PT + 3 * 8) & 0x300).toBe(0x300); // accessed and dirty
    expect(rw.mem.read32(EPT_PT + 1 * 8) & 0x300).toBe(0x100); // the code page: accessed only
  });

  it('an EPT misconfiguration (write without read): reason 49', () => {
    const b = makeBare();
    b.mem.write32(EPT_PT + 2 * 8, (GUEST_HPA + 0x2000) | 2 | (6 << 3));
    b.poke(0x1000, [0xa0, 0x00, 0x20]); // mov al,[0x2000]
    expect(b.enter()).toBe(EXIT_REASON.EPT_MISCONFIG);
    expect(b.rn('GUEST_PHYSICAL_ADDRESS')).toBe(0x2000);
  });

  it('an exception in the exception bitmap: reason 0 with the interruption information', () => {
    const b = makeBare();
    b.poke(0x1000, [0x0f, 0x0b]); // ud2
    b.w32('EXCEPTION_BITMAP', 1 << 6);
    expect(b.enter()).toBe(EXIT_REASON.EXCEPTION_NMI);
    expect(b.r32('VM_EXIT_INTR_INFO')).toBe(0x80000306);
    expect(b.rn('GUEST_RIP')).toBe(0x1000);
  });

  it('a VMX instruction in protected-mode non-root operation exits (VMXOFF: reason 26)', () => {
    const b = makeBare();
    b.poke(0x1000, [0x0f, 0x01, 0xc4]);
    b.wn('GUEST_CR0', 0x31); // PE without paging
    expect(b.enter()).toBe(EXIT_REASON.VMOFF);
  });

  it('an external interrupt with "acknowledge interrupt on exit": reason 1 with the vector', () => {
    const b = makeBare();
    b.poke(0x1000, [0xeb, 0xfe]); // jmp $
    b.cpu.raiseInterrupt(0x31);
    expect(b.enter()).toBe(EXIT_REASON.EXTERNAL_INTERRUPT);
    expect(b.r32('VM_EXIT_INTR_INFO')).toBe(0x80000031);
    expect(b.cpu.pendingInterrupt).toBe(-1);
  });

  it('the interrupt window: reason 7 once RFLAGS.IF=1 and the STI shadow is over', () => {
    const b = makeBare();
    b.poke(0x1000, [0x90, 0xfb, 0x90, 0xf4]); // nop; sti; nop; hlt
    setControl(b, 'CPU_BASED_VM_EXEC_CONTROL', CPU_BASED.INTR_WINDOW_EXITING);
    expect(b.enter()).toBe(EXIT_REASON.INTERRUPT_WINDOW);
    expect(b.rn('GUEST_RIP')).toBe(0x1003);
  });

  it('the NMI window: reason 8 when no NMI blocking', () => {
    const b = makeBare();
    b.poke(0x1000, HLT);
    setControl(b, 'CPU_BASED_VM_EXEC_CONTROL', CPU_BASED.NMI_WINDOW_EXITING);
    expect(b.enter()).toBe(EXIT_REASON.NMI_WINDOW);
    expect(b.rn('GUEST_RIP')).toBe(0x1000);
  });

  it('the VMX-preemption timer: reason 52, and the timer saved as 0', () => {
    const b = makeBare();
    b.poke(0x1000, [0xeb, 0xfe]);
    setControl(b, 'PIN_BASED_VM_EXEC_CONTROL', PIN_BASED.VMX_PREEMPTION_TIMER);
    setControl(b, 'VM_EXIT_CONTROLS', 1 << 22);
    b.w32('VMX_PREEMPTION_TIMER_VALUE', 3);
    const start = b.cpu.icount;
    expect(b.enter()).toBe(EXIT_REASON.PREEMPTION_TIMER);
    // The timer counts retired instructions at 2^5 per tick here (IA32_VMX_MISC bits 4:0).
    expect(b.cpu.icount - start).toBe(3 * 32);
    expect(b.r32('VMX_PREEMPTION_TIMER_VALUE')).toBe(0);
  });

  it('the monitor trap flag: reason 37 after each instruction, inside a straight-line block too', () => {
    const b = makeBare();
    // inc ax ; inc ax ; nop ; hlt: one decoded block, stepped one instruction per entry.
    b.poke(0x1000, [0x40, 0x40, 0x90, 0xf4]);
    setControl(b, 'CPU_BASED_VM_EXEC_CONTROL', CPU_BASED.MONITOR_TRAP_FLAG);
    for (const rip of [0x1001, 0x1002, 0x1003]) {
      const start = b.cpu.icount;
      expect(b.enter()).toBe(EXIT_REASON.MONITOR_TRAP_FLAG);
      expect(b.cpu.icount - start).toBe(1);
      expect(b.rn('GUEST_RIP')).toBe(rip);
    }
  });

  it('a triple fault: reason 2', () => {
    const b = makeBare();
    b.poke(0x1000, [0x0f, 0x0b]);
    b.w32('GUEST_IDTR_LIMIT', 0);
    expect(b.enter()).toBe(EXIT_REASON.TRIPLE_FAULT);
  });

  it('event injection: an injected INT 0x10 vectors through the real-mode IVT', () => {
    const b = makeBare();
    b.poke(0x40, [0x00, 0x20, 0x00, 0x00]); // IVT[0x10] = 0000:2000
    b.poke(0x2000, HLT);
    b.poke(0x1000, HLT);
    b.w32('VM_ENTRY_INTR_INFO_FIELD', 0x80000410); // software interrupt 0x10
    b.w32('VM_ENTRY_INSTRUCTION_LEN', 2);
    expect(b.enter()).toBe(EXIT_REASON.HLT);
    expect(b.rn('GUEST_RIP')).toBe(0x2000);
    // The return address pushed is past the (virtual) 2-byte INT instruction.
    expect(b.mem.read16(GUEST_HPA + 0x8000 - 6)).toBe(0x1002);
    expect(b.r32('VM_ENTRY_INTR_INFO_FIELD') & 0x80000000).toBe(0);
  });

  it('a VM exit during event delivery records the IDT-vectoring information', () => {
    const b = makeBare();
    b.poke(0x40, [0x00, 0x20, 0x00, 0x00]);
    b.poke(0x1000, HLT);
    b.wn('GUEST_SS_BASE', 0x20000); // the stack the delivery pushes to is outside the EPT map
    b.w32('VM_ENTRY_INTR_INFO_FIELD', 0x80000010); // external interrupt 0x10
    b.wn('GUEST_RFLAGS', 0x202);
    expect(b.enter()).toBe(EXIT_REASON.EPT_VIOLATION);
    expect(b.r32('IDT_VECTORING_INFO_FIELD')).toBe(0x80000010);
    expect(b.rn('GUEST_PHYSICAL_ADDRESS')).toBe(0x27ffe);
    expect(b.rn('GUEST_RIP')).toBe(0x1000);
  });

  it('segment registers: an exit saves the ones the guest changed, the next entry loads a VMWRITE, the host gets its own', () => {
    const b = makeBare();
    // mov ax, 0x1234 ; mov ds, ax ; cpuid ; cpuid
    b.poke(0x1000, [0xb8, 0x34, 0x12, 0x8e, 0xd8, 0x0f, 0xa2, 0x0f, 0xa2]);
    const esBefore = b.rn('GUEST_ES_BASE');
    expect(b.enter()).toBe(EXIT_REASON.CPUID);
    expect(b.r32('GUEST_DS_SELECTOR')).toBe(0x1234);
    expect(b.rn('GUEST_DS_BASE')).toBe(0x12340);
    expect(b.rn('GUEST_ES_BASE')).toBe(esBefore);
    // Host state: CS/SS from the host-state area, frozen (nothing may change them in place).
    expect(b.cpu.seg[SEG.CS]!.selector).toBe(b.r32('HOST_CS_SELECTOR'));
    expect(Object.isFrozen(b.cpu.seg[SEG.CS])).toBe(true);
    b.wn('GUEST_RIP', b.rn('GUEST_RIP') + 2);
    b.w32('GUEST_ES_SELECTOR', 0x2000);
    b.wn('GUEST_ES_BASE', 0x20000);
    expect(b.enter()).toBe(EXIT_REASON.CPUID);
    // The VMWRITE reached the guest (it ran with it and saved it back), DS kept what the guest loaded.
    expect(b.rn('GUEST_ES_BASE')).toBe(0x20000);
    expect(b.r32('GUEST_DS_SELECTOR')).toBe(0x1234);
    // A host selector written between exits is what the next exit loads.
    b.w32('HOST_FS_SELECTOR', 0x28);
    b.wn('GUEST_RIP', 0x1005);
    expect(b.enter()).toBe(EXIT_REASON.CPUID);
    expect(b.cpu.seg[SEG.FS]!.selector).toBe(0x28);
    expect(b.cpu.seg[SEG.FS]!.ar).toBe(0xc093);
  });

  it('GDTR and IDTR: LGDT in the guest is saved at the exit, a VMWRITE of the IDTR reaches the guest', () => {
    const b = makeBare();
    // lgdt [0x3000] ; cpuid ; sidt [0x3010] ; cpuid
    b.poke(0x1000, [0x0f, 0x01, 0x16, 0x00, 0x30, 0x0f, 0xa2, 0x0f, 0x01, 0x0e, 0x10, 0x30, 0x0f, 0xa2]);
    b.poke(0x3000, [0x27, 0x00, 0x00, 0x50, 0x01, 0x00]); // limit 0x27, base 0x15000
    expect(b.enter()).toBe(EXIT_REASON.CPUID);
    expect(b.rn('GUEST_GDTR_BASE')).toBe(0x15000);
    expect(b.r32('GUEST_GDTR_LIMIT')).toBe(0x27);
    expect(b.cpu.gdtr.limit).toBe(0xffff); // the host's, SDM 28.5.2
    b.wn('GUEST_RIP', 0x1007);
    b.wn('GUEST_IDTR_BASE', 0x9000);
    b.w32('GUEST_IDTR_LIMIT', 0x3ff);
    expect(b.enter()).toBe(EXIT_REASON.CPUID);
    expect(b.mem.read16(GUEST_HPA + 0x3010)).toBe(0x3ff);
    expect(b.mem.read32(GUEST_HPA + 0x3012)).toBe(0x9000);
  });

  it('the checks every VMX instruction starts with run again after a mode change: #UD in compatibility mode, #GP(0) at CPL 3', () => {
    const b = makeBare();
    const vmread = () => b.cpu.catchFault(() => { b.vmx.vmread32(VMCS.VIRTUAL_PROCESSOR_ID); });
    expect(vmread()).toBeNull(); // passes in 64-bit mode at CPL 0, and is remembered until the mode changes
    b.cpu.seg[SEG.CS] = makeSegment(0x10, 0, 0xffffffff, 0xc09b); // 32-bit code in IA-32e mode
    b.cpu.stateChanged();
    expect(vmread()?.vector).toBe(VEC.UD);
    b.cpu.seg[SEG.CS] = makeSegment(0x10, 0, 0xffffffff, 0xa09b);
    b.cpu.stateChanged();
    expect(vmread()).toBeNull();
    b.cpu.seg[SEG.SS] = makeSegment(0x1b, 0, 0xffffffff, 0xc0f3); // DPL 3 stack: CPL 3
    b.cpu.stateChanged();
    expect(vmread()).toEqual({ vector: VEC.GP, errorCode: 0 });
  });

  it('VMRESUME continues after an exit, and VPID tags the TLB', () => {
    const b = makeBare();
    b.poke(0x1000, [0x0f, 0xa2, 0xf4]);
    expect(b.enter()).toBe(EXIT_REASON.CPUID);
    b.wn('GUEST_RIP', b.rn('GUEST_RIP') + b.r32('VM_EXIT_INSTRUCTION_LEN'));
    expect(b.enter()).toBe(EXIT_REASON.HLT);
    expect(b.vmx.entryCount).toBe(2);
    expect(b.vmx.lastStop).toBe(STOP.VMEXIT);
    void SECONDARY_EXEC;
  });
});
