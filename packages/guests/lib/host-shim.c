/*
 * Not part of any image: scripts/native-check.mjs links the instruction-class guests with
 * this file instead of the runtime, and runs them as Linux processes, so the expected values
 * written in them are checked against the machine's own CPU.
 */
#include "rt.h"

static char buf[4096];
static unsigned long used;

static long sys_write(const void *p, unsigned long n)
{
	long r;
#ifdef __x86_64__
	asm volatile("syscall" : "=a"(r) : "a"(1), "D"(1), "S"(p), "d"(n) : "rcx", "r11", "memory");
#else
	asm volatile("int $0x80" : "=a"(r) : "a"(4), "b"(1), "c"(p), "d"(n) : "memory");
#endif
	return r;
}

static void flush(void)
{
	sys_write(buf, used);
	used = 0;
}

void putchar(int c)
{
	buf[used++] = c;
	if (used == sizeof(buf) || c == '\n')
		flush();
}

void exit(int code)
{
	flush();
	for (;;) {
#ifdef __x86_64__
		asm volatile("syscall" : : "a"(60), "D"(code));
#else
		asm volatile("int $0x80" : : "a"(1), "b"(code));
#endif
	}
}

void host_main(void)
{
	exit(main());
}

#ifdef __x86_64__
asm(".globl _start\n_start:\n\tand $-16, %rsp\n\tcall host_main\n");
#else
asm(".globl _start\n_start:\n\tand $-16, %esp\n\tcall host_main\n");
#endif
