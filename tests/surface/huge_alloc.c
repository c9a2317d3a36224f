/* Requests no machine can back (1 << 46 bytes) through every entry point: each must fail with
 * ENOMEM, as glibc's do, instead of returning memory that takes the machine down when touched.
 * Prints one line per call; exit 0 when every one failed with ENOMEM. */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

#define HUGE ((size_t)1 << 46)

static int check(const char *what, void *p)
{
    int e = errno;
    printf("%s: %s (errno %d)\n", what, p ? "succeeded" : "failed", p ? 0 : e);
    if (p != NULL) {
        free(p);
        return 1;
    }
    return e != ENOMEM;
}

int main(void)
{
    int bad = 0;
    errno = 0;
    bad |= check("malloc", malloc(HUGE));
    errno = 0;
    bad |= check("calloc", calloc(HUGE / 16, 16));
    errno = 0;
    bad |= check("aligned_alloc", aligned_alloc(4096, HUGE));
    errno = 0;
    bad |= check("memalign", memalign(1 << 20, HUGE));
    void *p = malloc(100);
    errno = 0;
    void *q = realloc(p, HUGE);
    bad |= check("realloc", q);
    if (q == NULL)
        free(p);
    return bad;
}
