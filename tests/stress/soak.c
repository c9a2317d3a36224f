/* Soak under LD_PRELOAD=libzeropool.so: what a service meets after days, squeezed into minutes.
 * Worker threads allocate from a size mix that drifts (small, medium, pooled, big, and back)
 * and hand a share of their blocks to the next worker, which checks and frees them; a thread
 * forks now and then (the child allocates, checks, exits), another calls malloc_trim. Every
 * block is stamped over its whole length and checked before it is freed; every new block must
 * read zero (no freed byte survives, small blocks included). Each worker holds at most 16 MiB,
 * so the live set is level; the main thread samples RSS and VmSize, and the peak RSS of the
 * last quarter must stay within 10% of the second quarter's, and so must VmSize's, give or
 * take one reservation step (VM_STEP_KIB): the pool reserves address space in steps of up to
 * 64 MiB, so one late step is the granularity of VmSize, not growth.
 * Usage: soak [SECONDS]   (default 120; ZEROPOOL_LONG_TESTS=1 runs 20 minutes) */
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WORKERS 6
#define HELD 48        /* blocks one worker holds */
#define INBOX 64       /* blocks handed to a worker, waiting */
#define DRIFT_SECONDS 8 /* one turn of the size mix */
#define SAMPLE_MS 200
#define VM_STEP_KIB ((size_t)64 << 10) /* the pool's largest reservation step (core/internal.h) */
#define HELD_CAP ((size_t)16 << 20)  /* bytes one worker holds: the live set stays level */
#define INBOX_CAP ((size_t)8 << 20)  /* bytes waiting in one inbox */

typedef struct blk {
    unsigned char *p;
    size_t n;
    uint64_t seed;
} blk_t;

typedef struct inbox {
    pthread_mutex_t mu;
    blk_t q[INBOX];
    unsigned n;
    size_t bytes;
} inbox_t;

static inbox_t inboxes[WORKERS];
static atomic_bool stop;
static atomic_uint failures;
static atomic_ullong checked_bytes, blocks, forks, trims;
static double t_start, t_len;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fail(const char *what, const void *p, size_t n, size_t at)
{
    if (atomic_fetch_add(&failures, 1) < 10) {
        char m[200];
        int len = snprintf(m, sizeof m, "soak: %s: block %p of %zu bytes, byte %zu\n", what, p, n, at);
        if (write(2, m, (size_t)len) < 0)
            return;
    }
}

static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* The mix drifts through four phases; each phase weighs a size range more. */
static size_t pick_size(uint64_t *r)
{
    double t = now_s() - t_start;
    unsigned phase = (unsigned)(t / (DRIFT_SECONDS / 4.0)) % 4;
    uint64_t x = next_rand(r);
    unsigned range = (x % 8 < 5) ? phase : (unsigned)(x >> 8) % 4;
    size_t lo[] = { 16, 4096, 64 << 10, 512 << 10 }, hi[] = { 4096, 64 << 10, 512 << 10, 4 << 20 };
    size_t span = hi[range] - lo[range];
    size_t n = lo[range] + (size_t)(next_rand(r) % span);
    if (range == 3 && next_rand(r) % 4) /* big blocks: fewer */
        n = lo[2] + n % (lo[3] - lo[2]);
    return n;
}

/* Stamp: 8 bytes of the seed's sequence per word, so any swapped or stale byte shows. */
static void stamp(blk_t *b)
{
    uint64_t s = b->seed | 1;
    size_t i = 0;
    for (; i + 8 <= b->n; i += 8) {
        uint64_t v = next_rand(&s);
        memcpy(b->p + i, &v, 8);
    }
    for (; i < b->n; i++)
        b->p[i] = (unsigned char)(b->seed >> (i % 8 * 8));
}

static void check(const blk_t *b)
{
    uint64_t s = b->seed | 1;
    size_t i = 0;
    for (; i + 8 <= b->n; i += 8) {
        uint64_t v = next_rand(&s), got;
        memcpy(&got, b->p + i, 8);
        if (got != v) {
            fail("contents changed", b->p, b->n, i);
            return;
        }
    }
    for (; i < b->n; i++)
        if (b->p[i] != (unsigned char)(b->seed >> (i % 8 * 8))) {
            fail("contents changed", b->p, b->n, i);
            return;
        }
    atomic_fetch_add_explicit(&checked_bytes, b->n, memory_order_relaxed);
}

static bool new_block(blk_t *b, uint64_t *r, size_t *held)
{
    b->n = pick_size(r);
    if (*held + b->n > HELD_CAP) /* at the cap: a small block instead */
        b->n = 16 + (size_t)(next_rand(r) % 4080);
    *held += b->n;
    b->seed = next_rand(r);
    bool use_calloc = b->seed % 8 == 0;
    b->p = use_calloc ? calloc(1, b->n) : malloc(b->n);
    if (!b->p) {
        fail("allocation failed", NULL, b->n, 0);
        return false;
    }
    size_t usable = malloc_usable_size(b->p);
    for (size_t i = 0; i < usable; i++)
        if (b->p[i]) {
            fail(i < b->n ? "a new block holds old bytes" : "a new block's slack holds old bytes",
                 b->p, b->n, i);
            break;
        }
    stamp(b);
    atomic_fetch_add_explicit(&blocks, 1, memory_order_relaxed);
    return true;
}

static void drop(blk_t *b, size_t *held)
{
    *held -= b->n;
    check(b);
    free(b->p);
    b->p = NULL;
}

/* Hand b to worker w; when its inbox is full, free b here instead. */
static void hand_off(unsigned w, blk_t *b, size_t *held)
{
    inbox_t *in = &inboxes[w];
    pthread_mutex_lock(&in->mu);
    bool ok = in->n < INBOX && in->bytes + b->n <= INBOX_CAP;
    if (ok) {
        in->q[in->n++] = *b;
        in->bytes += b->n;
    }
    pthread_mutex_unlock(&in->mu);
    if (ok) {
        *held -= b->n;
        b->p = NULL;
    } else {
        drop(b, held);
    }
}

static void drain(unsigned w)
{
    inbox_t *in = &inboxes[w];
    blk_t got[INBOX];
    pthread_mutex_lock(&in->mu);
    unsigned n = in->n;
    size_t bytes = in->bytes;
    memcpy(got, in->q, n * sizeof got[0]);
    in->n = 0;
    in->bytes = 0;
    pthread_mutex_unlock(&in->mu);
    for (unsigned i = 0; i < n; i++)
        drop(&got[i], &bytes);
}

/* A forked child of a threaded process: allocate, check, free, exit. */
static void child_run(uint64_t r)
{
    blk_t b[16] = { 0 };
    size_t held = 0;
    for (unsigned round = 0; round < 200; round++) {
        unsigned k = (unsigned)(next_rand(&r) % 16);
        if (b[k].p)
            drop(&b[k], &held);
        new_block(&b[k], &r, &held);
    }
    for (unsigned k = 0; k < 16; k++)
        if (b[k].p)
            drop(&b[k], &held);
    _exit(atomic_load(&failures) ? 1 : 0);
}

static void *worker(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    uint64_t r = 0x9E3779B97F4A7C15ull * (id + 1);
    blk_t held[HELD] = { 0 };
    size_t bytes = 0;
    double next_fork = t_start + 3.0 + id, next_trim = t_start + 1.0 + id * 0.3;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        for (unsigned step = 0; step < 64; step++) {
            unsigned k = (unsigned)(next_rand(&r) % HELD);
            if (held[k].p) {
                if (next_rand(&r) % 3 == 0)
                    hand_off((id + 1) % WORKERS, &held[k], &bytes); /* the next worker frees it */
                else
                    drop(&held[k], &bytes);
            }
            new_block(&held[k], &r, &bytes);
        }
        drain(id);
        double t = now_s();
        if (id == 0 && t >= next_fork) { /* one thread forks now and then */
            next_fork = t + 5.0;
            pid_t pid = fork();
            if (pid == 0)
                child_run(r);
            int status = 0;
            if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
                WEXITSTATUS(status) != 0)
                fail("forked child failed", NULL, 0, (size_t)status);
            atomic_fetch_add(&forks, 1);
        }
        if (id == 1 && t >= next_trim) {
            next_trim = t + 2.0;
            malloc_trim(0);
            atomic_fetch_add(&trims, 1);
        }
    }
    for (unsigned k = 0; k < HELD; k++)
        if (held[k].p)
            drop(&held[k], &bytes);
    return NULL;
}

static void statm(size_t *vm_kib, size_t *rss_kib)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%lu %lu", &size, &res) != 2)
            size = res = 0;
        fclose(f);
    }
    size_t pg = (size_t)sysconf(_SC_PAGESIZE) / 1024;
    *vm_kib = size * pg;
    *rss_kib = res * pg;
}

int main(int argc, char **argv)
{
    t_len = argc > 1 ? atof(argv[1]) : 120;
    const char *lng = getenv("ZEROPOOL_LONG_TESTS");
    if (lng && *lng == '1')
        t_len = 1200;
    if (t_len < 8) {
        fprintf(stderr, "soak: at least 8 seconds\n");
        return 2;
    }
    for (unsigned w = 0; w < WORKERS; w++)
        pthread_mutex_init(&inboxes[w].mu, NULL);
    t_start = now_s();
    pthread_t t[WORKERS];
    for (uintptr_t w = 0; w < WORKERS; w++)
        if (pthread_create(&t[w], NULL, worker, (void *)w)) {
            perror("pthread_create");
            return 1;
        }
    size_t peak_rss[4] = { 0 }, peak_vm[4] = { 0 };
    double now;
    while ((now = now_s()) < t_start + t_len) {
        struct timespec ts = { 0, SAMPLE_MS * 1000000L };
        nanosleep(&ts, NULL);
        unsigned q = (unsigned)((now - t_start) * 4 / t_len);
        size_t vm, rss;
        statm(&vm, &rss);
        if (q < 4) {
            peak_rss[q] = rss > peak_rss[q] ? rss : peak_rss[q];
            peak_vm[q] = vm > peak_vm[q] ? vm : peak_vm[q];
        }
    }
    atomic_store(&stop, true);
    for (unsigned w = 0; w < WORKERS; w++)
        pthread_join(t[w], NULL);
    for (unsigned w = 0; w < WORKERS; w++)
        drain(w);
    printf("soak: %.0f s, %llu blocks, %llu MiB checked, %llu forks, %llu malloc_trim calls\n",
           t_len, (unsigned long long)blocks, (unsigned long long)(checked_bytes >> 20),
           (unsigned long long)forks, (unsigned long long)trims);
    printf("soak: peak RSS by quarter (KiB): %zu %zu %zu %zu\n", peak_rss[0], peak_rss[1],
           peak_rss[2], peak_rss[3]);
    printf("soak: peak VmSize by quarter (KiB): %zu %zu %zu %zu\n", peak_vm[0], peak_vm[1],
           peak_vm[2], peak_vm[3]);
    int rc = 0;
    if (atomic_load(&failures)) {
        printf("soak: FAIL: %u errors (first ones above)\n", atomic_load(&failures));
        rc = 1;
    }
    if (peak_rss[3] * 10 > peak_rss[1] * 11) {
        printf("soak: FAIL: RSS did not level off (last quarter %zu KiB > 110%% of %zu KiB)\n",
               peak_rss[3], peak_rss[1]);
        rc = 1;
    }
    if (peak_vm[3] * 10 > peak_vm[1] * 11 + VM_STEP_KIB * 10) {
        printf("soak: FAIL: VmSize did not level off (last quarter %zu KiB > 110%% of %zu KiB "
               "+ one %zu KiB step)\n", peak_vm[3], peak_vm[1], VM_STEP_KIB);
        rc = 1;
    }
    if (!forks || !trims) {
        printf("soak: FAIL: no fork or no malloc_trim happened\n");
        rc = 1;
    }
    return rc;
}
