/*
 * Legacy paging guest for the system tests: from real mode into 32-bit protected mode with
 * 32-bit paging (a 4 MiB PSE page and a 4 KiB page table), then PAE paging with NX. It checks
 * translation through an alias, the accessed/dirty bits, #PF error codes under CR0.WP, INVLPG,
 * and an instruction fetch from an XD page. Results go out on port 0xe9 (32 bits each).
 */
	.intel_syntax noprefix
	.set REPORT, 0xe9
	.set STACK, 0x9000

	.text
	.code16
	.globl _start
_start:
	cli
	xor ax, ax
	mov ds, ax
	lgdt [gdt_ptr]
	mov eax, cr0
	or eax, 1
	mov cr0, eax
	.byte 0x66, 0xea
	.long pm32
	.word 0x08

	.code32
pm32:
	mov ax, 0x10
	mov ds, ax
	mov es, ax
	mov ss, ax
	mov esp, STACK
	mov eax, offset pf_handler		/* IDT[14]: interrupt gate */
	mov word ptr [idt + 14 * 8], ax
	mov word ptr [idt + 14 * 8 + 2], 0x08
	mov word ptr [idt + 14 * 8 + 4], 0x8e00
	shr eax, 16
	mov word ptr [idt + 14 * 8 + 6], ax
	lidt [idt_ptr]
	mov dword ptr [0x20010], 0x11223344	/* physical page 0x20000 */
	mov dword ptr [0x21000], 0xcafe		/* physical page 0x21000 */

	/* 32-bit paging, PSE, WP */
	mov eax, cr4
	or eax, 0x10
	mov cr4, eax
	mov eax, offset pd32
	mov cr3, eax
	mov eax, cr0
	or eax, 0x80010000
	mov cr0, eax

	mov eax, [0x400010]			/* alias of 0x20010 */
	call report
	mov dword ptr [0x400020], 0x55
	mov eax, [pt32]				/* PTE: A and D now set */
	call report
	mov eax, [pd32 + 4]			/* PDE: A set */
	call report

	mov dword ptr [resume], offset t2
	.globl w_ro
w_ro:	mov dword ptr [0x401000], 1		/* read-only with WP: #PF(P|W) */
t2:	mov dword ptr [resume], offset t3
	.globl r_np
r_np:	mov eax, [0x402000]			/* not present: #PF(0) */
t3:	mov eax, [0x400000]			/* caches 0x400000 -> 0x20000 */
	mov dword ptr [pt32], 0x21003
	invlpg [0x400000]
	mov eax, [0x400000]			/* now 0x21000 */
	call report

	/* PAE with NX: paging off, PAE on, EFER.NXE, paging on */
	mov eax, cr0
	and eax, 0x7fffffff
	mov cr0, eax
	mov eax, cr4
	or eax, 0x20
	mov cr4, eax
	mov ecx, 0xc0000080
	rdmsr
	or eax, 0x800
	wrmsr
	mov eax, offset pdpt
	mov cr3, eax
	mov eax, cr0
	or eax, 0x80000000
	mov cr0, eax
	mov eax, [0x400010]
	call report
	mov dword ptr [resume], offset t4
	mov eax, 0x400000
	.globl j_nx
j_nx:	jmp eax					/* fetch from an XD page: #PF(P|I/D) */
t4:	hlt

report:
	push edx
	mov dx, REPORT
	out dx, eax
	pop edx
	ret

pf_handler:
	mov dx, REPORT
	mov eax, 0x0e
	out dx, eax
	pop eax					/* error code */
	out dx, eax
	mov eax, [esp]				/* EIP */
	out dx, eax
	mov eax, cr2
	out dx, eax
	mov esp, STACK
	jmp [resume]

	.data
	.balign 8
resume:	.long 0
gdt:
	.quad 0
	.quad 0x00cf9a000000ffff		/* 0x08 code */
	.quad 0x00cf92000000ffff		/* 0x10 data */
gdt_end:
gdt_ptr:
	.word gdt_end - gdt - 1
	.long gdt
idt_ptr:
	.word 256 * 8 - 1
	.long idt

	.balign 32
pdpt:
	.quad pd_pae + 1
	.quad 0, 0, 0

	.balign 4096
pd32:
	.long 0x00000083			/* 0-4 MiB: 4 MiB page */
	.long pt32 + 3				/* 4-8 MiB: page table */
	.fill 1022, 4, 0
pt32:
	.long 0x00020003			/* 0x400000 -> 0x20000 */
	.long 0x00021001			/* 0x401000 -> 0x21000, read-only */
	.fill 1022, 4, 0
pd_pae:
	.quad 0x83				/* 0-2 MiB: 2 MiB page */
	.quad 0
	.quad pt_pae + 3			/* 4-6 MiB */
	.fill 509, 8, 0
pt_pae:
	.quad 0x8000000000020003		/* 0x400000 -> 0x20000, XD */
	.fill 511, 8, 0
idt:
	.fill 256, 8, 0
