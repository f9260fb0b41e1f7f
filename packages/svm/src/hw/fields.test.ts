import { describe, expect, it } from 'vitest';
import { VMCB, VMCB_FIELDS, SVM_EXIT, INTERCEPT_BIT } from './fields.js';

describe('VMCB field table (APM Appendix B)', () => {
  it('has no two fields overlapping, and every field inside its area', () => {
    const sorted = [...VMCB_FIELDS].sort((a, b) => a[1] - b[1]);
    for (let i = 1; i < sorted.length; i++) {
      const [prevName, prevOff, prevSize] = sorted[i - 1]!;
      const [name, off] = sorted[i]!;
      expect(off, `${name} overlaps ${prevName}`).toBeGreaterThanOrEqual(prevOff + prevSize);
    }
    for (const [name, off, size, group] of VMCB_FIELDS) {
      expect(off + size, name).toBeLessThanOrEqual(0x1000);
      const control = ['intercepts', 'control', 'interrupts', 'exit'].includes(group);
      expect(control ? off < 0x400 : off >= 0x400, name).toBe(true);
      if (size === 8) expect(off % 8, `${name} is naturally aligned`).toBe(0);
    }
  });

  it('puts the fields at the offsets svm.h and the APM give', () => {
    const expected: Record<string, number> = {
      intercept_cr: 0x000, intercept_dr: 0x004, intercept_exceptions: 0x008, intercept_misc1: 0x00c,
      intercept_misc2: 0x010, intercept_misc3: 0x014, pause_filter_thresh: 0x03c, pause_filter_count: 0x03e,
      iopm_base_pa: 0x040, msrpm_base_pa: 0x048, tsc_offset: 0x050, asid: 0x058, tlb_ctl: 0x05c,
      int_ctl: 0x060, int_vector: 0x064, int_state: 0x068, exit_code: 0x070, exit_info_1: 0x078,
      exit_info_2: 0x080, exit_int_info: 0x088, nested_ctl: 0x090, event_inj: 0x0a8, nested_cr3: 0x0b0,
      virt_ext: 0x0b8, clean: 0x0c0, next_rip: 0x0c8, insn_len: 0x0d0,
      es_selector: 0x400, cs_selector: 0x410, ss_selector: 0x420, ds_selector: 0x430, fs_selector: 0x440,
      gs_selector: 0x450, gdtr_limit: 0x464, ldtr_selector: 0x470, idtr_limit: 0x484, tr_selector: 0x490,
      cpl: 0x4cb, efer: 0x4d0, cr4: 0x548, cr3: 0x550, cr0: 0x558, dr7: 0x560, dr6: 0x568, rflags: 0x570,
      rip: 0x578, rsp: 0x5d8, rax: 0x5f8, star: 0x600, lstar: 0x608, cstar: 0x610, sfmask: 0x618,
      kernel_gs_base: 0x620, sysenter_cs: 0x628, sysenter_esp: 0x630, sysenter_eip: 0x638, cr2: 0x640,
      g_pat: 0x668,
    };
    for (const [name, off] of Object.entries(expected)) expect(VMCB[name as keyof typeof VMCB], name).toBe(off);
  });

  it('numbers exit codes and intercept bits as the APM does', () => {
    expect([SVM_EXIT.VINTR, SVM_EXIT.CPUID, SVM_EXIT.HLT, SVM_EXIT.IOIO, SVM_EXIT.MSR, SVM_EXIT.SHUTDOWN]).toEqual([0x64, 0x72, 0x78, 0x7b, 0x7c, 0x7f]);
    expect([SVM_EXIT.VMRUN, SVM_EXIT.VMMCALL, SVM_EXIT.XSETBV, SVM_EXIT.NPF, SVM_EXIT.ERR]).toEqual([0x80, 0x81, 0x8d, 0x400, -1]);
    // Word 3 bit n is exit code 0x60 + n for the misc1 intercepts (INTR .. SHUTDOWN).
    expect(INTERCEPT_BIT.CPUID - 96 + 0x60).toBe(SVM_EXIT.CPUID);
    expect(INTERCEPT_BIT.SHUTDOWN - 96 + 0x60).toBe(SVM_EXIT.SHUTDOWN);
    expect(INTERCEPT_BIT.XSETBV - 128 + 0x80).toBe(SVM_EXIT.XSETBV);
  });
});
