/** Builds an SVM-capable fake CPU in host state with a host save area and a valid guest VMCB. */
import { amdCpuModel } from '../src/hw/model.js';
import type { SvmSilicon } from '../src/hw/silicon.js';
import { VmcbRegion } from '../src/hw/region.js';
import { INTERCEPT_BIT, VMCB, VMCB_SEG } from '../src/hw/fields.js';
import { MSR_VM_HSAVE_PA } from '../src/hw/caps.js';
import { FakeCpu, type Step } from './fake-cpu.js';

export const HSAVE_PA = 0x100000;
export const VMCB_PA = 0x101000;
export const IOPM_PA = 0x104000; // 3 pages
export const MSRPM_PA = 0x108000; // 2 pages
export const NCR3 = 0x200000;

export interface Rig {
  cpu: FakeCpu;
  svm: SvmSilicon;
  v: VmcbRegion;
  hsave: VmcbRegion;
}

export function setIntercept(v: VmcbRegion, bit: number): void {
  const off = VMCB.intercept_cr + 4 * (bit >>> 5);
  v.w32(off, v.r32(off) | (1 << (bit & 31)));
}

/** A real-mode guest at CS:IP 0:0x1000 with only the mandatory VMRUN intercept. */
export function writeRealModeGuest(v: VmcbRegion): void {
  v.mem.fill(v.pa, 4096, 0);
  setIntercept(v, INTERCEPT_BIT.VMRUN);
  v.w32(VMCB.asid, 1);
  v.w64(VMCB.iopm_base_pa, IOPM_PA);
  v.w64(VMCB.msrpm_base_pa, MSRPM_PA);
  for (const s of [VMCB_SEG.es, VMCB_SEG.ss, VMCB_SEG.ds, VMCB_SEG.fs, VMCB_SEG.gs]) {
    v.writeSeg(s, { selector: 0, base: 0, limit: 0xffff, ar: 0x93 });
  }
  v.writeSeg(VMCB_SEG.cs, { selector: 0, base: 0, limit: 0xffff, ar: 0x9b });
  v.writeDtr(VMCB_SEG.gdtr, { base: 0, limit: 0xffff });
  v.writeDtr(VMCB_SEG.idtr, { base: 0, limit: 0x3ff });
  v.w64(VMCB.efer, 0x1000);
  v.w64(VMCB.cr0, 0x10);
  v.w64(VMCB.rflags, 2);
  v.w64(VMCB.rip, 0x1000);
  v.w64(VMCB.rsp, 0x8000);
  v.w64(VMCB.rax, 0xabcd);
  v.w64(VMCB.dr6, 0xffff0ff0);
  v.w64(VMCB.dr7, 0x400);
}

export function rig(): Rig {
  const cpu = new FakeCpu(16 << 20, amdCpuModel()).asHost();
  const svm = cpu.ext as SvmSilicon;
  svm.wrmsr(MSR_VM_HSAVE_PA, BigInt(HSAVE_PA));
  const v = new VmcbRegion(cpu.bus.ram, VMCB_PA);
  writeRealModeGuest(v);
  return { cpu, svm, v, hsave: new VmcbRegion(cpu.bus.ram, HSAVE_PA) };
}

/** Runs the guest with `steps` as its instructions; returns the stop reason of VMRUN. */
export function runGuest(r: Rig, steps: Step[]): number {
  r.cpu.script = steps;
  return r.svm.vmrun(VMCB_PA);
}

export const exitCode = (r: Rig): number => r.v.r32(VMCB.exit_code) | 0;
export const info1 = (r: Rig): bigint => r.v.get('exit_info_1');
export const info2 = (r: Rig): bigint => r.v.get('exit_info_2');
