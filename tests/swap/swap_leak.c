/* Real swap: a secret written to a large buffer is pushed out to swap (MADV_PAGEOUT) while the
 * buffer is live, the buffer is freed and allocated again, and the new holder scans it for the
 * secret. run_swap.sh turns swap on (zram or a swap file) around it and off again.
 *
 * usage: swap_leak MODE
 *   core    the core API (zp_get, zp_resize, zp_put) on a pool of its own (built -DSWAP_CORE)
 *   malloc  malloc, realloc, free: under LD_PRELOAD=libzeropool.so, and without it (control)
 *   naive   control: a scrub that trusts mincore (zeroes resident pages only), on one mapping
 * Cases: 4 MiB written in full; 16 MiB written on 8 pages; 1 MiB written in full and shrunk in
 * place to 600,013 bytes (in place: the
 * preload moves a shrink below half the buffer) (the free must not report an overflow); 16 MiB written in full, ten
 * times over (the scrub's density probe in every state).
 * Exit status: 0 no byte of the secret came back, 1 some did (a leak), 2 an error, 77 the kernel
 * did not swap the pages out (a skip: the test must not pass without swap really in play). */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifdef SWAP_CORE
#include "zeropool.h"
static zp_pool_t *pool;
static unsigned misuse_reports;
static void on_misuse(void *ctx, zp_misuse_t kind, const void *addr, size_t size)
{
    (void)ctx;
    fprintf(stderr, "swap_leak: misuse reported: %s of %p (%zu bytes)\n", zp_misuse_name(kind),
            addr, size);
    misuse_reports++;
}
#endif

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
#define MiB ((size_t)1 << 20)
#define PM_SWAPPED (1ull << 62)

static const char secret[16] = "zp-swap-SECRET!!";
static size_t pg;
static int pagemap = -1;
static enum { M_CORE, M_MALLOC, M_NAIVE } mode;

static void *xalloc(size_t n)
{
    void *p;
#ifdef SWAP_CORE
    if (mode == M_CORE)
        return zp_get(pool, n);
#endif
    if (mode == M_NAIVE) {
        p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return p == MAP_FAILED ? NULL : p;
    }
    return malloc(n);
}

/* Zero what mincore calls resident: the scrub zeropool had before it knew about swap. */
static void naive_scrub(char *p, size_t n)
{
    size_t np = n / pg;
    unsigned char *vec = malloc(np);
    if (!vec || mincore(p, n, vec) != 0) {
        perror("swap_leak: mincore");
        exit(2);
    }
    for (size_t i = 0; i < np; i++)
        if (vec[i] & 1)
            memset(p + i * pg, 0, pg);
    free(vec);
}

static void xfree(void *p, size_t n)
{
#ifdef SWAP_CORE
    if (mode == M_CORE) {
        zp_put(pool, p);
        return;
    }
#endif
    if (mode == M_NAIVE) {
        naive_scrub(p, n); /* the "free": the mapping is kept and handed out again */
        return;
    }
    (void)n;
    free(p);
}

static void *xshrink(void *p, size_t n)
{
#ifdef SWAP_CORE
    if (mode == M_CORE)
        return zp_resize(pool, p, n) ? p : NULL;
#endif
    if (mode == M_NAIVE) {
        char *end = (char *)(((uintptr_t)p + n + pg - 1) & ~(uintptr_t)(pg - 1));
        memset((char *)p + n, 0, (size_t)(end - ((char *)p + n)));
        naive_scrub(end, MiB - (size_t)(end - (char *)p));
        return p;
    }
    return realloc(p, n);
}

static void *naive_reuse; /* naive mode: the mapping "freed" last, handed out again */

static void *xalloc_again(size_t n)
{
    if (mode == M_NAIVE)
        return naive_reuse;
    return xalloc(n);
}

static void fill(char *p, size_t n)
{
    for (size_t i = 0; i + sizeof secret <= n; i += sizeof secret)
        memcpy(p + i, secret, sizeof secret);
}

/* Bytes of the secret found, 16-byte aligned pieces of it, in [p, p+n). */
static size_t scan(const char *p, size_t n)
{
    size_t found = 0;
    const char *a = (const char *)(((uintptr_t)p + 15) & ~(uintptr_t)15);
    for (; a + sizeof secret <= p + n; a += sizeof secret)
        if (!memcmp(a, secret, sizeof secret))
            found += sizeof secret;
    return found;
}

/* Push the whole pages of [p, p+n) out to swap; returns how many of them went. Twice: a page
 * the pool had handed to the kernel lazily (MADV_FREE) and the program wrote again is only
 * marked swappable again by the first pass, and swapped out by the second. */
static size_t page_out(char *p, size_t n)
{
    char *a = (char *)(((uintptr_t)p + pg - 1) & ~(uintptr_t)(pg - 1));
    char *b = (char *)(((uintptr_t)p + n) & ~(uintptr_t)(pg - 1));
    for (int pass = 0; pass < 2; pass++)
        if (madvise(a, (size_t)(b - a), MADV_PAGEOUT) != 0) {
            fprintf(stderr, "swap_leak: MADV_PAGEOUT: %s\n", strerror(errno));
            exit(77);
        }
    size_t np = (size_t)(b - a) / pg, swapped = 0;
    uint64_t *ent = malloc(np * sizeof *ent);
    off_t at = (off_t)((uintptr_t)a / pg * sizeof *ent);
    if (!ent || pread(pagemap, ent, np * sizeof *ent, at) != (ssize_t)(np * sizeof *ent)) {
        perror("swap_leak: /proc/self/pagemap");
        exit(2);
    }
    for (size_t i = 0; i < np; i++)
        swapped += (ent[i] & PM_SWAPPED) != 0;
    free(ent);
    return swapped;
}

static size_t total_leak;

/* The written pages [p+off, p+off+len) for each range: out to swap, or skip the whole run. */
static void must_swap(const char *what, char *p, size_t off, size_t len)
{
    size_t want = len / pg, got = page_out(p + off, len);
    if (got * 2 < want) {
        printf("SKIP %s: only %zu of %zu written pages went to swap\n", what, got, want);
        exit(77);
    }
}

/* was: the freed buffer's address, taken before the free. */
static void report(const char *what, uintptr_t was, const void *q, size_t leaked)
{
    if ((uintptr_t)q != was) {
        fprintf(stderr, "swap_leak: %s: the allocation after the free got %p, not %#lx: the "
                        "test cannot check the reuse\n", what, q, (unsigned long)was);
        exit(2);
    }
    printf("%-40s %9zu bytes of the secret came back\n", what, leaked);
    total_leak += leaked;
}

/* Free p (n bytes, its secret paged out), allocate n bytes again and report what of the secret
 * the new block shows. */
static void free_and_scan(const char *what, char *p, size_t n)
{
    uintptr_t was = (uintptr_t)p;
    naive_reuse = p;
    xfree(p, n);
    char *q = xalloc_again(n);
    report(what, was, q, scan(q, n));
    xfree(q, n);
}

static void case_full(const char *what, size_t n, unsigned rounds)
{
    for (unsigned r = 0; r < rounds; r++) {
        char *p = xalloc(n);
        if (!p)
            exit(2);
        fill(p, n);
        must_swap(what, p, 0, n);
        free_and_scan(what, p, n);
    }
}

static void case_sparse(void)
{
    const char *what = "16 MiB, 8 pages written";
    size_t n = 16 * MiB;
    char *p = xalloc(n);
    if (!p)
        exit(2);
    size_t base = (size_t)(((uintptr_t)p + pg - 1) & ~(uintptr_t)(pg - 1)) - (uintptr_t)p;
    for (unsigned k = 0; k < 8; k++) {
        size_t off = base + k * (n / 8 - pg);
        fill(p + off, pg);
        must_swap(what, p, off, pg);
    }
    free_and_scan(what, p, n);
}

static void case_shrink(void)
{
    const char *what = "1 MiB shrunk in place to 600013 bytes";
    size_t n = MiB, keep = 600013;
    char *p = xalloc(n);
    if (!p)
        exit(2);
    fill(p, n);
    must_swap(what, p, 0, n);
    char *s = xshrink(p, keep);
    if (s != p) {
        fprintf(stderr, "swap_leak: the shrink moved the buffer (%p -> %p)\n", (void *)p, (void *)s);
        exit(2);
    }
    size_t kept = scan(p, keep & ~(size_t)15);
    if (kept < (keep & ~(size_t)15) - 16) {
        fprintf(stderr, "swap_leak: the shrink lost kept bytes (%zu of %zu)\n", kept, keep);
        exit(2);
    }
    /* under zeropool: the slack check must find zeros, not stale swapped bytes */
    free_and_scan(what, p, n);
}

int main(int argc, char **argv)
{
    if (argc != 2)
        goto usage;
    if (!strcmp(argv[1], "malloc"))
        mode = M_MALLOC;
    else if (!strcmp(argv[1], "naive"))
        mode = M_NAIVE;
#ifdef SWAP_CORE
    else if (!strcmp(argv[1], "core"))
        mode = M_CORE;
#endif
    else
        goto usage;
    setvbuf(stdout, NULL, _IOLBF, 0);
    pg = (size_t)sysconf(_SC_PAGESIZE);
    pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (pagemap < 0) {
        printf("SKIP: /proc/self/pagemap: %s\n", strerror(errno));
        return 77;
    }
#ifdef SWAP_CORE
    if (mode == M_CORE) {
        pool = zp_pool_new(NULL);
        if (!pool)
            return 2;
        zp_pool_set_misuse_handler(pool, on_misuse, NULL);
    }
#endif
    case_full("4 MiB, written in full", 4 * MiB, 1);
    case_sparse();
    case_shrink();
    case_full("16 MiB, written in full (x10)", 16 * MiB, 10);
#ifdef SWAP_CORE
    if (misuse_reports) {
        printf("FAIL: %u misuse report(s) of a correct program\n", misuse_reports);
        return 1;
    }
#endif
    printf("%s: %zu bytes of the secret came back in all\n", argv[1], total_leak);
    return total_leak ? 1 : 0;
usage:
    fprintf(stderr, "usage: swap_leak core|malloc|naive\n");
    return 2;
}
