/* The few libc routines gcc may call even in freestanding code (struct copies, zeroing). */
#include "rt.h"

void *memset(void *d, int c, unsigned long n)
{
	void *p = d;

	asm volatile("rep stosb" : "+D"(p), "+c"(n) : "a"(c) : "memory");
	return d;
}

void *memcpy(void *d, const void *s, unsigned long n)
{
	void *p = d;

	asm volatile("rep movsb" : "+D"(p), "+S"(s), "+c"(n) : : "memory");
	return d;
}

int strcmp(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return (unsigned char)*a - (unsigned char)*b;
}
