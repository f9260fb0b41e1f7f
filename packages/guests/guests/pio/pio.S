/*
 * Port I/O to ports no device claims, so every access leaves the guest as KVM_EXIT_IO.
 * Entered in long64 mode. OUT and IN of 1, 2 and 4 bytes through DX and through an
 * immediate port, then REP OUTSB, REP OUTSW, REP INSB and REP INSL (the VMM answers IN with
 * 0xff bytes). KVM's emulator exits once per REP OUTS iteration and reads REP INS ahead in one
 * exit, as the machine's /dev/kvm shows. Prints "pio: ok" and exits with 0 (1 on a mismatch).
 */
#define PORT      0x510
#define PORT_IMM  0x80
#define EXIT_PORT 0xf4

	.code64
	.globl _start
_start:
	mov $PORT, %dx
	mov $0x11, %al
	out %al, %dx
	mov $0x2211, %ax
	out %ax, %dx
	mov $0x44332211, %eax
	out %eax, %dx
	out %al, $PORT_IMM
	in %dx, %al
	cmp $0xff, %al
	jne fail
	in %dx, %ax
	cmp $0xffff, %ax
	jne fail
	in %dx, %eax
	cmp $0xffffffff, %eax
	jne fail
	in $PORT_IMM, %al
	cmp $0xff, %al
	jne fail

	cld
	lea out_bytes(%rip), %rsi
	mov $4, %ecx
	rep outsb
	lea out_words(%rip), %rsi
	mov $2, %ecx
	rep outsw
	test %ecx, %ecx
	jnz fail
	lea in_buf(%rip), %rdi
	mov $4, %ecx
	rep insb
	mov $2, %ecx
	rep insl
	lea in_buf(%rip), %rdi
	cmpl $-1, (%rdi)
	jne fail
	cmpq $-1, 4(%rdi)
	jne fail
	cmpb $0, 12(%rdi)               /* nothing past the 12 bytes read */
	jne fail

	lea msg_ok(%rip), %rsi
	mov $0x3f8, %dx
1:	lodsb
	test %al, %al
	jz 2f
	out %al, %dx
	jmp 1b
2:	xor %eax, %eax
	out %al, $EXIT_PORT
	hlt
fail:
	mov $1, %al
	out %al, $EXIT_PORT
	hlt

out_bytes:	.byte 0x41, 0x42, 0x43, 0x44
out_words:	.word 0x6261, 0x6463
msg_ok:		.asciz "pio: ok\n"
	.balign 16
in_buf:		.skip 16
