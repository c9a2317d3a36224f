/* Writes k bytes past the end of a 1000000-byte buffer (its slot is 1 MiB: the bytes land in
 * the slack, which zp_put checks), then frees it. */
#include "misuse.h"

#define SLACK_N 1000000

MISUSE_FN void misuse_write_past_end(char *p, size_t n, size_t k)
{
    volatile char *v = p;
    for (size_t i = 0; i < k; i++)
        v[n + i] = 'A';
}

MISUSE_FN void misuse_free_overflowed_here(void *p)
{
    free(p);
    MISUSE_BARRIER();
}

static inline int slack_overflow_main(size_t k)
{
    char *p = misuse_alloc_here(SLACK_N);
    memset(p, 7, SLACK_N);
    misuse_write_past_end(p, SLACK_N, k);
    misuse_free_overflowed_here(p);
    /* Report mode: the slot was scrubbed whole, slack included. */
    return misuse_carry_on(SLACK_N, 64);
}
