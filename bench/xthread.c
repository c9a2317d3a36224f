/* Cross-thread frees, written like an unmodified program: threads in pairs, the producer
 * mallocs blocks of random small sizes (16..512 bytes), writes them and hands them over a
 * ring to its consumer, which reads the first word and frees them. Every block is freed by a
 * thread other than the one that allocated it: the case where an allocator's per-thread
 * caches fill with foreign blocks. One operation: one block allocated and freed.
 *
 * usage: xthread [common options] [--threads 2,4] */
#include "harness.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RING 1024 /* power of two */
#define MAX_PAIRS 4

typedef struct ring {
    _Atomic uint64_t head __attribute__((aligned(64))); /* written by the producer */
    _Atomic uint64_t tail __attribute__((aligned(64))); /* written by the consumer */
    void *slot[RING] __attribute__((aligned(64)));
} ring_t;

typedef struct xt {
    ring_t ring[MAX_PAIRS];
    uint64_t rng[MAX_PAIRS];
    _Atomic uint64_t sink;
} xt_t;

static void produce(xt_t *x, ring_t *r, unsigned pair, uint64_t iters)
{
    uint64_t s = x->rng[pair], head = atomic_load_explicit(&r->head, memory_order_relaxed);
    for (uint64_t i = 0; i < iters; i++) {
        size_t n = 16 + (size_t)(bh_rand(&s) % 497);
        char *p = malloc(n);
        if (p == NULL) {
            fprintf(stderr, "xthread: malloc(%zu) failed\n", n);
            exit(1);
        }
        memset(p, (int)(i & 0xff), n);
        while (head - atomic_load_explicit(&r->tail, memory_order_acquire) >= RING)
            sched_yield(); /* full: the consumer is behind (threads may outnumber cores) */
        r->slot[head % RING] = p;
        atomic_store_explicit(&r->head, ++head, memory_order_release);
    }
    x->rng[pair] = s;
}

static void consume(xt_t *x, ring_t *r, uint64_t iters)
{
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed), acc = 0;
    for (uint64_t i = 0; i < iters; i++) {
        while (atomic_load_explicit(&r->head, memory_order_acquire) == tail)
            sched_yield(); /* empty */
        char *p = r->slot[tail % RING];
        acc += (unsigned char)p[0];
        free(p);
        atomic_store_explicit(&r->tail, ++tail, memory_order_release);
    }
    atomic_fetch_add_explicit(&x->sink, acc, memory_order_relaxed);
}

static void body(void *ctx, unsigned tid, uint64_t iters)
{
    xt_t *x = ctx;
    ring_t *r = &x->ring[tid / 2];
    if (tid % 2 == 0)
        produce(x, r, tid / 2, iters);
    else
        consume(x, r, iters);
}

int main(int argc, char **argv)
{
    argc = bh_parse(argc, argv);
    unsigned thr[4];
    unsigned nt = bh_parse_threads(argc, argv, "xthread", "2,4", thr, 4);
    if (nt == 0)
        return 2;
    static xt_t x;
    for (unsigned t = 0; t < nt; t++) {
        unsigned n = thr[t] < 2 ? 2 : thr[t] > 2 * MAX_PAIRS ? 2 * MAX_PAIRS : thr[t] & ~1u;
        for (unsigned k = 0; k < MAX_PAIRS; k++)
            x.rng[k] = 0x9E3779B97F4A7C15ull * (k + 1);
        char param[64];
        snprintf(param, sizeof param, "size=16-512 threads=%u", n);
        bh_case_t bc = {.bench = "xthread", .param = param, .threads = n, .body = body,
                        .ctx = &x};
        bh_measure(&bc, NULL);
    }
    return 0;
}
