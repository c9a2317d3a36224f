/* No data crosses a free: a secret written into a block (up to malloc_usable_size) and freed
 * is never visible to a later allocation, large or small, in the same thread or another,
 * after realloc shrinks and grows too. Run under LD_PRELOAD=libzeropool.so. */
#include <criterion/criterion.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SECRET 0x5ec2e75ec2e75ec2ull

static const size_t sizes[] = {16, 24, 100, 512, 4000, 4096, 14000, 20000, 60000, 65536,
                               70000, 200000, 1u << 20, (3u << 20) + 123, 20u << 20};
#define NSIZES (sizeof sizes / sizeof sizes[0])
#define ROUNDS 8

static void plant(void *p, size_t n)
{
    uint64_t s = SECRET;
    unsigned char *c = p;
    for (size_t i = 0; i + 8 <= n; i += 8)
        memcpy(c + i, &s, 8);
    for (size_t i = n & ~(size_t)7; i < n; i++)
        c[i] = 0xc2;
}

/* Offset of a secret word or byte run found in p[0..n), or -1. */
static long find_secret(const void *p, size_t n)
{
    const unsigned char *c = p;
    uint64_t s = SECRET;
    for (size_t i = 0; i + 8 <= n; i++)
        if (memcmp(c + i, &s, 8) == 0)
            return (long)i;
    return -1;
}

static void plant_and_free(size_t n)
{
    void *p = malloc(n);
    cr_assert_not_null(p);
    plant(p, malloc_usable_size(p)); /* everything the program was told it may write */
    free(p);
}

static void check_fresh(size_t n, const char *what)
{
    void *p = malloc(n);
    cr_assert_not_null(p);
    long at = find_secret(p, malloc_usable_size(p));
    cr_assert_eq(at, -1, "%s: malloc(%zu) shows the secret at %ld", what, n, at);
    free(p);
}

Test(leak, same_thread_every_size)
{
    for (size_t i = 0; i < NSIZES; i++)
        for (int r = 0; r < ROUNDS; r++) {
            plant_and_free(sizes[i]);
            check_fresh(sizes[i], "same thread");
        }
}

Test(leak, many_live_then_freed)
{
    void *p[64];
    for (size_t i = 0; i < NSIZES; i++) {
        for (int k = 0; k < 64; k++) {
            p[k] = malloc(sizes[i] > (4u << 20) ? 4096 : sizes[i]);
            plant(p[k], malloc_usable_size(p[k]));
        }
        for (int k = 0; k < 64; k++)
            free(p[k]);
        for (int k = 0; k < 64; k++) {
            p[k] = malloc(sizes[i] > (4u << 20) ? 4096 : sizes[i]);
            cr_assert_eq(find_secret(p[k], malloc_usable_size(p[k])), -1);
        }
        for (int k = 0; k < 64; k++)
            free(p[k]);
    }
}

static void *planter(void *arg)
{
    (void)arg;
    for (int r = 0; r < ROUNDS; r++)
        for (size_t i = 0; i < NSIZES; i++)
            plant_and_free(sizes[i]);
    return NULL;
}

Test(leak, across_threads)
{
    for (int round = 0; round < 4; round++) {
        pthread_t t;
        pthread_create(&t, NULL, planter, NULL);
        pthread_join(t, NULL);
        for (size_t i = 0; i < NSIZES; i++)
            check_fresh(sizes[i], "other thread");
    }
}

/* A block freed by one thread while the other allocates: the pool's shards and jemalloc's
 * arenas both get blocks handed between threads. */
static void *checker(void *arg)
{
    (void)arg;
    for (int r = 0; r < ROUNDS * 4; r++)
        for (size_t i = 0; i < NSIZES; i++)
            check_fresh(sizes[i], "concurrent");
    return NULL;
}

Test(leak, concurrent_threads)
{
    pthread_t a, b;
    pthread_create(&a, NULL, planter, NULL);
    pthread_create(&b, NULL, checker, NULL);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
}

Test(leak, calloc_after_secret)
{
    for (size_t i = 0; i < NSIZES; i++) {
        plant_and_free(sizes[i]);
        unsigned char *p = calloc(1, sizes[i]);
        for (size_t k = 0; k < sizes[i]; k++)
            cr_assert_eq(p[k], 0, "calloc(%zu)[%zu]", sizes[i], k);
        cr_assert_eq(find_secret(p, malloc_usable_size(p)), -1);
        free(p);
    }
}

/* Shrink a block full of secret, grow it back: the regrown part must not show the secret,
 * whether the block stayed in place or moved (and the old place was freed). */
Test(leak, realloc_shrink_then_grow)
{
    for (size_t i = 0; i < NSIZES; i++)
        for (size_t j = 0; j < NSIZES; j++) {
            if (sizes[j] >= sizes[i])
                continue;
            unsigned char *p = malloc(sizes[i]);
            size_t u = malloc_usable_size(p);
            plant(p, u);
            p = realloc(p, sizes[j]);
            cr_assert_not_null(p);
            cr_assert_eq(find_secret(p + sizes[j], malloc_usable_size(p) - sizes[j]), -1,
                         "%zu -> %zu: tail keeps the secret", sizes[i], sizes[j]);
            memset(p, 0, sizes[j]); /* only the kept part is the program's now */
            p = realloc(p, u);
            cr_assert_not_null(p);
            long at = find_secret(p, malloc_usable_size(p));
            cr_assert_eq(at, -1, "%zu -> %zu -> %zu: secret at %ld", sizes[i], sizes[j], u, at);
            free(p);
            check_fresh(sizes[i], "after realloc");
            check_fresh(sizes[j], "after realloc");
        }
}

/* Memory given back by realloc moves (old block freed inside the call) is scrubbed too. */
Test(leak, realloc_move_scrubs_old)
{
    for (size_t i = 0; i + 1 < NSIZES; i++) {
        void *p = malloc(sizes[i]);
        plant(p, malloc_usable_size(p));
        void *q = realloc(p, sizes[i + 1] * 2);
        cr_assert_not_null(q);
        memset(q, 0, sizes[i + 1] * 2);
        for (int r = 0; r < 4; r++)
            check_fresh(sizes[i], "after realloc move");
        free(q);
    }
}

Test(leak, aligned_blocks)
{
    size_t aligns[] = {32, 256, 4096, 65536};
    for (size_t a = 0; a < 4; a++)
        for (size_t i = 0; i < NSIZES; i++) {
            void *p = aligned_alloc(aligns[a], sizes[i]);
            plant(p, malloc_usable_size(p));
            free(p);
            p = aligned_alloc(aligns[a], sizes[i]);
            cr_assert_eq(find_secret(p, malloc_usable_size(p)), -1);
            free(p);
        }
}
