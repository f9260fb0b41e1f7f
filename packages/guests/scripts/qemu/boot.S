/*
 * A boot sector that puts a guest image in the state DESIGN.md's `kvmts run` contract gives
 * it, on a PC whose BIOS loaded this sector at 0x7c00 (QEMU, for scripts/qemu-check.mjs).
 * It moves itself to 0x600 (bench images load at 0x7c00), reads SECTORS sectors from LBA 1
 * to LOAD, then enters ENTRY in real mode (CS=0) or, with -DLONG64, in the selftests' long64
 * mode: GDT at MEM-0x4000, PML4/PDPT/PD at MEM-0x3000/-0x2000/-0x1000 mapping 1 GiB with
 * 2 MiB pages, CR0=0x80000033, CR4=0x20, EFER=0x500, CS=0x08, data segments 0x10.
 * With -DPIC_VECTOR=V, the PC's timer interrupt arrives at vector V whenever the guest enables
 * interrupts (see there).
 */
#ifndef RAX
#define RAX 0
#endif
#ifndef RBX
#define RBX 0
#endif
#define HERE 0x600
#define GDT  (MEM - 0x4000)
#define PML4 (MEM - 0x3000)
#define PDPT (MEM - 0x2000)
#define PD   (MEM - 0x1000)

	.code16
	.globl _start
_start:
	cli
	xor %ax, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov $0x7c00, %sp
	mov $0x7c00, %si
	mov $HERE, %di
	mov $256, %cx
	cld
	rep movsw
	ljmp $0, $moved
moved:
	mov $dap, %si
	mov $0x42, %ah
	int $0x13
	jc fail16
#ifdef PIC_VECTOR
	/*
	 * Stand-in for the VMM's KVM_INTERRUPT: the BIOS's PIT ticks (IRQ0, 18.2 Hz) arrive at
	 * PIC_VECTOR. Auto-EOI, because the guests' handlers send no EOI (they run under KVM,
	 * where the VMM injects without an interrupt controller).
	 */
	mov $0x11, %al                  /* ICW1: edge, cascade, ICW4 follows */
	out %al, $0x20
	mov $PIC_VECTOR, %al            /* ICW2: vector base */
	out %al, $0x21
	mov $0x04, %al                  /* ICW3: slave on IRQ2 */
	out %al, $0x21
	mov $0x03, %al                  /* ICW4: 8086 mode, auto-EOI */
	out %al, $0x21
	mov $0xfe, %al                  /* OCW1: only IRQ0 */
	out %al, $0x21
	mov $0xff, %al
	out %al, $0xa1
#endif
#ifdef LONG64
	lgdtl boot_gdt_desc
	mov %cr0, %eax
	or $1, %eax
	mov %eax, %cr0
	ljmpl $0x18, $pm32
#else
	xor %eax, %eax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %fs
	mov %ax, %gs
	mov %ax, %ss
	xor %ecx, %ecx
	xor %edx, %edx
	xor %esi, %esi
	xor %edi, %edi
	xor %ebp, %ebp
	xor %esp, %esp
	mov $RAX, %eax
	mov $RBX, %ebx
	ljmp $0, $ENTRY
#endif
fail16:
	mov $0x7f, %al
	out %al, $0xf4
	hlt

#ifdef LONG64
	.code32
pm32:
	mov $0x10, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov $GDT, %edi
	xor %eax, %eax
	mov $(0x4000 / 4), %ecx
	rep stosl
	mov $boot_gdt, %esi
	mov $GDT, %edi
	mov $6, %ecx
	rep movsl
	movl $PDPT + 3, PML4
	movl $PD + 3, PDPT
	xor %ecx, %ecx
1:	mov %ecx, %eax
	shl $21, %eax
	or $0x83, %eax
	mov %eax, PD(,%ecx,8)
	inc %ecx
	cmp $512, %ecx
	jne 1b
	mov $0x20, %eax
	mov %eax, %cr4
	mov $PML4, %eax
	mov %eax, %cr3
	mov $0xc0000080, %ecx
	rdmsr
	mov $0x500, %eax
	wrmsr
	mov $0x80000033, %eax
	mov %eax, %cr0
	lgdt final_gdt_desc
	ljmp $0x08, $lm64
	.code64
lm64:
	mov $0x10, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %fs
	mov %eax, %gs
	mov %eax, %ss
	xor %eax, %eax
	xor %ebx, %ebx
	xor %ecx, %ecx
	xor %edx, %edx
	xor %esi, %esi
	xor %edi, %edi
	xor %ebp, %ebp
	push $2
	popf
	xor %esp, %esp
	jmp ENTRY
	.code16
#endif

	.balign 8
boot_gdt:
	.quad 0
	.quad 0x00af9b000000ffff
	.quad 0x00cf93000000ffff
	.quad 0x00cf9b000000ffff
boot_gdt_desc:
	.word 4 * 8 - 1
	.long boot_gdt
final_gdt_desc:
	.word 3 * 8 - 1
	.long GDT
dap:
	.byte 16, 0
	.word SECTORS
	.word 0, LOAD >> 4
	.quad 1
	.org 510
	.byte 0x55, 0xaa
