/*
 * Stack instructions: PUSH and POP of registers, immediates, memory and segment registers,
 * 16-bit pushes, PUSHF/POPF, ENTER (levels 0 and 1) and LEAVE, CALL and RET imm16, a far
 * return, and PUSHA/POPA in 32-bit builds.
 */
#include "rt.h"

#define W sizeof(unsigned long)
#ifdef __x86_64__
#define SP "%%rsp"
#define BP "%%rbp"
#define LRET "lretq"
#else
#define SP "%%esp"
#define BP "%%ebp"
#define LRET "lret"
#endif

static void push_pop(void)
{
	unsigned long a, b, ds, mem = 0x1234, before, after;

	asm volatile("push $-2\n\tpush (%2)\n\tpop %0\n\tpop %1" : "=r"(a), "=r"(b) : "r"(&mem), "m"(mem));
	report("push imm sign-extends, push mem", a == 0x1234 && b == -2ul);

	asm volatile("mov " SP ", %0\n\tpushw $0x5678\n\tmov " SP ", %1\n\tpopw %w2"
		     : "=&r"(before), "=&r"(after), "=r"(a));
	report("pushw moves by 2", before - after == 2 && (a & 0xffff) == 0x5678);

	asm volatile("mov %%ds, %k1\n\tmov %w1, %%fs\n\tpush %%fs\n\tpop %0" : "=r"(a), "=&r"(ds));
	report("push fs", (a & 0xffff) == ds);

	asm volatile("stc\n\tpushf\n\tpop %0\n\tand $-2, %0\n\tpush %0\n\tpopf\n\tsetc %b1\n\tmovzbl %b1, %k1"
		     : "+r"(a), "=q"(b) : : "cc");
	report("popf clears CF", b == 0);
}

static void enter_leave(void)
{
	unsigned long before, frame, after, saved;

	asm volatile("mov " SP ", %0\n\tpush " BP "\n\tenter $16, $0\n\tmov " BP ", %1\n\tmov " SP ", %2\n\t"
		     "leave\n\tpop " BP
		     : "=&r"(before), "=&r"(frame), "=&r"(after) : : "memory");
	report("enter $16, $0", before - frame == 2 * W && frame - after == 16);

	/* Level 1: ENTER pushes BP, then the new frame pointer itself, then reserves 8 bytes. */
	asm volatile("mov " SP ", %0\n\tpush " BP "\n\tenter $8, $1\n\tmov " BP ", %1\n\tmov " SP ", %2\n\t"
		     "mov -%c4(" BP "), %3\n\tleave\n\tpop " BP
		     : "=&r"(before), "=&r"(frame), "=&r"(after), "=&r"(saved) : "i"(W) : "memory");
	report("enter $8, $1 copies the frame pointer", before - frame == 2 * W && frame - after == W + 8 &&
								saved == frame);
}

static void call_ret(void)
{
	unsigned long before, after, got, cs;

	asm volatile("mov " SP ", %0\n\tpush $1\n\tpush $2\n\tcall 1f\n\tjmp 2f\n"
		     "1:\tmov %c3(" SP "), %2\n\tret $%c4\n"
		     "2:\tmov " SP ", %1"
		     : "=&r"(before), "=&r"(after), "=&r"(got) : "i"(W), "i"(2 * W) : "memory");
	report("call, ret imm16", before == after && got == 2);

	asm volatile("mov $1, %0\n\tmov %%cs, %k1\n\tpush %1\n\tpush $1f\n\t" LRET "\n\tmov $2, %0\n1:"
		     : "=&r"(got), "=&r"(cs));
	report("far return", got == 1);
}

#ifndef __x86_64__
static void pusha_popa(void)
{
	uint32_t regs[8], *p = regs, eax, esi;

	asm volatile("push %%ebp\n\t"
		     "mov $0x11, %%eax\n\tmov $0x22, %%ecx\n\tmov $0x33, %%edx\n\tmov $0x44, %%ebx\n\t"
		     "mov $0x55, %%ebp\n\tmov $0x66, %%esi\n\t"
		     "pusha\n\t"
		     "mov %%esp, %%esi\n\tmov $8, %%ecx\n\trep movsl\n\t"
		     "xor %%eax, %%eax\n\txor %%esi, %%esi\n\t"
		     "popa\n\t"
		     "pop %%ebp"
		     : "=a"(eax), "=S"(esi), "+D"(p) : : "ecx", "edx", "ebx", "memory");
	/* PUSHA order: EAX ECX EDX EBX ESP EBP ESI EDI, so EDI ends lowest in memory. */
	report("pusha order", regs[7] == 0x11 && regs[6] == 0x22 && regs[5] == 0x33 && regs[4] == 0x44 &&
			      regs[2] == 0x55 && regs[1] == 0x66);
	report("popa restores", eax == 0x11 && esi == 0x66);
}
#endif

int main(void)
{
	push_pop();
	enter_leave();
	call_ret();
#ifndef __x86_64__
	pusha_popa();
#endif
	return report_summary();
}
