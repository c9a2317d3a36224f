/* malloc of a small block hands out zeros: every free small block is zero, the program's
 * (scrubbed by free) and jemalloc's own (a thread's cache, freed inside jemalloc at the
 * thread's exit). 32 threads fill blocks of many sizes with 0xee, free them and exit; then
 * 20,000 mallocs of random sizes (16 bytes to 32 KiB, log-uniform) are checked over their
 * usable size. exit 0 and "non-zero 0": only zeros. */
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 32
#define CHECKS 20000

/* Knuth's MMIX LCG, high bits. */
static uint64_t rnd_state = 1;
static uint64_t rnd(void)
{
    rnd_state = rnd_state * 6364136223846793005u + 1442695040888963407u;
    return rnd_state >> 33;
}

/* 16 .. 32768 bytes, each power of two as likely as the next. */
static size_t rnd_size(void)
{
    size_t lg = 4 + rnd() % 11;
    size_t n = ((size_t)1 << lg) + rnd() % ((size_t)1 << lg);
    return n > 32768 ? 32768 : n;
}

static void *churn_and_exit(void *arg)
{
    (void)arg;
    void *p[96];
    for (size_t n = 16; n <= 61440; n += n / 8 + 16) {
        for (int i = 0; i < 96; i++) {
            p[i] = malloc(n);
            if (p[i] != NULL)
                memset(p[i], 0xee, n);
        }
        for (int i = 0; i < 96; i++)
            free(p[i]);
    }
    return NULL;
}

int main(void)
{
    for (int round = 0; round < THREADS / 8; round++) {
        pthread_t t[8];
        for (int i = 0; i < 8; i++)
            if (pthread_create(&t[i], NULL, churn_and_exit, NULL) != 0)
                return 2;
        for (int i = 0; i < 8; i++)
            pthread_join(t[i], NULL);
    }
    static void *held[CHECKS];
    size_t bad = 0, bytes = 0;
    for (int i = 0; i < CHECKS; i++) {
        held[i] = malloc(rnd_size());
        if (held[i] == NULL)
            return 2;
        const unsigned char *c = held[i];
        size_t n = malloc_usable_size(held[i]);
        bytes += n;
        for (size_t j = 0; j < n; j++)
            if (c[j] != 0) {
                if (bad < 5)
                    fprintf(stderr, "small_zero: malloc #%d: byte %zu of %zu is 0x%02x\n", i, j, n, c[j]);
                bad++;
                break;
            }
    }
    for (int i = 0; i < CHECKS; i++)
        free(held[i]);
    printf("%d mallocs, %zu bytes checked, non-zero %zu\n", CHECKS, bytes, bad);
    return bad != 0;
}
