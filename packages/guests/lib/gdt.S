/* The runtime GDT, shared by both entry stubs and by the C set-up that fills the TSS slot. */
#include "selectors.h"
	.section .data.gdt, "aw"
	.balign 8
	.globl gdt, gdt_desc
gdt:
	.quad 0                         /* null */
	.quad 0x00af9b000000ffff        /* KERNEL_CS64: 64-bit code, L=1 */
	.quad 0x00cf93000000ffff        /* KERNEL_DS: flat data, 4 GiB */
	.quad 0x00cf9b000000ffff        /* KERNEL_CS32: flat 32-bit code */
	.quad 0, 0                      /* TSS_SEL: filled in by setup_tss (16 bytes in long mode) */
	/* User segments in the order SYSRET wants them: STAR[63:48] = USER_CS32. */
	.quad 0x00cffb000000ffff        /* USER_CS32: DPL 3 */
	.quad 0x00cff3000000ffff        /* USER_DS: DPL 3 */
	.quad 0x00affb000000ffff        /* USER_CS64: DPL 3, L=1 */
gdt_end:
	/* An 8-byte base: LGDT in 16/32-bit mode reads the low 4 bytes, in 64-bit mode all 8. */
gdt_desc:
	.word gdt_end - gdt - 1
	.long gdt, 0
