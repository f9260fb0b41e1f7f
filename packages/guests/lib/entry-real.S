/*
 * Boot stub entered in real mode at 0x1000 (kvmts run --mode real): real mode -> 32-bit
 * protected mode -> (64-bit builds) PAE paging and long mode, then rt_start().
 * The boot page tables identity-map the first 1 GiB with 2 MiB pages, as the KVM selftests'
 * long64 set-up does; setup_paging() later replaces them with the runtime's own.
 */
#include "selectors.h"
#define MSR_EFER  0xc0000080
#define EFER_LME  0x100
#define CR0_PE    0x1
#define CR0_PG    0x80000000
#define CR4_PAE   0x20

	.section .text.entry, "ax"
	.code16
	.globl _start
_start:
	cli
	xor %ax, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	lgdtl gdt_desc
	mov %cr0, %eax
	or $CR0_PE, %eax
	mov %eax, %cr0
	ljmpl $KERNEL_CS32, $start32

	.code32
start32:
	mov $KERNEL_DS, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %fs
	mov %ax, %gs
	mov %ax, %ss
	mov $__bss_start, %edi
	mov $__bss_end, %ecx
	sub %edi, %ecx
	xor %eax, %eax
	rep stosb
	mov $stack_top, %esp
#ifdef __x86_64__
	mov $boot_pdpt + 3, %eax
	mov %eax, boot_pml4
	mov $boot_pd + 3, %eax
	mov %eax, boot_pdpt
	xor %ecx, %ecx
1:	mov %ecx, %eax
	shl $21, %eax
	or $0x83, %eax                  /* P | W | PS: a 2 MiB page */
	mov %eax, boot_pd(,%ecx,8)
	inc %ecx
	cmp $512, %ecx
	jne 1b
	mov %cr4, %eax
	or $CR4_PAE, %eax
	mov %eax, %cr4
	mov $boot_pml4, %eax
	mov %eax, %cr3
	mov $MSR_EFER, %ecx
	rdmsr
	or $EFER_LME, %eax
	wrmsr
	mov %cr0, %eax
	or $CR0_PG, %eax                /* EFER.LMA turns on here */
	mov %eax, %cr0
	ljmp $KERNEL_CS64, $start64

	.code64
start64:
	mov $stack_top, %rsp
#endif
	call rt_start
2:	hlt
	jmp 2b

	.bss
	.balign 4096
#ifdef __x86_64__
boot_pml4:	.skip 4096
boot_pdpt:	.skip 4096
boot_pd:	.skip 4096
#endif
	.balign 16
	.skip STACK_SIZE
	.globl stack_top
stack_top:
