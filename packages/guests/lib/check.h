/*
 * Helpers for the instruction-class guests: run one instruction on chosen operands with
 * chosen flags in, and get back the result and the flags out.
 */
#ifndef CHECK_H
#define CHECK_H

#include "rt.h"

#define CF 0x001ul
#define PF 0x004ul
#define AF 0x010ul
#define ZF 0x040ul
#define SF 0x080ul
#define OF 0x800ul
#define ARITH (CF | PF | AF | ZF | SF | OF)

struct result {
	unsigned long val, flags;
};

/*
 * OP(tmpl, dst, src, flags): tmpl names its operands %[d] (read-write, starting at dst) and
 * %[s] (read, src);
 * the flags are loaded with POPF first and captured with PUSHF after.
 */
#define OP(tmpl, dst_, src_, flags_)                                                         \
	({                                                                               \
		unsigned long _d = (dst_), _f;                                              \
		asm volatile("push %[fi]\n\tpopf\n\t" tmpl "\n\tpushf\n\tpop %[f]"        \
			     : [d] "+q"(_d), [f] "=&r"(_f)                               \
			     : [s] "q"((unsigned long)(src_)), [fi] "r"((unsigned long)(flags_))  \
			     : "cc");                                                    \
		(struct result){ _d, _f };                                               \
	})

/* One check: the value, and the flags under mask. */
static inline void check(const char *name, struct result r, unsigned long val, unsigned long mask,
			 unsigned long flags)
{
	int ok = r.val == val && (r.flags & mask) == flags;

	report(name, ok);
	if (!ok)
		printf("  got %lx flags %lx, want %lx flags %lx\n", r.val, r.flags & mask, val, flags);
}

#endif
