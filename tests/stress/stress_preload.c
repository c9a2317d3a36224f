/* Stress under LD_PRELOAD=libzeropool.so: N threads malloc, calloc, realloc, aligned-alloc and
 * free blocks of 1 B .. 8 MiB (both sides of the threshold, and right at it) and hand blocks
 * to each other through queues. Every block is stamped with its tag (thread, sequence), over
 * its whole length up to 256 KiB, beyond that over its first and last 4 KiB and 64 bytes of
 * every page, and checked at hand-off, before realloc and before free. A global table
 * of live pointers catches a block handed out twice; realloc must keep the prefix, calloc and
 * pooled (>= threshold) blocks must be zero, a pooled realloc must zero-fill what it adds.
 * The process forks twice in the middle of the run; each child runs its own stress and exits 0.
 * Usage: stress_preload THREADS SECONDS   (ZEROPOOL_LONG_TESTS=1 multiplies SECONDS by 10) */
#include <errno.h>
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

#include "test_util.h"

#define MAX_THREADS 64
#define SLOTS 16                 /* blocks one thread holds */
#define QCAP 16                  /* blocks waiting in one thread's inbox */
#define MAX_SIZE ((size_t)8 << 20)
#define LIVE_BUDGET ((size_t)384 << 20) /* beyond it, new blocks are small */
#define STRIPES 256
#define STRIPE_CAP 1024

typedef struct blk {
    unsigned char *p;
    size_t n;
    uint64_t tag; /* world << 56 | thread << 40 | sequence: the stamp's seed */
} blk_t;

typedef struct stripe {
    pthread_mutex_t mu;
    void *live[STRIPE_CAP];
} stripe_t;

typedef struct inbox {
    pthread_mutex_t mu;
    blk_t q[QCAP];
    unsigned head, len;
} inbox_t;

typedef struct counts {
    uint64_t malloc, calloc, realloc, aligned, free, handoff;
} counts_t;

/* Everything one process's run shares. A forked child runs in world 1, which its parent
 * never touched, so no lock copied in a locked state is ever taken there. */
typedef struct world {
    int id, nthreads;
    atomic_bool stop;
    _Atomic size_t live_bytes, max_live;
    stripe_t table[STRIPES];
    inbox_t inbox[MAX_THREADS];
    counts_t total;
    pthread_mutex_t total_mu;
} world_t;

static world_t worlds[2];
static size_t threshold;
static bool zeropool; /* libzeropool.so is mapped: its zero guarantees are checked too */

/* ---- failures: one line on stderr, exit 1 (the run cannot be trusted past it) ---- */

static void fail(const char *what, const blk_t *b, size_t off)
{
    char line[256];
    int n = snprintf(line, sizeof line,
                     "stress: FAIL (pid %d): %s: block %p, %zu bytes, tag %#llx, offset %zu\n",
                     (int)getpid(), what, b ? (void *)b->p : NULL, b ? b->n : 0,
                     b ? (unsigned long long)b->tag : 0ULL, off);
    if (write(2, line, (size_t)n) < 0)
        _exit(2);
    _exit(1);
}

/* ---- random numbers (xorshift64*) ---- */

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

/* Log-uniform in [lo, hi]. */
static size_t rnd_logu(uint64_t *s, size_t lo, size_t hi)
{
    if (hi <= lo)
        return lo;
    int a = 63 - __builtin_clzll(lo), b = 63 - __builtin_clzll(hi);
    int k = a + (int)(rnd(s) % (uint64_t)(b - a + 1));
    size_t n = ((size_t)1 << k) + (size_t)(rnd(s) & (((size_t)1 << k) - 1));
    return n < lo ? lo : n > hi ? hi : n;
}

/* 45% below the threshold, 10% within 32 bytes of it, 35% from it to 1 MiB, 10% to 8 MiB. */
static size_t rnd_size(world_t *w, uint64_t *s)
{
    unsigned r = (unsigned)(rnd(s) % 100);
    size_t n;
    if (r < 45)
        n = rnd_logu(s, 1, threshold - 1);
    else if (r < 55)
        n = threshold - 32 + (size_t)(rnd(s) % 64);
    else if (r < 90)
        n = rnd_logu(s, threshold, threshold > ((size_t)1 << 20) ? threshold : (size_t)1 << 20);
    else
        n = rnd_logu(s, threshold, MAX_SIZE);
    if (n >= threshold && atomic_load(&w->live_bytes) + n > LIVE_BUDGET)
        n = rnd_logu(s, 1, threshold - 1);
    return n;
}

/* ---- the stamp: byte k of a block with tag t is byte k%8 of mix(t) + k/8 (little endian),
 * so every prefix of a block carries the same bytes whatever its length ---- */

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static unsigned char stamp_byte(uint64_t base, size_t k)
{
    return (unsigned char)((base + (k >> 3)) >> (8 * (k & 7)));
}

static void stamp(unsigned char *p, size_t from, size_t to, uint64_t tag)
{
    uint64_t base = mix(tag);
    size_t k = from;
    for (; k < to && (k & 7); k++)
        p[k] = stamp_byte(base, k);
    for (; k + 8 <= to; k += 8) {
        uint64_t v = base + (k >> 3);
        memcpy(p + k, &v, 8);
    }
    for (; k < to; k++)
        p[k] = stamp_byte(base, k);
}

/* The first offset in [from, to) that does not carry the stamp, or SIZE_MAX. */
static size_t stamp_bad(const unsigned char *p, size_t from, size_t to, uint64_t tag)
{
    uint64_t base = mix(tag);
    size_t k = from;
    for (; k < to && (k & 7); k++)
        if (p[k] != stamp_byte(base, k))
            return k;
    for (; k + 8 <= to; k += 8) {
        uint64_t v;
        memcpy(&v, p + k, 8);
        if (v != base + (k >> 3))
            break;
    }
    for (; k < to; k++)
        if (p[k] != stamp_byte(base, k))
            return k;
    return SIZE_MAX;
}

/* Which bytes of an n-byte block carry the stamp: all of them up to FULL_STAMP; beyond, the
 * first and last 4 KiB and the first 64 bytes of every 4 KiB in between (so that a lost or
 * swapped page shows, at a fraction of the cost). Applies op to each region within
 * [0, limit); stops at the first bad offset that op returns. */
#define FULL_STAMP ((size_t)256 << 10)
#define SAMPLE_EDGE ((size_t)4096)
#define SAMPLE_STEP ((size_t)4096)
#define SAMPLE_LEN ((size_t)64)

typedef size_t (*region_fn)(unsigned char *p, size_t from, size_t to, uint64_t tag);

static size_t min_sz(size_t a, size_t b)
{
    return a < b ? a : b;
}

static size_t regions(unsigned char *p, size_t n, size_t limit, uint64_t tag, region_fn op)
{
    size_t end = min_sz(n, limit), bad;
    if (n <= FULL_STAMP)
        return op(p, 0, end, tag);
    if ((bad = op(p, 0, min_sz(SAMPLE_EDGE, end), tag)) != SIZE_MAX)
        return bad;
    for (size_t k = SAMPLE_EDGE; k < n - SAMPLE_EDGE && k < end; k += SAMPLE_STEP)
        if ((bad = op(p, k, min_sz(k + SAMPLE_LEN, end), tag)) != SIZE_MAX)
            return bad;
    if (n - SAMPLE_EDGE < end)
        return op(p, n - SAMPLE_EDGE, end, tag);
    return SIZE_MAX;
}

static size_t op_stamp(unsigned char *p, size_t from, size_t to, uint64_t tag)
{
    stamp(p, from, to, tag);
    return SIZE_MAX;
}

static size_t op_check(unsigned char *p, size_t from, size_t to, uint64_t tag)
{
    return stamp_bad(p, from, to, tag);
}

static size_t zero_bad(const unsigned char *p, size_t from, size_t to)
{
    size_t k = from;
    for (; k < to && (k & 7); k++)
        if (p[k])
            return k;
    for (; k + 8 <= to; k += 8) {
        uint64_t v;
        memcpy(&v, p + k, 8);
        if (v)
            break;
    }
    for (; k < to; k++)
        if (p[k])
            return k;
    return SIZE_MAX;
}

static size_t op_zero(unsigned char *p, size_t from, size_t to, uint64_t tag)
{
    (void)tag;
    return zero_bad(p, from, to);
}

/* The first non-zero offset in [from, n) of an n-byte block, or SIZE_MAX: every byte up to
 * FULL_ZERO (and with ZEROPOOL_LONG_TESTS=1); beyond, the sampled regions and four whole
 * random pages (reading every page of a fresh mapping doubles its page faults). */
#define FULL_ZERO ((size_t)1 << 20)
static bool long_run;

static size_t zero_check(unsigned char *p, size_t from, size_t n, uint64_t *rng)
{
    if (n - from <= FULL_ZERO || long_run)
        return zero_bad(p, from, n);
    size_t bad;
    if (n <= FULL_STAMP)
        return zero_bad(p, from, n);
    if (from == 0 && (bad = regions(p, n, n, 0, op_zero)) != SIZE_MAX)
        return bad;
    if ((bad = zero_bad(p, from, min_sz(from + SAMPLE_EDGE, n))) != SIZE_MAX)
        return bad;
    for (int i = 0; i < 4; i++) {
        size_t k = from + (size_t)(rnd(rng) % (n - from));
        if ((bad = zero_bad(p, k, min_sz(k + 4096, n))) != SIZE_MAX)
            return bad;
    }
    return zero_bad(p, n - SAMPLE_EDGE > from ? n - SAMPLE_EDGE : from, n);
}

static void check(const blk_t *b, const char *when)
{
    size_t off = regions(b->p, b->n, b->n, b->tag, op_check);
    if (off != SIZE_MAX)
        fail(when, b, off);
}

/* ---- the table of live pointers: a pointer enters when returned, leaves before free ---- */

static stripe_t *stripe_of(world_t *w, const void *p)
{
    uint64_t h = ((uint64_t)(uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ULL;
    return &w->table[h >> 56];
}

static void table_insert(world_t *w, const blk_t *b)
{
    stripe_t *s = stripe_of(w, b->p);
    int empty = -1;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < STRIPE_CAP; i++) {
        if (s->live[i] == b->p)
            fail("pointer handed out while still live (two owners)", b, 0);
        if (s->live[i] == NULL && empty < 0)
            empty = i;
    }
    if (empty < 0)
        fail("test table full", b, 0);
    s->live[empty] = b->p;
    pthread_mutex_unlock(&s->mu);
}

static void table_remove(world_t *w, const blk_t *b)
{
    stripe_t *s = stripe_of(w, b->p);
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < STRIPE_CAP; i++) {
        if (s->live[i] == b->p) {
            s->live[i] = NULL;
            pthread_mutex_unlock(&s->mu);
            return;
        }
    }
    fail("freeing a pointer the table does not hold", b, 0);
}

static size_t table_count(world_t *w)
{
    size_t c = 0;
    for (int s = 0; s < STRIPES; s++)
        for (int i = 0; i < STRIPE_CAP; i++)
            c += w->table[s].live[i] != NULL;
    return c;
}

/* ---- one thread's work ---- */

typedef struct worker {
    world_t *w;
    int id;
    uint64_t rng, seq;
    blk_t slot[SLOTS];
    counts_t c;
} worker_t;

static void live_add(world_t *w, size_t n)
{
    size_t now = atomic_fetch_add(&w->live_bytes, n) + n;
    size_t m = atomic_load(&w->max_live);
    while (now > m && !atomic_compare_exchange_weak(&w->max_live, &m, now))
        ;
}

static uint64_t next_tag(worker_t *k)
{
    return (uint64_t)k->w->id << 56 | (uint64_t)k->id << 40 | (k->seq++ & 0xffffffffffULL);
}

static void blk_alloc(worker_t *k, blk_t *b)
{
    size_t n = rnd_size(k->w, &k->rng);
    unsigned r = (unsigned)(rnd(&k->rng) % 100);
    bool must_zero = zeropool && n >= threshold;
    size_t align = 0;
    errno = 0;
    if (r < 60) {
        b->p = malloc(n);
        k->c.malloc++;
    } else if (r < 90) {
        b->p = calloc(1, n);
        must_zero = true;
        k->c.calloc++;
    } else {
        align = (size_t)1 << (4 + rnd(&k->rng) % 17); /* 16 B .. 1 MiB */
        void *p = NULL;
        if (posix_memalign(&p, align, n) != 0)
            p = NULL;
        b->p = p;
        k->c.aligned++;
    }
    b->n = n;
    b->tag = next_tag(k);
    if (b->p == NULL)
        fail("allocation failed", b, 0);
    if (align && ((uintptr_t)b->p & (align - 1)))
        fail("posix_memalign: misaligned", b, align);
    if (zeropool && ((uintptr_t)b->p & 15) != 0) /* glibc's alignment, kept by zeropool */
        fail("not 16-byte aligned", b, 0);
    if (malloc_usable_size(b->p) < n)
        fail("malloc_usable_size below the request", b, malloc_usable_size(b->p));
    table_insert(k->w, b);
    size_t off = must_zero ? zero_check(b->p, 0, n, &k->rng) : SIZE_MAX;
    if (off != SIZE_MAX)
        fail(n >= threshold ? "pooled block not zero" : "calloc block not zero", b, off);
    regions(b->p, n, n, b->tag, op_stamp);
    live_add(k->w, n);
}

static void blk_free(worker_t *k, blk_t *b)
{
    check(b, "stamp broken before free");
    table_remove(k->w, b);
    free(b->p);
    atomic_fetch_sub(&k->w->live_bytes, b->n);
    k->c.free++;
    b->p = NULL;
}

static void blk_realloc(worker_t *k, blk_t *b)
{
    size_t n = rnd_size(k->w, &k->rng);
    check(b, "stamp broken before realloc");
    blk_t nb = *b;
    size_t old_usable = malloc_usable_size(b->p); /* realloc keeps all of it, slack too */
    table_remove(k->w, b);
    errno = 0;
    nb.p = realloc(b->p, n);
    nb.n = n;
    if (nb.p == NULL)
        fail("realloc failed", b, n);
    table_insert(k->w, &nb);
    size_t keep = min_sz(n, b->n);
    size_t off = regions(nb.p, b->n, keep, b->tag, op_check);
    if (off != SIZE_MAX)
        fail("realloc lost a byte of the prefix", &nb, off);
    if (zeropool && n > old_usable && n >= threshold) {
        off = zero_check(nb.p, old_usable, n, &k->rng);
        if (off != SIZE_MAX)
            fail("realloc into the pool: grown part not zero", &nb, off);
    }
    /* The stamp is positional: the block stays uniform under its tag. */
    regions(nb.p, n, n, nb.tag, op_stamp);
    live_add(k->w, n);
    atomic_fetch_sub(&k->w->live_bytes, b->n);
    k->c.realloc++;
    *b = nb;
}

/* Hand a block to another thread; false if its inbox is full. */
static bool handoff(worker_t *k, blk_t *b)
{
    world_t *w = k->w;
    if (w->nthreads < 2)
        return false;
    int to = (int)(rnd(&k->rng) % (uint64_t)(w->nthreads - 1));
    to += to >= k->id;
    check(b, "stamp broken at hand-off (sender)");
    inbox_t *in = &w->inbox[to];
    pthread_mutex_lock(&in->mu);
    bool ok = in->len < QCAP;
    if (ok) {
        in->q[(in->head + in->len) % QCAP] = *b;
        in->len++;
        b->p = NULL;
    }
    pthread_mutex_unlock(&in->mu);
    k->c.handoff += ok;
    return ok;
}

static bool inbox_pop(inbox_t *in, blk_t *out)
{
    pthread_mutex_lock(&in->mu);
    bool ok = in->len > 0;
    if (ok) {
        *out = in->q[in->head];
        in->head = (in->head + 1) % QCAP;
        in->len--;
    }
    pthread_mutex_unlock(&in->mu);
    return ok;
}

static void drain(worker_t *k)
{
    blk_t b;
    while (inbox_pop(&k->w->inbox[k->id], &b)) {
        check(&b, "stamp broken at hand-off (receiver)");
        int i = (int)(rnd(&k->rng) % SLOTS);
        if (k->slot[i].p != NULL)
            blk_free(k, &k->slot[i]);
        k->slot[i] = b;
    }
}

static void *worker_main(void *arg)
{
    worker_t *k = arg;
    world_t *w = k->w;
    while (!atomic_load_explicit(&w->stop, memory_order_relaxed)) {
        for (int step = 0; step < 64 && !atomic_load_explicit(&w->stop, memory_order_relaxed);
             step++) {
            blk_t *b = &k->slot[rnd(&k->rng) % SLOTS];
            unsigned r = (unsigned)(rnd(&k->rng) % 100);
            if (b->p == NULL)
                blk_alloc(k, b);
            else if (r < 35)
                blk_free(k, b);
            else if (r < 65)
                blk_realloc(k, b);
            else if (r < 85)
                check(b, "stamp broken while held");
            else if (!handoff(k, b))
                blk_free(k, b);
        }
        drain(k);
    }
    for (int i = 0; i < SLOTS; i++)
        if (k->slot[i].p != NULL)
            blk_free(k, &k->slot[i]);
    pthread_mutex_lock(&w->total_mu);
    w->total.malloc += k->c.malloc;
    w->total.calloc += k->c.calloc;
    w->total.realloc += k->c.realloc;
    w->total.aligned += k->c.aligned;
    w->total.free += k->c.free;
    w->total.handoff += k->c.handoff;
    pthread_mutex_unlock(&w->total_mu);
    return NULL;
}

static void world_init(world_t *w, int id, int nthreads)
{
    w->id = id;
    w->nthreads = nthreads;
    atomic_store(&w->stop, false);
    pthread_mutex_init(&w->total_mu, NULL);
    for (int s = 0; s < STRIPES; s++)
        pthread_mutex_init(&w->table[s].mu, NULL);
    for (int i = 0; i < MAX_THREADS; i++)
        pthread_mutex_init(&w->inbox[i].mu, NULL);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

typedef void (*midway_fn)(void);

/* Runs nthreads workers in world w for secs seconds, calling midway() at 1/3 and 2/3 of it;
 * then checks that every block came back. */
static void run_world(world_t *w, int nthreads, double secs, uint64_t seed, midway_fn midway)
{
    static worker_t workers[2][MAX_THREADS];
    pthread_t t[MAX_THREADS];
    for (int i = 0; i < nthreads; i++) {
        worker_t *k = &workers[w->id][i];
        memset(k, 0, sizeof *k);
        k->w = w;
        k->id = i;
        k->rng = mix(seed * 1000 + (uint64_t)i + 1) | 1;
        if (pthread_create(&t[i], NULL, worker_main, k) != 0)
            fail("pthread_create", NULL, (size_t)i);
    }
    double t0 = now_s();
    for (int part = 1; part <= 3; part++) {
        double left = t0 + secs * part / 3 - now_s();
        if (left > 0)
            sleep_s(left);
        if (part < 3 && midway != NULL)
            midway();
    }
    atomic_store(&w->stop, true);
    for (int i = 0; i < nthreads; i++)
        pthread_join(t[i], NULL);
    /* Blocks still in inboxes: check and free them here. */
    worker_t last = {.w = w, .id = 0, .rng = 7};
    for (int i = 0; i < nthreads; i++) {
        blk_t b;
        while (inbox_pop(&w->inbox[i], &b)) {
            check(&b, "stamp broken in an inbox at the end");
            blk_free(&last, &b);
        }
    }
    w->total.free += last.c.free;
    if (table_count(w) != 0)
        fail("live pointers left in the table at the end", NULL, table_count(w));
    if (atomic_load(&w->live_bytes) != 0)
        fail("live byte count not 0 at the end", NULL, atomic_load(&w->live_bytes));
}

static int forks_done;

/* In the parent, at 1/3 and 2/3 of the run: fork while every worker allocates. The child
 * keeps allocating in its own world (2 threads, 0.6 s) and must exit 0. */
static void fork_midway(void)
{
    pid_t pid = fork();
    if (pid < 0)
        fail("fork", NULL, (size_t)errno);
    if (pid == 0) {
        alarm(60); /* a deadlock in the child shows as SIGALRM */
        world_init(&worlds[1], 1, 2);
        run_world(&worlds[1], 2, 0.6, 4242 + (uint64_t)forks_done, NULL);
        worker_t solo = {.w = &worlds[1], .id = 0, .rng = 99};
        blk_t b = {0};
        for (int i = 0; i < 200; i++) { /* and the forking thread itself */
            blk_alloc(&solo, &b);
            blk_realloc(&solo, &b);
            blk_free(&solo, &b);
        }
        exit(0); /* exit: the library's destructors run in the child too */
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid)
        fail("waitpid", NULL, (size_t)errno);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail("forked child did not exit 0", NULL, (size_t)status);
    forks_done++;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s THREADS SECONDS\n", argv[0]);
        return 2;
    }
    int nthreads = atoi(argv[1]);
    double secs = atof(argv[2]);
    const char *lng = getenv("ZEROPOOL_LONG_TESTS");
    long_run = lng != NULL && strcmp(lng, "1") == 0;
    if (long_run)
        secs *= 10;
    if (nthreads < 1 || nthreads > MAX_THREADS || secs <= 0) {
        fprintf(stderr, "stress: THREADS in 1..%d, SECONDS > 0\n", MAX_THREADS);
        return 2;
    }
    threshold = test_threshold();
    zeropool = test_maps_has("libzeropool");
    if (threshold < 64)
        threshold = 64;
    /* Create the pool before the threads race for it: a request that loses the race for the
     * pool's creation is served by jemalloc, whose blocks need not be zero. */
    free(malloc(threshold));

    world_init(&worlds[0], 0, nthreads);
    double t0 = now_s();
    run_world(&worlds[0], nthreads, secs, 1, fork_midway);
    counts_t *c = &worlds[0].total;
    printf("stress: %d threads, threshold %zu, %.1f s: %llu malloc, %llu calloc, %llu realloc, "
           "%llu aligned, %llu free, %llu hand-offs, %d forks, peak live %zu MiB%s: ok\n",
           nthreads, threshold, now_s() - t0, (unsigned long long)c->malloc,
           (unsigned long long)c->calloc, (unsigned long long)c->realloc,
           (unsigned long long)c->aligned, (unsigned long long)c->free,
           (unsigned long long)c->handoff, forks_done, atomic_load(&worlds[0].max_live) >> 20,
           zeropool ? "" : " (zeropool not loaded: zero checks off)");
    return 0;
}
