/*
 * Real mode, self-checking (no runtime: that one leaves real mode at once). Segment:offset
 * addressing with a non-zero DS, 16-bit base+index addressing, operand- and address-size
 * prefixes, a far call into another code segment, a software interrupt and a fault (#DE)
 * delivered through the guest's own IVT (real-mode faults push the faulting IP), and the
 * FLAGS/CS/IP frame an INT pushes. Prints "PASS: name" or "FAIL: name" per check, then exits
 * through port 0xf4 with the number of failures.
 */
#define COM1      0x3f8
#define EXIT_PORT 0xf4
#define DATA      0x5000
#define STACK     0x7000

	.code16
	.globl _start
_start:
	cli
	xor %ax, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov $STACK, %sp
	xor %bp, %bp                    /* BP counts failures */

	/* DS = 0x500 puts offset 0x10 at physical 0x5010. */
	mov $(DATA >> 4), %ax
	mov %ax, %ds
	movw $0x1234, 0x10
	xor %ax, %ax
	mov %ax, %ds
	cmpw $0x1234, DATA + 0x10
	mov $t_segment, %si
	call result

	/* [BX+SI+disp8] */
	mov $DATA, %bx
	mov $0x20, %si
	movw $0xbeef, 4(%bx,%si)
	cmpw $0xbeef, DATA + 0x24
	mov $t_bxsi, %si
	call result

	/* 66: a 32-bit register in real mode; 67: a 32-bit address. */
	mov $0x12345678, %eax
	shr $16, %eax
	cmp $0x1234, %eax
	mov $t_opsize, %si
	call result
	mov $(DATA + 0x30), %ebx
	addr32 movl $0xcafef00d, (%ebx)
	cmpl $0xcafef00d, DATA + 0x30
	mov $t_addrsize, %si
	call result

	/* A far call into CS = 0x100 (base 0x1000): the callee sees its own CS. */
	lcall $0x100, $(far_fn - 0x1000)
	cmp $0x100, %ax
	mov $t_farcall, %si
	call result

	/* INT 0x40 through IVT[0x40]; the handler records the frame it was given. */
	movw $int40, 0x40 * 4
	movw $0, 0x40 * 4 + 2
	mov $0, %ax
	int $0x40
int40_ret:
	cmp $0x4242, %ax
	jne 1f
	cmpw $int40_ret, DATA + 0x40    /* pushed IP: after the INT */
	jne 1f
	cmpw $0, DATA + 0x42            /* pushed CS */
1:	mov $t_int, %si
	call result

	/* #DE through IVT[0]: the handler skips the 2-byte DIV; the pushed IP is the DIV's. */
	movw $de_handler, 0
	movw $0, 2
	mov $1, %ax
	xor %cl, %cl
de_insn:
	div %cl
	cmpw $de_insn, DATA + 0x50
	mov $t_de, %si
	call result

	mov %bp, %ax
	out %al, $EXIT_PORT
	hlt

far_fn:
	mov %cs, %ax
	lret

int40:
	push %bp
	mov %sp, %bp
	mov 2(%bp), %ax
	mov %ax, DATA + 0x40
	mov 4(%bp), %ax
	mov %ax, DATA + 0x42
	pop %bp
	mov $0x4242, %ax
	iret

de_handler:
	push %bp
	mov %sp, %bp
	mov 2(%bp), %ax
	mov %ax, DATA + 0x50
	addw $2, 2(%bp)
	pop %bp
	iret

/* Prints PASS or FAIL for the test named at SI, by ZF; counts failures in BP. */
result:
	mov $s_pass, %di
	je 1f
	inc %bp
	mov $s_fail, %di
1:	xchg %si, %di
	call puts
	mov %di, %si
	call puts
	mov $s_nl, %si
	call puts
	ret

puts:
	push %ax
	push %dx
	mov $COM1, %dx
1:	lodsb
	test %al, %al
	jz 2f
	out %al, %dx
	jmp 1b
2:	pop %dx
	pop %ax
	ret

s_pass:		.asciz "PASS: "
s_fail:		.asciz "FAIL: "
s_nl:		.asciz "\n"
t_segment:	.asciz "DS:offset addressing"
t_bxsi:		.asciz "[BX+SI+disp] addressing"
t_opsize:	.asciz "operand-size prefix"
t_addrsize:	.asciz "address-size prefix"
t_farcall:	.asciz "far call into another segment"
t_int:		.asciz "INT through the IVT, with its frame"
t_de:		.asciz "#DE through the IVT, at the faulting IP"
