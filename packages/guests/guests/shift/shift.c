/*
 * Shifts and rotates: SHL, SHR, SAR, ROL, ROR, RCL, RCR, SHLD, SHRD, by an immediate and by
 * CL, with the count masked to 5 bits (6 for 64-bit operands), a zero count leaving the flags
 * alone, and OF where the SDM defines it (1-bit shifts only). AF is undefined after shifts and
 * never compared; rotates define only CF and OF.
 */
#include "check.h"

#define SHIFTF (CF | PF | ZF | SF)
#define SHIFT1 (CF | PF | ZF | SF | OF)

static void shifts(void)
{
	check("shll $4", OP("shll $4, %k[d]", 0x12345678, 0, 0), 0x23456780, SHIFTF, CF);
	check("shrl $1", OP("shrl $1, %k[d]", 0x80000001, 0, 0), 0x40000000, SHIFT1, CF | OF | PF);
	check("sarl $4", OP("sarl $4, %k[d]", 0x80000000, 0, 0), 0xf8000000, SHIFTF, SF | PF);
	check("shlw $1", OP("shlw $1, %w[d]", 0x8000, 0, 0), 0, SHIFT1, CF | ZF | OF | PF);
	check("sarb $7", OP("sarb $7, %b[d]", 0x180, 0, 0), 0x1ff, SHIFTF, SF | PF);
#ifdef __x86_64__
	check("shlq $36", OP("shlq $36, %[d]", 1, 0, 0), 0x1000000000, SHIFTF, PF);
	check("shrq $63", OP("shrq $63, %[d]", 0x8000000000000000, 0, 0), 1, SHIFTF, 0);
#endif
}

/* Shifts by CL need the count in ECX; these wrap OP with it. */
static struct result shift_cl(int op, unsigned long d, unsigned c, unsigned long flags)
{
	unsigned long f;

	switch (op) {
	case 0:
		asm volatile("push %2\n\tpopf\n\tshll %%cl, %k0\n\tpushf\n\tpop %1"
			     : "+r"(d), "=&r"(f) : "r"(flags), "c"(c) : "cc");
		break;
	case 1:
		asm volatile("push %2\n\tpopf\n\tshrl %%cl, %k0\n\tpushf\n\tpop %1"
			     : "+r"(d), "=&r"(f) : "r"(flags), "c"(c) : "cc");
		break;
	default:
		asm volatile("push %2\n\tpopf\n\trorl %%cl, %k0\n\tpushf\n\tpop %1"
			     : "+r"(d), "=&r"(f) : "r"(flags), "c"(c) : "cc");
	}
	return (struct result){ d, f };
}

static void counts(void)
{
	/* 33 & 31 = 1: a one-bit shift, so OF = MSB(result) ^ CF. */
	check("shl by 33 shifts by 1", shift_cl(0, 0x40000000, 33, 0), 0x80000000, CF | OF, OF);
	check("shl by 0 keeps flags", shift_cl(0, 0x1234, 0, CF | ZF), 0x1234, SHIFT1, CF | ZF);
	check("shr by 32 is by 0", shift_cl(1, 0xf0, 32, SF), 0xf0, SHIFT1, SF);
	check("ror by 36 rotates by 4", shift_cl(2, 0x12345678, 36, 0), 0x81234567, CF, CF);
}

static void rotates(void)
{
	check("roll $8", OP("roll $8, %k[d]", 0x12345678, 0, CF), 0x34567812, CF, 0);
	check("rorl $4", OP("rorl $4, %k[d]", 0x12345678, 0, 0), 0x81234567, CF, CF);
	check("rolb $1", OP("rolb $1, %b[d]", 0x81, 0, 0), 0x03, CF | OF, CF | OF);
	check("rcll $1", OP("rcll $1, %k[d]", 0x80000000, 0, 0), 0, CF | OF, CF | OF);
	check("rcrl $1", OP("rcrl $1, %k[d]", 1, 0, CF), 0x80000000, CF | OF, CF | OF);
	check("rclb $4 through CF", OP("rclb $4, %b[d]", 0x0f, 0, CF), 0xf8, CF, 0);
	check("rotates keep ZF", OP("roll $1, %k[d]", 0, 0, ZF | SF), 0, ZF | SF, ZF | SF);
}

static void double_shifts(void)
{
	check("shldl $8", OP("shldl $8, %k[s], %k[d]", 0x12345678, 0xabcdef01, 0), 0x345678ab, SHIFTF, 0);
	check("shrdl $8", OP("shrdl $8, %k[s], %k[d]", 0x12345678, 0xabcdef01, 0), 0x01123456, SHIFTF, PF);
	check("shldw $4", OP("shldw $4, %w[s], %w[d]", 0x1234, 0xabcd, 0), 0x234a, SHIFTF, CF);
#ifdef __x86_64__
	check("shrdq $32", OP("shrdq $32, %[s], %[d]", 0x1111111122222222, 0x3333333344444444, 0),
	      0x4444444411111111, SHIFTF, PF);
#endif
}

int main(void)
{
	shifts();
	counts();
	rotates();
	double_shifts();
	return report_summary();
}
