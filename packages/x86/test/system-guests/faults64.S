/*
 * Protection-fault guest for the differential system tests, entered in 64-bit mode as
 * `kvmts run --mode long64` sets it up. Each case executes one instruction that must fault
 * (segment loads, LTR/LLDT, far transfers, IRETQ, LIDT, MOV CR, WRMSR); the handler reports
 * the vector, error code and RIP on port 0xe9 and resumes at the next case.
 */
	.intel_syntax noprefix
	.set REPORT, 0xe9
	.set KSTACK, 0xe000

	/* Runs `insn` with the handler resuming at the next case. */
	.macro case insn:vararg
	lea rax, [rip + 9f]
	mov [resume], rax
	\insn
9:
	.endm

	.text
	.code64
	.globl _start
_start:
	mov rsp, KSTACK
	lgdt [gdt_ptr]
	push 0x08
	lea rax, [rip + 1f]
	push rax
	lretq
1:	mov ax, 0x10
	mov ss, ax
	mov ds, ax
	mov r8d, 10; mov rax, offset v10; call gate
	mov r8d, 11; mov rax, offset v11; call gate
	mov r8d, 12; mov rax, offset v12; call gate
	mov r8d, 13; mov rax, offset v13; call gate
	lidt [idt_ptr]
	mov ax, 0x40				/* a valid TSS, to make it busy */
	ltr ax

	mov bx, 0x1230;	case mov ds, bx		/* beyond the GDT limit */
	mov bx, 0x18;	case mov ds, bx		/* execute-only code */
	mov bx, 0x23;	case mov ss, bx		/* RPL != CPL */
	mov bx, 0x20;	case mov ss, bx		/* DPL 3 stack at CPL 0 */
	mov bx, 0x28;	case mov ds, bx		/* not present */
	mov bx, 0x30;	case mov ss, bx		/* not-present stack */
	mov bx, 0x0c;	case mov es, bx		/* LDT selector, no LDT */
	mov bx, 0x40;	case ltr bx		/* busy TSS */
	mov bx, 0x10;	case lldt bx		/* not an LDT */
	case jmp fword ptr [far_data]		/* far jump to a data segment */
	mov rax, 0x8000000000000000
	mov [lidt_bad + 2], rax
	case lidt [lidt_bad]			/* non-canonical base */
	case mov cr4, rax			/* reserved CR4 bits */
	mov rax, cr0
	and eax, 0x7fffffff
	case mov cr0, rax			/* clearing PG in 64-bit mode */
	mov ecx, 0xc0000080
	rdmsr
	and eax, ~0x100
	case wrmsr				/* EFER.LME change with paging on */
	mov ecx, 0x12345678
	case rdmsr				/* no such MSR */
	push 0x10				/* IRETQ to a data segment as CS */
	push KSTACK
	pushfq
	push 0x10
	lea rax, [rip + 2f]
	push rax
	case iretq
2:	hlt

/* r8 = vector, rax = handler: 64-bit interrupt gate to 0x08. */
gate:
	mov rdi, r8
	shl rdi, 4
	add rdi, offset idt
	mov word ptr [rdi], ax
	mov word ptr [rdi + 2], 0x08
	mov word ptr [rdi + 4], 0x8e00
	shr rax, 16
	mov word ptr [rdi + 6], ax
	ret

v10:	push 10; jmp common
v11:	push 11; jmp common
v12:	push 12; jmp common
v13:	push 13; jmp common

common:
	mov dx, REPORT
	pop rax					/* vector */
	out dx, eax
	pop rax					/* error code */
	out dx, eax
	mov rax, [rsp]				/* RIP */
	out dx, eax
	mov rsp, KSTACK
	mov ax, 0x10
	mov ss, ax
	jmp [resume]

	.data
	.balign 8
resume:	.quad 0
gdt:
	.quad 0
	.quad 0x00af9a000000ffff		/* 0x08 ring-0 64-bit code */
	.quad 0x00cf92000000ffff		/* 0x10 ring-0 data */
	.quad 0x00af98000000ffff		/* 0x18 execute-only code */
	.quad 0x00cff2000000ffff		/* 0x20 ring-3 data */
	.quad 0x00cf12000000ffff		/* 0x28 data, not present */
	.quad 0x00cf12000000ffff		/* 0x30 stack, not present */
	.quad 0
	.quad 0x0000890098000067		/* 0x40 64-bit TSS at 0x9800 */
	.quad 0
gdt_end:
gdt_ptr:
	.word gdt_end - gdt - 1
	.quad gdt
idt_ptr:
	.word 256 * 16 - 1
	.quad idt
far_data:
	.long 0
	.word 0x10
lidt_bad:
	.word 0xfff
	.quad 0
	.balign 4096
idt:
	.fill 512, 8, 0
