/*
 * 4-level paging guest for the differential system tests, entered in 64-bit mode as
 * `kvmts run --mode long64` sets it up. It builds its own tables (4 KiB pages for 0-2 MiB, a
 * 2 MiB page at 2 MiB) and reports, on port 0xe9 (32 bits each): accessed/dirty bits after
 * reads and writes, INVLPG, and the #PF error code, RIP and CR2 for not-present, CR0.WP,
 * reserved-bit and XD faults.
 */
	.intel_syntax noprefix
	.set REPORT, 0xe9
	.set KSTACK, 0xe000

	.text
	.code64
	.globl _start
_start:
	mov rsp, KSTACK
	lea rdi, [pt]
	xor eax, eax
1:	mov rdx, rax
	shl rdx, 12
	or rdx, 3
	mov [rdi + rax * 8], rdx
	inc eax
	cmp eax, 512
	jne 1b
	mov qword ptr [pt + 0x40 * 8], 0x40003	/* 0x40000: fresh, A = D = 0 */
	mov qword ptr [pt + 0x41 * 8], 0x41001	/* 0x41000: read-only */
	mov qword ptr [pt + 0x42 * 8], 0	/* 0x42000: not present */
	mov rax, 0x8000000000043003		/* 0x43000: XD */
	mov [pt + 0x43 * 8], rax
	mov qword ptr [pt + 0x44 * 8], 0x43003 | (1 << 7)	/* PAT bit: fine in a PTE */
	mov rax, offset pml4
	mov cr3, rax
	mov eax, offset pf_handler		/* IDT[14] */
	mov word ptr [idt + 14 * 16], ax
	mov word ptr [idt + 14 * 16 + 2], 0x08
	mov word ptr [idt + 14 * 16 + 4], 0x8e00
	shr eax, 16
	mov word ptr [idt + 14 * 16 + 6], ax
	lidt [idt_ptr]
	lgdt [gdt_ptr]				/* our own GDT: the handler's CS is read from it */
	push 0x08
	lea rax, [rip + 2f]
	push rax
	lretq
2:	mov ecx, 0xc0000080			/* EFER.NXE */
	rdmsr
	or eax, 0x800
	wrmsr

	mov eax, [0x40010]			/* A only */
	mov rax, [pt + 0x40 * 8]
	call report
	mov dword ptr [0x40010], 7		/* A and D */
	mov rax, [pt + 0x40 * 8]
	call report
	mov eax, [0x200000]			/* 2 MiB page: A in the PDE */
	mov rax, [pd + 8]
	call report
	mov rax, [pd]				/* non-leaf entries: A */
	call report

	mov dword ptr [0x41000], 1		/* WP = 0: a supervisor write succeeds */
	mov eax, [0x41000]
	call report
	mov rax, cr0
	or eax, 0x10000
	mov cr0, rax
	mov qword ptr [resume], offset t1
	.globl f_wp
f_wp:	mov dword ptr [0x41000], 2
t1:	mov qword ptr [resume], offset t2
	.globl f_np
f_np:	mov eax, [0x42abc]
t2:	mov qword ptr [resume], offset t3
	or qword ptr [pd + 8], 1 << 13		/* a reserved bit in a 2 MiB PDE */
	invlpg [0x200000]
	.globl f_rsvd
f_rsvd:	mov eax, [0x200000]
t3:	mov qword ptr [resume], offset t4
	mov rax, 0x43000
	.globl f_xd
f_xd:	call rax
t4:	mov eax, [0x44000]			/* reads through the XD page are fine */
	call report
	mov qword ptr [pt + 0x40 * 8], 0x41003	/* remap 0x40000 -> 0x41000 */
	invlpg [0x40000]
	mov eax, [0x40000]
	call report
	hlt

report:
	mov dx, REPORT
	out dx, eax
	ret

pf_handler:
	mov dx, REPORT
	mov eax, 0x0e
	out dx, eax
	mov rax, [rsp]
	out dx, eax
	mov rax, [rsp + 8]
	out dx, eax
	mov rax, cr2
	out dx, eax
	mov rsp, KSTACK
	jmp [resume]

	.data
	.balign 8
resume:	.quad 0
gdt:
	.quad 0
	.quad 0x00af9a000000ffff		/* 0x08 ring-0 64-bit code */
	.quad 0x00cf92000000ffff		/* 0x10 ring-0 data */
gdt_end:
gdt_ptr:
	.word gdt_end - gdt - 1
	.quad gdt
idt_ptr:
	.word 256 * 16 - 1
	.quad idt
	.balign 4096
pml4:
	.quad pdpt + 3
	.fill 511, 8, 0
pdpt:
	.quad pd + 3
	.fill 511, 8, 0
pd:
	.quad pt + 3
	.quad 0x200083				/* 2-4 MiB: 2 MiB page */
	.fill 510, 8, 0
pt:
	.fill 512, 8, 0
idt:
	.fill 512, 8, 0
