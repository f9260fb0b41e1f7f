/*
 * The real-mode guest of LWN's "Using the KVM API" (2015): the VMM sets RAX=2 and RBX=2,
 * the guest adds them, prints the digit and a newline on COM1, and halts.
 */
	.code16
	.globl _start
_start:
	mov $0x3f8, %dx
	add %bl, %al
	add $'0', %al
	out %al, (%dx)
	mov $'\n', %al
	out %al, (%dx)
	hlt
