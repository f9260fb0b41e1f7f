/*
 * Exceptions delivered through the guest's own IDT (the runtime's stubs, rt_trap, TRY):
 * #DE, #UD, #GP with a selector error code and with 0, #PF with its error code and CR2
 * (not present, write, protection with CR0.WP), #BP and INTO (traps: RIP after the
 * instruction; INTO is #UD in 64-bit mode), #NP through a not-present gate, and a double
 * fault: #DE through a not-present gate raises #NP while delivering, and two contributory
 * exceptions make #DF with error code 0. A registered handler that skips UD2 shows
 * handle_exception().
 */
#include "rt.h"

#define CR0_WP (1ul << 16)
#define PFERR_PRESENT 1
#define PFERR_WRITE   2

static volatile char victim[4096] __attribute__((aligned(4096)));

/* The faulting (or, for traps, following) instruction's address, from a global asm label. */
#define LABEL(name) ".globl " #name "\n" #name ":\n\t"
extern char de_insn[], ud_insn[], gp_insn[], bp_next[], np_insn[], df_insn[], skip_insn[];
#ifdef __x86_64__
extern char nc_insn[], into64_insn[];
#else
extern char into_next[];
#endif

static void check_trap(const char *name, unsigned got, unsigned vector, unsigned long error, void *rip)
{
	int ok = got == vector && rt_last_trap.error_code == error && rt_last_trap.rip == (unsigned long)rip;

	report(name, ok);
	if (!ok)
		printf("  got vector %u error %lx rip %lx, want %u %lx %lx\n", got, rt_last_trap.error_code,
		       rt_last_trap.rip, vector, error, (unsigned long)rip);
}

static void faults(void)
{
	unsigned v;

	v = TRY("xor %%edx, %%edx\n\tmov $1, %%eax\n\txor %%ecx, %%ecx\n\t" LABEL(de_insn) "divl %%ecx");
	check_trap("#DE divide by zero", v, DE_VECTOR, 0, de_insn);

	v = TRY(LABEL(ud_insn) "ud2");
	check_trap("#UD ud2", v, UD_VECTOR, 0, ud_insn);

	/* Selector 0x1230 lies past the GDT limit: #GP with the selector as error code. */
	v = TRY("mov $0x1230, %%eax\n\t" LABEL(gp_insn) "mov %%ax, %%fs");
	check_trap("#GP selector past the GDT", v, GP_VECTOR, 0x1230, gp_insn);

#ifdef __x86_64__
	v = TRY("mov $0x8000000000000000, %%rax\n\t" LABEL(nc_insn) "mov (%%rax), %%eax");
	check_trap("#GP non-canonical address", v, GP_VECTOR, 0, nc_insn);
#endif
	v = TRY("mov $0xdeadbeef, %%ecx\n\trdmsr");
	report("#GP rdmsr of an unknown MSR", v == GP_VECTOR && rt_last_trap.error_code == 0);
}

static void page_faults(void)
{
	unsigned long *pte = pte_of((unsigned long)victim);
	unsigned long va = (unsigned long)victim;
	unsigned v;

	*pte &= ~PTE_P;
	invlpg(victim);
	v = TRY("mov (%0), %%eax", "r"(victim));
	report("#PF read not present", v == PF_VECTOR && rt_last_trap.error_code == 0 && rt_last_trap.cr2 == va);
	v = TRY("movl $1, 8(%0)", "r"(victim));
	report("#PF write not present", v == PF_VECTOR && rt_last_trap.error_code == PFERR_WRITE &&
						 rt_last_trap.cr2 == va + 8);

	*pte = (*pte | PTE_P) & ~PTE_W;
	invlpg(victim);
	v = TRY("movl $1, 16(%0)", "r"(victim));
	report("read-only page, CR0.WP=0: supervisor write goes through", v == NO_TRAP && victim[16] == 1);
	write_cr0(read_cr0() | CR0_WP);
	v = TRY("movl $2, 16(%0)", "r"(victim));
	report("#PF write protect", v == PF_VECTOR && rt_last_trap.error_code == (PFERR_PRESENT | PFERR_WRITE) &&
					    rt_last_trap.cr2 == va + 16 && victim[16] == 1);
	write_cr0(read_cr0() & ~CR0_WP);
	*pte |= PTE_W;
	invlpg(victim);
	report("page restored", (victim[16] = 3) == 3);
}

static void traps(void)
{
	unsigned v;

	v = TRY("int3\n\t" LABEL(bp_next) "nop");
	check_trap("#BP int3 (trap: RIP after it)", v, BP_VECTOR, 0, bp_next);
#ifdef __x86_64__
	v = TRY(LABEL(into64_insn) ".byte 0xce");
	check_trap("INTO is #UD in 64-bit mode", v, UD_VECTOR, 0, into64_insn);
#else
	v = TRY("mov $0x7fffffff, %%eax\n\tadd $1, %%eax\n\tinto\n\t" LABEL(into_next) "nop");
	check_trap("INTO with OF set (#OF, trap)", v, OF_VECTOR, 0, into_next);
	v = TRY("xor %%eax, %%eax\n\tinto");
	report("INTO with OF clear", v == NO_TRAP);
#endif
}

static void bad_gates(void)
{
	unsigned v;

	/* A software INT through a not-present gate: #NP, error code = vector * 8 + IDT bit. */
	set_idt_present(0x30, 0);
	v = TRY(LABEL(np_insn) "int $0x30");
	check_trap("#NP through a not-present gate", v, NP_VECTOR, 0x30 * 8 + 2, np_insn);
	set_idt_present(0x30, 1);

	set_idt_present(DE_VECTOR, 0);
	v = TRY("xor %%edx, %%edx\n\tmov $1, %%eax\n\txor %%ecx, %%ecx\n\t" LABEL(df_insn) "divl %%ecx");
	report("#DE through a not-present gate is a double fault", v == DF_VECTOR && rt_last_trap.error_code == 0);
	set_idt_present(DE_VECTOR, 1);
}

static unsigned skipped;

static void skip_ud2(struct trap_frame *f)
{
	skipped++;
	f->rip += 2;
}

static void handlers(void)
{
	handle_exception(UD_VECTOR, skip_ud2);
	asm volatile(LABEL(skip_insn) "ud2\n\tud2");
	handle_exception(UD_VECTOR, 0);
	report("a handler that skips UD2, twice", skipped == 2);
}

int main(void)
{
	faults();
	page_faults();
	traps();
	bad_gates();
	handlers();
	return report_summary();
}
