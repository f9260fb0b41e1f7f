/*
 * One stub per vector. Each pushes a dummy error code where the CPU pushes none, then the
 * vector, so every trap reaches rt_trap() with one frame layout (struct trap_frame in rt.h).
 * isr_table[v] is the address of stub v, for setup_idt().
 */

	.text
	.macro stub v
	.balign 8
isr_\v:
	/* The CPU pushes an error code for 8, 10-14, 17, 21, 29 and 30 (SDM vol. 3A table 6-1). */
	.if !((\v == 8) || ((\v >= 10) && (\v <= 14)) || (\v == 17) || (\v == 21) || (\v == 29) || (\v == 30))
	push $0
	.endif
	push $\v
	jmp trap_common
	.endm

	.altmacro
	.macro stubs from, to
	stub \from
	.if \to-\from
	stubs %(\from+1), \to
	.endif
	.endm

	stubs 0, 63
	stubs 64, 127
	stubs 128, 191
	stubs 192, 255

trap_common:
#ifdef __x86_64__
	push %rax
	push %rcx
	push %rdx
	push %rbx
	push %rbp
	push %rsi
	push %rdi
	push %r8
	push %r9
	push %r10
	push %r11
	push %r12
	push %r13
	push %r14
	push %r15
	mov %rsp, %rdi
	cld
	call rt_trap
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %r11
	pop %r10
	pop %r9
	pop %r8
	pop %rdi
	pop %rsi
	pop %rbp
	pop %rbx
	pop %rdx
	pop %rcx
	pop %rax
	add $16, %rsp
	iretq
#else
	pusha
	push %esp
	cld
	call rt_trap
	add $4, %esp
	popa
	add $8, %esp
	iret
#endif

	.macro entry v
#ifdef __x86_64__
	.quad isr_\v
#else
	.long isr_\v
#endif
	.endm
	.macro entries from, to
	entry \from
	.if \to-\from
	entries %(\from+1), \to
	.endif
	.endm

	.section .rodata
	.balign 8
	.globl isr_table
isr_table:
	entries 0, 63
	entries 64, 127
	entries 128, 191
	entries 192, 255
