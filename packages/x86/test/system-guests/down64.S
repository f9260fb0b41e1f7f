/*
 * Mode-exit guest for the differential system tests: entered in 64-bit mode as `kvmts run
 * --mode long64` sets it up, it leaves IA-32e mode through compatibility mode (CR0.PG = 0
 * clears EFER.LMA), clears EFER.LME, goes through 16-bit protected mode to real mode, and takes
 * #DE there through the IVT. Reports go out on port 0xe9 (32 bits each).
 */
	.intel_syntax noprefix
	.set REPORT, 0xe9

	.text
	.code64
	.globl _start
_start:
	mov rsp, 0x7000
	lgdt [gdt_ptr]
	jmp fword ptr [to_compat]		/* m16:32 far jump: 0x18:compat */

	.code32
compat:
	mov ax, 0x10
	mov ds, ax
	mov ss, ax
	mov eax, cr0
	and eax, 0x7fffffff			/* leave IA-32e mode */
	mov cr0, eax
	mov ecx, 0xc0000080
	rdmsr
	mov dx, REPORT
	out dx, eax				/* EFER: LME without LMA */
	and eax, ~0x100
	xor edx, edx
	wrmsr
	rdmsr
	mov dx, REPORT
	out dx, eax
	.byte 0xea				/* jmp far 0x20:pm16 */
	.long pm16
	.word 0x20

	.code16
pm16:
	mov ax, 0x28
	mov ds, ax
	mov ss, ax
	mov eax, cr0
	and al, 0xfe				/* leave protected mode */
	mov cr0, eax
	.byte 0xea				/* jmp far 0000:real16 */
	.word real16
	.word 0
real16:
	xor ax, ax
	mov ds, ax
	mov ss, ax
	mov sp, 0x7000
	lidt [ivt_ptr]
	mov word ptr [0], offset real_de
	mov word ptr [2], 0
	mov eax, cr0
	mov dx, REPORT
	out dx, eax
	xor dx, dx
	mov ax, 7
	xor cx, cx
	.globl r_div
r_div:	div cx
	mov eax, 0x600d
	mov dx, REPORT
	out dx, eax

	/* Back up: protected mode with a 32-bit IDT, then IA-32e mode. */
	mov eax, cr0
	or al, 1
	mov cr0, eax
	.byte 0x66, 0xea			/* jmp far 0x18:up32 */
	.long up32
	.word 0x18

	.code32
up32:
	mov ax, 0x10
	mov ds, ax
	mov ss, ax
	mov esp, 0x7000
	mov eax, offset pm_gp
	mov word ptr [idt32 + 13 * 8], ax
	mov word ptr [idt32 + 13 * 8 + 2], 0x18
	mov word ptr [idt32 + 13 * 8 + 4], 0x8e00
	shr eax, 16
	mov word ptr [idt32 + 13 * 8 + 6], ax
	lidt [idt32_ptr]
	mov ax, 0x33				/* beyond the GDT limit: #GP(0x30) */
	.globl pm_fault
pm_fault:
	mov fs, ax
	mov eax, cr4
	or eax, 0x20
	mov cr4, eax
	mov eax, cr3				/* the long64 set-up's tables are still there */
	mov cr3, eax
	mov ecx, 0xc0000080
	rdmsr
	or eax, 0x100
	wrmsr
	mov eax, cr0
	or eax, 0x80000000
	mov cr0, eax
	.byte 0xea				/* jmp far 0x08:up64 */
	.long up64
	.word 0x08

pm_gp:
	mov dx, REPORT
	mov eax, 0x0d
	out dx, eax
	mov eax, [esp]
	out dx, eax
	mov eax, [esp + 4]
	out dx, eax
	mov eax, [esp + 12]			/* EFLAGS */
	and eax, ~0x8d5				/* without the arithmetic flags */
	out dx, eax
	add dword ptr [esp + 4], 2
	add esp, 4
	iretd

	.code64
up64:
	mov ecx, 0xc0000080
	rdmsr
	mov dx, REPORT
	out dx, eax				/* LME and LMA again */
	hlt
	.code16

real_de:
	push bp
	mov bp, sp
	mov dx, REPORT
	mov eax, 0xde
	out dx, eax
	movzx eax, word ptr [bp + 2]		/* IP */
	out dx, eax
	movzx eax, word ptr [bp + 4]		/* CS */
	out dx, eax
	movzx eax, word ptr [bp + 6]		/* FLAGS */
	and eax, ~0x8d5				/* arithmetic flags are undefined after DIV setup */
	out dx, eax
	add word ptr [bp + 2], 2
	pop bp
	iret

	.data
	.balign 8
gdt:
	.quad 0
	.quad 0x00af9a000000ffff		/* 0x08 64-bit code */
	.quad 0x00cf92000000ffff		/* 0x10 data */
	.quad 0x00cf9a000000ffff		/* 0x18 32-bit code */
	.quad 0x00009a000000ffff		/* 0x20 16-bit code, 64 KiB */
	.quad 0x000092000000ffff		/* 0x28 16-bit data, 64 KiB */
gdt_end:
gdt_ptr:
	.word gdt_end - gdt - 1
	.quad gdt
to_compat:
	.long compat
	.word 0x18
ivt_ptr:
	.word 0x3ff
	.long 0
idt32_ptr:
	.word 256 * 8 - 1
	.long idt32
	.balign 8
idt32:
	.fill 256, 8, 0
