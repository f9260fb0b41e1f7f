/*
 * Task-switch and virtual-8086 (VME) guest code for test/task-switch.test.ts and
 * test/vme.test.ts. The test builds the GDT, IDT and TSSs around it, and enters at a label in
 * 32-bit protected mode (CS = 0x08) or virtual-8086 mode. Every report is an OUT to port 0xe9.
 * Linked at 0x1000.
 */
	.intel_syntax noprefix
	.set REPORT, 0xe9

	.macro JMPF sel			/* jmp far sel:0 (32-bit operand size) */
	.byte 0xea
	.long 0
	.word \sel
	.endm
	.macro CALLF sel		/* call far sel:0 */
	.byte 0x9a
	.long 0
	.word \sel
	.endm

	.text
	.code32
	.globl _start
_start:

/* JMP to task B (TSS 0x20), which jumps back to task A (TSS 0x18). */
	.globl a_jmp, a_after_jmp, b_jmp_back, b_after_jmp
a_jmp:
	mov eax, 0x11111111
	mov ebx, 0x22222222
	JMPF 0x20
a_after_jmp:
	hlt
b_jmp_back:
	mov ecx, 0x33333333
	JMPF 0x18
b_after_jmp:
	hlt

/* CALL through the task gate 0x30 to task B, which reports and IRETs back. */
	.globl a_call, a_after_call, b_nested, b_after_iret
a_call:
	mov eax, 0x44444444
	CALLF 0x30
a_after_call:
	pushfd
	pop edx
	hlt
b_nested:
	pushfd
	pop eax
	out REPORT, eax			/* EFLAGS in the nested task: NT set */
	xor eax, eax
	str ax
	out REPORT, eax			/* TR */
	mov ax, [0x3100]		/* the link field of TSS B */
	out REPORT, eax
	iretd
b_after_iret:
	hlt

/* MOV DS with a selector past the GDT: #GP; the IDT ends before vector 13: #DF, a task gate to task C. */
	.globl a_fault, a_fault_insn, c_df
a_fault:
	mov ax, 0x1234
a_fault_insn:
	mov ds, ax
	hlt
c_df:
	pop eax
	out REPORT, eax			/* #DF's error code, pushed on task C's stack */
	mov eax, esp
	out REPORT, eax
	pushfd
	pop eax
	out REPORT, eax
	hlt

/* Failing switches, caught by interrupt gates in the same task. */
	.globl a_bad_limit, a_call_busy, h_err, h_db, g_code, f_code
a_bad_limit:
	JMPF 0x38
	hlt
a_call_busy:
	CALLF 0x18
	hlt
h_err:					/* error code, EIP, CS */
	pop eax
	out REPORT, eax
	pop eax
	out REPORT, eax
	pop eax
	out REPORT, eax
	hlt
h_db:					/* EIP, CS, DR6 */
	pop eax
	out REPORT, eax
	pop eax
	out REPORT, eax
	mov eax, dr6
	out REPORT, eax
	hlt
g_code:
	hlt
f_code:
	hlt

/* JMP to the 16-bit TSS 0x40, whose task jumps back. */
	.globl a_jmp16, e_code, e_after_jmp
a_jmp16:
	mov eax, 0x55555555
	JMPF 0x40
	hlt
	.code16
e_code:
	mov bx, 0x6666
	.byte 0xea			/* jmp far 0x18:0 (16-bit operand size) */
	.word 0
	.word 0x18
e_after_jmp:
	hlt

/*
 * Virtual-8086 mode with CR4.VME and IOPL = 0: CLI/STI move VIF, PUSHF shows it as IF,
 * INT 0x21 is redirected to the 8086 handler, INT 0x22 (bit set in the redirection bitmap)
 * raises #GP, which the protected-mode handler reports.
 */
	.globl v86_start, v86_sti, v86_int21, v86_int22, v86_gp
v86_start:
	cli
	pushf
	pop ax
	out REPORT, ax			/* FLAGS image after CLI: IF (= VIF) 0, IOPL 3 */
v86_sti:
	sti
	pushf
	pop ax
	out REPORT, ax			/* after STI: IF (= VIF) 1 */
	int 0x21
	mov ax, bx
	out REPORT, ax			/* what the 8086 handler left */
	pushf
	pop ax
	out REPORT, ax			/* after its IRET: VIF restored */
v86_int22:
	int 0x22
	hlt
v86_int21:
	pushf
	pop cx
	mov ax, cx
	out REPORT, ax			/* inside the handler: VIF cleared */
	mov bx, 0x2121
	iret
	.code32
v86_gp:					/* 32-bit interrupt gate: error code, EIP, CS, EFLAGS */
	pop eax
	out REPORT, eax
	pop eax
	out REPORT, eax
	pop eax
	out REPORT, eax
	pop eax
	out REPORT, eax
	hlt
