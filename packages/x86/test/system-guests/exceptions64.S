/*
 * Exception-frame guest for the differential system test: entered in 64-bit mode as
 * `kvmts run --mode long64` sets it up, it builds its own GDT, TSS (RSP0, IST1), IDT and
 * 4 KiB page tables, then raises #DE, INT n, #UD, #GP, #PF (kernel and user), INT n from ring 3,
 * privileged instructions at CPL 3 and a double fault. Every handler reports the vector, the
 * error code, the whole hardware frame, the stack it ran on and CR2 with OUT to port 0xe9.
 * The INT n cases are assembled only with --defsym WITH_INT=1.
 */
	.intel_syntax noprefix
	.set REPORT, 0xe9
	.set TSS, 0x9800
	.set KSTACK, 0xe000
	.set USTACK, 0xb000
	.set NO_CODE, 0xffff

	.text
	.code64
	.globl _start
_start:
	mov rsp, KSTACK
	/* Page table: identity 4 KiB user pages for 0-2 MiB, with three special pages. */
	lea rdi, [pt]
	xor eax, eax
1:	mov rdx, rax
	shl rdx, 12
	or rdx, 7
	mov [rdi + rax * 8], rdx
	inc eax
	cmp eax, 512
	jne 1b
	mov qword ptr [pt + 0x50 * 8], 0x50003	/* 0x50000: supervisor only */
	mov qword ptr [pt + 0x51 * 8], 0	/* 0x51000: not present */
	mov qword ptr [pt + 0x52 * 8], 0x52005	/* 0x52000: user, read-only */
	mov rax, offset pml4
	mov cr3, rax
	lgdt [gdt_ptr]
	push 0x08
	lea rax, [rip + 2f]
	push rax
	lretq
2:	mov ax, 0x10
	mov ss, ax
	mov ds, ax
	mov es, ax
	mov qword ptr [TSS + 4], 0x9000		/* RSP0 */
	mov qword ptr [TSS + 0x24], 0xa008	/* IST1 (misaligned on purpose) */
	mov ax, 0x28
	ltr ax
	/* IDT: r8 = vector, rax = handler, ecx = type/DPL/IST word */
	mov ecx, 0x8e00
	xor r8d, r8d;  mov rax, offset v0;  call gate
	mov r8d, 0x82; mov rax, offset v82; call gate
	mov r8d, 6;    mov rax, offset v6;  call gate
	mov r8d, 11;   mov rax, offset v11; call gate
	mov r8d, 13;   mov rax, offset v13; call gate
	mov r8d, 14;   mov rax, offset v14; call gate
	mov r8d, 0x81; mov rax, offset v81; call gate
	mov ecx, 0x8e01				/* #DF on IST1 */
	mov r8d, 8;    mov rax, offset v8;  call gate
	mov ecx, 0xef00				/* DPL-3 trap gate */
	mov r8d, 0x80; mov rax, offset v80; call gate
	lidt [idt_ptr]

	mov qword ptr [resume], offset t_bp
	xor edx, edx
	mov eax, 1
	xor ecx, ecx
	.globl i_de
i_de:	div ecx
t_bp:
.ifdef WITH_INT
	mov qword ptr [resume], 0		/* INT 0x82 returns with IRETQ */
	.globl i_int
i_int:	int 0x82
.endif
	mov qword ptr [resume], offset t_gp
	.globl i_ud
i_ud:	ud2
t_gp:	mov qword ptr [resume], offset t_pf
	mov rbx, 0x8000000000000000
	.globl i_gp
i_gp:	mov rax, [rbx]
t_pf:	mov qword ptr [resume], offset t_user1
	.globl i_pf
i_pf:	mov dword ptr [0x51010], 1
t_user1:
	mov qword ptr [resume], offset t_user2
	mov rax, offset u_read_sup
	jmp to_user
t_user2:
	mov qword ptr [resume], offset t_user3
	mov rax, offset u_write_ro
	jmp to_user
t_user3:
.ifdef WITH_INT
	mov qword ptr [resume], offset t_user4
	mov rax, offset u_int80
	jmp to_user
t_user4:
	mov qword ptr [resume], offset t_user5
	mov rax, offset u_int81
	jmp to_user
.endif
t_user5:
	mov qword ptr [resume], offset t_df
	mov rax, offset u_hlt
	jmp to_user
t_df:	mov qword ptr [resume], offset t_end
	and byte ptr [idt + 13 * 16 + 5], 0x7f	/* #GP's gate not present: #GP -> #NP -> #DF */
	mov rbx, 0x8000000000000000
	.globl i_df
i_df:	mov rax, [rbx]
t_end:	hlt

to_user:
	push 0x23
	push USTACK
	push 0x202
	push 0x3b
	push rax
	iretq

	.globl u_read_sup, u_write_ro, u_int80, u_int81, u_hlt
u_read_sup:
	mov eax, [0x50008]
u_write_ro:
	mov dword ptr [0x52004], 2
u_int80:
	int 0x80
u_int81:
	int 0x81
u_hlt:	hlt

/* r8 = vector, rax = handler, ecx = word 2 (P, DPL, type, IST) of a 64-bit gate to 0x08. */
gate:
	mov rdi, r8
	shl rdi, 4
	add rdi, offset idt
	mov word ptr [rdi], ax
	mov word ptr [rdi + 2], 0x08
	mov word ptr [rdi + 4], cx
	shr rax, 16
	mov word ptr [rdi + 6], ax
	shr rax, 16
	mov dword ptr [rdi + 8], eax
	mov dword ptr [rdi + 12], 0
	ret

v0:	push NO_CODE; push 0; jmp common
v82:	push NO_CODE; push 0x82; jmp common
v6:	push NO_CODE; push 6; jmp common
v8:	push 8; jmp common
v11:	push 11; jmp common
v13:	push 13; jmp common
v14:	push 14; jmp common
v80:	push NO_CODE; push 0x80; jmp common
v81:	push NO_CODE; push 0x81; jmp common

/* [rsp] vector, [rsp+8] error code, then RIP, CS, RFLAGS, RSP, SS. */
common:
	mov dx, REPORT
	mov rsi, rsp
	mov ecx, 7
3:	mov rax, [rsi]
	out dx, eax
	add rsi, 8
	loop 3b
	lea rax, [rsp + 16]			/* where the CPU put the frame */
	out dx, eax
	mov ax, ss
	out dx, eax
	mov rax, cr2
	out dx, eax
	mov rax, [resume]
	test rax, rax
	jz 4f
	mov rsp, KSTACK
	mov cx, 0x10
	mov ss, cx
	jmp rax
4:	add rsp, 16
	iretq

	.data
	.balign 8
resume:	.quad 0
gdt:
	.quad 0
	.quad 0x00af9a000000ffff	/* 0x08 ring-0 64-bit code */
	.quad 0x00cf92000000ffff	/* 0x10 ring-0 data */
	.quad 0
	.quad 0x00cff2000000ffff	/* 0x20 ring-3 data */
	.quad 0x0000890098000067	/* 0x28 64-bit TSS at 0x9800 */
	.quad 0
	.quad 0x00affa000000ffff	/* 0x38 ring-3 64-bit code */
gdt_end:
gdt_ptr:
	.word gdt_end - gdt - 1
	.quad gdt
idt_ptr:
	.word 256 * 16 - 1
	.quad idt

	.balign 4096
pml4:
	.quad pdpt + 7
	.fill 511, 8, 0
pdpt:
	.quad pd + 7
	.fill 511, 8, 0
pd:
	.quad pt + 7
	.fill 511, 8, 0
pt:
	.fill 512, 8, 0
idt:
	.fill 512, 8, 0
