/* Shared by the misuse programs: each makes one mistake in a function of its own (noinline,
 * exported with -rdynamic) so that the runner can find that function in the report's
 * backtrace, and, when the report returns (ZEROPOOL_ON_ERROR=report), checks that the pool is
 * still consistent: buffers of the same size come back zeroed, then exits 0. */
#ifndef MISUSE_H
#define MISUSE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MISUSE_FN __attribute__((noinline))
/* Keeps a call from becoming a tail jump, which would drop the caller's frame. */
#define MISUSE_BARRIER() __asm__ volatile("" ::: "memory")

MISUSE_FN char *misuse_alloc_here(size_t n)
{
    char *p = malloc(n);
    MISUSE_BARRIER();
    return p;
}

/* The pool still works: n-byte buffers (and the first bytes of their slack) read as zero. */
static inline int misuse_pool_ok(size_t n, size_t slack)
{
    for (int round = 0; round < 3; round++) {
        unsigned char *q = malloc(n);
        if (q == NULL)
            return 0;
        for (size_t i = 0; i < n + slack; i++)
            if (q[i] != 0) {
                fprintf(stderr, "misuse: byte %zu of a new %zu-byte buffer is %d\n", i, n, q[i]);
                return 0;
            }
        memset(q, 0x5a, n);
        free(q);
    }
    return 1;
}

static inline int misuse_carry_on(size_t n, size_t slack)
{
    puts("misuse: still running");
    if (!misuse_pool_ok(n, slack))
        return 3;
    return 0;
}

#endif
