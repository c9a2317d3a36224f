/* The contract of every function libzeropool.so exports, checked from a program run with
 * LD_PRELOAD: return values, errno, alignment, zeroing, and the glibc 2.36 behaviour of the
 * corner cases (realloc(p, 0), aligned_alloc with odd alignments, posix_memalign EINVAL).
 * Built with -fno-builtin so that the compiler keeps every call. */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_util.h"

#define LARGE ((size_t)1 << 20)
#define SMALL ((size_t)100)

/* Hides a size from the compiler, which rejects impossible constant sizes at compile time. */
static size_t opaque(size_t v)
{
    volatile size_t x = v;
    return x;
}

static bool aligned(const void *p, size_t a)
{
    return ((uintptr_t)p & (a - 1)) == 0;
}

static void *sym(const char *name)
{
    void *f = dlsym(RTLD_DEFAULT, name);
    cr_assert_not_null(f, "%s not found", name);
    return f;
}

Test(preload, is_active)
{
    Dl_info info;
    cr_assert(dladdr(sym("malloc"), &info));
    cr_assert_not_null(strstr(info.dli_fname, "libzeropool"), "malloc comes from %s", info.dli_fname);
    /* A pooled buffer's usable size is the room of its slot, at least the request. */
    size_t n = test_threshold() + 100000;
    void *p = malloc(n);
    cr_assert_geq(malloc_usable_size(p), n);
    free(p);
}

Test(preload, malloc_zero_is_unique)
{
    void *a = malloc(0), *b = malloc(0);
    cr_assert_not_null(a);
    cr_assert_not_null(b);
    cr_assert_neq(a, b);
    free(a);
    free(b);
}

Test(preload, malloc_huge_is_enomem)
{
    size_t sizes[] = {SIZE_MAX, SIZE_MAX - 4096, (size_t)PTRDIFF_MAX + 1, (size_t)1 << 62};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        errno = 0;
        cr_assert_null(malloc(sizes[i]));
        cr_assert_eq(errno, ENOMEM);
    }
}

Test(preload, malloc_alignment_16)
{
    for (size_t n = 1; n <= 300; n++) {
        void *p = malloc(n);
        cr_assert(aligned(p, 16), "malloc(%zu) = %p", n, p);
        memset(p, 0xab, n);
        free(p);
    }
    size_t big[] = {4096, 65536, 65537, LARGE, 3 * LARGE + 5, 80u << 20};
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
        void *p = malloc(big[i]);
        cr_assert(aligned(p, 16));
        memset(p, 0xab, big[i]);
        free(p);
    }
}

Test(preload, large_malloc_is_zero)
{
    for (int round = 0; round < 4; round++) {
        unsigned char *p = malloc(LARGE);
        cr_assert(test_all_zero(p, malloc_usable_size(p)));
        memset(p, 0x5a, malloc_usable_size(p));
        free(p);
    }
}

Test(preload, calloc_overflow_is_enomem)
{
    errno = 0;
    cr_assert_null(calloc(opaque(SIZE_MAX), 2));
    cr_assert_eq(errno, ENOMEM);
    errno = 0;
    cr_assert_null(calloc(opaque((size_t)1 << 33), (size_t)1 << 33));
    cr_assert_eq(errno, ENOMEM);
    void *p = calloc(0, 0);
    cr_assert_not_null(p);
    free(p);
}

Test(preload, calloc_is_zero_after_dirty_free)
{
    size_t sizes[] = {1, 24, 100, 4000, 20000, 65535, 65536, LARGE, 9 * LARGE};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        for (int k = 0; k < 3; k++) {
            unsigned char *d = malloc(sizes[i]);
            memset(d, 0xee, malloc_usable_size(d));
            free(d);
            unsigned char *p = calloc(1, sizes[i]);
            cr_assert_not_null(p);
            cr_assert(test_all_zero(p, sizes[i]), "calloc(%zu) not zero", sizes[i]);
            free(p);
        }
    }
}

Test(preload, realloc_null_is_malloc)
{
    void *p = realloc(NULL, 10);
    cr_assert_not_null(p);
    free(p);
    p = realloc(NULL, LARGE);
    cr_assert_not_null(p);
    cr_assert(test_all_zero(p, LARGE));
    free(p);
    p = realloc(NULL, 0);
    cr_assert_not_null(p); /* glibc: malloc(0) */
    free(p);
}

Test(preload, realloc_zero_frees_and_returns_null)
{
    size_t sizes[] = {10, LARGE};
    for (int i = 0; i < 2; i++) {
        void *p = malloc(sizes[i]);
        errno = 1234;
        cr_assert_null(realloc(p, 0)); /* glibc 2.36: frees p */
        cr_assert_eq(errno, 1234);
    }
}

Test(preload, realloc_failure_keeps_block)
{
    size_t sizes[] = {10, LARGE};
    for (int i = 0; i < 2; i++) {
        unsigned char *p = malloc(sizes[i]);
        memset(p, 0x42, sizes[i]);
        errno = 0;
        cr_assert_null(realloc(p, opaque(SIZE_MAX - 100)));
        cr_assert_eq(errno, ENOMEM);
        errno = 0;
        cr_assert_null(realloc(p, opaque((size_t)1 << 62)));
        cr_assert_eq(errno, ENOMEM);
        for (size_t k = 0; k < sizes[i]; k++)
            cr_assert_eq(p[k], 0x42);
        free(p);
    }
}

/* Fill, resize, check the kept prefix; sizes cross the threshold both ways. */
Test(preload, realloc_keeps_contents_across_threshold)
{
    size_t steps[] = {10, 5000, 70000, LARGE, 3 * LARGE, 100, 66000, 65536, 64, 20 * LARGE, 1};
    unsigned char *p = malloc(1);
    p[0] = 1;
    size_t have = 1;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        size_t n = steps[i];
        unsigned char *q = realloc(p, n);
        cr_assert_not_null(q);
        size_t keep = have < n ? have : n;
        for (size_t k = 0; k < keep; k++)
            cr_assert_eq(q[k], (unsigned char)(k * 7 + 1), "step %zu byte %zu", i, k);
        for (size_t k = 0; k < n; k++)
            q[k] = (unsigned char)(k * 7 + 1);
        p = q;
        have = n;
    }
    free(p);
}

static void shrink_then_grow(size_t big, size_t small)
{
    unsigned char *p = malloc(big);
    size_t u = malloc_usable_size(p);
    memset(p, 0xc3, u);
    p = realloc(p, small);
    cr_assert_not_null(p);
    for (size_t k = 0; k < small; k++)
        cr_assert_eq(p[k], 0xc3);
    p = realloc(p, big);
    cr_assert_not_null(p);
    for (size_t k = 0; k < small; k++)
        cr_assert_eq(p[k], 0xc3);
    for (size_t k = small; k < big; k++)
        cr_assert_eq(p[k], 0, "realloc %zu -> %zu -> %zu: byte %zu is %#x", big, small, big, k, p[k]);
    free(p);
}

Test(preload, realloc_shrink_zeroes_tail)
{
    shrink_then_grow(LARGE, LARGE - 4096);           /* in place in a pool buffer */
    shrink_then_grow(LARGE, LARGE / 2 + 16);
    shrink_then_grow(LARGE, 100000);                 /* moves to a smaller buffer */
    shrink_then_grow(LARGE, 100);                    /* pool -> jemalloc -> pool */
    shrink_then_grow(1000, 10);                      /* jemalloc, in place */
    shrink_then_grow(40000, 17000);                  /* jemalloc large extents */
    shrink_then_grow(3000, 2000);
}

Test(preload, realloc_grows_in_place_in_pool)
{
    /* LARGE - 8 KiB lives in a 1 MiB slot, starting less than a page into it: growing to
     * LARGE - 4 KiB stays where it is. */
    if (test_threshold() > LARGE - 8192)
        cr_skip_test("1 MiB is not pooled at this threshold");
    unsigned char *p = malloc(LARGE - 8192);
    memset(p, 0x99, LARGE - 8192);
    unsigned char *q = realloc(p, LARGE - 4096);
    cr_assert_eq(q, p);
    cr_assert(test_all_zero(q + LARGE - 8192, 4096));
    free(q);
}

Test(preload, reallocarray_overflow)
{
    void *p = malloc(10);
    errno = 0;
    cr_assert_null(reallocarray(p, opaque(SIZE_MAX / 2), 3));
    cr_assert_eq(errno, ENOMEM);
    void *q = reallocarray(p, 1000, 100);
    cr_assert_not_null(q);
    free(q);
}

Test(preload, posix_memalign_einval)
{
    size_t bad[] = {0, 1, 2, 4, 3, 24, 48, 100, (size_t)1 << 63 | 8};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        void *out = (void *)0x1234;
        errno = 777;
        cr_assert_eq(posix_memalign(&out, bad[i], 100), EINVAL, "align %zu", bad[i]);
        cr_assert_eq(out, (void *)0x1234);
        cr_assert_eq(errno, 777);
    }
}

Test(preload, posix_memalign_aligns)
{
    size_t aligns[] = {8, 16, 32, 64, 4096, 8192, 65536, (size_t)1 << 21};
    size_t sizes[] = {0, 1, 100, 5000, 65536, 100000, LARGE};
    for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++)
        for (size_t j = 0; j < sizeof sizes / sizeof sizes[0]; j++) {
            void *out = NULL;
            errno = 55;
            cr_assert_eq(posix_memalign(&out, aligns[i], sizes[j]), 0);
            cr_assert_eq(errno, 55);
            cr_assert_not_null(out);
            cr_assert(aligned(out, aligns[i]), "align %zu size %zu: %p", aligns[i], sizes[j], out);
            cr_assert_geq(malloc_usable_size(out), sizes[j]);
            memset(out, 0x77, sizes[j]);
            free(out);
        }
    void *out = (void *)0x1234;
    cr_assert_eq(posix_memalign(&out, 64, SIZE_MAX), ENOMEM);
    cr_assert_eq(out, (void *)0x1234);
}

/* glibc 2.36: aligned_alloc is memalign; alignments up to 16 are malloc's, others are rounded
 * up to a power of two, above SIZE_MAX / 2 + 1 they are EINVAL (measured without preload). */
Test(preload, aligned_alloc_as_glibc_236)
{
    void *(*fns[])(size_t, size_t) = {aligned_alloc, memalign};
    for (int f = 0; f < 2; f++) {
        size_t odd[][2] = {{0, 100}, {3, 100}, {24, 100}, {48, 100000}, {64, 0}, {100, LARGE}};
        for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
            errno = 0;
            void *p = fns[f](odd[i][0], odd[i][1]);
            cr_assert_not_null(p);
            cr_assert_eq(errno, 0);
            size_t a = odd[i][0] < 16 ? 16 : odd[i][0];
            size_t pow = 1;
            while (pow < a)
                pow <<= 1;
            cr_assert(aligned(p, pow), "align %zu -> %p", odd[i][0], p);
            free(p);
        }
        errno = 0;
        cr_assert_null(fns[f]((size_t)1 << 63, 100));
        cr_assert_eq(errno, ENOMEM);
        errno = 0;
        cr_assert_null(fns[f](((size_t)1 << 63) + 1, 100));
        cr_assert_eq(errno, EINVAL);
    }
}

Test(preload, valloc_pvalloc_page_aligned)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t sizes[] = {0, 1, 5000, 65536, LARGE};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *v = valloc(sizes[i]), *pv = pvalloc(sizes[i]);
        cr_assert_not_null(v);
        cr_assert_not_null(pv);
        cr_assert(aligned(v, page));
        cr_assert(aligned(pv, page));
        cr_assert_geq(malloc_usable_size(pv), (sizes[i] + page - 1) & ~(page - 1));
        free(v);
        free(pv);
    }
    errno = 0;
    cr_assert_null(valloc(opaque(SIZE_MAX)));
    cr_assert_eq(errno, ENOMEM);
    errno = 0;
    cr_assert_null(pvalloc(opaque(SIZE_MAX)));
    cr_assert_eq(errno, ENOMEM);
}

Test(preload, usable_size_both_owners)
{
    cr_assert_eq(malloc_usable_size(NULL), 0);
    for (size_t n = 1; n < 70000; n = n * 3 + 1) {
        unsigned char *p = malloc(n);
        size_t u = malloc_usable_size(p);
        cr_assert_geq(u, n);
        memset(p, 0x11, u); /* all of it is ours to write */
        free(p);
    }
    size_t large[] = {65536, 65537, 100001, LARGE, LARGE + 1, 3 * LARGE + 1};
    for (size_t i = 0; i < sizeof large / sizeof large[0]; i++) {
        if (large[i] < test_threshold())
            continue;
        void *p = malloc(large[i]);
        size_t u = malloc_usable_size(p); /* the pool's: the room of its slot */
        cr_assert_geq(u, large[i], "%zu -> %zu", large[i], u);
        memset(p, 0x22, malloc_usable_size(p));
        free(p);
    }
}

/* The usable size of a pooled block is room its slot has (as glibc's chunk and jemalloc's
 * class), up to the end of the page where the request and the 64-byte check window end, so
 * that redis's sds strings and CPython can grow into it: writing all of it is not an overflow,
 * and the free scrubs every byte of it. */
Test(preload, usable_size_is_the_room)
{
    if (test_threshold() > LARGE - 8192)
        cr_skip_test("1 MiB is not pooled at this threshold");
    size_t n = LARGE - 8192; /* a 1 MiB slot */
    for (int round = 0; round < 3; round++) {
        unsigned char *p = malloc(n);
        size_t u = malloc_usable_size(p);
        size_t off = (uintptr_t)p % 4096; /* where it starts in its slot */
        size_t end = (off + n + 64 + 4095) / 4096 * 4096; /* the page end past the window */
        cr_assert_eq(off + u, (end < LARGE ? end : LARGE) - 64,
                     "%zu bytes at %zu into a 1 MiB slot: usable size %zu", n, off, u);
        cr_assert_eq(malloc_usable_size(p), u);
        memset(p, 0xd7, u);
        free(p);
        unsigned char *q = malloc(n);
        size_t uq = malloc_usable_size(q);
        cr_assert(test_all_zero(q, uq), "a byte of the last block's usable size survived its free");
        free(q);
    }
}

Test(preload, free_preserves_errno)
{
    void *ptrs[] = {malloc(10), malloc(LARGE), NULL, malloc(20000), calloc(1, LARGE)};
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++) {
        errno = 4321;
        free(ptrs[i]);
        cr_assert_eq(errno, 4321);
    }
}

Test(preload, free_variants_and_libc_aliases)
{
    void (*free_sized)(void *, size_t) = sym("free_sized");
    void (*free_aligned_sized)(void *, size_t, size_t) = sym("free_aligned_sized");
    void (*cfree_fn)(void *) = sym("cfree");
    void *(*lmalloc)(size_t) = sym("__libc_malloc");
    void *(*lcalloc)(size_t, size_t) = sym("__libc_calloc");
    void *(*lrealloc)(void *, size_t) = sym("__libc_realloc");
    void *(*lmemalign)(size_t, size_t) = sym("__libc_memalign");
    void *(*lvalloc)(size_t) = sym("__libc_valloc");
    void *(*lpvalloc)(size_t) = sym("__libc_pvalloc");
    void (*lfree)(void *) = sym("__libc_free");
    Dl_info info;
    void *fns[] = {free_sized, free_aligned_sized, cfree_fn, lmalloc, lcalloc, lrealloc,
                   lmemalign, lvalloc, lpvalloc, lfree};
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        cr_assert(dladdr(fns[i], &info));
        cr_assert_not_null(strstr(info.dli_fname, "libzeropool"));
    }
    size_t sizes[] = {10, LARGE};
    for (int i = 0; i < 2; i++) {
        free_sized(malloc(sizes[i]), sizes[i]);
        free_aligned_sized(aligned_alloc(64, sizes[i]), 64, sizes[i]);
        cfree_fn(malloc(sizes[i]));
        void *p = lmalloc(sizes[i]);
        p = lrealloc(p, sizes[i] * 2);
        lfree(p);
        p = lcalloc(sizes[i], 1);
        cr_assert(test_all_zero(p, sizes[i]));
        lfree(p);
        p = lmemalign(256, sizes[i]);
        cr_assert(aligned(p, 256));
        lfree(p);
        lfree(lvalloc(sizes[i]));
        lfree(lpvalloc(sizes[i]));
    }
}

Test(preload, mallopt_mallinfo_trim_info)
{
    cr_assert_eq(mallopt(M_ARENA_MAX, 1), 1);
    cr_assert_eq(mallopt(M_MMAP_THRESHOLD, 1 << 20), 1);
    void *p[8];
    for (int i = 0; i < 8; i++)
        p[i] = malloc(LARGE);
    struct mallinfo2 mi = mallinfo2();
    cr_assert_geq(mi.hblkhd, 8 * LARGE);
    cr_assert_geq(mi.hblks, 8);
    cr_assert_gt(mi.uordblks, 0);
    for (int i = 0; i < 8; i++)
        free(p[i]);
    cr_assert_eq(malloc_trim(0), 1);
    struct mallinfo2 after = mallinfo2();
    cr_assert_lt(after.hblkhd, mi.hblkhd);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_eq(malloc_info(0, f), 0);
    fclose(f);
    cr_assert_not_null(strstr(buf, "<malloc version=\"zeropool"));
    free(buf);
    f = fopen("/dev/null", "w");
    errno = 0;
    cr_assert_eq(malloc_info(1, f), -1);
    cr_assert_eq(errno, EINVAL);
    fclose(f);
}
