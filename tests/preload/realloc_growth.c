/* realloc of large buffers under LD_PRELOAD: one buffer grown by 1 MiB steps from 1 MiB past
 * ZEROPOOL_MAX_POOLED (64 MiB) keeps every byte, holds little more memory than its own size at
 * any time (its pages move; an old range holds none), and shrinks in place with its tail given
 * back and a guard page after it. Exit status 0 when every check held. */
#include <stdint.h>
#include "test_util.h"

#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define MiB ((size_t)1 << 20)

static size_t resident(const void *p, size_t n)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)p & ~(uintptr_t)(pg - 1), b = ((uintptr_t)p + n + pg - 1) & ~(pg - 1);
    size_t np = (b - a) / pg, r = 0;
    unsigned char *vec = malloc(np);
    if (vec == NULL || mincore((void *)a, b - a, vec) != 0) {
        free(vec);
        return 0; /* unmapped: given back */
    }
    for (size_t i = 0; i < np; i++)
        r += vec[i] & 1;
    free(vec);
    return r;
}

static unsigned char mark(size_t i)
{
    return (unsigned char)((i >> 12) * 7 + 1) | 1;
}

/* One byte of each page written, with a mark of its offset. */
static void fill(unsigned char *p, size_t from, size_t to)
{
    for (size_t i = from; i < to; i += 4096)
        p[i] = mark(i);
}

static size_t first_wrong(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (i % 4096 ? 0 : mark(i)))
            return i;
    return (size_t)-1;
}

static bool write_faults(void *addr)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(open("/dev/null", O_WRONLY), 2); /* the library's guard-page report */
        *(volatile char *)addr = 1;
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    return WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV;
}

int main(void)
{
    size_t top = test_env_size("REALLOC_TOP", 160 * MiB), pg = (size_t)sysconf(_SC_PAGESIZE);
    size_t base = test_status_bytes("VmRSS");
    unsigned char *p = malloc(MiB);
    CHECK(p != NULL, "malloc 1 MiB");
    fill(p, 0, MiB);
    unsigned moves = 0, left = 0;
    for (size_t n = 2 * MiB; n <= top; n += MiB) {
        unsigned char *q = realloc(p, n);
        CHECK(q != NULL, "realloc to %zu MiB", n >> 20);
        if (q == NULL)
            return 1;
        /* Pages move: nothing of the old buffer stays resident in its range. */
        if (q != p) {
            moves++;
            size_t r = resident(p, n - MiB);
            if (r != 0 && left++ < 3)
                CHECK(r == 0, "grow to %zu MiB: %zu pages left resident in the old range",
                      n >> 20, r);
        }
        CHECK(test_all_zero(q + n - MiB, MiB), "grow to %zu MiB: new part not zero", n >> 20);
        fill(q, n - MiB, n);
        p = q;
    }
    size_t hwm = test_status_bytes("VmHWM");
    CHECK(first_wrong(p, top) == (size_t)-1, "contents wrong at byte %zu", first_wrong(p, top));
    CHECK(hwm - base <= top + top / 5, "peak resident grew by %zu MiB for a %zu MiB buffer",
          (hwm - base) >> 20, top >> 20);
    printf("grew to %zu MiB: %u moves, peak resident +%zu MiB\n", top >> 20, moves,
           (hwm - base) >> 20);
    /* Shrink above the pooled sizes: in place, the dropped pages given back, a guard after. */
    size_t n = top / 2 + 12345;
    unsigned char *q = realloc(p, n);
    CHECK(q == p, "a shrink of a direct buffer moved");
    size_t end = (n + pg - 1) & ~(pg - 1);
    CHECK(first_wrong(q, n) == (size_t)-1, "shrink: contents wrong");
    CHECK(test_all_zero(q + n, end - n), "shrink: the last page's tail is not zero");
    CHECK(resident(q + end, top - end) == 0, "shrink: dropped pages still resident");
    CHECK(write_faults(q + end), "shrink: no guard after the buffer");
    /* Into the pool: the kept part follows, the rest of the buffer is zero. */
    size_t small = 3 * MiB + 77;
    unsigned char *r = realloc(q, small);
    CHECK(r != NULL && first_wrong(r, small) == (size_t)-1, "shrink into the pool: contents");
    CHECK(r == NULL || malloc_usable_size(r) >= small, "usable size after shrink");
    free(r);
    return test_failures ? 1 : 0;
}
