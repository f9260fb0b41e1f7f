/*
 * A mode tour, as a boot loader makes it: real mode -> 32-bit protected mode -> PAE paging
 * and long mode. Each stage proves where it is (CR0.PE, EFER.LMA, CS.L by a 64-bit-only
 * operation) and says so on COM1. In long mode, virtual 1 GiB is mapped onto physical 0, so
 * a read through the alias shows paging translating. Exit status 0 through port 0xf4.
 */
#define COM1       0x3f8
#define EXIT_PORT  0xf4
#define MSR_EFER   0xc0000080
#define EFER_LME   0x100
#define EFER_LMA   0x400
#define CODE32     0x08
#define DATA       0x10
#define CODE64     0x18
#define ALIAS      0x40000000

	.code16
	.globl _start
_start:
	cli
	xor %ax, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov $0x7000, %sp
	mov $msg_real, %si
	call puts16
	lgdtl gdt_desc
	mov %cr0, %eax
	or $1, %eax
	mov %eax, %cr0
	ljmpl $CODE32, $pm32

puts16:
	mov $COM1, %dx
1:	lodsb
	test %al, %al
	jz 2f
	out %al, %dx
	jmp 1b
2:	ret

	.code32
pm32:
	mov $DATA, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov $0x7000, %esp
	mov %cr0, %eax
	test $1, %al
	jz fail32
	mov $msg_prot, %esi
	call puts32

	/* PML4[0] -> PDPT; PDPT[0] and PDPT[1] -> the same PD of 2 MiB pages over 0..1 GiB. */
	mov $pml4, %edi
	mov $(3 * 4096 / 4), %ecx
	xor %eax, %eax
	rep stosl
	movl $pdpt + 3, pml4
	movl $pd + 3, pdpt
	movl $pd + 3, pdpt + 8
	xor %ecx, %ecx
1:	mov %ecx, %eax
	shl $21, %eax
	or $0x83, %eax
	mov %eax, pd(,%ecx,8)
	inc %ecx
	cmp $512, %ecx
	jne 1b
	mov %cr4, %eax
	or $0x20, %eax                  /* CR4.PAE */
	mov %eax, %cr4
	mov $pml4, %eax
	mov %eax, %cr3
	mov $MSR_EFER, %ecx
	rdmsr
	or $EFER_LME, %eax
	wrmsr
	mov %cr0, %eax
	or $0x80000000, %eax            /* CR0.PG: EFER.LMA follows */
	mov %eax, %cr0
	ljmp $CODE64, $lm64

puts32:
	mov $COM1, %dx
1:	lodsb
	test %al, %al
	jz 2f
	out %al, %dx
	jmp 1b
2:	ret

fail32:
	mov $1, %al
	out %al, $EXIT_PORT
	hlt

	.code64
lm64:
	mov $0x7000, %rsp
	mov $MSR_EFER, %ecx
	rdmsr
	test $EFER_LMA, %eax
	jz fail64
	/* A 64-bit add only works with CS.L=1. */
	mov $0x100000000, %rax
	add %rax, %rax
	shr $33, %rax
	cmp $1, %rax
	jne fail64
	mov $msg_long, %rsi
	call puts64
	/* The alias at 1 GiB reads the same bytes as physical memory. */
	mov magic, %eax
	cmp ALIAS + magic, %eax
	jne fail64
	mov $msg_alias, %rsi
	call puts64
	xor %eax, %eax
	out %al, $EXIT_PORT
	hlt

puts64:
	mov $COM1, %dx
1:	lodsb
	test %al, %al
	jz 2f
	out %al, %dx
	jmp 1b
2:	ret

fail64:
	mov $1, %al
	out %al, $EXIT_PORT
	hlt

	.balign 8
gdt:
	.quad 0
	.quad 0x00cf9b000000ffff        /* CODE32 */
	.quad 0x00cf93000000ffff        /* DATA */
	.quad 0x00af9b000000ffff        /* CODE64 */
gdt_end:
gdt_desc:
	.word gdt_end - gdt - 1
	.long gdt

magic:		.long 0x6b766d74        /* "tmvk" */
msg_real:	.asciz "real mode\n"
msg_prot:	.asciz "protected mode\n"
msg_long:	.asciz "long mode\n"
msg_alias:	.asciz "paging: 1 GiB alias reads physical memory\n"

	.bss
	.balign 4096
pml4:	.skip 4096
pdpt:	.skip 4096
pd:	.skip 4096
