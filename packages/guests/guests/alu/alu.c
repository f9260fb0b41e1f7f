/*
 * Integer arithmetic and logic: ADD, ADC, SUB, SBB, CMP, AND, OR, XOR, INC, DEC, NEG, NOT at
 * 8, 16, 32 and native width, with every defined flag; data movement (MOVZX, MOVSX, CDQ,
 * SETcc, CMOVcc, XCHG, XADD, CMPXCHG); DAA and DAS in 32-bit builds. Expected values are
 * worked out by hand from the SDM's definitions (and checked on a real CPU with
 * scripts/native-check.mjs).
 */
#include "check.h"

#define LOGIC (ARITH & ~AF) /* AF is undefined after AND, OR, XOR */

static void arith(void)
{
	check("addl overflow", OP("addl %k[s], %k[d]", 0x7fffffff, 1, 0), 0x80000000, ARITH, OF | SF | AF | PF);
	check("addl carry", OP("addl %k[s], %k[d]", 0xffffffff, 1, 0), 0, ARITH, CF | ZF | AF | PF);
	check("adcl carry in", OP("adcl %k[s], %k[d]", 1, 2, CF), 4, ARITH, 0);
	check("subl borrow", OP("subl %k[s], %k[d]", 0, 1, 0), 0xffffffff, ARITH, CF | SF | AF | PF);
	check("sbbl overflow", OP("sbbl %k[s], %k[d]", 0x80000000, 0, CF), 0x7fffffff, ARITH, OF | AF | PF);
	check("cmpl equal", OP("cmpl %k[s], %k[d]", 5, 5, 0), 5, ARITH, ZF | PF);
	check("cmpl below", OP("cmpl %k[s], %k[d]", 1, 2, 0), 1, ARITH, CF | SF | AF | PF);
	check("incl keeps CF", OP("incl %k[d]", 0x7fffffff, 0, CF), 0x80000000, ARITH, OF | SF | AF | PF | CF);
	check("decl", OP("decl %k[d]", 0, 0, 0), 0xffffffff, ARITH, SF | AF | PF);
	check("negl 1", OP("negl %k[d]", 1, 0, 0), 0xffffffff, ARITH, CF | SF | AF | PF);
	check("negl 0", OP("negl %k[d]", 0, 0, CF), 0, ARITH, ZF | PF);
	check("addb keeps upper bits", OP("addb %b[s], %b[d]", 0x1280, 0x80, 0), 0x1200, ARITH, CF | OF | ZF | PF);
	check("addw keeps upper bits", OP("addw %w[s], %w[d]", 0xabcdffff, 1, 0), 0xabcd0000, ARITH, CF | ZF | AF | PF);
	check("subb signed overflow", OP("subb %b[s], %b[d]", 0x80, 1, 0), 0x7f, ARITH, OF | AF);
#ifdef __x86_64__
	check("addq across bit 32", OP("addq %[s], %[d]", 0xffffffff, 1, 0), 0x100000000, ARITH, AF | PF);
	check("addl zero-extends", OP("addl %k[s], %k[d]", 0xffffffff00000001, 1, 0), 2, ARITH, 0);
	check("subq borrow", OP("subq %[s], %[d]", 0, 1, 0), 0xfffffffffffffffful, ARITH, CF | SF | AF | PF);
#else
	check("add native", OP("add %[s], %[d]", 0xffffffff, 1, 0), 0, ARITH, CF | ZF | AF | PF);
#endif
}

static void logic(void)
{
	check("andl", OP("andl %k[s], %k[d]", 0xf0f0f0f0, 0x0ff00ff0, CF | OF), 0x00f000f0, LOGIC, PF);
	check("orl", OP("orl %k[s], %k[d]", 0x80000000, 1, 0), 0x80000001, LOGIC, SF);
	check("xorl self", OP("xorl %k[d], %k[d]", 0x1234, 0, 0), 0, LOGIC, ZF | PF);
	check("testl", OP("testl %k[s], %k[d]", 0x80, 0x80, 0), 0x80, LOGIC, 0);
	check("notl keeps flags", OP("notl %k[d]", 0x0f0f0f0f, 0, CF | ZF), 0xf0f0f0f0, ARITH, CF | ZF);
	check("xorb", OP("xorb %b[s], %b[d]", 0x1ff, 0x0f, 0), 0x1f0, LOGIC, SF | PF);
}

static void movement(void)
{
	check("movzbl", OP("movzbl %b[s], %k[d]", 0, 0x80, 0), 0x80, 0, 0);
	check("movsbl", OP("movsbl %b[s], %k[d]", 0, 0x80, 0), 0xffffff80, 0, 0);
	check("movswl", OP("movswl %w[s], %k[d]", 0, 0x8001, 0), 0xffff8001, 0, 0);
#ifdef __x86_64__
	check("movl zero-extends", OP("movl %k[s], %k[d]", ~0ul, 5, 0), 5, 0, 0);
	check("movslq", OP("movslq %k[s], %[d]", 0, 0x80000000, 0), 0xffffffff80000000, 0, 0);
#endif
	check("setb", OP("cmpl %k[s], %k[d]\n\tsetb %b[d]", 1, 2, 0), 1, 0, 0);
	check("setg", OP("cmpl %k[s], %k[d]\n\tsetg %b[d]", 0x80000000, 1, 0), 0x80000000, 0, 0);
	check("cmovl taken", OP("cmpl $0, %k[d]\n\tcmovl %k[s], %k[d]", 0xffffffff, 7, 0), 7, 0, 0);
	check("cmovz not taken", OP("cmpl $0, %k[d]\n\tcmovz %k[s], %k[d]", 3, 7, 0), 3, 0, 0);
	check("leal", OP("leal 8(%k[d],%k[s],4), %k[d]", 0x100, 3, 0), 0x114, 0, 0);
}

static void exchange(void)
{
	unsigned long a = 1, b = 2, mem = 10, eax;

	asm volatile("xchg %0, %1" : "+r"(a), "+r"(b));
	report("xchg", a == 2 && b == 1);
	asm volatile("xadd %0, %1" : "+r"(a), "+m"(mem));
	report("xadd", a == 10 && mem == 12);
	eax = 12;
	asm volatile("lock cmpxchg %2, %1" : "+a"(eax), "+m"(mem) : "r"(99ul) : "cc");
	report("cmpxchg equal stores", mem == 99 && eax == 12);
	eax = 5;
	asm volatile("cmpxchg %2, %1" : "+a"(eax), "+m"(mem) : "r"(7ul) : "cc");
	report("cmpxchg unequal loads", mem == 99 && eax == 99);
	{
		uint32_t lo = 0x9abcdef0, hi = 0x12345678;
		uint64_t m8 = 0x123456789abcdef0ull;

		asm volatile("cmpxchg8b %2" : "+a"(lo), "+d"(hi), "+m"(m8) : "b"(1u), "c"(2u) : "cc");
		report("cmpxchg8b", m8 == 0x0000000200000001ull && lo == 0x9abcdef0);
	}
	{
		uint32_t lo = 0x12345678, hi = 0;

		asm volatile("cltd" : "+a"(lo), "=d"(hi));
		report_eq("cltd positive", hi, 0);
		lo = 0x80000000;
		asm volatile("cltd" : "+a"(lo), "=d"(hi));
		report_eq("cltd negative", hi, 0xffffffff);
	}
}

#ifndef __x86_64__
/* DAA and DAS work on AL only; they are #UD in 64-bit mode. */
static struct result bcd_op(int sub, unsigned a, unsigned b)
{
	unsigned long f;

	if (sub)
		asm volatile("subb %b2, %b0\n\tdas\n\tpushf\n\tpop %1" : "+a"(a), "=r"(f) : "q"(b) : "cc");
	else
		asm volatile("addb %b2, %b0\n\tdaa\n\tpushf\n\tpop %1" : "+a"(a), "=r"(f) : "q"(b) : "cc");
	return (struct result){ a, f };
}

static void bcd(void)
{
	/* 19 + 28 = 47 in packed BCD: the binary sum 0x41 with AF set adjusts to 0x47. */
	check("daa", bcd_op(0, 0x19, 0x28), 0x47, CF | AF, AF);
	check("das", bcd_op(1, 0x47, 0x28), 0x19, CF | AF, AF);
}
#endif

int main(void)
{
	arith();
	logic();
	movement();
	exchange();
#ifndef __x86_64__
	bcd();
#endif
	return report_summary();
}
