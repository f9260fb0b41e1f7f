/*
 * Hardware task switching, as a 32-bit kernel of the i386 era used it (SDM Vol. 3A 7.3):
 * - task A (the boot task) JMPs to the TSS of task B and B JMPs back; B has an address space
 *   of its own (CR3 from its TSS: the page at ALIAS shows each task its own frame);
 * - A JMPs to a 16-bit TSS, whose 16-bit task JMPs back;
 * - A CALLs B through a task gate in the GDT and B IRETs back (NT, the link field, busy bits);
 * - INT 0x40 and INT3 go to B through task gates in the IDT;
 * - a #GP (an IDT entry of no valid type) goes to task C, and a #DF (INT to a not-present gate,
 *   whose #NP meets a not-present #NP gate) to task D, each with its error code on the new
 *   task's stack;
 * - a TSS whose code selector names a data segment raises #TS in the new task, after the
 *   switch's commit point; task E, behind the #TS task gate, reports it;
 * - the VMM's interrupt (vector 0x48, injected at the HLT) goes through a task gate to task F.
 * Under KVM every one of these switches exits (VMX exit reason 9, SVM TASK_SWITCH) and is done
 * by kvm_task_switch. Entered in real mode at 0x1000; PASS/FAIL lines on COM1, then the number
 * of failures through port 0xf4.
 */
#define COM1       0x3f8
#define EXIT_PORT  0xf4

#define CODE       0x08
#define DATA       0x10
#define TSS_A      0x18
#define TSS_B      0x20
#define TSS_C      0x28
#define TSS_D      0x30
#define GATE_B     0x38
#define TSS_E      0x40
#define TSS_BAD    0x48
#define TSS_F      0x50
#define TSS_16     0x58
#define CODE16     0x60

/* TSSs and stacks live above the image, in memory that starts zeroed. */
#define TSS_A_BASE 0x8000
#define TSS_B_BASE 0x8100
#define TSS_C_BASE 0x8200
#define TSS_D_BASE 0x8300
#define TSS_E_BASE 0x8400
#define TSS_BAD_BASE 0x8500
#define TSS_F_BASE 0x8600
#define TSS_16_BASE 0x8700

/*
 * 32-bit paging (CR4.PSE): both page directories map 0-4 MiB with one 4 MiB page, and the
 * 4 KiB page ALIAS through their own page tables to their own frame holding a magic word.
 */
#define PD_A       0xc000
#define PD_B       0xd000
#define PT_A       0xe000
#define PT_B       0xf000
#define FRAME_A    0x10000
#define FRAME_B    0x11000
#define ALIAS      0x400000
#define MAGIC_A    0x41414141
#define MAGIC_B    0x42424242
#define PDE_4M     0x83			/* P, R/W, PS */
#define PTE        0x03			/* P, R/W */
#define CR0_PG     0x80000000
#define CR4_PSE    0x10

/* 32-bit TSS fields (SDM Figure 7-2). */
#define TSS_LINK   0x00
#define TSS_CR3    0x1c
#define TSS_EIP    0x20
#define TSS_EFLAGS 0x24
#define TSS_EAX    0x28
#define TSS_ESP    0x38
#define TSS_ES     0x48
#define TSS_CS     0x4c
#define TSS_SS     0x50
#define TSS_DS     0x54
#define TSS_FS     0x58
#define TSS_GS     0x5c

/* 16-bit TSS fields (SDM Figure 7-11). */
#define TSS16_IP   0x0e
#define TSS16_FLAGS 0x10
#define TSS16_BX   0x18
#define TSS16_SP   0x1a
#define TSS16_ES   0x22
#define TSS16_CS   0x24
#define TSS16_SS   0x26
#define TSS16_DS   0x28

#define EFLAGS_NT  0x4000
#define CR0_TS     0x8
#define TYPE_TSS_AVAIL 0x89
#define TYPE_TSS_BUSY  0x8b

/* CHECK cc, "text": PASS when condition code cc holds (after a cmp or test), else FAIL. */
	.macro CHECK cc, text
	mov $.Lmsg\@, %esi
	j\cc .Lpass\@
	call fail
	jmp .Lend\@
.Lmsg\@:
	.asciz "\text"
.Lpass\@:
	call pass
.Lend\@:
	.endm

/* The access byte (P, DPL, type) of GDT entry sel. */
	.macro GDT_TYPE sel, reg
	movzbl gdt + \sel + 5, \reg
	.endm

	.code16
	.globl _start
_start:
	cli
	xor %ax, %ax
	mov %ax, %ds
	lgdtl gdt_desc
	lidtl idt_desc
	mov %cr0, %eax
	or $1, %eax
	mov %eax, %cr0
	ljmpl $CODE, $pm32

	.code32
pm32:
	mov $DATA, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %fs
	mov %ax, %gs
	mov %ax, %ss
	mov $0x7000, %esp
	mov $TSS_A, %ax
	ltr %ax

	movl $PDE_4M, PD_A
	movl $(PT_A + PTE), PD_A + 4
	movl $(FRAME_A + PTE), PT_A
	movl $MAGIC_A, FRAME_A
	movl $PDE_4M, PD_B
	movl $(PT_B + PTE), PD_B + 4
	movl $(FRAME_B + PTE), PT_B
	movl $MAGIC_B, FRAME_B
	mov %cr4, %eax
	or $CR4_PSE, %eax
	mov %eax, %cr4
	mov $PD_A, %eax
	mov %eax, %cr3
	mov %cr0, %eax
	or $CR0_PG, %eax
	mov %eax, %cr0
	/* A task switch loads CR3 from the new TSS and never saves it: the boot task's must be there. */
	movl $PD_A, TSS_A_BASE + TSS_CR3

	mov $TSS_B_BASE, %edi
	mov $task_b, %eax
	mov $0x9000, %ebx
	call init_tss
	movl $0xb0b0b0b0, TSS_B_BASE + TSS_EAX
	movl $PD_B, TSS_B_BASE + TSS_CR3
	mov $TSS_C_BASE, %edi
	mov $task_c, %eax
	mov $0x9800, %ebx
	call init_tss
	mov $TSS_D_BASE, %edi
	mov $task_d, %eax
	mov $0xa000, %ebx
	call init_tss
	mov $TSS_E_BASE, %edi
	mov $task_e, %eax
	mov $0xa800, %ebx
	call init_tss
	mov $TSS_F_BASE, %edi
	mov $task_f, %eax
	mov $0xb800, %ebx
	call init_tss
	/* The bad task: its CS is the data segment, so loading it raises #TS(DATA) in that task. */
	mov $TSS_BAD_BASE, %edi
	mov $0, %eax
	mov $0xb000, %ebx
	call init_tss
	movw $DATA, TSS_BAD_BASE + TSS_CS

/* 1. JMP to a TSS, and back. */
	cmpl $MAGIC_A, ALIAS
	CHECK e, "paging: the boot task's address space"
	mov $0x11111111, %ebx
	mov $0x22222222, %ebp
	ljmp $TSS_B, $0
a_after_jmp:
	cmp $0x11111111, %ebx
	CHECK e, "JMP back: the old task's registers come from its TSS"
	cmp $0x22222222, %ebp
	CHECK e, "JMP back: EBP as it was"
	cmpl $a_after_jmp, TSS_A_BASE + TSS_EIP
	CHECK e, "JMP: the old TSS holds the EIP after the JMP"
	cmpl $b_after_jmp, TSS_B_BASE + TSS_EIP
	CHECK e, "JMP back: task B's TSS holds the EIP after its JMP"
	mov %cr3, %eax
	cmp $PD_A, %eax
	CHECK e, "JMP back: CR3 from the old task's TSS"
	cmpl $MAGIC_A, ALIAS
	CHECK e, "JMP back: the old task's address space again"
	mov %cr0, %eax
	test $CR0_TS, %eax
	CHECK nz, "CR0.TS set by the task switch"
	clts

/* 1b. JMP to a 16-bit TSS (16-bit code; no CR3 in its TSS), whose task JMPs back. */
	movw $task_16, TSS_16_BASE + TSS16_IP
	movw $2, TSS_16_BASE + TSS16_FLAGS
	movw $0xbc00, TSS_16_BASE + TSS16_SP
	movw $CODE16, TSS_16_BASE + TSS16_CS
	movw $DATA, TSS_16_BASE + TSS16_SS
	movw $DATA, TSS_16_BASE + TSS16_DS
	movw $DATA, TSS_16_BASE + TSS16_ES
	ljmp $TSS_16, $0
	cmpw $0x1616, TSS_16_BASE + TSS16_BX
	CHECK e, "16-bit TSS: the task's BX saved in its TSS"
	cmpw $t16_after_jmp, TSS_16_BASE + TSS16_IP
	CHECK e, "16-bit TSS: its IP after the JMP back"
	cmp $0x11111111, %ebx
	CHECK e, "16-bit TSS: back in the 32-bit task with its registers"
	GDT_TYPE TSS_16, %eax
	cmp $0x81, %eax
	CHECK e, "16-bit TSS: no longer busy"
	clts

/* 2. CALL through a task gate in the GDT; the called task IRETs back. */
	mov $0x33333333, %ecx
	lcall $GATE_B, $0
a_after_call:
	cmp $0x33333333, %ecx
	CHECK e, "IRET: back in the caller with its registers"
	pushf
	pop %eax
	test $EFLAGS_NT, %eax
	CHECK z, "IRET: NT clear in the caller"
	GDT_TYPE TSS_B, %eax
	cmp $TYPE_TSS_AVAIL, %eax
	CHECK e, "IRET: the nested task's TSS is no longer busy"
	str %ax
	cmp $TSS_A, %ax
	CHECK e, "IRET: TR is the caller's TSS"
	clts

/* 3. INT 0x40 through a task gate in the IDT. */
	int $0x40
a_after_int:
	str %ax
	cmp $TSS_A, %ax
	CHECK e, "INT n through a task gate: IRET returns to the caller"
	clts

/* 3b. INT3 through a task gate in the IDT (a software exception: the vendor skips it too). */
	int3
a_after_int3:
	str %ax
	cmp $TSS_A, %ax
	CHECK e, "INT3 through a task gate: IRET returns to the caller"
	clts

/* 4. #GP through a task gate: IDT entry 0x31 has no valid type, error code 0x31 * 8 + 2. */
a_gp_insn:
	int $0x31
	cmpl $0x18a, gp_error
	CHECK e, "#GP through a task gate: error code 0x18a on the new task's stack"
	clts

/* 5. #DF through a task gate: INT 0x30 is not present (#NP), nor is the #NP gate. */
a_df_insn:
	int $0x30
	cmpl $0, df_error
	CHECK e, "#DF through a task gate: error code 0 on the new task's stack"
	cmpl $1, df_count
	CHECK e, "#DF: its task ran once"
	clts

/* 6. A task switch that faults after its commit point: #TS in the new task, through a task gate to task E. */
	ljmp $TSS_BAD, $0
a_after_bad:
	cmpl $DATA, ts_error
	CHECK e, "#TS in the new task: error code is its CS selector"
	cmpl $TSS_BAD, ts_link
	CHECK e, "#TS: delivered in the new task (the handler's link names it)"
	clts

/* 7. An external interrupt through a task gate: the VMM injects vector 0x48 at this HLT. */
	sti
	hlt
a_after_hlt:
	cli
	cmpl $1, irq_count
	CHECK e, "external interrupt through a task gate: task F ran once (the event is not injected again)"
	cmpl $a_after_hlt, irq_eip
	CHECK e, "external interrupt: the interrupted task's TSS holds the EIP after HLT"
	clts

	mov $msg_done, %esi
	call puts
	mov failures, %eax
	mov $EXIT_PORT, %dx
	out %eax, %dx
	hlt

/* Task B: entered by JMP, then by CALL through a gate, then by INT 0x40 and INT3 (each time where it left off). */
task_b:
	cmp $0xb0b0b0b0, %eax
	CHECK e, "JMP: the new task's registers come from its TSS"
	str %ax
	cmp $TSS_B, %ax
	CHECK e, "JMP: TR is the new TSS"
	pushf
	pop %eax
	test $EFLAGS_NT, %eax
	CHECK z, "JMP: NT clear in the new task"
	GDT_TYPE TSS_A, %eax
	cmp $TYPE_TSS_AVAIL, %eax
	CHECK e, "JMP: the old TSS is no longer busy"
	GDT_TYPE TSS_B, %eax
	cmp $TYPE_TSS_BUSY, %eax
	CHECK e, "JMP: the new TSS is busy"
	mov %cr3, %eax
	cmp $PD_B, %eax
	CHECK e, "JMP: CR3 from the new TSS"
	cmpl $MAGIC_B, ALIAS
	CHECK e, "JMP: the new task sees its own address space"
	ljmp $TSS_A, $0
b_after_jmp:
	pushf
	pop %eax
	test $EFLAGS_NT, %eax
	CHECK nz, "CALL through a task gate: NT set in the called task"
	cmpw $TSS_A, TSS_B_BASE + TSS_LINK
	CHECK e, "CALL: the link field names the caller's TSS"
	GDT_TYPE TSS_A, %eax
	cmp $TYPE_TSS_BUSY, %eax
	CHECK e, "CALL: the caller's TSS stays busy"
	cmpl $a_after_call, TSS_A_BASE + TSS_EIP
	CHECK e, "CALL: the caller's TSS holds the EIP after the CALL"
	iret
	pushf
	pop %eax
	test $EFLAGS_NT, %eax
	CHECK nz, "INT n through a task gate: NT set in the new task"
	cmpl $a_after_int, TSS_A_BASE + TSS_EIP
	CHECK e, "INT n: the caller's TSS holds the EIP after the INT"
	iret
	cmpl $a_after_int3, TSS_A_BASE + TSS_EIP
	CHECK e, "INT3: the caller's TSS holds the EIP after INT3"
	iret

/* Task C, the #GP task: the error code is on its stack; the faulting INT is skipped by hand. */
task_c:
	pop %eax
	mov %eax, gp_error
	mov $msg_gp, %esi
	call puts
	mov gp_error, %eax
	call hex32
	cmpl $a_gp_insn, TSS_A_BASE + TSS_EIP
	CHECK e, "#GP: the old task's EIP is the faulting instruction"
	addl $2, TSS_A_BASE + TSS_EIP
	iret
	jmp task_c

/* Task D, the #DF task. */
task_d:
	pop %eax
	mov %eax, df_error
	incl df_count
	mov $msg_df, %esi
	call puts
	mov df_error, %eax
	call hex32
	cmpl $a_df_insn, TSS_A_BASE + TSS_EIP
	CHECK e, "#DF: the old task's EIP is the INT that began it"
	addl $2, TSS_A_BASE + TSS_EIP
	iret
	jmp task_d

/* Task E, the #TS task: the bad task can never run, so E goes back to A by JMP. */
task_e:
	pop %eax
	mov %eax, ts_error
	movzwl TSS_E_BASE + TSS_LINK, %eax
	mov %eax, ts_link
	mov $msg_ts, %esi
	call puts
	mov ts_error, %eax
	call hex32
	ljmp $TSS_A, $0

/* The 16-bit task. */
	.code16
task_16:
	mov $0x1616, %bx
	ljmpw $TSS_A, $0
t16_after_jmp:
	hlt
	.code32

/* Task F, the interrupt task: counts, notes the interrupted task's EIP, IRETs back. */
task_f:
	incl irq_count
	mov TSS_A_BASE + TSS_EIP, %eax
	mov %eax, irq_eip
	iret
	jmp task_f

/* init_tss: EDI = TSS base, EAX = EIP, EBX = ESP; flat segments, EFLAGS = 2, the boot task's CR3. */
init_tss:
	movl $PD_A, TSS_CR3(%edi)
	mov %eax, TSS_EIP(%edi)
	mov %ebx, TSS_ESP(%edi)
	movl $2, TSS_EFLAGS(%edi)
	movw $CODE, TSS_CS(%edi)
	movw $DATA, TSS_SS(%edi)
	movw $DATA, TSS_DS(%edi)
	movw $DATA, TSS_ES(%edi)
	movw $DATA, TSS_FS(%edi)
	movw $DATA, TSS_GS(%edi)
	ret

pass:
	push %esi
	mov $msg_pass, %esi
	call puts
	pop %esi
	jmp puts_nl
fail:
	incl failures
	push %esi
	mov $msg_fail, %esi
	call puts
	pop %esi
puts_nl:
	call puts
	mov $'\n', %al
	jmp putc

/* puts: the string at ESI. */
puts:
	push %esi
1:	lodsb
	test %al, %al
	jz 2f
	call putc
	jmp 1b
2:	pop %esi
	ret

putc:
	push %edx
	mov $COM1, %dx
	out %al, %dx
	pop %edx
	ret

/* hex32: EAX as 8 hex digits and a newline. */
hex32:
	push %ecx
	push %edx
	mov %eax, %edx
	mov $8, %ecx
1:	rol $4, %edx
	mov %dl, %al
	and $0xf, %al
	add $'0', %al
	cmp $'9', %al
	jbe 2f
	add $('a' - '9' - 1), %al
2:	call putc
	loop 1b
	mov $'\n', %al
	call putc
	pop %edx
	pop %ecx
	ret

	.p2align 3
gdt:
	.quad 0
	.quad 0x00cf9b000000ffff			/* CODE: flat 32-bit */
	.quad 0x00cf93000000ffff			/* DATA: flat 32-bit */
	.word 0x67, TSS_A_BASE, 0x8900, 0		/* TSS_A: 32-bit TSS, available until LTR */
	.word 0x67, TSS_B_BASE, 0x8900, 0		/* TSS_B */
	.word 0x67, TSS_C_BASE, 0x8900, 0		/* TSS_C */
	.word 0x67, TSS_D_BASE, 0x8900, 0		/* TSS_D */
	.word 0, TSS_B, 0x8500, 0			/* GATE_B: task gate to TSS_B */
	.word 0x67, TSS_E_BASE, 0x8900, 0		/* TSS_E */
	.word 0x67, TSS_BAD_BASE, 0x8900, 0		/* TSS_BAD */
	.word 0x67, TSS_F_BASE, 0x8900, 0		/* TSS_F */
	.word 0x2b, TSS_16_BASE, 0x8100, 0		/* TSS_16: 16-bit TSS */
	.quad 0x00009b000000ffff			/* CODE16: 64 KiB at 0, 16-bit */
gdt_end:
gdt_desc:
	.word gdt_end - gdt - 1
	.long gdt

/*
 * The IDT: task gates at 3 (#BP), 8 (#DF), 10 (#TS), 13 (#GP), 0x40 and 0x48; interrupt gates marked not
 * present at 11 (#NP) and 0x30; 0x31 present with no valid type; the rest empty.
 */
	.p2align 3
idt:
	.fill 3, 8, 0
	.word 0, TSS_B, 0x8500, 0			/* 3: INT3 -> task B */
	.fill 4, 8, 0
	.word 0, TSS_D, 0x8500, 0			/* 8: #DF -> task D */
	.fill 1, 8, 0
	.word 0, TSS_E, 0x8500, 0			/* 10: #TS -> task E */
	.word 0, CODE, 0x0e00, 0			/* 11: #NP, not present */
	.fill 1, 8, 0
	.word 0, TSS_C, 0x8500, 0			/* 13: #GP -> task C */
	.fill 0x30 - 14, 8, 0
	.word 0, CODE, 0x0e00, 0			/* 0x30: not present */
	.word 0, 0, 0x8000, 0				/* 0x31: present, type 0 */
	.fill 0x40 - 0x32, 8, 0
	.word 0, TSS_B, 0x8500, 0			/* 0x40: INT 0x40 -> task B */
	.fill 0x48 - 0x41, 8, 0
	.word 0, TSS_F, 0x8500, 0			/* 0x48: the VMM's interrupt -> task F */
idt_end:
idt_desc:
	.word idt_end - idt - 1
	.long idt

failures:	.long 0
gp_error:	.long 0xffffffff
df_error:	.long 0xffffffff
df_count:	.long 0
ts_error:	.long 0xffffffff
ts_link:	.long 0
irq_count:	.long 0
irq_eip:	.long 0
msg_pass:	.asciz "PASS: "
msg_fail:	.asciz "FAIL: "
msg_gp:		.asciz "#GP error code "
msg_df:		.asciz "#DF error code "
msg_ts:		.asciz "#TS error code "
msg_done:	.asciz "tasks32: done\n"
