/* A 1 MiB buffer freed twice, with other large and small allocations and frees in between and
 * the pool's free memory released (malloc_trim) before the second free. */
#include <malloc.h>

#include "misuse.h"

MISUSE_FN void misuse_double_free_here(void *p)
{
    free(p);
    MISUSE_BARRIER();
}

int main(void)
{
    char *a = misuse_alloc_here((size_t)1 << 20);
    char *b = malloc((size_t)2 << 20);
    memset(a, 1, (size_t)1 << 20);
    free(a);
    for (int i = 0; i < 100; i++) {
        char *x = malloc((size_t)256 << 10), *y = malloc(100), *z = malloc((size_t)4 << 20);
        x[i] = y[0] = z[i] = 1;
        free(x);
        free(y);
        free(z);
    }
    malloc_trim(0);
    free(b);
    misuse_double_free_here(a);
    return misuse_carry_on((size_t)1 << 20, 0);
}
