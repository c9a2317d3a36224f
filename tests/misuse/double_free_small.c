/* A 48-byte jemalloc block freed twice in a row: the second free finds it on top of the
 * thread's cache. Without the check the cache would hold it twice and two later mallocs of
 * that size would share it. */
#include "misuse.h"

MISUSE_FN void misuse_double_free_here(void *p)
{
    free(p);
    MISUSE_BARRIER();
}

int main(void)
{
    char *p = misuse_alloc_here(48);
    p[0] = 1;
    free(p);
    misuse_double_free_here(p);
    /* report mode: the block is in the cache once, so two blocks of that size differ */
    char *a = malloc(48), *b = malloc(48);
    if (a == NULL || b == NULL || a == b) {
        fprintf(stderr, "misuse: two live 48-byte blocks at %p and %p\n", (void *)a, (void *)b);
        return 4;
    }
    free(a);
    free(b);
    return misuse_carry_on(48, 0);
}
