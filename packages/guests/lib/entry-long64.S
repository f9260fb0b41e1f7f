/*
 * Boot stub entered in 64-bit mode at 0x1000 (kvmts run --mode long64: paging on, CS=0x08).
 * It takes over with the runtime's own GDT and stack, then calls rt_start().
 */
#include "selectors.h"
	.section .text.entry, "ax"
	.code64
	.globl _start
_start:
	cli
	mov $__bss_start, %rdi
	mov $__bss_end, %rcx
	sub %rdi, %rcx
	xor %eax, %eax
	rep stosb
	mov $stack_top, %rsp
	lgdt gdt_desc
	pushq $KERNEL_CS64
	pushq $1f
	lretq
1:	mov $KERNEL_DS, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %fs
	mov %ax, %gs
	mov %ax, %ss
	call rt_start
2:	hlt
	jmp 2b

	.bss
	.balign 16
	.skip STACK_SIZE
	.globl stack_top
stack_top:
