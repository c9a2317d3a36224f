/* Concurrency stress for the core, plain C so it runs under ThreadSanitizer (Criterion's
 * arena cannot). Threads get, stamp, hand over through a locked queue, verify and put buffers
 * of mixed sizes (pooled and direct); one thread reads statistics and trims meanwhile; worker
 * threads come and go so caches return to the pool at exit. Exit status 0 = every check held.
 * usage: stress_core [seconds [budget MiB]] */
#include "zeropool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WORKERS 4
#define QUEUE 64

static zp_pool_t *pool;
static atomic_int failed;
static atomic_bool stop;

static struct {
    pthread_mutex_t lock;
    unsigned char *buf[QUEUE];
    size_t size[QUEUE];
    unsigned n;
} q = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void fail(const char *what)
{
    fprintf(stderr, "stress_core: %s\n", what);
    atomic_store(&failed, 1);
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static size_t pick_size(uint64_t *s)
{
    switch (rnd(s) % 8) {
    case 0: return (size_t)(80u << 20); /* direct */
    case 1: return (size_t)(2u << 20) + rnd(s) % (1u << 20);
    default: return (size_t)(64u << 10) + rnd(s) % (512u << 10);
    }
}

/* Stamp: the first and last 8 bytes and one in the middle carry the owner's tag. */
static void stamp(unsigned char *b, size_t n, uint64_t tag)
{
    memcpy(b, &tag, 8);
    memcpy(b + n / 2, &tag, 8);
    memcpy(b + n - 8, &tag, 8);
}

static int stamped(const unsigned char *b, size_t n, uint64_t tag)
{
    uint64_t x, y, z;
    memcpy(&x, b, 8);
    memcpy(&y, b + n / 2, 8);
    memcpy(&z, b + n - 8, 8);
    return x == tag && y == tag && z == tag;
}

static void check_zero(const unsigned char *b, size_t n)
{
    for (size_t i = 0; i < n; i += 4096)
        if (b[i] || b[n - 1]) {
            fail("a new buffer is not zero");
            return;
        }
}

static void *worker(void *arg)
{
    uint64_t seed = (uint64_t)(uintptr_t)arg * 0x9E3779B97F4A7C15ull + 1;
    for (int i = 0; i < 400 && !atomic_load(&stop); i++) {
        size_t n = pick_size(&seed);
        unsigned char *b = zp_get(pool, n);
        if (!b) {
            fail("zp_get returned NULL");
            break;
        }
        check_zero(b, n);
        uint64_t tag = (uint64_t)(uintptr_t)b ^ n;
        stamp(b, n, tag);
        /* Hand it over, and take one someone else handed over. */
        unsigned char *other = NULL;
        size_t on = 0;
        pthread_mutex_lock(&q.lock);
        if (q.n < QUEUE) {
            q.buf[q.n] = b;
            q.size[q.n++] = n;
            b = NULL;
        }
        if (q.n && (rnd(&seed) & 1)) {
            other = q.buf[--q.n];
            on = q.size[q.n];
        }
        pthread_mutex_unlock(&q.lock);
        if (b) {
            zp_put(pool, b);
        }
        if (other) {
            if (!stamped(other, on, (uint64_t)(uintptr_t)other ^ on))
                fail("a handed-over buffer changed: handed out twice?");
            if (zp_usable_size(pool, other) != on)
                fail("usable size changed");
            zp_put(pool, other);
        }
    }
    return NULL;
}

static void *observer(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        zp_stats_t st;
        zp_pool_stats(pool, &st);
        zp_config_t c;
        zp_pool_config(pool, &c);
        if (st.pooled_bytes > c.pool_bytes)
            fail("pooled bytes above the budget");
        zp_class_stats_t cs;
        for (unsigned i = 0; zp_pool_class_stats(pool, i, &cs); i++)
            ;
        zp_pool_trim(pool);
        struct timespec ts = { 0, 2000000 };
        nanosleep(&ts, NULL);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 5;
    zp_config_t c;
    zp_config_init(&c);
    c.num_shards = 2;
    c.tls_cache_size = 4;
    /* A second argument, a budget in MiB: a small one makes caches contend for lease space
     * (refused leases, caches giving back on their slow paths). */
    c.pool_bytes = (argc > 2 ? (size_t)atoi(argv[2]) : 64) << 20;
    pool = zp_pool_new(&c);
    if (!pool)
        return 2;
    pthread_t obs;
    pthread_create(&obs, NULL, observer, NULL);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    unsigned rounds = 0;
    do { /* waves of short-lived workers: their caches must come back at exit */
        pthread_t w[WORKERS];
        for (uintptr_t i = 0; i < WORKERS; i++)
            pthread_create(&w[i], NULL, worker, (void *)(i + 1 + rounds * WORKERS));
        for (int i = 0; i < WORKERS; i++)
            pthread_join(w[i], NULL);
        rounds++;
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while (!atomic_load(&failed) &&
             (double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9 < seconds);
    atomic_store(&stop, true);
    pthread_join(obs, NULL);
    for (unsigned i = 0; i < q.n; i++) {
        if (!stamped(q.buf[i], q.size[i], (uint64_t)(uintptr_t)q.buf[i] ^ q.size[i]))
            fail("a queued buffer changed");
        zp_put(pool, q.buf[i]);
    }
    zp_stats_t st;
    zp_pool_stats(pool, &st);
    if (st.gets != st.puts || st.live_bytes != 0)
        fail("gets and puts do not balance");
    printf("stress_core: %u rounds, %llu gets, %llu tls hits, %llu steals, %llu evictions\n", rounds,
           (unsigned long long)st.gets, (unsigned long long)st.tls_hits,
           (unsigned long long)st.steals, (unsigned long long)st.evictions);
    zp_pool_destroy(pool);
    return atomic_load(&failed);
}
