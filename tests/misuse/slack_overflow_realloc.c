/* One byte past the end of a 1000000-byte buffer, then realloc to a size its slot holds: the
 * in-place resize would hide the overflow, so realloc checks the slack too. */
#include "slack_overflow.h"

MISUSE_FN void *misuse_realloc_here(void *p, size_t n)
{
    void *q = realloc(p, n);
    MISUSE_BARRIER();
    return q;
}

int main(void)
{
    char *p = misuse_alloc_here(SLACK_N);
    misuse_write_past_end(p, SLACK_N, 1);
    char *q = misuse_realloc_here(p, SLACK_N + 16);
    if (q == NULL)
        return 4;
    free(q);
    return misuse_carry_on(SLACK_N, 64);
}
