/**
 * Robustness of the system-architecture code against arbitrary guest state: random GDT, IDT,
 * TSS and page-table contents, random selectors, modes and operands. Every operation must
 * either complete or raise an x86 exception / stop through the Cpu; nothing else may escape.
 */
import { describe, expect, it } from 'vitest';
import { CR0, CR4, EFER, GPR, RFLAGS, SEG } from '../src/cpu/state.js';
import { EVENT_TYPE, makeIntrInfo } from '../src/cpu/events.js';
import { ACCESS, DESC_OP, type InsnOperand } from '../src/cpu/virt.js';
import { deliverEvent, iret } from '../src/exceptions/deliver.js';
import { translateLinear } from '../src/mmu/page-walk.js';
import { farCall, farJump, farReturn, loadSegment } from '../src/seg/segments.js';
import {
  checkIoPermission, descTableInsn, movToCr, rdmsrValue, sysexitInsn, sysretInsn, syscallInsn, wrmsrValue,
} from '../src/system/system.js';
import { Fault, Stopped, sysMachine } from './system-harness.js';

/** xorshift32: deterministic, seedable. */
function rng(seed: number): () => number {
  let s = seed | 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
}

const MODES = [
  { cr0: CR0.ET, cr4: 0, efer: 0 },
  { cr0: CR0.PE | CR0.ET, cr4: 0, efer: 0 },
  { cr0: CR0.PE | CR0.PG | CR0.ET, cr4: CR4.PSE, efer: 0 },
  { cr0: CR0.PE | CR0.PG | CR0.ET, cr4: CR4.PAE, efer: EFER.NXE },
  { cr0: CR0.PE | CR0.PG | CR0.ET, cr4: CR4.PAE, efer: EFER.LME | EFER.LMA | EFER.SCE | EFER.NXE },
] as const;

describe('system operations on random state', () => {
  it('raise only x86 exceptions or stops (1000 random cases)', () => {
    const next = rng(0x5eed);
    let faults = 0;
    let completed = 0;
    for (let n = 0; n < 1000; n++) {
      const { cpu, mem } = sysMachine(0x100000);
      // Random bytes in the tables' first pages: GDT 0x1000, IDT 0x2000, TSS 0x3000, paging 0x4000-0x7fff.
      for (let a = 0x1000; a < 0x8000; a += 4) mem.write32(a, next() & (next() & 1 ? 0xffffffff : 0x00ffffff));
      const mode = MODES[next() % MODES.length]!;
      cpu.cr0 = mode.cr0;
      cpu.cr4 = mode.cr4;
      cpu.efer = mode.efer;
      cpu.cr3 = 0x4000 + (next() % 4) * 0x1000;
      cpu.gdtr = { base: 0x1000, limit: next() & 0xfff };
      cpu.idtr = { base: 0x2000, limit: next() & 0xfff };
      cpu.seg[SEG.TR] = { selector: 0x28, base: 0x3000, limit: next() & 0xfff, ar: [0x8b, 0x89, 0x83, 0x10082][next() % 4]! };
      cpu.seg[SEG.CS] = { selector: next() & 0xffff, base: 0, limit: 0xffffffff, ar: [0xc09b, 0xa09b, 0xc0fb, 0xa0fb, 0x9b][next() % 5]! };
      cpu.seg[SEG.SS] = { selector: next() & 0xffff, base: 0, limit: 0xffffffff, ar: [0xc093, 0xc0f3, 0x93][next() % 3]! };
      cpu.gpr[GPR.RSP] = next() & 0xffff0;
      cpu.gprHi[GPR.RSP] = next() & 1 ? -1 : 0;
      cpu.setRflags(RFLAGS.FIXED1 | (next() & (RFLAGS.IF | RFLAGS.IOPL | RFLAGS.NT | RFLAGS.VM)));
      cpu.stateChanged();
      const sel = next() & 0xffff;
      const operand: InsnOperand = {
        isReg: (next() & 1) === 1, reg1: next() & 15, reg2: 0, seg: SEG.DS, base: -1, index: -1, scale: 0,
        addrSize: 32, opSize: [16, 32, 64][next() % 3] as 16 | 32 | 64, disp: 0, offset: next() & 0xfffff,
      };
      const ops: (() => void)[] = [
        () => translateLinear(cpu, next() * 0x10000 + next(), [ACCESS.READ, ACCESS.WRITE, ACCESS.FETCH | ACCESS.USER][next() % 3]!),
        () => loadSegment(cpu, next() % 6, sel),
        () => farJump(cpu, sel, next(), [16, 32, 64][next() % 3] as 16 | 32 | 64),
        () => farCall(cpu, sel, next(), [16, 32, 64][next() % 3] as 16 | 32 | 64, next()),
        () => farReturn(cpu, [16, 32, 64][next() % 3] as 16 | 32 | 64, next() & 0xff),
        () => deliverEvent(cpu, makeIntrInfo(next() & 0xff, [0, 2, 3, 4, 5, 6][next() % 6]!, (next() & 1) === 1), next() & 0xffff, 2),
        () => iret(cpu, [16, 32, 64][next() % 3] as 16 | 32 | 64),
        () => descTableInsn(cpu, next() % 8, operand),
        () => { cpu.gpr[GPR.RAX] = next(); movToCr(cpu, [0, 3, 4, 8][next() % 4]!, GPR.RAX); },
        () => wrmsrValue(cpu, [0x10, 0x1b, 0x277, 0x2ff, 0xc0000080, 0xc0000100, 0x200][next() % 7]!, BigInt(next()) << BigInt(next() % 40)),
        () => rdmsrValue(cpu, next()),
        () => checkIoPermission(cpu, next() & 0xffff, [1, 2, 4][next() % 3]!),
        () => syscallInsn(cpu),
        () => sysretInsn(cpu, next() & 1 ? 64 : 32),
        () => sysexitInsn(cpu, next() & 1 ? 64 : 32),
      ];
      try {
        ops[next() % ops.length]!();
        completed++;
      } catch (e) {
        if (!(e instanceof Fault) && !(e instanceof Stopped)) throw e;
        faults++;
      }
    }
    // Both outcomes happen: the generator reaches the successful paths too.
    expect(faults).toBeGreaterThan(50);
    expect(completed).toBeGreaterThan(50);
  });
});
