/*
 * MMIO to an address no memslot backs: every access leaves the guest as KVM_EXIT_MMIO.
 * Entered in long64 mode (the first 1 GiB identity-mapped). Writes of 1, 2, 4 and 8 bytes,
 * reads of each size (the VMM answers 0xff bytes), and a read-modify-write, which KVM's
 * emulator turns into one read exit and one write exit.
 * Results stay in registers for the final-register comparison:
 *   RBX = 0xff, RCX = 0xffff, RDX (after the checks) = 0x3f8, RSI = 0xffffffff,
 *   R8 = 0xffffffffffffffff. Prints "mmio: ok" and exits with 0 (1 on a mismatch).
 */
#define MMIO_BASE 0x10000000
#define EXIT_PORT 0xf4

	.code64
	.globl _start
_start:
	mov $MMIO_BASE, %edi
	movb $0x11, (%rdi)
	movw $0x2211, 0x10(%rdi)
	movl $0x44332211, 0x20(%rdi)
	mov $0x8877665544332211, %rax
	mov %rax, 0x30(%rdi)
	movzbl (%rdi), %ebx
	movzwl 0x10(%rdi), %ecx
	mov 0x20(%rdi), %esi
	mov 0x30(%rdi), %r8
	addl $1, 0x40(%rdi)             /* reads 0xffffffff, writes 0 */
	cmp $0xff, %rbx
	jne fail
	cmp $0xffff, %rcx
	jne fail
	mov $0xffffffff, %eax
	cmp %rax, %rsi
	jne fail
	cmp $-1, %r8
	jne fail
	lea msg_ok(%rip), %rsi
	mov $0x3f8, %dx
1:	lodsb
	test %al, %al
	jz 2f
	out %al, %dx
	jmp 1b
2:	mov $0xffffffff, %esi
	xor %eax, %eax
	out %al, $EXIT_PORT
	hlt
fail:
	mov $1, %al
	out %al, $EXIT_PORT
	hlt

msg_ok:	.asciz "mmio: ok\n"
