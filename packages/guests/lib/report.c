/* kvm-unit-tests style results: one PASS/FAIL line per check, then a summary line. */
#include "rt.h"

static unsigned tests, failures;

void report(const char *name, int ok)
{
	tests++;
	if (!ok)
		failures++;
	printf("%s: %s\n", ok ? "PASS" : "FAIL", name);
}

void report_eq(const char *name, unsigned long got, unsigned long want)
{
	report(name, got == want);
	if (got != want)
		printf("  got %lx, want %lx\n", got, want);
}

int report_summary(void)
{
	printf("SUMMARY: %u tests, %u failures\n", tests, failures);
	return failures ? 1 : 0;
}
