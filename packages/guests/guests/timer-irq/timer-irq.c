/*
 * Interrupts injected by the VMM. The guest enables interrupts and halts; at each HLT exit
 * the VMM injects vector 0x20 with KVM_INTERRUPT and runs the vCPU again (catalog row:
 * irqs { vector: 0x20, every: 'hlt' }). The handler counts, and checks that the interrupt
 * arrived right after the HLT, with IF set in the interrupted context and clear in the
 * handler (an interrupt gate). After 10 interrupts the guest reports and exits.
 */
#include "rt.h"

#define TIMER_VECTOR 0x20
#define WANT         10
#define RFLAGS_IF    (1ul << 9)

extern char after_hlt[];
void wait_for_irq(void);
/* STI's shadow holds the interrupt off until HLT: no wake-up can be lost in between. */
asm(".pushsection .text\n"
    ".globl wait_for_irq, after_hlt\n"
    "wait_for_irq:\n\t"
    "sti\n\t"
    "hlt\n"
    "after_hlt:\n\t"
    "cli\n\t"
    "ret\n"
    ".popsection");

static volatile unsigned ticks, bad_rip, bad_if;

static void timer(struct trap_frame *f)
{
	ticks++;
	if (f->rip != (unsigned long)after_hlt)
		bad_rip++;
	if (!(f->rflags & RFLAGS_IF) || (read_flags() & RFLAGS_IF))
		bad_if++;
}

int main(void)
{
	handle_exception(TIMER_VECTOR, timer);
	while (ticks < WANT)
		wait_for_irq();
	printf("%u interrupts\n", ticks);
	report_eq("interrupts counted", ticks, WANT);
	report_eq("each arrived right after HLT", bad_rip, 0);
	report_eq("IF set before, clear in the handler", bad_if, 0);
	return report_summary();
}
