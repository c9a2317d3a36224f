/* One byte past the end of a 1 MiB buffer: its slot is exactly 1 MiB, so the byte is in the
 * PROT_NONE guard page and the write faults (SIGSEGV). */
#include "misuse.h"

MISUSE_FN void misuse_guard_write_here(char *p, size_t n)
{
    ((volatile char *)p)[n] = 'A';
}

int main(void)
{
    char *p = misuse_alloc_here((size_t)1 << 20);
    misuse_guard_write_here(p, (size_t)1 << 20);
    puts("misuse: still running"); /* never: the fault ends the process */
    return 0;
}
