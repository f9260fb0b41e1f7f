/*
 * The dashboard's guest: it never ends. It prints a banner, then searches for primes by
 * trial division and prints every 50th one with the count of timer interrupts so far. After
 * each print it halts, and the VMM injects vector 0x20 to wake it (catalog row: irqs
 * { vector: 0x20, every: 'hlt' }), so serial output, HLT exits and injections flow all the time.
 */
#include "rt.h"

#define TIMER_VECTOR 0x20
#define EVERY        50

static volatile unsigned long ticks;

static void timer(struct trap_frame *f)
{
	(void)f;
	ticks++;
}

static int is_prime(unsigned long n)
{
	if (n < 2)
		return 0;
	for (unsigned long d = 2; d * d <= n; d++)
		if (n % d == 0)
			return 0;
	return 1;
}

int main(void)
{
	static const char spinner[] = "|/-\\";
	unsigned long found = 0;

	handle_exception(TIMER_VECTOR, timer);
	printf("kvmts demo: primes by trial division, a timer tick at every HLT\n");
	for (unsigned long n = 2;; n++) {
		if (!is_prime(n) || ++found % EVERY)
			continue;
		printf("%c prime #%lu = %lu   ticks %lu\n", spinner[(found / EVERY) % 4], found, n, ticks);
		safe_halt();
	}
}
