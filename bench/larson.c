/* A server simulation after Larson and Krishnan ("Memory allocation for long-running server
 * applications", ISMM 1998), the pattern of mimalloc-bench's `larson 5 8 1000 5000 100 4141 T`:
 * T lineages of threads, each lineage owning an array of 5000 live blocks of random size in
 * 8..1000 bytes. A thread repeatedly picks a random slot, frees its block and mallocs one of a
 * new random size, writing its first bytes (as the original does: the rest of the block stays
 * untouched, so an allocator that zeroes whole blocks on free pays for lines the program never
 * wrote). After 100 x 5000 such replacements a thread starts a fresh thread that takes over its
 * array and exits: blocks are freed by threads that did not allocate them (the first ones by
 * the main thread, which filled the arrays), and threads keep coming and going, each with new
 * thread caches. One operation: one block freed and one allocated. The time per operation is
 * wall time over all threads' operations (the inverse of the throughput); the note adds the
 * operations per second and the process's peak RSS.
 *
 * usage: larson [common options] [--threads T,...]   (default: the number of CPUs) */
#include "harness.h"

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MIN_SIZE 8
#define MAX_SIZE 1000
#define BLOCKS 5000 /* per lineage */
#ifndef ROUNDS
#define ROUNDS 100 /* a thread's life: ROUNDS * BLOCKS replacements */
#endif
#define MAX_THREADS 16

typedef struct lineage {
    char *slot[BLOCKS];
    uint64_t rng;
    struct larson *l;
} lineage_t;

typedef struct larson {
    lineage_t line[MAX_THREADS];
    unsigned threads;
    _Atomic int stop;
    _Atomic uint64_t ops;
    _Atomic uint64_t generations; /* threads started, all runs */
    sem_t done;                   /* one post per lineage at the end of a run */
} larson_t;

static size_t rand_size(uint64_t *s)
{
    return MIN_SIZE + (size_t)(bh_rand(s) % (MAX_SIZE - MIN_SIZE + 1));
}

static char *new_block(uint64_t *s)
{
    size_t n = rand_size(s);
    volatile char *p = malloc(n);
    if (p == NULL) {
        fprintf(stderr, "larson: malloc(%zu) failed\n", n);
        exit(1);
    }
    p[0] = 'a';
    p[1] = 'b';
    return (char *)p;
}

static void *lineage_main(void *arg)
{
    lineage_t *ln = arg;
    larson_t *l = ln->l;
    uint64_t s = ln->rng, i = 0;
    for (; i < (uint64_t)ROUNDS * BLOCKS; i++) {
        if (atomic_load_explicit(&l->stop, memory_order_relaxed))
            break;
        unsigned k = (unsigned)(bh_rand(&s) % BLOCKS);
        free(ln->slot[k]);
        ln->slot[k] = new_block(&s);
    }
    ln->rng = s;
    atomic_fetch_add_explicit(&l->ops, i, memory_order_relaxed);
    if (atomic_load_explicit(&l->stop, memory_order_acquire)) {
        sem_post(&l->done);
        return NULL;
    }
    /* Hand the array to a fresh thread and exit. */
    pthread_attr_t a;
    pthread_t t;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    atomic_fetch_add_explicit(&l->generations, 1, memory_order_relaxed);
    if (pthread_create(&t, &a, lineage_main, ln)) {
        fprintf(stderr, "larson: pthread_create failed\n");
        exit(1);
    }
    pthread_attr_destroy(&a);
    return NULL;
}

static uint64_t run(void *ctx, double ms)
{
    larson_t *l = ctx;
    atomic_store(&l->stop, 0);
    atomic_store(&l->ops, 0);
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    for (unsigned k = 0; k < l->threads; k++) {
        pthread_t t;
        atomic_fetch_add_explicit(&l->generations, 1, memory_order_relaxed);
        if (pthread_create(&t, &a, lineage_main, &l->line[k])) {
            fprintf(stderr, "larson: pthread_create failed\n");
            exit(1);
        }
    }
    pthread_attr_destroy(&a);
    struct timespec ts = {(time_t)(ms / 1000), (long)((ms - 1000.0 * (time_t)(ms / 1000)) * 1e6)};
    nanosleep(&ts, NULL);
    atomic_store_explicit(&l->stop, 1, memory_order_release);
    for (unsigned k = 0; k < l->threads; k++)
        while (sem_wait(&l->done) != 0)
            ;
    return atomic_load(&l->ops);
}

int main(int argc, char **argv)
{
    argc = bh_parse(argc, argv);
    unsigned thr[4];
    unsigned nt = bh_parse_threads(argc, argv, "larson", NULL, thr, 4);
    if (nt == 0)
        return 2;
    static larson_t l;
    sem_init(&l.done, 0, 0);
    for (unsigned t = 0; t < nt; t++) {
        l.threads = thr[t] < 1 ? 1 : thr[t] > MAX_THREADS ? MAX_THREADS : thr[t];
        /* The main thread fills every array, as the original's warm-up does. */
        for (unsigned k = 0; k < l.threads; k++) {
            l.line[k].l = &l;
            l.line[k].rng = 4141 + 0x9E3779B97F4A7C15ull * (k + 1);
            for (unsigned j = 0; j < BLOCKS; j++)
                l.line[k].slot[j] = new_block(&l.line[k].rng);
        }
        uint64_t gen0 = atomic_load(&l.generations);
        char param[96], note[160];
        snprintf(param, sizeof param, "size=%d-%d blocks=%d threads=%u", MIN_SIZE, MAX_SIZE,
                 BLOCKS, l.threads);
        bh_result_t r = bh_run_timed("larson", run, &l);
        snprintf(note, sizeof note, "ops_per_s=%.0f threads_started=%llu peak_rss_kib=%ld",
                 r.median_ns > 0 ? 1e9 / r.median_ns : 0.0,
                 (unsigned long long)(atomic_load(&l.generations) - gen0), bh_peak_rss_kib());
        bh_emit("larson", param, &r, note);
        for (unsigned k = 0; k < l.threads; k++)
            for (unsigned j = 0; j < BLOCKS; j++)
                free(l.line[k].slot[j]);
    }
    return 0;
}
