/*
 * 4-level paging as the guest's own page tables see it: the CPU sets the accessed bit on a
 * read and the dirty bit on a write; a PTE pointed at another frame (after INVLPG) remaps the
 * page; with EFER.NXE, fetching from an NX page is a #PF with the I/D bit in its error code
 * and CR2 at the target; a not-present PTE faults where the runtime's handler expects.
 */
#include "rt.h"

#define MSR_EFER       0xc0000080
#define EFER_NXE       (1ull << 11)
#define PTE_NX         (1ul << 63)
#define PFERR_PRESENT  0x1
#define PFERR_FETCH    0x10

static volatile uint8_t page_a[4096] __attribute__((aligned(4096)));
static volatile uint8_t page_b[4096] __attribute__((aligned(4096)));
static uint8_t code_page[4096] __attribute__((aligned(4096)));

static inline void wrmsr(uint32_t msr, uint64_t v)
{
	asm volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

static void accessed_dirty(void)
{
	unsigned long *pte = pte_of((unsigned long)page_a);
	uint8_t v;

	*pte &= ~(PTE_A | PTE_D);
	invlpg(page_a);
	v = page_a[1];
	(void)v;
	report("a read sets A, not D", (*pte & (PTE_A | PTE_D)) == PTE_A);
	page_a[2] = 7;
	report("a write sets D", (*pte & (PTE_A | PTE_D)) == (PTE_A | PTE_D));
}

static void remap(void)
{
	unsigned long *pte = pte_of((unsigned long)page_a);
	unsigned long saved = *pte;

	page_a[0] = 0xaa;
	page_b[0] = 0xbb;
	*pte = (unsigned long)page_b | PTE_P | PTE_W;
	invlpg(page_a);
	report_eq("a PTE pointed at another frame remaps the page", page_a[0], 0xbb);
	page_a[0] = 0xcc;
	*pte = saved;
	invlpg(page_a);
	report("writes through the alias land in the other frame", page_a[0] == 0xaa && page_b[0] == 0xcc);
}

static void no_execute(void)
{
	unsigned long *pte = pte_of((unsigned long)code_page);
	unsigned v;

	code_page[0] = 0xc3; /* ret */
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_NXE);
	v = TRY("call *%0", "r"(code_page));
	report("a page without NX runs", v == NO_TRAP);
	*pte |= PTE_NX;
	invlpg(code_page);
	/* A JMP, not a CALL: the fetch faults after the transfer, and a CALL would have pushed. */
	v = TRY("jmp *%0", "r"(code_page));
	report("fetching from an NX page is #PF", v == PF_VECTOR);
	report_eq("  with P and I/D in the error code", rt_last_trap.error_code, PFERR_PRESENT | PFERR_FETCH);
	report_eq("  and CR2 at the target", rt_last_trap.cr2, (unsigned long)code_page);
	report_eq("  and RIP at the target", rt_last_trap.rip, (unsigned long)code_page);
	*pte &= ~PTE_NX;
	invlpg(code_page);
}

int main(void)
{
	accessed_dirty();
	remap();
	no_execute();
	return report_summary();
}
