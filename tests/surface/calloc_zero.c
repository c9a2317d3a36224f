/* calloc hands out zeros over the whole usable size: churn blocks of every small size class,
 * filled with 0xff, through malloc, realloc and free, then calloc each size and check every
 * usable byte. Then threads that used the allocator exit (jemalloc frees each thread's cache
 * inside itself, where no scrub runs: a GLib program read stale pointers from a calloc'ed
 * block) and calloc is checked again. exit 0: all zero. */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIVE 512
#define THREADS 24

/* A thread that fills its cache with blocks of many sizes, then exits. */
static void *churn_and_exit(void *arg)
{
    (void)arg;
    void *p[64];
    for (size_t n = 16; n <= 65536; n += n / 4) {
        for (int i = 0; i < 64; i++) {
            p[i] = malloc(n);
            if (p[i] != NULL)
                memset(p[i], 0xee, n < 64 ? n : 64);
        }
        for (int i = 0; i < 64; i++)
            free(p[i]);
    }
    return NULL;
}

/* calloc of every size up to 64 KiB in steps, several times over; 0 when all zero. */
static int calloc_all_zero(const char *phase)
{
    static unsigned char *held[4096];
    int k = 0, bad = 0;
    for (size_t n = 1; n <= 65536 && k < 4096; n += 1 + n / 16) {
        for (int r = 0; r < 8 && k < 4096; r++) {
            unsigned char *c = calloc(1, n);
            if (c == NULL)
                return 2;
            size_t u = malloc_usable_size(c);
            for (size_t j = 0; j < u && !bad; j++)
                if (c[j] != 0) {
                    printf("%s: calloc(%zu): byte %zu of %zu is %#x\n", phase, n, j, u, c[j]);
                    bad = 1;
                }
            held[k++] = c;
        }
    }
    for (int i = 0; i < k; i++)
        free(held[i]);
    return bad;
}

int main(void)
{
    static unsigned char *held[LIVE];
    unsigned long seed = 12345;
    for (int round = 0; round < 60; round++) {
        for (int i = 0; i < LIVE; i++) {
            seed = seed * 6364136223846793005UL + 1442695040888963407UL;
            size_t n = 1 + (seed >> 33) % 60000;
            free(held[i]);
            held[i] = malloc(n);
            if (held[i] == NULL)
                return 2;
            memset(held[i], 0xff, malloc_usable_size(held[i]));
            if (i % 7 == 0) {
                unsigned char *q = realloc(held[i], n / 2 + 1);
                if (q == NULL)
                    return 2;
                held[i] = q;
                memset(q, 0xff, malloc_usable_size(q));
            }
        }
        for (int i = 0; i < LIVE; i += 3) {
            free(held[i]);
            seed = seed * 6364136223846793005UL + 1442695040888963407UL;
            size_t n = 1 + (seed >> 33) % 60000;
            held[i] = calloc(1, n);
            if (held[i] == NULL)
                return 2;
            size_t u = malloc_usable_size(held[i]);
            for (size_t j = 0; j < u; j++)
                if (held[i][j] != 0) {
                    printf("calloc(%zu): byte %zu of %zu is %#x\n", n, j, u, held[i][j]);
                    return 1;
                }
            memset(held[i], 0xff, u);
        }
    }
    for (int round = 0; round < 20; round++) {
        pthread_t t[THREADS];
        for (int i = 0; i < THREADS; i++)
            if (pthread_create(&t[i], NULL, churn_and_exit, NULL) != 0)
                return 2;
        for (int i = 0; i < THREADS; i++)
            pthread_join(t[i], NULL);
        int r = calloc_all_zero("after thread exits");
        if (r)
            return r;
    }
    printf("calloc: all zero\n");
    return 0;
}
