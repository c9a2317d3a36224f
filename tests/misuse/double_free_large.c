/* A 1 MiB buffer freed twice in a row. */
#include "misuse.h"

MISUSE_FN void misuse_double_free_here(void *p)
{
    free(p);
    MISUSE_BARRIER();
}

int main(void)
{
    char *p = misuse_alloc_here((size_t)1 << 20);
    p[0] = 1;
    free(p);
    misuse_double_free_here(p);
    return misuse_carry_on((size_t)1 << 20, 0);
}
