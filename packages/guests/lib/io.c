/*
 * The two ports the runtime talks to. COM1 (0x3f8): each byte is one OUT, which the VMM's
 * serial device claims. Port 0xf4: the test exit of DESIGN.md, which ends the run with the
 * value written (kvm-unit-tests' convention).
 */
#include "rt.h"

#define COM1            0x3f8
#define DEBUG_EXIT_PORT 0xf4

void putchar(int c)
{
	outb(c, COM1);
}

void exit(int code)
{
	outb(code, DEBUG_EXIT_PORT);
	for (;;)
		asm volatile("cli; hlt");
}
