/*
 * The guest runtime: what every C guest may call. Built for 32-bit protected mode (-m32)
 * or 64-bit long mode (-m64) from the same sources; the boot stub in entry-*.S gets there.
 */
#ifndef RT_H
#define RT_H

#include <stdarg.h>
#include <stdint.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define PAGE_SIZE 4096ul

#include "selectors.h"

/* Exception vectors (SDM vol. 3A table 6-1). */
#define DE_VECTOR 0
#define DB_VECTOR 1
#define BP_VECTOR 3
#define OF_VECTOR 4
#define BR_VECTOR 5
#define UD_VECTOR 6
#define DF_VECTOR 8
#define TS_VECTOR 10
#define NP_VECTOR 11
#define SS_VECTOR 12
#define GP_VECTOR 13
#define PF_VECTOR 14
#define AC_VECTOR 17

#define NR_VECTORS 256
#define NO_TRAP    0xffffffffu

/* The registers an exception stub saves, in push order reversed (lowest address first). */
struct trap_frame {
#ifdef __x86_64__
	unsigned long r15, r14, r13, r12, r11, r10, r9, r8;
	unsigned long rdi, rsi, rbp, rbx, rdx, rcx, rax;
#else
	unsigned long rdi, rsi, rbp, esp_unused, rbx, rdx, rcx, rax;
#endif
	unsigned long vector, error_code;
	unsigned long rip, cs, rflags;
#ifdef __x86_64__
	unsigned long rsp, ss;
#endif
};

typedef void (*trap_handler_t)(struct trap_frame *f);

/* What the last expected exception looked like (see TRY). */
struct trap_record {
	unsigned vector;
	unsigned long error_code, rip, cr2;
};

extern volatile struct trap_record rt_last_trap;
/* Where an expected exception resumes; 0 when no exception is expected. */
extern volatile unsigned long rt_recover;

/*
 * TRY(insns, inputs...): run insns with the runtime ready to catch one exception, and return
 * the vector caught (NO_TRAP if none). rt_last_trap holds the error code, faulting RIP and CR2.
 * insns may use RAX, RCX and RDX (EAX, ECX, EDX) freely; other registers only as inputs.
 */
#ifdef __x86_64__
#define RT_LEA_RECOVER "lea 1111f(%%rip), %%rax\n\tmov %%rax, rt_recover(%%rip)\n\t"
#else
#define RT_LEA_RECOVER "movl $1111f, rt_recover\n\t"
#endif
#define TRY(insns, ...)                                                              \
	({                                                                           \
		rt_last_trap.vector = NO_TRAP;                                       \
		asm volatile(RT_LEA_RECOVER insns "\n1111:\n\t" : : __VA_ARGS__      \
			     : "rax", "rcx", "rdx", "memory");                       \
		rt_recover = 0;                                                      \
		rt_last_trap.vector;                                                 \
	})

/* Port I/O. */
static inline void outb(uint8_t v, uint16_t port) { asm volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outw(uint16_t v, uint16_t port) { asm volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(uint32_t v, uint16_t port) { asm volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) { uint8_t v; asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint16_t inw(uint16_t port) { uint16_t v; asm volatile("inw %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint32_t inl(uint16_t port) { uint32_t v; asm volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }

/* Control registers and friends. */
static inline unsigned long read_cr0(void) { unsigned long v; asm volatile("mov %%cr0, %0" : "=r"(v)); return v; }
static inline unsigned long read_cr2(void) { unsigned long v; asm volatile("mov %%cr2, %0" : "=r"(v)); return v; }
static inline unsigned long read_cr3(void) { unsigned long v; asm volatile("mov %%cr3, %0" : "=r"(v)); return v; }
static inline unsigned long read_cr4(void) { unsigned long v; asm volatile("mov %%cr4, %0" : "=r"(v)); return v; }
static inline void write_cr0(unsigned long v) { asm volatile("mov %0, %%cr0" : : "r"(v) : "memory"); }
static inline void write_cr3(unsigned long v) { asm volatile("mov %0, %%cr3" : : "r"(v) : "memory"); }
static inline void write_cr4(unsigned long v) { asm volatile("mov %0, %%cr4" : : "r"(v) : "memory"); }
static inline void invlpg(const volatile void *va) { asm volatile("invlpg (%0)" : : "r"(va) : "memory"); }
static inline uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;
	asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return ((uint64_t)hi << 32) | lo;
}
static inline unsigned long read_flags(void)
{
	unsigned long f;
	asm volatile("pushf\n\tpop %0" : "=r"(f));
	return f;
}
static inline void sti(void) { asm volatile("sti" : : : "memory"); }
static inline void cli(void) { asm volatile("cli" : : : "memory"); }
/* STI's interrupt shadow covers the HLT, so an interrupt can only arrive once the CPU halts. */
static inline void safe_halt(void) { asm volatile("sti\n\thlt" : : : "memory"); }

/* Serial console on COM1 (port 0x3f8). */
void putchar(int c);
void puts(const char *s);
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vprintf(const char *fmt, va_list ap);

/* kvm-unit-tests style reporting. */
void report(const char *name, int ok);
/* report() with the values when they differ. */
void report_eq(const char *name, unsigned long got, unsigned long want);
int report_summary(void);
void exit(int code) __attribute__((noreturn));

/* Descriptor tables and traps. */
void handle_exception(unsigned vector, trap_handler_t handler);
void set_idt_present(unsigned vector, int present);
/* The stack TSS.RSP0 (ESP0) names, for events that arrive from CPL3. */
extern uint8_t ring0_stack[4096];
/* The privilege level a software INT needs to use the gate (3 lets user code in). */
void set_idt_dpl(unsigned vector, unsigned dpl);

/* Paging: the page table entry mapping va, for va in the 4 KiB-mapped first 2 MiB. */
unsigned long *pte_of(unsigned long va);
/* Sets U/S on the low 4 KiB-mapped memory and the tables above it, so CPL3 code can run there. */
void allow_user_pages(void);
#define PTE_P  0x1ul
#define PTE_W  0x2ul
#define PTE_U  0x4ul
#define PTE_A  0x20ul
#define PTE_D  0x40ul

void *memset(void *d, int c, unsigned long n);
void *memcpy(void *d, const void *s, unsigned long n);
int strcmp(const char *a, const char *b);

/* Each guest's body; its return value is the exit code. */
int main(void);

#endif
