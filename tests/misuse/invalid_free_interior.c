/* free of a pointer into the middle of a live 1 MiB buffer. */
#include "misuse.h"

MISUSE_FN void misuse_invalid_free_here(void *p)
{
    free(p);
    MISUSE_BARRIER();
}

int main(void)
{
    char *p = misuse_alloc_here((size_t)1 << 20);
    misuse_invalid_free_here(p + 100000);
    free(p); /* report mode: the buffer is still live and frees normally */
    return misuse_carry_on((size_t)1 << 20, 0);
}
