/*
 * MUL, IMUL (one, two and three operands), DIV and IDIV at 8, 32 and native width. MUL and
 * IMUL define only CF and OF (set when the high half is significant); DIV and IDIV leave every
 * flag undefined, so only their quotients and remainders are compared. #DE is in `exceptions`.
 */
#include "check.h"

#define MULF (CF | OF)

struct wide {
	unsigned long lo, hi, flags;
};

static struct wide mull(unsigned long a, unsigned long b)
{
	struct wide w;

	asm volatile("mull %k3\n\tpushf\n\tpop %2" : "=a"(w.lo), "=d"(w.hi), "=r"(w.flags) : "r"(b), "0"(a) : "cc");
	return w;
}

static struct wide imull(unsigned long a, unsigned long b)
{
	struct wide w;

	asm volatile("imull %k3\n\tpushf\n\tpop %2" : "=a"(w.lo), "=d"(w.hi), "=r"(w.flags) : "r"(b), "0"(a) : "cc");
	return w;
}

static struct wide divl(unsigned long hi, unsigned long lo, unsigned long b)
{
	struct wide w;

	asm volatile("divl %k4" : "=a"(w.lo), "=d"(w.hi) : "0"(lo), "1"(hi), "r"(b) : "cc");
	w.flags = 0;
	return w;
}

static struct wide idivl(unsigned long a, unsigned long b)
{
	struct wide w;

	asm volatile("cltd\n\tidivl %k3" : "=a"(w.lo), "=&d"(w.hi) : "0"(a), "r"(b) : "cc");
	w.flags = 0;
	return w;
}

static void check_wide(const char *name, struct wide w, unsigned long lo, unsigned long hi, unsigned long flags)
{
	int ok = w.lo == lo && w.hi == hi && (w.flags & MULF) == flags;

	report(name, ok);
	if (!ok)
		printf("  got %lx:%lx flags %lx, want %lx:%lx flags %lx\n", w.hi, w.lo, w.flags & MULF, hi, lo, flags);
}

static void multiply(void)
{
	check_wide("mull high half", mull(0x80000000, 4), 0, 2, CF | OF);
	check_wide("mull small", mull(3, 5), 15, 0, 0);
	check_wide("imull negative fits", imull(0xfffffffe, 3), 0xfffffffa, 0xffffffff, 0);
	check_wide("imull overflows", imull(0x40000000, 4), 0, 1, CF | OF);
	check("imull 2-op overflow", OP("imull %k[s], %k[d]", 0x10000, 0x10000, 0), 0, MULF, CF | OF);
	check("imull 3-op", OP("imull $-3, %k[s], %k[d]", 0, 7, 0), 0xffffffeb, MULF, 0);
	{
		unsigned long ax = 0x80, f;

		asm volatile("mulb %b2\n\tpushf\n\tpop %1" : "+a"(ax), "=r"(f) : "q"(2) : "cc");
		check("mulb", (struct result){ ax, f }, 0x100, MULF, CF | OF);
	}
#ifdef __x86_64__
	{
		unsigned long lo = ~0ul, hi;

		asm volatile("mulq %2" : "+a"(lo), "=d"(hi) : "r"(2ul) : "cc");
		report("mulq", lo == 0xfffffffffffffffe && hi == 1);
	}
#endif
}

static void divide(void)
{
	check_wide("divl 64/32", divl(1, 5, 0x10), 0x10000000, 5, 0);
	check_wide("divl exact", divl(0, 100, 10), 10, 0, 0);
	check_wide("idivl rounds toward zero", idivl(-7ul, 2), 0xfffffffd, 0xffffffff, 0);
	check_wide("idivl by negative", idivl(7, -2ul), 0xfffffffd, 1, 0);
	{
		unsigned long ax = 0x0123;

		asm volatile("divb %b1" : "+a"(ax) : "q"(0x10) : "cc");
		report_eq("divb", ax, 0x0312);
	}
#ifdef __x86_64__
	{
		unsigned long lo = 0, hi = 1;

		asm volatile("divq %2" : "+a"(lo), "+d"(hi) : "r"(2ul) : "cc");
		report("divq 128/64", lo == 0x8000000000000000 && hi == 0);
	}
#endif
}

int main(void)
{
	multiply();
	divide();
	return report_summary();
}
