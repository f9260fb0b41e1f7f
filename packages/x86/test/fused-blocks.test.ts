import { describe, expect, it } from 'vitest';
import { Bus } from '../src/bus.js';
import { Cpu } from '../src/cpu/cpu.js';
import { AR, SEG, makeSegment } from '../src/cpu/state.js';
import { STOP } from '../src/cpu/virt.js';
import { PhysMemory } from '../src/mem/phys-memory.js';
import { assemble, hasAssembler } from './asm.js';

const MEM = 0x200000;

/**
 * A hot loop with memory read-modify-writes, RIP-relative data, the stack, a REP string, a
 * conditional #DE every fourth iteration (the IDT handler skips the DIV), and self-modifying
 * code, so fused blocks see faults, stores and invalidation mid-block.
 */
const PROGRAM = `
  lea rax, [rip + gdt]
  mov [rip + gdtr + 2], rax
  lgdt [rip + gdtr]
  lea rax, [rip + idt]
  mov [rip + idtr + 2], rax
  lidt [rip + idtr]
  lea rax, [rip + de_handler]
  mov word ptr [rip + idt], ax
  mov word ptr [rip + idt + 2], 0x08
  mov word ptr [rip + idt + 4], 0x8e00
  shr rax, 16
  mov word ptr [rip + idt + 6], ax
  mov rsp, 0x80000
  mov ecx, 200
loop:
  add qword ptr [0x3000], rcx
  mov rax, [rip + data]
  add rax, rcx
  mov [rip + data], rax
  push rax
  pop rbx
  mov edx, ecx
  and edx, 3
  mov eax, 100
  mov esi, edx
  xor edx, edx
  div esi                   # #DE when ecx % 4 == 0
  add r8, rax
  mov byte ptr [rip + patch + 2], cl   # the imm8 of "mov dil, imm8" (REX, B7, imm8)
patch:
  mov dil, 0
  movzx edi, dil
  add r9, rdi
  dec ecx
  jnz loop
  hlt
de_handler:
  inc r15
  add qword ptr [rsp], 2    # skip the 2-byte DIV
  iretq
.p2align 3
gdt: .quad 0, 0x00af9a000000ffff, 0x00cf92000000ffff
gdtr: .word 23
      .quad 0
data: .quad 0x100000000
idtr: .word 255
      .quad 0
.p2align 4
idt: .fill 512, 1, 0
`;

function runProgram(fuse: boolean): Cpu {
  const mem = new PhysMemory(MEM);
  mem.writeBytes(0x1000, assemble(PROGRAM, 64));
  const pml4 = MEM - 0x3000;
  mem.write64(pml4, BigInt((MEM - 0x2000) | 3));
  mem.write64(MEM - 0x2000, BigInt((MEM - 0x1000) | 3));
  for (let k = 0; k < 512; k++) mem.write64(MEM - 0x1000 + k * 8, (BigInt(k) << 21n) | 0x83n);
  const cpu = new Cpu({ bus: new Bus(mem), fuseBlocks: fuse });
  cpu.cr0 = 0x80000033; cpu.cr4 = 0x20; cpu.efer = 0x500; cpu.cr3 = pml4;
  cpu.seg[SEG.CS] = makeSegment(0x08, 0, 0xffffffff, 0x9b | AR.L | AR.G);
  for (const s of [SEG.DS, SEG.ES, SEG.FS, SEG.GS, SEG.SS]) cpu.seg[s] = makeSegment(0x10, 0, 0xffffffff, 0x93 | AR.DB | AR.G);
  cpu.rip = 0x1000;
  cpu.stateChanged();
  const r = cpu.run(1_000_000);
  expect(r, cpu.internalError).toBe(STOP.HLT);
  return cpu;
}

describe.skipIf(!hasAssembler)('fused blocks behave exactly like the interpreter loop', () => {
  it('same registers, memory, flags and instruction count', () => {
    const a = runProgram(false);
    const b = runProgram(true);
    expect(Array.from(b.gpr)).toEqual(Array.from(a.gpr));
    expect(Array.from(b.gprHi)).toEqual(Array.from(a.gprHi));
    expect(b.getRflags()).toBe(a.getRflags());
    expect(b.icount).toBe(a.icount);
    expect(b.bus.ram.read32(0x3000)).toBe(a.bus.ram.read32(0x3000));
    expect(a.gpr[15]).toBe(50); // 200 iterations, a #DE on every fourth
    expect(a.gpr[9]).toBe((200 * 201) / 2); // the patched immediates, summed
  });
});

describe.skipIf(!hasAssembler)('block chains across a world switch', () => {
  it('keep only while the CS register object and the TLB are the same: another CS at the same RIP runs its own code', () => {
    const mem = new PhysMemory(MEM);
    // The same RIP (0x100) under two code segments: a loop that sets BX=1, and code that sets BX=2.
    mem.writeBytes(0x10100, assemble('1: mov bx, 1\ninc cx\njmp 1b', 16));
    mem.writeBytes(0x20100, assemble('mov bx, 2\nhlt', 16));
    const cpu = new Cpu({ bus: new Bus(mem) });
    const cs1 = makeSegment(0x1000, 0x10000, 0xffff, 0x9b);
    const cs2 = makeSegment(0x2000, 0x20000, 0xffff, 0x9b);
    cpu.seg[SEG.CS] = cs1;
    cpu.rip = 0x100;
    cpu.stateChanged();
    expect(cpu.run(300)).toBe(STOP.BUDGET); // hot: fused, and chained to itself
    expect(cpu.gpr[3]! & 0xffff).toBe(1);
    // A world switch to another context and back to this one keeps the chains, and the CPU runs on.
    cpu.seg[SEG.CS] = cs2;
    cpu.worldSwitched();
    cpu.seg[SEG.CS] = cs1;
    cpu.worldSwitched();
    const decoded = cpu.blocksDecoded;
    cpu.rip = 0x100;
    expect(cpu.run(30)).toBe(STOP.BUDGET);
    expect(cpu.blocksDecoded).toBe(decoded);
    // Under the other CS, the same RIP is other code: the chain to RIP 0x100 must not be followed.
    cpu.seg[SEG.CS] = cs2;
    cpu.worldSwitched();
    cpu.rip = 0x100;
    expect(cpu.run(30)).toBe(STOP.HLT);
    expect(cpu.gpr[3]! & 0xffff).toBe(2);
  });
});
