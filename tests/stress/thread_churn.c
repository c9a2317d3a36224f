/* Thread churn under LD_PRELOAD=libzeropool.so: thousands of short-lived threads, a few at a
 * time, each allocating large buffers (zero when handed out), writing them, freeing most of
 * them (they stay in its thread cache) and handing one to the main thread now and then. The
 * caches must come back to the pool at thread exit: peak RSS (VmHWM) stays within the
 * pool's byte budget plus what is live at once plus a margin, and the pool's free bytes
 * (malloc_info) never exceed the budget. A leaked cache would cost megabytes per thread.
 * Usage: thread_churn THREADS CONCURRENT   (set ZEROPOOL_POOL_BYTES: the budget checked;
 * ZEROPOOL_LONG_TESTS=1 runs ten times as many threads) */
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "test_util.h"

#define MAX_CONCURRENT 64
#define MAX_BUFS 10
#define MIN_BUF ((size_t)128 << 10)
#define MAX_BUF ((size_t)1 << 20)
#define MARGIN ((size_t)96 << 20) /* jemalloc, glibc's cache of thread stacks, the binary */

/* The size="N" of the row type="NAME" of malloc_info (NAME_bytes accepted too); SIZE_MAX if
 * it is not there. */
static size_t info_total(const char *name)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f == NULL)
        return SIZE_MAX;
    malloc_info(0, f);
    fclose(f);
    char key[64];
    snprintf(key, sizeof key, "type=\"%s\"", name);
    const char *at = strstr(text, key);
    if (at == NULL) {
        snprintf(key, sizeof key, "type=\"%s_bytes\"", name);
        at = strstr(text, key);
    }
    const char *sz = at != NULL ? strstr(at, "size=\"") : NULL;
    const char *eol = at != NULL ? strchr(at, '\n') : NULL;
    size_t v = sz != NULL && (eol == NULL || sz < eol) ? strtoull(sz + 6, NULL, 10) : SIZE_MAX;
    free(text);
    return v;
}

static _Atomic(void *) handed[MAX_CONCURRENT];
static atomic_int bad;
static _Atomic uint64_t bytes_written;
static bool zeropool; /* libzeropool.so is mapped: large buffers must be zero */

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

static bool zero_at(const unsigned char *p, size_t n)
{
    for (size_t k = 0; k < n; k += 4096) /* one word per page, and the last bytes */
        if (*(const uint64_t *)(p + k) != 0)
            return false;
    return *(const uint64_t *)(p + ((n - 8) & ~(size_t)7)) == 0;
}

static void *churner(void *arg)
{
    uint64_t seed = (uint64_t)(uintptr_t)arg * 0x9E3779B97F4A7C15ULL | 1;
    unsigned nbufs = 3 + (unsigned)(rnd(&seed) % (MAX_BUFS - 2));
    unsigned char *buf[MAX_BUFS];
    size_t len[MAX_BUFS];
    for (unsigned i = 0; i < nbufs; i++) {
        len[i] = MIN_BUF + (size_t)(rnd(&seed) % (MAX_BUF - MIN_BUF + 1));
        buf[i] = malloc(len[i]);
        if (buf[i] == NULL || (zeropool && !zero_at(buf[i], len[i]))) {
            atomic_store(&bad, 1);
            return NULL;
        }
        memset(buf[i], 0x5a, len[i]);
        atomic_fetch_add_explicit(&bytes_written, len[i], memory_order_relaxed);
        free(malloc(100 + (size_t)(rnd(&seed) % 4000))); /* and some small ones */
    }
    /* Every fourth thread leaves one buffer to the main thread (freed there, cross-thread). */
    unsigned first = 0;
    if (rnd(&seed) % 4 == 0) {
        void *old = atomic_exchange(&handed[(uintptr_t)arg % MAX_CONCURRENT], buf[0]);
        free(old);
        first = 1;
    }
    for (unsigned i = first; i < nbufs; i++)
        free(buf[i]); /* the last ones stay in this thread's cache until it exits */
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s THREADS CONCURRENT\n", argv[0]);
        return 2;
    }
    int nthreads = atoi(argv[1]), conc = atoi(argv[2]);
    if (nthreads < 1 || conc < 1 || conc > MAX_CONCURRENT) {
        fprintf(stderr, "thread_churn: THREADS >= 1, CONCURRENT in 1..%d\n", MAX_CONCURRENT);
        return 2;
    }
    const char *lng = getenv("ZEROPOOL_LONG_TESTS");
    if (lng != NULL && strcmp(lng, "1") == 0)
        nthreads *= 10;
    size_t budget = test_env_size("ZEROPOOL_POOL_BYTES", 0);
    if (budget == 0) {
        fprintf(stderr, "thread_churn: set ZEROPOOL_POOL_BYTES (the budget it checks)\n");
        return 2;
    }
    zeropool = test_maps_has("libzeropool");
    /* Warm up (pool, jemalloc arenas, glibc's stack cache), then take the baseline. */
    for (int i = 0; i < conc; i++) {
        pthread_t t;
        pthread_create(&t, NULL, churner, (void *)(uintptr_t)(1000000 + i));
        pthread_join(t, NULL);
    }
    for (int i = 0; i < MAX_CONCURRENT; i++)
        free(atomic_exchange(&handed[i], NULL));
    size_t base = test_status_bytes("VmRSS"), live0 = info_total("live");
    size_t live_max = (size_t)conc * MAX_BUFS * MAX_BUF + MAX_CONCURRENT * MAX_BUF;
    size_t bound = base + budget + live_max + MARGIN;
    size_t max_pooled = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int done = 0; done < nthreads;) {
        pthread_t t[MAX_CONCURRENT];
        int n = conc < nthreads - done ? conc : nthreads - done;
        for (int i = 0; i < n; i++)
            if (pthread_create(&t[i], NULL, churner, (void *)(uintptr_t)(done + i + 1)) != 0) {
                fprintf(stderr, "thread_churn: pthread_create failed at thread %d\n", done + i);
                return 1;
            }
        for (int i = 0; i < n; i++)
            pthread_join(t[i], NULL);
        done += n;
        if (atomic_load(&bad)) {
            fprintf(stderr, "thread_churn: FAIL: a buffer was not zero (or NULL)\n");
            return 1;
        }
        if (done % 100 < (done - n) % 100 || done == nthreads) { /* every 100 threads */
            size_t rss = test_status_bytes("VmRSS"), pooled = info_total("pooled");
            if (pooled != SIZE_MAX && pooled > max_pooled)
                max_pooled = pooled;
            if (rss > bound || (pooled != SIZE_MAX && pooled > budget)) {
                fprintf(stderr,
                        "thread_churn: FAIL after %d threads: RSS %zu MiB (bound %zu MiB), "
                        "pooled %zu MiB (budget %zu MiB)\n",
                        done, rss >> 20, bound >> 20, pooled >> 20, budget >> 20);
                return 1;
            }
        }
    }
    for (int i = 0; i < MAX_CONCURRENT; i++)
        free(atomic_exchange(&handed[i], NULL));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    size_t hwm = test_status_bytes("VmHWM"), live = info_total("live");
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("thread_churn: %d threads (%d at a time), %llu MiB written, in %.1f s: VmHWM %zu MiB, "
           "bound %zu MiB (baseline %zu + budget %zu + live %zu + margin %zu), max pooled %zu "
           "MiB, live pool bytes %zu before, %zu after%s\n",
           nthreads, conc, (unsigned long long)(atomic_load(&bytes_written) >> 20), secs,
           hwm >> 20, bound >> 20, base >> 20, budget >> 20, live_max >> 20, MARGIN >> 20,
           max_pooled >> 20, live0, live, zeropool ? "" : " (zeropool not loaded)");
    if (hwm > bound) {
        fprintf(stderr, "thread_churn: FAIL: VmHWM %zu MiB above the bound %zu MiB\n", hwm >> 20,
                bound >> 20);
        return 1;
    }
    if (live != live0) {
        fprintf(stderr, "thread_churn: FAIL: %zu live pool bytes after every buffer was freed, "
                "%zu before\n", live, live0);
        return 1;
    }
    return 0;
}
