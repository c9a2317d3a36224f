/* free of an address in the pool's address space that was never handed out: inside the
 * fourth slot of the span that holds the only 1 MiB buffer (slots of 1 MiB + a guard page). */
#include "misuse.h"

MISUSE_FN void misuse_wild_free_here(void *p)
{
    free(p);
    MISUSE_BARRIER();
}

int main(void)
{
    char *p = misuse_alloc_here((size_t)1 << 20);
    misuse_wild_free_here(p + ((size_t)4 << 20) + 12345);
    free(p);
    return misuse_carry_on((size_t)1 << 20, 0);
}
