import { describe, expect, it } from 'vitest';
import { Bus } from '../src/bus.js';
import { Cpu } from '../src/cpu/cpu.js';
import { genericModel } from '../src/cpu/generic-model.js';
import { VEC } from '../src/cpu/events.js';
import { AR, SEG, makeSegment } from '../src/cpu/state.js';
import { INTERCEPT, STOP, VIRT_OP, type CpuModel, type VirtCpu, type VirtExtension } from '../src/cpu/virt.js';
import { PhysMemory } from '../src/mem/phys-memory.js';
import { assemble, hasAssembler } from './asm.js';
import { longMode } from './helpers.js';

interface Seen { what: string; a?: number; b?: number; len: number; rip: number; start: number }

/** Guest-mode silicon that lets everything through, with `parts` of it replaced. */
function siliconModel(parts: (cpu: Cpu) => Partial<VirtExtension>): CpuModel {
  return {
    ...genericModel,
    createExtension: (cpu: VirtCpu): VirtExtension => ({
      guest: true, execute: () => {}, intercept: () => false, event: () => {}, crRead: (_cr, v) => v, crWrite: (_cr, v) => v,
      translate: (gpa) => gpa, checkEvents: () => {}, rdmsr: () => undefined, wrmsr: () => false, tscOffset: () => 0n,
      ...parts(cpu as Cpu),
    }),
  };
}

/** A real-mode CPU over `mem`, at 0x1000 with CS base 0. */
function realModeCpu(mem: PhysMemory, model: CpuModel): Cpu {
  const cpu = new Cpu({ bus: new Bus(mem), model });
  cpu.seg[SEG.CS] = makeSegment(0, 0, 0xffff, 0x9b);
  cpu.rip = 0x1000;
  cpu.stateChanged();
  return cpu;
}

function guestCpu(code: Uint8Array, seen: Seen[], exitOn: string | null): Cpu {
  const mem = new PhysMemory(0x200000);
  mem.writeBytes(0x1000, code);
  return realModeCpu(mem, siliconModel((c) => {
    const note = (what: string, a?: number, b?: number): void => {
      seen.push({ what, ...(a === undefined ? {} : { a }), ...(b === undefined ? {} : { b }), len: c.insnLength, rip: c.rip, start: c.insnStart });
      if (what === exitOn) c.stop(STOP.VMEXIT);
    };
    return {
      execute: (op) => note(`execute:${op}`),
      intercept: (kind, a, b) => { note(`intercept:${kind}`, a, b); return false; },
    };
  }));
}

/** `dec si ; cpuid | jnz back | hlt` from SI = 30, on silicon whose CPUID exits once `n.calls` reaches 20 (endInsn). */
function cpuidLoopCpu(mem: PhysMemory, n: { calls: number }): Cpu {
  mem.writeBytes(0x1000, assemble('mov si, 30\n1: dec si\ncpuid\njnz 1b\nhlt', 16));
  return realModeCpu(mem, siliconModel((c) => ({
    intercept: (kind) => {
      if (kind !== INTERCEPT.CPUID || ++n.calls < 20) return false;
      c.endInsn(STOP.VMEXIT);
      return true;
    },
  })));
}

describe.skipIf(!hasAssembler)('the virtualization-extension seam', () => {
  it('hands VMX/SVM opcodes to ext.execute and asks before interceptable instructions, with length and RIPs', () => {
    const seen: Seen[] = [];
    const cpu = guestCpu(assemble('vmcall\ncpuid\nout 0x80, al\nhlt', 16), seen, null);
    cpu.gpr[0] = 0; // CPUID leaf 0
    expect(cpu.run(100)).toBe(STOP.HLT);
    expect(seen.map((s) => [s.what, s.len, s.start])).toEqual([
      [`execute:${VIRT_OP.VMCALL}`, 3, 0x1000],
      [`intercept:${INTERCEPT.CPUID}`, 2, 0x1003],
      [`intercept:${INTERCEPT.IO}`, 2, 0x1005],
      [`intercept:${INTERCEPT.HLT}`, 1, 0x1007],
    ]);
    expect(seen[2]!.a).toBe(0x80);
    expect(seen[0]!.rip).toBe(0x1003); // RIP is already past the instruction in a hook
  });

  it('a VM exit from a hook stops run() before the instruction retires', () => {
    const seen: Seen[] = [];
    const cpu = guestCpu(assemble('nop\nvmcall\nhlt', 16), seen, `execute:${VIRT_OP.VMCALL}`);
    expect(cpu.run(100)).toBe(STOP.VMEXIT);
    expect(cpu.icount).toBe(1);
    expect(cpu.insnStart).toBe(0x1001);
  });

  it('an intercept that ends the instruction with endInsn stops run() before it retires, also in a fused block', () => {
    // dec si ; cpuid | jnz back | hlt: the CPUID block runs fused after 8 passes; the 20th CPUID exits.
    const n = { calls: 0 };
    const cpu = cpuidLoopCpu(new PhysMemory(0x200000), n);
    cpu.gpr[0] = 0x1234; // CPUID leaf 0x1234: an instruction that retired would change EAX
    expect(cpu.run(1000)).toBe(STOP.VMEXIT);
    // mov + 19 * (dec, cpuid, jnz) + the 20th dec; the 20th CPUID did not retire.
    expect(cpu.icount).toBe(1 + 19 * 3 + 1);
    expect(cpu.insnStart).toBe(0x1004); // mov si, imm16 (3 bytes), dec si (1)
    expect(cpu.gpr[6]! & 0xffff).toBe(10);
    // The run after the exit starts clean: nothing pending, and the CPU runs on.
    cpu.gpr[0] = 0;
    n.calls = -1000;
    cpu.rip = 0x1004;
    expect(cpu.run(1000)).toBe(STOP.HLT);
    expect(cpu.gpr[6]! & 0xffff).toBe(0);
  });

  it('after a VM exit, the block the exit left off in chains on only in the context it was made in', () => {
    // dec si ; cpuid | jnz back | hlt, as above: the CPUID block is chained to the JNZ block at 0x1006.
    const mem = new PhysMemory(0x200000);
    mem.writeBytes(0x11006, assemble('mov di, 7\nhlt', 16)); // RIP 0x1006 under a CS based at 0x10000
    const n = { calls: 0 };
    const cpu = cpuidLoopCpu(mem, n);
    expect(cpu.run(1000)).toBe(STOP.VMEXIT);
    // Back in the same context (the same CS object) past the CPUID: the chain is followed, and right.
    n.calls = -1000;
    cpu.worldSwitched();
    cpu.rip = 0x1006;
    expect(cpu.run(1000)).toBe(STOP.HLT);
    expect(cpu.gpr[6]! & 0xffff).toBe(0);
    // Exit again, then enter another context: RIP 0x1006 is other code there.
    n.calls = 0;
    cpu.rip = 0x1000;
    cpu.activity = 0;
    expect(cpu.run(1000)).toBe(STOP.VMEXIT);
    cpu.seg[SEG.CS] = makeSegment(0x1000, 0x10000, 0xffff, 0x9b);
    cpu.worldSwitched();
    cpu.rip = 0x1006;
    expect(cpu.run(100)).toBe(STOP.HLT);
    expect(cpu.gpr[7]! & 0xffff).toBe(7);
  });

  it('VMREAD and VMWRITE run on inside their block, and one that exits stops run() there, also fused', () => {
    // One block: dec si ; vmread ; inc di ; vmwrite ; cmp si, 0 ; jnz back. The 30th VMWRITE exits.
    const mem = new PhysMemory(0x200000);
    mem.writeBytes(0x1000, assemble('mov si, 40\n1: dec si\nvmread eax, ebx\ninc di\nvmwrite ebx, eax\ncmp si, 0\njnz 1b\nhlt', 16));
    let writes = 0;
    let len = 0;
    const cpu = realModeCpu(mem, siliconModel((c) => ({
      execute: (op) => {
        if (op !== VIRT_OP.VMWRITE || ++writes < 30) return;
        len = c.insnLength;
        c.endInsn(STOP.VMEXIT);
      },
    })));
    expect(cpu.run(10_000)).toBe(STOP.VMEXIT);
    // mov, 29 whole passes of 6, then dec, vmread, inc of the 30th; its VMWRITE did not retire.
    expect(cpu.icount).toBe(1 + 29 * 6 + 3);
    expect(cpu.insnStart).toBe(0x1000 + 3 + 1 + 3 + 1); // mov si, imm16; dec si; vmread; inc di
    expect(len).toBe(3);
    expect(cpu.gpr[7]! & 0xffff).toBe(30);
    expect(cpu.gpr[6]! & 0xffff).toBe(10);
    // The loop body decoded as one block: VMREAD and VMWRITE did not end it.
    expect(cpu.blocksDecoded).toBe(2);
  });

  it('without silicon, VMX and SVM opcodes raise #UD', () => {
    for (const src of ['vmcall', 'vmlaunch', 'vmrun', 'vmxoff', 'stgi']) {
      const m = longMode(assemble(`${src}\nhlt`, 64));
      const seen: number[] = [];
      const orig = m.cpu.fault.bind(m.cpu);
      m.cpu.fault = (v: number, e = -1): never => { seen.push(v); return orig(v, e); };
      m.cpu.run(10);
      expect(seen[0], src).toBe(VEC.UD);
    }
  });

  it('TLB tags keep their own entries until flushed', () => {
    const m = longMode(assemble('mov eax, [0x205000]\nhlt', 64), 0x1000, 0x400000);
    const { cpu, mem } = m;
    mem.write32(0x205000, 111);
    mem.write32(0x005000, 222);
    const again = (): number => { cpu.rip = 0x1000; cpu.activity = 0; expect(cpu.run(10)).toBe(STOP.HLT); return cpu.gpr[0]!; };
    cpu.setTlbTag(1);
    expect(again()).toBe(111);
    mem.write64(0x400000 - 0x1000 + 8, 0x83n); // 2 MiB page 1 -> frame 0, behind the TLB's back
    expect(again()).toBe(111); // tag 1 still caches the old translation
    cpu.setTlbTag(2);
    expect(again()).toBe(222); // a fresh tag walks the new tables
    cpu.setTlbTag(1);
    expect(again()).toBe(111); // tag 1's entries survived the switch
    cpu.flushTlb(1);
    expect(again()).toBe(222);
  });
});

describe.skipIf(!hasAssembler)('a VM exit from the second translation stage', () => {
  it('sees insnStart of the accessing instruction, also inside a fused hot block', () => {
    const code = assemble(`
      mov ecx, 40
      mov ebx, 0x100000
    1:
      add eax, 1
      mov edx, [ebx]
      add ebx, 0x1000
      dec ecx
      jnz 1b
      hlt`, 32);
    const loadAt = 0x1000 + 5 + 5 + 3; // mov ecx, imm32; mov ebx, imm32; add eax, 1
    const mem = new PhysMemory(0x400000);
    mem.writeBytes(0x1000, code);
    let misses = 0;
    let seenStart = -1;
    const model = siliconModel((c) => ({
      translate: (gpa) => {
        if (gpa >= 0x100000 && ++misses === 30) { seenStart = c.insnStart; c.stop(STOP.VMEXIT); }
        return gpa;
      },
    }));
    const cpu = new Cpu({ bus: new Bus(mem), model });
    cpu.cr0 |= 1; // flat 32-bit protected mode, paging off: linear = guest-physical
    cpu.seg[SEG.CS] = makeSegment(0x08, 0, 0xffffffff, 0x9b | AR.DB | AR.G);
    for (const s of [SEG.DS, SEG.ES, SEG.SS]) cpu.seg[s] = makeSegment(0x10, 0, 0xffffffff, 0x93 | AR.DB | AR.G);
    cpu.rip = 0x1000;
    cpu.stateChanged();
    expect(cpu.run(10_000)).toBe(STOP.VMEXIT);
    expect(seenStart).toBe(loadAt);
    expect(cpu.icount).toBe(2 + 29 * 5 + 1); // 29 whole iterations, then the ADD before the load
  });
});
