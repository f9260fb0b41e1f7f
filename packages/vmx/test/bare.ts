/**
 * The VMX silicon on a real @kvmts/x86 CPU, driven by a test the way a hypervisor drives it:
 * VMXON, VMCLEAR, VMPTRLD, VMWRITE, VMLAUNCH. The guest is real-mode code (unrestricted guest)
 * whose first 64 KiB of guest-physical memory EPT maps, 4 KiB at a time, to HPA GUEST_HPA.
 */
import { Bus, Cpu, PhysMemory, CR0, CR4, EFER, SEG, makeSegment } from '@kvmts/x86';
import { intelCpuModel, VmxSilicon, VMCS, VMCS_REVISION_ID, PIN_BASED, CPU_BASED, SECONDARY_EXEC, VM_EXIT, VM_ENTRY } from '../src/index.js';

export const GUEST_HPA = 0x400000;
export const EPT_PML4 = 0x100000;
const EPT_PDPT = 0x101000;
const EPT_PD = 0x102000;
export const EPT_PT = 0x103000;
const VMXON_PA = 0x10000;
const VMCS_PA = 0x11000;
export const MSR_BITMAP = 0x12000;
export const IO_BITMAP_A = 0x13000;
export const IO_BITMAP_B = 0x14000;
const HOST_RIP = 0x7000;
/** Guest-physical pages EPT maps (RWX, WB). */
export const MAPPED_PAGES = 16;

export interface Bare {
  cpu: Cpu;
  vmx: VmxSilicon;
  mem: PhysMemory;
  /** Writes guest code/data at a guest-physical address. */
  poke(gpa: number, bytes: number[]): void;
  w32(field: keyof typeof VMCS, v: number): void;
  wn(field: keyof typeof VMCS, v: number): void;
  r32(field: keyof typeof VMCS): number;
  rn(field: keyof typeof VMCS): number;
  /** VMLAUNCH (first time) or VMRESUME, returning the exit reason. */
  enter(): number;
}

export function makeBare(): Bare {
  const mem = new PhysMemory(16 << 20);
  const model = intelCpuModel();
  const cpu = new Cpu({ bus: new Bus(mem), model });
  const vmx = model.createExtension(cpu) as VmxSilicon;
  cpu.ext = vmx;
  // A 64-bit kernel's state (the host).
  cpu.cr0 = (CR0.PE | CR0.MP | CR0.ET | CR0.NE | CR0.WP | CR0.AM | CR0.PG) | 0;
  cpu.cr4 = CR4.PAE | CR4.PGE | CR4.OSFXSR | CR4.VMXE;
  cpu.efer = EFER.SCE | EFER.LME | EFER.LMA | EFER.NXE;
  cpu.cr3 = 0x8000;
  cpu.seg[SEG.CS] = makeSegment(0x10, 0, 0xffffffff, 0xa09b);
  cpu.seg[SEG.SS] = makeSegment(0x18, 0, 0xffffffff, 0xc093);
  cpu.seg[SEG.TR] = makeSegment(0x40, 0x9000, 0x67, 0x8b);
  cpu.rip = HOST_RIP;
  cpu.stateChanged();
  // EPT: PML4 -> PDPT -> PD -> PT for GPA 0..64K.
  mem.write32(EPT_PML4, EPT_PDPT | 7);
  mem.write32(EPT_PDPT, EPT_PD | 7);
  mem.write32(EPT_PD, EPT_PT | 7);
  for (let i = 0; i < MAPPED_PAGES; i++) mem.write32(EPT_PT + i * 8, (GUEST_HPA + i * 4096) | 7 | (6 << 3));
  mem.write32(VMXON_PA, VMCS_REVISION_ID);
  mem.write32(VMCS_PA, VMCS_REVISION_ID);
  vmx.vmxon(VMXON_PA);
  vmx.vmclear(VMCS_PA);
  vmx.vmptrld(VMCS_PA);
  const w32 = (f: keyof typeof VMCS, v: number) => { vmx.vmwrite32(VMCS[f], v); };
  const wn = (f: keyof typeof VMCS, v: number) => { vmx.vmwriteNum(VMCS[f], v); };
  w32('PIN_BASED_VM_EXEC_CONTROL', 0x16 | PIN_BASED.EXT_INTR_MASK | PIN_BASED.NMI_EXITING | PIN_BASED.VIRTUAL_NMIS);
  w32('CPU_BASED_VM_EXEC_CONTROL', (0x04006172 | CPU_BASED.HLT_EXITING | CPU_BASED.UNCOND_IO_EXITING | CPU_BASED.ACTIVATE_SECONDARY_CONTROLS) >>> 0);
  w32('SECONDARY_VM_EXEC_CONTROL', SECONDARY_EXEC.ENABLE_EPT | SECONDARY_EXEC.ENABLE_VPID | SECONDARY_EXEC.UNRESTRICTED_GUEST);
  w32('VM_EXIT_CONTROLS', 0x00036dfb | VM_EXIT.HOST_ADDR_SPACE_SIZE | VM_EXIT.ACK_INTR_ON_EXIT | VM_EXIT.LOAD_IA32_EFER);
  w32('VM_ENTRY_CONTROLS', 0x000011fb | VM_ENTRY.LOAD_IA32_EFER);
  w32('VIRTUAL_PROCESSOR_ID', 1);
  vmx.vmwrite64(VMCS.EPT_POINTER, BigInt(EPT_PML4 | 0x1e));
  vmx.vmwrite64(VMCS.VMCS_LINK_POINTER, -1n);
  vmx.vmwrite64(VMCS.MSR_BITMAP, BigInt(MSR_BITMAP));
  vmx.vmwrite64(VMCS.IO_BITMAP_A, BigInt(IO_BITMAP_A));
  vmx.vmwrite64(VMCS.IO_BITMAP_B, BigInt(IO_BITMAP_B));
  wn('HOST_CR0', cpu.cr0 >>> 0);
  wn('HOST_CR3', cpu.cr3);
  wn('HOST_CR4', cpu.cr4);
  w32('HOST_CS_SELECTOR', 0x10);
  w32('HOST_SS_SELECTOR', 0x18);
  w32('HOST_TR_SELECTOR', 0x40);
  wn('HOST_TR_BASE', 0x9000);
  vmx.vmwrite64(VMCS.HOST_IA32_EFER, BigInt(cpu.efer));
  wn('HOST_RIP', HOST_RIP);
  wn('HOST_RSP', 0x6ff0);
  // Guest: real mode at 0:1000, as KVM's reset state with CS base 0.
  wn('GUEST_CR0', CR0.ET | CR0.NE);
  wn('GUEST_CR4', CR4.VMXE);
  for (const s of ['ES', 'CS', 'SS', 'DS', 'FS', 'GS'] as const) {
    w32(`GUEST_${s}_LIMIT`, 0xffff);
    w32(`GUEST_${s}_AR_BYTES`, s === 'CS' ? 0x9b : 0x93);
  }
  w32('GUEST_TR_AR_BYTES', 0x8b);
  w32('GUEST_TR_LIMIT', 0xffff);
  w32('GUEST_LDTR_AR_BYTES', 0x82);
  w32('GUEST_LDTR_LIMIT', 0xffff);
  w32('GUEST_GDTR_LIMIT', 0xffff);
  w32('GUEST_IDTR_LIMIT', 0x3ff);
  wn('GUEST_RIP', 0x1000);
  wn('GUEST_RSP', 0x8000);
  wn('GUEST_RFLAGS', 2);
  let launched = false;
  return {
    cpu, vmx, mem,
    poke: (gpa, bytes) => mem.writeBytes(GUEST_HPA + gpa, Uint8Array.from(bytes)),
    w32, wn,
    r32: (f) => vmx.vmread32(VMCS[f]),
    rn: (f) => vmx.vmreadNum(VMCS[f]),
    enter() {
      const st = launched ? vmx.vmresume() : vmx.vmlaunch();
      if (st !== 0) throw new Error(`VM entry failed: status ${st}, error ${vmx.vmread32(VMCS.VM_INSTRUCTION_ERROR)}, check ${vmx.lastFailedCheck?.name}`);
      const reason = vmx.vmread32(VMCS.VM_EXIT_REASON);
      if (!(reason & 0x80000000)) launched = true;
      return reason;
    },
  };
}

export function setControl(b: Bare, field: 'CPU_BASED_VM_EXEC_CONTROL' | 'SECONDARY_VM_EXEC_CONTROL' | 'PIN_BASED_VM_EXEC_CONTROL' | 'VM_EXIT_CONTROLS' | 'VM_ENTRY_CONTROLS', set: number, clear = 0): void {
  b.w32(field, ((b.r32(field) | set) & ~clear) >>> 0);
}
