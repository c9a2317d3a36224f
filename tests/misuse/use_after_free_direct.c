/* A write into an 80 MiB buffer after its free: above ZEROPOOL_MAX_POOLED (64M) buffers are
 * direct mappings whose memory goes back to the kernel at free, so the write faults. */
#include "misuse.h"

MISUSE_FN void misuse_write_after_free_here(char *p)
{
    ((volatile char *)p)[100] = 'A';
}

int main(void)
{
    char *p = misuse_alloc_here((size_t)80 << 20);
    p[0] = 1;
    free(p);
    misuse_write_after_free_here(p);
    puts("misuse: still running");
    return 0;
}
