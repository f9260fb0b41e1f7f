/*
 * String instructions: MOVS, STOS, LODS, SCAS and CMPS with REP, REPE and REPNE, forwards
 * and backwards (DF), with the count and index registers checked after they stop.
 */
#include "rt.h"

static void movs_stos_lods(void)
{
	static const char src[] = "hello, world!";
	char dst[16] = { 0 };
	uint32_t fill[4];
	unsigned long n = sizeof(src);
	const char *s = src;
	char *d = dst;
	uint32_t v;

	asm volatile("cld\n\trep movsb" : "+S"(s), "+D"(d), "+c"(n) : : "memory");
	report("rep movsb copies", strcmp(dst, src) == 0 && n == 0);
	report("rep movsb advances indexes", s == src + sizeof(src) && d == dst + sizeof(src));

	d = (char *)fill;
	n = 4;
	asm volatile("rep stosl" : "+D"(d), "+c"(n) : "a"(0xdeadbeef) : "memory");
	report("rep stosl", fill[0] == 0xdeadbeef && fill[3] == 0xdeadbeef && d == (char *)(fill + 4));

	s = (const char *)fill;
	asm volatile("lodsl" : "=a"(v), "+S"(s));
	report("lodsl", v == 0xdeadbeef && s == (const char *)(fill + 1));

	n = 0;
	d = dst;
	asm volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(0) : "memory");
	report("rep with count 0 does nothing", d == dst && dst[0] == 'h');
}

static void backwards(void)
{
	char buf[8] = "-12345";
	unsigned long n = 5;
	char *s = buf + 5, *d = buf + 6;

	/* An overlapping move one byte up must run backwards, as memmove does. */
	asm volatile("std\n\trep movsb\n\tcld" : "+S"(s), "+D"(d), "+c"(n) : : "memory");
	report("std rep movsb", buf[1] == '1' && buf[2] == '1' && buf[3] == '2' && buf[6] == '5');
	report("std decrements", s == buf && d == buf + 1);
}

static void scan_compare(void)
{
	static const char str[] = "kvmts";
	static const char a[] = "abcdef", b[] = "abcxef";
	const char *p = str, *q = b;
	unsigned long n = -1ul, flags;

	asm volatile("repne scasb" : "+D"(p), "+c"(n) : "a"(0) : "cc");
	report("repne scasb strlen", ~n - 1 == 5 && p == str + 6);

	p = a;
	n = 6;
	asm volatile("repe cmpsb\n\tpushf\n\tpop %3" : "+S"(p), "+D"(q), "+c"(n), "=r"(flags) : : "cc");
	report("repe cmpsb stops after the mismatch", n == 2 && p == a + 4 && q == b + 4);
	report("repe cmpsb flags", (flags & 0x41) == 0x1); /* 'c' < 'x': CF=1, ZF=0 */
}

int main(void)
{
	movs_stos_lods();
	backwards();
	scan_compare();
	return report_summary();
}
