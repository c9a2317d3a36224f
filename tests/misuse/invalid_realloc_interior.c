/* realloc of a pointer into the middle of a live 1 MiB buffer. */
#include "misuse.h"

MISUSE_FN void *misuse_realloc_here(void *p, size_t n)
{
    void *q = realloc(p, n);
    MISUSE_BARRIER();
    return q;
}

int main(void)
{
    char *p = misuse_alloc_here((size_t)1 << 20);
    if (misuse_realloc_here(p + 8192, (size_t)2 << 20) != NULL)
        return 4;
    free(p);
    return misuse_carry_on((size_t)1 << 20, 0);
}
