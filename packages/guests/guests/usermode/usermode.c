/*
 * CPL3, as a kernel sees it. User code runs on the guest's own user segments and U/S pages,
 * entered by IRETQ or by SYSRET, and comes back by SYSCALL (LSTAR, STAR, SFMASK, EFER.SCE).
 * From CPL3: an INT through a DPL3 gate switches to the TSS's RSP0 stack; through a DPL0 gate
 * it is #GP with the gate's index; HLT and OUT (IOPL 0) are #GP(0); a supervisor-only page is
 * #PF with U/S set in the error code. Faults from user code land in the kernel's handlers,
 * which return to the kernel's context.
 */
#include "rt.h"

#define MSR_EFER    0xc0000080
#define MSR_STAR    0xc0000081
#define MSR_LSTAR   0xc0000082
#define MSR_SFMASK  0xc0000084
#define EFER_SCE    1
#define RFLAGS_IF   (1ul << 9)
#define RFLAGS_TF   (1ul << 8)
#define FAULTED     0xdeadul
#define PFERR_PRESENT 0x1
#define PFERR_USER    0x4

/* user_call(fn, stack): run fn at CPL3 until its SYSCALL (returns its RAX) or a fault (FAULTED). */
unsigned long user_call(void (*fn)(void), void *stack);
unsigned long user_call_sysret(void (*fn)(void), void *stack);
void syscall_entry(void);
extern char user_abort[];
void user_get_cs(void), user_get_ss(void), user_hlt(void), user_out(void), user_int80(void),
	user_int81(void), user_read_victim(void);
extern char user_hlt_insn[], user_int81_insn[], user_get_cs_end[];

unsigned long kernel_rsp, syscall_rcx, syscall_r11, victim_va;

asm(".pushsection .text\n"
    "user_call:\n\t"
    "push %rbx\n\tpush %rbp\n\tpush %r12\n\tpush %r13\n\tpush %r14\n\tpush %r15\n\t"
    "mov %rsp, kernel_rsp(%rip)\n\t"
    "pushq $0x3b\n\t"   /* SS = USER_DS | 3 */
    "push %rsi\n\t"     /* RSP */
    "pushq $0x2\n\t"    /* RFLAGS: IF=0, IOPL=0 */
    "pushq $0x43\n\t"   /* CS = USER_CS64 | 3 */
    "push %rdi\n\t"     /* RIP */
    "iretq\n"
    "user_call_sysret:\n\t"
    "push %rbx\n\tpush %rbp\n\tpush %r12\n\tpush %r13\n\tpush %r14\n\tpush %r15\n\t"
    "mov %rsp, kernel_rsp(%rip)\n\t"
    "mov %rdi, %rcx\n\t"
    "mov $0x2, %r11d\n\t"
    "mov %rsi, %rsp\n\t"
    "sysretq\n"
    "syscall_entry:\n\t"
    "mov kernel_rsp(%rip), %rsp\n\t"
    "mov %rcx, syscall_rcx(%rip)\n\t"
    "mov %r11, syscall_r11(%rip)\n"
    "user_abort:\n\t"
    "pop %r15\n\tpop %r14\n\tpop %r13\n\tpop %r12\n\tpop %rbp\n\tpop %rbx\n\t"
    "ret\n"
    /* User code: the same pages, run at CPL3. */
    "user_get_cs:\n\tmov %cs, %eax\n\tsyscall\n"
    "user_get_cs_end:\n"
    "user_get_ss:\n\tmov %ss, %eax\n\tsyscall\n"
    "user_hlt:\n"
    "user_hlt_insn:\n\thlt\n"
    "user_out:\n\tmov $0x510, %dx\n\tout %al, %dx\n\tsyscall\n"
    "user_int80:\n\tint $0x80\n\tmov $0x80, %eax\n\tsyscall\n"
    "user_int81:\n"
    "user_int81_insn:\n\tint $0x81\n"
    "user_read_victim:\n\tmov victim_va(%rip), %rax\n\tmov (%rax), %al\n\tsyscall\n"
    ".popsection");

static uint8_t user_stack[4096] __attribute__((aligned(16)));
static volatile uint8_t victim[4096] __attribute__((aligned(4096)));
static void *const user_sp = user_stack + sizeof(user_stack);

static struct trap_record user_fault;
static unsigned long int80_cs, int80_user_rsp, int80_frame;

/* A fault from CPL3: record it and resume the kernel where user_call would have returned. */
static void user_fault_handler(struct trap_frame *f)
{
	user_fault.vector = f->vector;
	user_fault.error_code = f->error_code;
	user_fault.rip = f->rip;
	user_fault.cr2 = read_cr2();
	f->rip = (unsigned long)user_abort;
	f->cs = KERNEL_CS64;
	f->ss = KERNEL_DS;
	f->rsp = kernel_rsp;
	f->rax = FAULTED;
}

static void int80_handler(struct trap_frame *f)
{
	int80_cs = f->cs;
	int80_user_rsp = f->rsp;
	int80_frame = (unsigned long)f;
}

static unsigned long fault_in(void (*fn)(void))
{
	user_fault.vector = NO_TRAP;
	return user_call(fn, user_sp);
}

int main(void)
{
	allow_user_pages();
	asm volatile("wrmsr" : : "c"(MSR_EFER), "a"((uint32_t)rdmsr(MSR_EFER) | EFER_SCE), "d"((uint32_t)(rdmsr(MSR_EFER) >> 32)));
	asm volatile("wrmsr" : : "c"(MSR_STAR), "a"(0), "d"((USER_CS32 << 16) | KERNEL_CS64));
	asm volatile("wrmsr" : : "c"(MSR_LSTAR), "a"((uint32_t)(unsigned long)syscall_entry), "d"((uint32_t)((unsigned long)syscall_entry >> 32)));
	asm volatile("wrmsr" : : "c"(MSR_SFMASK), "a"((uint32_t)(RFLAGS_IF | RFLAGS_TF)), "d"(0));
	for (unsigned v = 0; v < 32; v++)
		handle_exception(v, user_fault_handler);
	handle_exception(0x80, int80_handler);
	set_idt_dpl(0x80, 3);

	report_eq("IRETQ to CPL3: CS", user_call(user_get_cs, user_sp), USER_CS64 | 3);
	report_eq("SYSCALL saves the user RIP in RCX", syscall_rcx, (unsigned long)user_get_cs_end);
	report_eq("SYSCALL saves RFLAGS in R11", syscall_r11, 0x2);
	report_eq("SYSRET to CPL3: CS", user_call_sysret(user_get_cs, user_sp), USER_CS64 | 3);
	report_eq("SYSRET to CPL3: SS", user_call_sysret(user_get_ss, user_sp), USER_DS | 3);

	report_eq("INT through a DPL3 gate", user_call(user_int80, user_sp), 0x80);
	report_eq("  arrives from CPL3", int80_cs, USER_CS64 | 3);
	report_eq("  on the RSP0 stack", int80_frame + sizeof(struct trap_frame), (unsigned long)(ring0_stack + sizeof(ring0_stack)));
	report_eq("  with the user RSP saved", int80_user_rsp, (unsigned long)user_sp);

	report("INT through a DPL0 gate is #GP", fault_in(user_int81) == FAULTED && user_fault.vector == GP_VECTOR);
	report_eq("  with the gate's index in the error code", user_fault.error_code, 0x81 * 8 + 2);
	report_eq("  at the INT", user_fault.rip, (unsigned long)user_int81_insn);
	report("HLT at CPL3 is #GP(0)", fault_in(user_hlt) == FAULTED && user_fault.vector == GP_VECTOR &&
					     user_fault.error_code == 0 && user_fault.rip == (unsigned long)user_hlt_insn);
	report("OUT at CPL3 with IOPL 0 is #GP(0), not an I/O exit",
	       fault_in(user_out) == FAULTED && user_fault.vector == GP_VECTOR && user_fault.error_code == 0);

	victim_va = (unsigned long)victim;
	*pte_of(victim_va) &= ~PTE_U;
	invlpg(victim);
	report("a supervisor page read from CPL3 is #PF", fault_in(user_read_victim) == FAULTED && user_fault.vector == PF_VECTOR);
	report_eq("  with P and U/S in the error code", user_fault.error_code, PFERR_PRESENT | PFERR_USER);
	report_eq("  and CR2 at the page", user_fault.cr2, victim_va);
	*pte_of(victim_va) |= PTE_U;
	invlpg(victim);
	report_eq("the same page with U/S set reads", user_call(user_read_victim, user_sp) & 0xff, 0);
	return report_summary();
}
