/*
 * The runtime's machine set-up: TSS, IDT and paging, then main(). Exceptions land in
 * rt_trap(), which runs a registered handler, resumes an expected fault (TRY), or reports
 * the unexpected one over serial and exits with status 2.
 */
#include "rt.h"

#define GATE_INTERRUPT 0x8e   /* P, DPL 0, 32/64-bit interrupt gate */
#define TSS_AVAILABLE  0x89   /* P, DPL 0, available 32/64-bit TSS */
#define CR0_PG         (1ul << 31)
#define CR4_PSE        (1ul << 4)
#define PTE_PS         0x80ul
#define DF_IST         1

#ifdef __x86_64__
#define KERNEL_CS_SELF KERNEL_CS64
#else
#define KERNEL_CS_SELF KERNEL_CS32
#endif

extern uint64_t gdt[];
extern const unsigned long isr_table[NR_VECTORS];

volatile struct trap_record rt_last_trap;
volatile unsigned long rt_recover;
static trap_handler_t handlers[NR_VECTORS];

#ifdef __x86_64__
struct idt_gate {
	uint16_t offset0, selector;
	uint8_t ist, type;
	uint16_t offset1;
	uint32_t offset2, reserved;
};
struct tss {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3, iomap_base;
} __attribute__((packed));
#define LOW_MAPPED (2ul << 20)
/* #DF runs on its own stack (IST1), so a fault on a broken stack still gets reported. */
static uint8_t df_stack[4096] __attribute__((aligned(16)));
static uint64_t pml4[512] __attribute__((aligned(4096)));
static uint64_t pdpt[512] __attribute__((aligned(4096)));
static uint64_t pd[512] __attribute__((aligned(4096)));
static unsigned long pt[512] __attribute__((aligned(4096)));
#else
struct idt_gate {
	uint16_t offset0, selector;
	uint8_t zero, type;
	uint16_t offset1;
};
struct tss {
	uint32_t link, esp0, ss0, esp1, ss1, esp2, ss2, cr3, eip, eflags;
	uint32_t eax, ecx, edx, ebx, esp, ebp, esi, edi;
	uint32_t es, cs, ss, ds, fs, gs, ldt;
	uint16_t trap, iomap_base;
};
#define LOW_MAPPED (4ul << 20)
static uint32_t pd[1024] __attribute__((aligned(4096)));
static unsigned long pt[1024] __attribute__((aligned(4096)));
#endif

static struct idt_gate idt[NR_VECTORS] __attribute__((aligned(16)));
/* Where the CPU switches on an event from CPL3: not the boot stack, whose top is in use. */
uint8_t ring0_stack[4096] __attribute__((aligned(16)));
static struct tss tss __attribute__((aligned(16)));

struct __attribute__((packed)) table_desc {
	uint16_t limit;
	unsigned long base;
};

static void set_gate(unsigned v, unsigned long handler, unsigned ist)
{
	struct idt_gate *g = &idt[v];

	g->offset0 = handler & 0xffff;
	g->selector = KERNEL_CS_SELF;
	g->type = GATE_INTERRUPT;
	g->offset1 = (handler >> 16) & 0xffff;
#ifdef __x86_64__
	g->ist = ist;
	g->offset2 = handler >> 32;
#else
	(void)ist;
#endif
}

void set_idt_present(unsigned vector, int present)
{
	if (present)
		idt[vector].type |= 0x80;
	else
		idt[vector].type &= ~0x80;
}

void set_idt_dpl(unsigned vector, unsigned dpl)
{
	idt[vector].type = (idt[vector].type & ~0x60) | (dpl << 5);
}

void handle_exception(unsigned vector, trap_handler_t handler)
{
	handlers[vector] = handler;
}

static void setup_idt(void)
{
	struct table_desc d = { sizeof(idt) - 1, (unsigned long)idt };

	for (unsigned v = 0; v < NR_VECTORS; v++)
		set_gate(v, isr_table[v], v == DF_VECTOR ? DF_IST : 0);
	asm volatile("lidt %0" : : "m"(d));
}

/* A system-segment descriptor (SDM vol. 3A 3.5); 16 bytes in long mode. */
static void setup_tss(void)
{
	unsigned long base = (unsigned long)&tss;
	uint64_t limit = sizeof(tss) - 1;

	tss.iomap_base = sizeof(tss);
#ifdef __x86_64__
	tss.rsp[0] = (unsigned long)(ring0_stack + sizeof(ring0_stack));
	tss.ist[DF_IST - 1] = (unsigned long)(df_stack + sizeof(df_stack));
	gdt[TSS_SEL / 8 + 1] = base >> 32;
#else
	tss.esp0 = (unsigned long)(ring0_stack + sizeof(ring0_stack));
	tss.ss0 = KERNEL_DS;
#endif
	gdt[TSS_SEL / 8] = (limit & 0xffff) | ((uint64_t)(base & 0xffffff) << 16) |
			   ((uint64_t)TSS_AVAILABLE << 40) | ((limit >> 16) << 48) |
			   ((uint64_t)((base >> 24) & 0xff) << 56);
	asm volatile("ltr %w0" : : "r"(TSS_SEL));
}

/* 4 KiB pages over the low memory, so tests can unmap single pages; large pages above. */
static void setup_paging(void)
{
	for (unsigned long i = 0; i < ARRAY_SIZE(pt); i++)
		pt[i] = (i * PAGE_SIZE) | PTE_P | PTE_W;
#ifdef __x86_64__
	pd[0] = (unsigned long)pt | PTE_P | PTE_W;
	for (unsigned long i = 1; i < 512; i++)
		pd[i] = (i << 21) | PTE_P | PTE_W | PTE_PS;
	pdpt[0] = (unsigned long)pd | PTE_P | PTE_W;
	pml4[0] = (unsigned long)pdpt | PTE_P | PTE_W;
	write_cr3((unsigned long)pml4);
#else
	pd[0] = (unsigned long)pt | PTE_P | PTE_W;
	for (unsigned long i = 1; i < 256; i++)
		pd[i] = (i << 22) | PTE_P | PTE_W | PTE_PS;
	write_cr4(read_cr4() | CR4_PSE);
	write_cr3((unsigned long)pd);
	write_cr0(read_cr0() | CR0_PG);
#endif
}

void allow_user_pages(void)
{
	for (unsigned long i = 0; i < ARRAY_SIZE(pt); i++)
		pt[i] |= PTE_U;
	pd[0] |= PTE_U;
#ifdef __x86_64__
	pdpt[0] |= PTE_U;
	pml4[0] |= PTE_U;
	write_cr3((unsigned long)pml4);
#else
	write_cr3((unsigned long)pd);
#endif
}

unsigned long *pte_of(unsigned long va)
{
	return va < LOW_MAPPED ? &pt[va / PAGE_SIZE] : 0;
}

void rt_trap(struct trap_frame *f)
{
	unsigned v = f->vector;

	if (handlers[v]) {
		handlers[v](f);
		return;
	}
	if (rt_recover) {
		rt_last_trap.vector = v;
		rt_last_trap.error_code = f->error_code;
		rt_last_trap.rip = f->rip;
		rt_last_trap.cr2 = read_cr2();
		f->rip = rt_recover;
		rt_recover = 0;
		return;
	}
	printf("Unhandled exception %u, error code %lx, rip %lx, cr2 %lx\n", v, f->error_code,
	       f->rip, read_cr2());
	exit(2);
}

void rt_start(void)
{
	setup_tss();
	setup_idt();
	setup_paging();
	exit(main());
}
