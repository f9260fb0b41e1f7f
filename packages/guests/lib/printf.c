/*
 * printf over putchar() (io.c). Conversions: %d %i %u %x %lx %ld %lu %s %c %p %%, with an optional 0 flag and width.
 * Decimal goes through unsigned long only, so 32-bit builds need no libgcc division.
 */
#include "rt.h"

void puts(const char *s)
{
	while (*s)
		putchar(*s++);
}

static int put_number(unsigned long v, unsigned base, int width, char pad)
{
	char buf[3 * sizeof(v)];
	int n = 0, written;

	do {
		buf[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	written = n > width ? n : width;
	for (; width > n; width--)
		putchar(pad);
	while (n)
		putchar(buf[--n]);
	return written;
}

int vprintf(const char *fmt, va_list ap)
{
	int count = 0;

	for (; *fmt; fmt++) {
		char pad = ' ';
		int width = 0, is_long = 0;
		unsigned long u;
		long d;
		const char *s;

		if (*fmt != '%') {
			putchar(*fmt);
			count++;
			continue;
		}
		fmt++;
		if (*fmt == '0')
			pad = '0';
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		if (*fmt == 'l') {
			is_long = 1;
			fmt++;
		}
		switch (*fmt) {
		case 'd':
		case 'i':
			d = is_long ? va_arg(ap, long) : va_arg(ap, int);
			if (d < 0) {
				putchar('-');
				count++;
				u = -(unsigned long)d;
				width = width ? width - 1 : 0;
			} else {
				u = d;
			}
			count += put_number(u, 10, width, pad);
			break;
		case 'u':
		case 'x':
			u = is_long ? va_arg(ap, unsigned long) : va_arg(ap, unsigned);
			count += put_number(u, *fmt == 'u' ? 10 : 16, width, pad);
			break;
		case 'p':
			puts("0x");
			count += 2 + put_number((unsigned long)va_arg(ap, void *), 16, width, pad);
			break;
		case 's':
			for (s = va_arg(ap, const char *); *s; s++, count++)
				putchar(*s);
			break;
		case 'c':
			putchar(va_arg(ap, int));
			count++;
			break;
		case '%':
			putchar('%');
			count++;
			break;
		case '\0':
			return count;
		default:
			putchar('%');
			putchar(*fmt);
			count += 2;
		}
	}
	return count;
}

int printf(const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vprintf(fmt, ap);
	va_end(ap);
	return n;
}
