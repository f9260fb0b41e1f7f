/*
 * Fast-system-call guest for the system tests, entered in 64-bit mode as `kvmts run --mode
 * long64` sets it up: far jumps into compatibility mode and back at CPL 0, then SYSRET to
 * 64-bit ring 3, SYSCALL (LSTAR) with SWAPGS, SYSRET to compatibility-mode ring 3, and SYSCALL
 * from there (CSTAR). Reports go out on port 0xe9 (32 bits each).
 */
	.intel_syntax noprefix
	.set REPORT, 0xe9
	.set KSTACK, 0xe000

	.macro report reg
	push rdx
	mov dx, REPORT
	mov eax, \reg
	out dx, eax
	pop rdx
	.endm

	.text
	.code64
	.globl _start
_start:
	mov rsp, KSTACK
	/* Make the first 2 MiB user-accessible: set U/S in the PML4E, PDPTE and PDE that map it. */
	mov rax, cr3
	mov rcx, 0x000ffffffffff000
	mov rbx, rax
	or qword ptr [rbx], 4
	mov rbx, [rbx]
	and rbx, rcx
	or qword ptr [rbx], 4
	mov rbx, [rbx]
	and rbx, rcx
	or qword ptr [rbx], 4
	mov cr3, rax
	lgdt [gdt_ptr]
	push 0x08
	lea rax, [rip + 1f]
	push rax
	lretq
1:	mov ax, 0x10
	mov ss, ax
	mov ds, ax
	/* 64-bit -> compatibility mode (CS 0x30, D=1) -> 64-bit with far jumps. */
	.byte 0xff, 0x2c, 0x25			/* jmp far [far_compat] (m16:32) */
	.long far_compat
	.code32
	.globl compat0
compat0:
	mov eax, cs
	mov dx, REPORT
	out dx, eax
	.byte 0xea				/* jmp far 0x08:back64 */
	.long back64
	.word 0x08
	.code64
back64:
	mov eax, cs
	mov dx, REPORT
	out dx, eax

	/* EFER.SCE, STAR, LSTAR, CSTAR, FMASK, GS bases */
	mov ecx, 0xc0000080
	rdmsr
	or eax, 1
	wrmsr
	mov ecx, 0xc0000081
	xor eax, eax
	mov edx, 0x00180008			/* SYSRET base 0x18, SYSCALL base 0x08 */
	wrmsr
	mov ecx, 0xc0000082
	mov rax, offset entry64
	xor edx, edx
	wrmsr
	mov ecx, 0xc0000083
	mov rax, offset entry_compat
	wrmsr
	mov ecx, 0xc0000084
	mov eax, 0x700				/* TF, IF, DF */
	wrmsr
	mov ecx, 0xc0000101			/* GS_BASE */
	mov eax, 0x5000
	wrmsr
	mov ecx, 0xc0000102			/* KERNEL_GS_BASE */
	mov eax, 0x123000
	wrmsr

	mov rcx, offset user64
	mov r11, 0x602				/* IF, DF */
	mov rsp, 0xb000
	sysretq

	.globl user64
user64:
	mov eax, 1
	.globl sc64
sc64:	syscall

entry64:
	swapgs
	mov rsp, KSTACK
	report ecx				/* return RIP */
	report r11d				/* user RFLAGS */
	pushfq
	pop rax
	report eax				/* RFLAGS after FMASK */
	mov eax, cs
	report eax
	mov eax, ss
	report eax
	mov ecx, 0xc0000101
	rdmsr
	report eax				/* GS base after SWAPGS */
	swapgs
	mov ecx, offset user32
	mov r11, 0x202
	mov rsp, 0xb000
	.byte 0x0f, 0x07			/* SYSRET (32-bit operand): to compatibility mode */

	.code32
	.globl user32
user32:
	mov eax, cs
	mov dx, REPORT
	out dx, eax
	.globl sc32
sc32:	syscall
	.code64

entry_compat:
	mov rsp, KSTACK
	report ecx
	mov eax, cs
	report eax
	hlt

	.data
	.balign 8
gdt:
	.quad 0
	.quad 0x00af9a000000ffff		/* 0x08 ring-0 64-bit code */
	.quad 0x00cf92000000ffff		/* 0x10 ring-0 data */
	.quad 0x00cffa000000ffff		/* 0x18 ring-3 32-bit code (SYSRET base) */
	.quad 0x00cff2000000ffff		/* 0x20 ring-3 data */
	.quad 0x00affa000000ffff		/* 0x28 ring-3 64-bit code */
	.quad 0x00cf9a000000ffff		/* 0x30 ring-0 32-bit code */
gdt_end:
gdt_ptr:
	.word gdt_end - gdt - 1
	.quad gdt
far_compat:
	.long compat0
	.word 0x30
