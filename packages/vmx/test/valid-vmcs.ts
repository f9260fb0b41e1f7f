/** A VMCS that passes every VM-entry check: a 64-bit host and a 64-bit flat guest with EPT, VPID and unrestricted guest. */
import { VMCS, VMCS_REVISION_ID, PIN_BASED, CPU_BASED, SECONDARY_EXEC, VM_EXIT, VM_ENTRY, type VmxSilicon } from '../src/index.js';
import { makeRegion, type FakeCpu } from './fake-cpu.js';
import type { PhysMemory } from '@kvmts/x86';

export const VMXON_PA = 0x10000;
export const VMCS_PA = 0x11000;
export const EPT_PML4 = 0x20000;

export function writeValidVmcs(vmx: VmxSilicon): void {
  const w32 = (n: keyof typeof VMCS, v: number) => vmx.vmwrite32(VMCS[n], v);
  const wn = (n: keyof typeof VMCS, v: number) => vmx.vmwriteNum(VMCS[n], v);
  w32('PIN_BASED_VM_EXEC_CONTROL', 0x16 | PIN_BASED.EXT_INTR_MASK | PIN_BASED.NMI_EXITING);
  w32('CPU_BASED_VM_EXEC_CONTROL', (0x04006172 | CPU_BASED.HLT_EXITING | CPU_BASED.UNCOND_IO_EXITING | CPU_BASED.ACTIVATE_SECONDARY_CONTROLS) >>> 0);
  w32('SECONDARY_VM_EXEC_CONTROL', SECONDARY_EXEC.ENABLE_EPT | SECONDARY_EXEC.ENABLE_VPID | SECONDARY_EXEC.UNRESTRICTED_GUEST);
  w32('VM_EXIT_CONTROLS', 0x00036dfb | VM_EXIT.HOST_ADDR_SPACE_SIZE | VM_EXIT.SAVE_IA32_EFER | VM_EXIT.LOAD_IA32_EFER);
  w32('VM_ENTRY_CONTROLS', 0x000011fb | VM_ENTRY.IA32E_MODE | VM_ENTRY.LOAD_IA32_EFER);
  w32('VIRTUAL_PROCESSOR_ID', 1);
  vmx.vmwrite64(VMCS.EPT_POINTER, BigInt(EPT_PML4 | 0x1e));
  vmx.vmwrite64(VMCS.VMCS_LINK_POINTER, -1n);
  // Host: 64-bit kernel state.
  wn('HOST_CR0', 0x80050033);
  wn('HOST_CR3', 0x1000);
  wn('HOST_CR4', 0x22a0);
  w32('HOST_CS_SELECTOR', 0x10);
  w32('HOST_SS_SELECTOR', 0x18);
  w32('HOST_TR_SELECTOR', 0x40);
  wn('HOST_TR_BASE', 0x5000);
  vmx.vmwrite64(VMCS.HOST_IA32_EFER, 0xd01n);
  wn('HOST_RIP', -0x7e000000);
  wn('HOST_RSP', -0x7e001000);
  // Guest: long64 as kvmts run sets it up.
  wn('GUEST_CR0', 0x80000033);
  wn('GUEST_CR3', 0x1fd000);
  wn('GUEST_CR4', 0x2020);
  vmx.vmwrite64(VMCS.GUEST_IA32_EFER, 0x500n);
  for (const s of ['ES', 'SS', 'DS', 'FS', 'GS'] as const) {
    w32(`GUEST_${s}_SELECTOR`, 0x10);
    w32(`GUEST_${s}_LIMIT`, 0xffffffff);
    w32(`GUEST_${s}_AR_BYTES`, 0xc093);
  }
  w32('GUEST_CS_SELECTOR', 0x08);
  w32('GUEST_CS_LIMIT', 0xffffffff);
  w32('GUEST_CS_AR_BYTES', 0xa09b);
  w32('GUEST_TR_AR_BYTES', 0x8b);
  w32('GUEST_TR_LIMIT', 0xffff);
  w32('GUEST_LDTR_AR_BYTES', 0x10000);
  w32('GUEST_GDTR_LIMIT', 0x17);
  w32('GUEST_IDTR_LIMIT', 0xffff);
  wn('GUEST_RIP', 0x1000);
  wn('GUEST_RFLAGS', 2);
}

/** VMXON, VMCLEAR and VMPTRLD a fresh VMCS, then fill it with writeValidVmcs. */
export function loadValidVmcs(vmx: VmxSilicon, mem: PhysMemory, _cpu: FakeCpu): void {
  makeRegion(mem, VMXON_PA, VMCS_REVISION_ID);
  makeRegion(mem, VMCS_PA, VMCS_REVISION_ID);
  vmx.vmxon(VMXON_PA);
  vmx.vmclear(VMCS_PA);
  vmx.vmptrld(VMCS_PA);
  writeValidVmcs(vmx);
}
