/*
 * Self-modifying code. A CPU that caches decoded instructions must notice stores to them:
 *  - patch the immediate of a function that has already run (and is hot), then call it again;
 *  - patch the very next instruction in straight-line code (the SDM guarantees the store is
 *    seen: the CPU checks writes against prefetched instructions);
 *  - copy code into a data page, run it, overwrite it with different code, run it again.
 */
#include "rt.h"

extern char patch_imm_fn[], patch_imm_value[];
asm(".pushsection .text\n"
    ".globl patch_imm_fn, patch_imm_value\n"
    "patch_imm_fn:\n\t"
    ".byte 0xb8\n" /* mov $imm32, %eax */
    "patch_imm_value:\n\t"
    ".long 1\n\t"
    "ret\n"
    ".popsection");

static unsigned call_patched(void)
{
	unsigned v;

	asm volatile("call patch_imm_fn" : "=a"(v) : : "memory", "rcx", "rdx", "rsi", "rdi");
	return v;
}

static void patch_hot_function(void)
{
	unsigned sum = 0;

	for (int i = 0; i < 1000; i++)
		sum += call_patched();
	report_eq("hot function before the patch", sum, 1000);
	*(volatile uint32_t *)patch_imm_value = 0x1234;
	report_eq("hot function after the patch", call_patched(), 0x1234);
}

static void patch_next_instruction(void)
{
	unsigned long v;

	for (int i = 0; i < 3; i++) {
		/* Store 0x42 into the immediate of the mov that follows it, then run that mov. */
		asm volatile("movb $0x11, 1f+1(%%rip)\n\t"
			     "movb $0x42, 1f+1(%%rip)\n"
			     "1:\tmov $0x99, %%al\n\t"
			     "movzbl %%al, %k0"
			     : "=a"(v) : : "memory");
		report_eq("store to the next instruction is seen", v, 0x42);
	}
}

static uint8_t code_page[4096] __attribute__((aligned(4096)));

static unsigned long run_page(void)
{
	unsigned long v;

	asm volatile("call *%1" : "=a"(v) : "r"(code_page) : "memory", "rcx", "rdx", "rsi", "rdi");
	return v;
}

static void rewrite_page(void)
{
	/* mov $0x11111111, %eax; ret */
	static const uint8_t first[] = { 0xb8, 0x11, 0x11, 0x11, 0x11, 0xc3 };
	/* xor %eax, %eax; add $0x22, %al; shl $8, %eax; ret */
	static const uint8_t second[] = { 0x31, 0xc0, 0x04, 0x22, 0xc1, 0xe0, 0x08, 0xc3 };

	memcpy(code_page, first, sizeof(first));
	report_eq("code copied to a data page runs", run_page(), 0x11111111);
	memcpy(code_page, second, sizeof(second));
	report_eq("overwritten code runs anew", run_page(), 0x2200);
}

int main(void)
{
	patch_hot_function();
	patch_next_instruction();
	rewrite_page();
	return report_summary();
}
