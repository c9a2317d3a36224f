/* Producers and consumers of small blocks, the pattern of Lever and Boreham's malloc-test
 * ("malloc() performance in a multithreaded Linux environment", USENIX 2000) as mimalloc-bench
 * runs it (`xmalloc-test -w W -t 5 -s 64`): W producer threads malloc 64-byte blocks in batches
 * of 4096, write their first bytes and push each batch (itself a malloc'd array of 32 KiB) on
 * one shared stack of at most 100 batches; W consumer threads pop batches and free every block
 * and the batch. Every block is freed by a thread that did not allocate it, in bulk, while up
 * to 100 x 4096 blocks wait in between: what an allocator's thread caches and per-thread heaps
 * do with memory freed by other threads shows in the peak RSS. One operation: one block
 * allocated and freed; the time per operation is wall time over all operations (the inverse of
 * the throughput); the note adds the operations per second, the most batches that waited at
 * once (what the peak RSS follows: consumers slower than producers fill the stack) and the
 * process's peak RSS.
 *
 * usage: xmalloc [common options] [--threads W,...]   (W producers and W consumers; default
 *        W = the number of CPUs) */
#include "harness.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SIZE 64
#define PER_BATCH 4096
#define MAX_BATCHES 100 /* on the stack at once; producers wait beyond */
#define MAX_WORKERS 8

typedef struct batch {
    struct batch *next;
    void *block[PER_BATCH];
} batch_t;

typedef struct xm {
    pthread_mutex_t lock;
    pthread_cond_t nonempty, nonfull;
    batch_t *top; /* the shared stack */
    unsigned count, most; /* batches on the stack: now, the most ever */
    _Atomic int stop;
    struct {
        _Atomic uint64_t freed;
    } __attribute__((aligned(64))) worker[MAX_WORKERS];
} xm_t;

typedef struct xm_arg {
    xm_t *x;
    unsigned idx;
} xm_arg_t;

static void *xalloc(size_t n)
{
    void *p = malloc(n);
    if (p == NULL) {
        fprintf(stderr, "xmalloc: malloc(%zu) failed\n", n);
        exit(1);
    }
    return p;
}

static void push(xm_t *x, batch_t *b)
{
    pthread_mutex_lock(&x->lock);
    while (x->count >= MAX_BATCHES && !atomic_load_explicit(&x->stop, memory_order_relaxed))
        pthread_cond_wait(&x->nonfull, &x->lock);
    b->next = x->top;
    x->top = b;
    if (++x->count > x->most)
        x->most = x->count;
    pthread_cond_signal(&x->nonempty);
    pthread_mutex_unlock(&x->lock);
}

static batch_t *pop(xm_t *x)
{
    pthread_mutex_lock(&x->lock);
    while (x->top == NULL && !atomic_load_explicit(&x->stop, memory_order_relaxed))
        pthread_cond_wait(&x->nonempty, &x->lock);
    batch_t *b = x->top;
    if (b) {
        x->top = b->next;
        x->count--;
        pthread_cond_signal(&x->nonfull);
    }
    pthread_mutex_unlock(&x->lock);
    return b;
}

static void free_batch(batch_t *b)
{
    for (unsigned i = 0; i < PER_BATCH; i++)
        free(b->block[i]);
    free(b);
}

static void *producer(void *arg)
{
    xm_t *x = ((xm_arg_t *)arg)->x;
    while (!atomic_load_explicit(&x->stop, memory_order_relaxed)) {
        batch_t *b = xalloc(sizeof *b);
        for (unsigned i = 0; i < PER_BATCH; i++) {
            b->block[i] = xalloc(SIZE);
            memset(b->block[i], (int)(i & 0xff), SIZE);
        }
        push(x, b);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    xm_t *x = ((xm_arg_t *)arg)->x;
    unsigned idx = ((xm_arg_t *)arg)->idx;
    while (!atomic_load_explicit(&x->stop, memory_order_relaxed)) {
        batch_t *b = pop(x);
        if (b) {
            free_batch(b);
            atomic_fetch_add_explicit(&x->worker[idx].freed, PER_BATCH, memory_order_relaxed);
        }
    }
    return NULL;
}

static unsigned workers;

static uint64_t run(void *ctx, double ms)
{
    xm_t *x = ctx;
    pthread_t tid[2 * MAX_WORKERS];
    xm_arg_t arg[MAX_WORKERS];
    atomic_store(&x->stop, 0);
    for (unsigned i = 0; i < workers; i++) {
        arg[i] = (xm_arg_t){x, i};
        atomic_store(&x->worker[i].freed, 0);
        if (pthread_create(&tid[2 * i], NULL, consumer, &arg[i]) ||
            pthread_create(&tid[2 * i + 1], NULL, producer, &arg[i])) {
            fprintf(stderr, "xmalloc: pthread_create failed\n");
            exit(1);
        }
    }
    struct timespec ts = {(time_t)(ms / 1000), (long)((ms - 1000.0 * (time_t)(ms / 1000)) * 1e6)};
    nanosleep(&ts, NULL);
    pthread_mutex_lock(&x->lock);
    atomic_store(&x->stop, 1);
    pthread_cond_broadcast(&x->nonempty);
    pthread_cond_broadcast(&x->nonfull);
    pthread_mutex_unlock(&x->lock);
    for (unsigned i = 0; i < 2 * workers; i++)
        pthread_join(tid[i], NULL);
    uint64_t ops = 0;
    for (unsigned i = 0; i < workers; i++)
        ops += atomic_load(&x->worker[i].freed);
    /* What is left on the stack: freed by the main thread, not counted. */
    while (x->top) {
        batch_t *b = x->top;
        x->top = b->next;
        free_batch(b);
    }
    x->count = 0;
    return ops;
}

int main(int argc, char **argv)
{
    argc = bh_parse(argc, argv);
    unsigned thr[4];
    unsigned nt = bh_parse_threads(argc, argv, "xmalloc", NULL, thr, 4);
    if (nt == 0)
        return 2;
    static xm_t x = {.lock = PTHREAD_MUTEX_INITIALIZER,
                     .nonempty = PTHREAD_COND_INITIALIZER,
                     .nonfull = PTHREAD_COND_INITIALIZER};
    for (unsigned t = 0; t < nt; t++) {
        workers = thr[t] < 1 ? 1 : thr[t] > MAX_WORKERS ? MAX_WORKERS : thr[t];
        char param[64], note[128];
        snprintf(param, sizeof param, "size=%d batch=%d workers=%u", SIZE, PER_BATCH, workers);
        bh_result_t r = bh_run_timed("xmalloc", run, &x);
        snprintf(note, sizeof note, "ops_per_s=%.0f most_batches=%u peak_rss_kib=%ld",
                 r.median_ns > 0 ? 1e9 / r.median_ns : 0.0, x.most, bh_peak_rss_kib());
        bh_emit("xmalloc", param, &r, note);
    }
    return 0;
}
