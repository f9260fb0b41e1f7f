/*
 * Mode-switch guest for the system tests: real mode -> 32-bit protected mode -> IA-32e
 * 64-bit mode -> ring 3 and back, taking #DE, #GP, #UD and #PF through its own IVT/IDTs.
 * Every handler reports a tag and the frame it received with OUT to port 0xe9 (32 bits each).
 * Loaded and entered at 0x1000 in real mode with CS = 0.
 */
	.intel_syntax noprefix
	.set REPORT, 0xe9
	.set TSS64, 0x9800

	.text
	.code16
	.globl _start
_start:
	cli
	xor ax, ax
	mov ds, ax
	mov ss, ax
	mov sp, 0xa000
	mov word ptr [0], offset rm_de	/* IVT[0] = 0000:rm_de */
	mov word ptr [2], 0
	xor dx, dx
	mov ax, 1
	xor cx, cx
	.globl rm_div
rm_div:
	div cx
	lgdt [gdt_ptr]
	mov eax, cr0
	or eax, 1
	mov cr0, eax
	.byte 0x66, 0xea		/* jmp far 0x08:pm32 */
	.long pm32
	.word 0x08

rm_de:
	push bp
	mov bp, sp
	mov dx, REPORT
	mov eax, 0x100
	out dx, eax
	movzx eax, word ptr [bp + 2]
	out dx, eax
	add word ptr [bp + 2], 2	/* skip DIV CX */
	pop bp
	iret

	.code32
pm32:
	mov ax, 0x10
	mov ds, ax
	mov es, ax
	mov ss, ax
	mov esp, 0xa000
	mov eax, offset pm_gp		/* IDT32[13]: 32-bit interrupt gate to 0x08:pm_gp */
	mov word ptr [idt32 + 13 * 8], ax
	mov word ptr [idt32 + 13 * 8 + 2], 0x08
	mov word ptr [idt32 + 13 * 8 + 4], 0x8e00
	shr eax, 16
	mov word ptr [idt32 + 13 * 8 + 6], ax
	lidt [idt32_ptr]
	mov ax, 0x1233			/* beyond the GDT limit: #GP(0x1230) */
	.globl pm_fault
pm_fault:
	mov fs, ax
	mov eax, cr4			/* PAE, then IA-32e mode */
	or eax, 0x20
	mov cr4, eax
	mov eax, offset pml4
	mov cr3, eax
	mov ecx, 0xc0000080
	rdmsr
	or eax, 0x100
	wrmsr
	mov eax, cr0
	or eax, 0x80000000
	mov cr0, eax
	.byte 0xea			/* jmp far 0x18:lm64 */
	.long lm64
	.word 0x18

pm_gp:
	mov dx, REPORT
	mov eax, 0x20d
	out dx, eax
	mov eax, [esp]			/* error code */
	out dx, eax
	mov eax, [esp + 4]		/* EIP */
	out dx, eax
	add dword ptr [esp + 4], 2	/* skip MOV FS, AX (8E E0) */
	add esp, 4
	iretd

	.code64
	/* edi = vector, rax = handler: a 64-bit interrupt gate to 0x18:handler. */
set_gate:
	shl edi, 4
	add rdi, offset idt64
	mov word ptr [rdi], ax
	mov word ptr [rdi + 2], 0x18
	mov word ptr [rdi + 4], 0x8e00
	shr rax, 16
	mov word ptr [rdi + 6], ax
	shr rax, 16
	mov dword ptr [rdi + 8], eax
	mov dword ptr [rdi + 12], 0
	ret

lm64:
	mov edi, 0
	mov rax, offset lm_de
	call set_gate
	mov edi, 6
	mov rax, offset lm_ud
	call set_gate
	mov edi, 13
	mov rax, offset lm_gp
	call set_gate
	mov edi, 14
	mov rax, offset lm_pf
	call set_gate
	lidt [idt64_ptr]
	xor edx, edx
	mov eax, 1
	xor ecx, ecx
	.globl lm_div
lm_div:
	div ecx
	.globl lm_ud2
lm_ud2:
	ud2
	mov qword ptr [TSS64 + 4], 0x9000	/* RSP0 */
	mov ax, 0x28
	ltr ax
	push 0x23			/* IRETQ to ring 3: SS, RSP, RFLAGS, CS, RIP */
	push 0xb000
	push 2
	push 0x3b
	mov rax, offset user
	push rax
	iretq

	.globl user
user:
	hlt				/* #GP(0) at CPL 3 */

pf_test:
	.globl lm_pf_insn
lm_pf_insn:
	mov dword ptr [0x200000], 0x1234	/* PD[1] is not present: #PF(W) */
	hlt

lm_de:
	mov dx, REPORT
	mov eax, 0x300
	out dx, eax
	mov rax, [rsp]
	out dx, eax
	add qword ptr [rsp], 2
	iretq

lm_ud:
	mov dx, REPORT
	mov eax, 0x306
	out dx, eax
	mov rax, [rsp]
	out dx, eax
	add qword ptr [rsp], 2
	iretq

lm_gp:
	mov dx, REPORT
	mov eax, 0x30d
	out dx, eax
	mov rax, [rsp]			/* error code */
	out dx, eax
	mov rax, [rsp + 8]		/* RIP */
	out dx, eax
	mov rax, [rsp + 16]		/* CS */
	out dx, eax
	mov rax, [rsp + 32]		/* RSP */
	out dx, eax
	mov rax, [rsp + 40]		/* SS */
	out dx, eax
	mov rax, rsp			/* the RSP0 frame */
	out dx, eax
	mov ax, ss
	out dx, eax
	jmp pf_test

lm_pf:
	mov dx, REPORT
	mov eax, 0x30e
	out dx, eax
	mov rax, [rsp]
	out dx, eax
	mov rax, [rsp + 8]
	out dx, eax
	mov rax, cr2
	out dx, eax
	hlt

	.data
	.balign 8
gdt:
	.quad 0
	.quad 0x00cf9a000000ffff	/* 0x08 ring-0 32-bit code */
	.quad 0x00cf92000000ffff	/* 0x10 ring-0 data */
	.quad 0x00af9a000000ffff	/* 0x18 ring-0 64-bit code */
	.quad 0x00cff2000000ffff	/* 0x20 ring-3 data */
	.quad 0x0000890098000067	/* 0x28 64-bit TSS at 0x9800 */
	.quad 0
	.quad 0x00affa000000ffff	/* 0x38 ring-3 64-bit code */
gdt_end:
gdt_ptr:
	.word gdt_end - gdt - 1
	.long gdt
idt32_ptr:
	.word 256 * 8 - 1
	.long idt32
idt64_ptr:
	.word 256 * 16 - 1
	.quad idt64

	.balign 4096
pml4:
	.quad pdpt + 7
	.fill 511, 8, 0
pdpt:
	.quad pd + 7
	.fill 511, 8, 0
pd:
	.quad 0x87			/* 0-2 MiB: 2 MiB user page; 2-4 MiB not present */
	.fill 511, 8, 0
idt32:
	.fill 256, 8, 0
idt64:
	.fill 512, 8, 0
