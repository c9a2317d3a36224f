/* free must leave errno alone, also when the allocator's own system calls inside it set errno.
 * This program defines madvise and munmap (first in the global scope, so an allocator's calls
 * bind to them): each makes the real call and then sets errno to EIO, as any libc function may
 * even on success. Plain jemalloc purges a freed 40-100 KiB extent at once, inside free, with
 * MALLOC_CONF=dirty_decay_ms:0,muzzy_decay_ms:0. zeropool's jemalloc reads no MALLOC_CONF; it
 * purges blocks of 8 MiB and more at once (its arena for them decays eagerly): with
 * ZEROPOOL_THRESHOLD=1G they are the private jemalloc's.
 *   usage: free_errno [SIZE [COUNT]]   (blocks of SIZE + i KiB, i < COUNT; 40 KiB and 64)
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

int main(int argc, char **argv)
{
    enum { MAX = 64 };
    size_t base = argc > 1 ? strtoull(argv[1], NULL, 0) : 40u << 10;
    int N = argc > 2 ? atoi(argv[2]) : MAX;
    if (N < 1 || N > MAX)
        return 3;
    void *p[MAX];
    unsigned long changed = 0, frees = 0;
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < N; i++) {
            size_t n = base + (size_t)i * 1024;
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
