/* free must leave errno alone, also when the allocator's own system calls inside it set errno.
 * This program defines madvise and munmap (first in the global scope, so an allocator's calls
 * bind to them): each makes the real call and then sets errno to EIO, as any libc function may
 * even on success. With MALLOC_CONF=dirty_decay_ms:0,muzzy_decay_ms:0 jemalloc purges a freed
 * 40-100 KiB extent at once, inside free. Under zeropool these blocks are below the pool's
 * threshold (ZEROPOOL_THRESHOLD=1M), so they are the private jemalloc's.
 * Prints the calls made during frees and the frees that changed errno; exit 1 if any did,
 * 2 if no call was made (nothing tested). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static volatile int in_free;
static volatile unsigned long calls_in_free;

int madvise(void *a, size_t n, int advice)
{
    calls_in_free += in_free;
    long r = syscall(SYS_madvise, a, n, advice);
    errno = EIO;
    return r == 0 ? 0 : -1;
}

int munmap(void *a, size_t n)
{
    calls_in_free += in_free;
    long r = syscall(SYS_munmap, a, n);
    errno = EIO;
    return r == 0 ? 0 : -1;
}

int main(void)
{
    enum { N = 64 };
    void *p[N];
    unsigned long changed = 0, frees = 0;
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < N; i++) {
            size_t n = (40u << 10) + (size_t)i * 1024;
            p[i] = malloc(n);
            if (p[i] == NULL) {
                fprintf(stderr, "malloc(%zu) failed\n", n);
                return 3;
            }
            memset(p[i], 1, n);
        }
        for (int i = 0; i < N; i++) {
            errno = 4242;
            in_free = 1;
            free(p[i]);
            in_free = 0;
            frees++;
            if (errno != 4242)
                changed++;
        }
    }
    printf("frees %lu, madvise/munmap calls inside them %lu, frees that changed errno %lu\n",
           frees, calls_in_free, changed);
    if (calls_in_free == 0)
        return 2;
    return changed != 0;
}
