/* realloc of a 1 MiB buffer already freed. Report mode: realloc fails (NULL, EINVAL). */
#include <errno.h>

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
    free(p);
    errno = 0;
    void *q = misuse_realloc_here(p, (size_t)2 << 20);
    if (q != NULL || errno != EINVAL)
        return 4;
    return misuse_carry_on((size_t)1 << 20, 0);
}
