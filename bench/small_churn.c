/* Small-block churn, written like an unmodified program: a working set of 4096 live blocks;
 * one operation frees a random block and mallocs a new one of a random size in 16..4096
 * (log-uniform: as many 16-31 byte blocks as 2048-4095 byte ones) and writes all of it.
 * Under zeropool these go to jemalloc: the cost shown is the routing plus, with
 * ZEROPOOL_SCRUB_SMALL=1, the scrub of each freed block. ZP_BENCH_SCRUB=1 makes the program
 * itself memset each block's usable size before freeing it: run under plain jemalloc, that is
 * the reference the scrubbing small path is measured against (jemalloc plus a memset).
 *
 * usage: small_churn [common options] [--threads 1,2] */
#include "harness.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIVE 4096
#define MAX_THREADS 8

typedef struct sc {
    void *slot[MAX_THREADS][LIVE];
    uint64_t rng[MAX_THREADS];
} sc_t;

static int scrub_before_free; /* ZP_BENCH_SCRUB=1 */

static inline size_t rand_size(uint64_t *s)
{
    uint64_t r = bh_rand(s);
    size_t lo = (size_t)16 << (r % 8); /* 16 .. 2048 */
    return lo + (size_t)((r >> 8) % lo);
}

static void body(void *ctx, unsigned tid, uint64_t iters)
{
    sc_t *c = ctx;
    void **slot = c->slot[tid];
    uint64_t s = c->rng[tid];
    for (uint64_t i = 0; i < iters; i++) {
        unsigned k = (unsigned)(bh_rand(&s) % LIVE);
        if (scrub_before_free)
            memset(slot[k], 0, malloc_usable_size(slot[k]));
        free(slot[k]);
        size_t n = rand_size(&s);
        char *p = malloc(n);
        if (!p) {
            fprintf(stderr, "small_churn: malloc(%zu) failed\n", n);
            exit(1);
        }
        memset(p, 0x5A, n);
        slot[k] = p;
    }
    c->rng[tid] = s;
}

int main(int argc, char **argv)
{
    argc = bh_parse(argc, argv);
    const char *sc = getenv("ZP_BENCH_SCRUB");
    scrub_before_free = sc != NULL && strcmp(sc, "1") == 0;
    unsigned thr[4];
    unsigned nt = bh_parse_threads(argc, argv, "small_churn", "1", thr, 4);
    if (nt == 0)
        return 2;
    static sc_t c;
    for (unsigned t = 0; t < nt; t++) {
        unsigned n = thr[t] < 1 ? 1 : thr[t] > MAX_THREADS ? MAX_THREADS : thr[t];
        for (unsigned k = 0; k < n; k++) {
            c.rng[k] = 0x9E3779B97F4A7C15ull * (k + 1);
            for (unsigned j = 0; j < LIVE; j++) {
                size_t sz = rand_size(&c.rng[k]);
                c.slot[k][j] = malloc(sz);
                memset(c.slot[k][j], 1, sz);
            }
        }
        char param[64];
        snprintf(param, sizeof param, "size=16-4096 threads=%u", n);
        bh_case_t bc = {.bench = "small_churn", .param = param, .threads = n, .body = body,
                        .ctx = &c};
        bh_measure(&bc, NULL);
        for (unsigned k = 0; k < n; k++)
            for (unsigned j = 0; j < LIVE; j++)
                free(c.slot[k][j]);
    }
    return 0;
}
