/*
 * Bit instructions: BT, BTS, BTR and BTC on registers, immediates and bit strings in memory
 * (where the bit offset reaches past the addressed word); BSF and BSR; POPCNT, LZCNT, TZCNT;
 * BSWAP. BT* define only CF; BSF/BSR only ZF; LZCNT/TZCNT CF and ZF; POPCNT clears all but ZF.
 */
#include "check.h"

static void bit_test(void)
{
	check("btl $3", OP("btl $3, %k[d]", 0x8, 0, 0), 0x8, CF, CF);
	check("btsl $4", OP("btsl $4, %k[d]", 0, 0, CF), 0x10, CF, 0);
	check("btrl $4", OP("btrl $4, %k[d]", 0x10, 0, 0), 0, CF, CF);
	check("btcl $31", OP("btcl $31, %k[d]", 0, 0, 0), 0x80000000, CF, 0);
	check("btl reg masks the offset", OP("btl %k[s], %k[d]", 0x2, 33, 0), 0x2, CF, CF);
	{
		uint32_t bits[2] = { 0, 0x8 };
		unsigned long f;

		/* A register offset addresses a bit string: bit 35 is bit 3 of the second dword. */
		asm volatile("btl %k1, %2\n\tpushf\n\tpop %0" : "=r"(f) : "r"(35), "m"(bits) : "cc");
		report("btl bit string", f & CF);
		asm volatile("btsl %k0, %1" : : "r"(40), "m"(bits) : "cc", "memory");
		report("btsl bit string", bits[1] == 0x108 && bits[0] == 0);
	}
}

static void scans(void)
{
	check("bsfl", OP("bsfl %k[s], %k[d]", 0, 0x00010000, 0), 16, ZF, 0);
	check("bsrl", OP("bsrl %k[s], %k[d]", 0, 0x00010001, 0), 16, ZF, 0);
	check("bsfl zero sets ZF", OP("bsfl %k[s], %k[d]", 7, 0, 0), 7, ZF, ZF);
	check("popcntl", OP("popcntl %k[s], %k[d]", 0, 0xf0f0, CF | SF), 8, ARITH, 0);
	check("popcntl zero", OP("popcntl %k[s], %k[d]", 5, 0, 0), 0, ARITH, ZF);
	check("lzcntl", OP("lzcntl %k[s], %k[d]", 0, 0x00010000, 0), 15, CF | ZF, 0);
	check("lzcntl zero", OP("lzcntl %k[s], %k[d]", 0, 0, 0), 32, CF | ZF, CF);
	check("lzcntl top bit", OP("lzcntl %k[s], %k[d]", 0, 0x80000000, 0), 0, CF | ZF, ZF);
	check("tzcntl", OP("tzcntl %k[s], %k[d]", 0, 0x00010000, 0), 16, CF | ZF, 0);
	check("tzcntl zero", OP("tzcntl %k[s], %k[d]", 0, 0, 0), 32, CF | ZF, CF);
#ifdef __x86_64__
	check("bsrq", OP("bsrq %[s], %[d]", 0, 0x8000000000000000, 0), 63, ZF, 0);
	check("popcntq", OP("popcntq %[s], %[d]", 0, ~0ul, 0), 64, ZF, 0);
#endif
}

static void swaps(void)
{
	check("bswapl", OP("bswap %k[d]", 0x12345678, 0, 0), 0x78563412, 0, 0);
#ifdef __x86_64__
	check("bswapq", OP("bswap %[d]", 0x0102030405060708, 0, 0), 0x0807060504030201, 0, 0);
#endif
}

int main(void)
{
	bit_test();
	scans();
	swaps();
	return report_summary();
}
