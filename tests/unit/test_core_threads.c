/* Unit tests of the pool across threads, pools and processes: thread caches go back to the
 * pool at thread exit (also for puts from destructors that run after ours), several pools in
 * one thread (more than the TLS slots), pool create/destroy without leaks, fork in a threaded
 * parent, and a concurrent stress with stamped buffers and cross-thread hand-off. */
#include "core_test_util.h"

#include <pthread.h>

/* ---- thread exit ---- */

typedef struct exit_ctx {
    zp_pool_t *pool;
    size_t size;
    char *cached[3];   /* put by the thread: sit in its cache when it exits */
    char *late;        /* put by a pthread_key destructor that runs after zeropool's */
    bool late_exiting; /* zeropool's own destructor had run when ours did */
    bool late_ok;
    uint64_t pooled_in_thread;
} exit_ctx_t;

static pthread_key_t late_key;

static void late_destructor(void *arg)
{
    exit_ctx_t *x = arg;
    x->late_exiting = zp_tls.exiting;
    zp_put(x->pool, x->late);
    /* A get and put here too: no cache any more, but it must work. */
    char *p = zp_get(x->pool, x->size);
    x->late_ok = p && first_nonzero(p, x->size) == (size_t)-1;
    if (p)
        p[0] = 1;
    zp_put(x->pool, p);
}

static void *exit_thread(void *arg)
{
    exit_ctx_t *x = arg;
    for (unsigned i = 0; i < 3; i++) {
        x->cached[i] = zp_get(x->pool, x->size);
        memset(x->cached[i], 0x61, x->size);
    }
    x->late = zp_get(x->pool, x->size);
    memset(x->late, 0x62, x->size);
    for (unsigned i = 0; i < 3; i++)
        zp_put(x->pool, x->cached[i]);
    x->pooled_in_thread = stats_of(x->pool).pooled_bytes;
    pthread_setspecific(late_key, x);
    return NULL;
}

Test(core_threads, thread_exit_returns_cache)
{
    zp_config_t c = test_cfg(4, 4);
    zp_pool_t *pool = new_pool(&c);
    /* Keys run in creation order; zeropool's key was made by zp_pool_new, so ours runs later. */
    cr_assert_eq(pthread_key_create(&late_key, late_destructor), 0);
    exit_ctx_t x = { .pool = pool, .size = 128 * KiB };
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, exit_thread, &x), 0);
    cr_assert_eq(pthread_join(t, NULL), 0);
    cr_assert_eq(x.pooled_in_thread, 3 * x.size, "the thread's puts were not pooled (%llu)",
                 (unsigned long long)x.pooled_in_thread);
    cr_assert(x.late_exiting, "the late destructor ran before zeropool's: the test did not "
                              "exercise a put after thread-cache teardown");
    cr_assert(x.late_ok, "a get in a late destructor failed or was not zero");

    zp_stats_t st = stats_of(pool);
    cr_assert_eq(st.gets, 5);
    cr_assert_eq(st.puts, 5, "puts %llu: the late destructor's puts were lost",
                 (unsigned long long)st.puts);
    cr_assert_eq(st.live_bytes, 0);
    /* The thread's cached buffers and the late one are all in the pool now. */
    cr_assert_eq(st.pooled_bytes, 4 * x.size, "pooled %llu after thread exit, want %zu",
                 (unsigned long long)st.pooled_bytes, 4 * x.size);
    cr_assert_eq(zp_check(pool, x.late, NULL), ZP_MISUSE_DOUBLE_FREE, "late buffer not free");
    /* The main thread's gets of that class are served from them, with no fresh buffer. */
    uint64_t fresh = st.fresh;
    char *got[4];
    for (unsigned i = 0; i < 4; i++) {
        got[i] = zp_get(pool, x.size);
        cr_assert_not_null(got[i]);
        assert_zero(got[i], x.size);
        bool known = got[i] == x.late;
        for (unsigned k = 0; k < 3; k++)
            known |= got[i] == x.cached[k];
        cr_assert(known, "get %u returned a buffer the thread never had", i);
    }
    st = stats_of(pool);
    cr_assert_eq(st.fresh, fresh, "fresh went %llu -> %llu: the thread's buffers were lost",
                 (unsigned long long)fresh, (unsigned long long)st.fresh);
    for (unsigned i = 0; i < 4; i++)
        zp_put(pool, got[i]);
    zp_pool_destroy(pool);
}

/* ---- several pools ---- */

Test(core_threads, several_pools_own_caches)
{
    enum { NP = 6 };
    zp_config_t c = test_cfg(2, 4);
    zp_pool_t *pools[NP];
    for (unsigned i = 0; i < NP; i++)
        pools[i] = new_pool(&c);
    static const size_t sizes[] = { 64 * KiB, 96 * KiB, 256 * KiB, MiB };
    char *held[NP] = { 0 };
    uint64_t gets[NP] = { 0 };
    /* Round robin over 6 pools (more than the 4 TLS slots), and A/B alternation. */
    for (unsigned round = 0; round < 200; round++) {
        unsigned i = round < 100 ? round % NP : round % 2;
        zp_pool_t *pool = pools[i];
        char *p = zp_get(pool, sizes[round % 4]);
        cr_assert_not_null(p);
        gets[i]++;
        for (unsigned j = 0; j < NP; j++)
            cr_assert(zp_owns(pools[j], p) == (j == i), "round %u: buffer of pool %u owned by %u",
                      round, i, j);
        assert_zero(p, zp_capacity(pool, p));
        memset(p, (int)(i + 1), sizes[round % 4]);
        for (unsigned j = 0; j < NP; j++)
            cr_assert(!held[j] || held[j] != p);
        if (held[i])
            zp_put(pool, held[i]); /* keep one of each pool live while others are used */
        held[i] = p;
    }
    for (unsigned i = 0; i < NP; i++) {
        zp_put(pools[i], held[i]);
        zp_stats_t st = stats_of(pools[i]);
        cr_assert_eq(st.gets, gets[i], "pool %u: gets %llu, made %llu", i,
                     (unsigned long long)st.gets, (unsigned long long)gets[i]);
        cr_assert_eq(st.puts, st.gets, "pool %u", i);
        cr_assert_eq(st.misuse, 0, "pool %u", i);
        cr_assert_eq(st.live_bytes, 0, "pool %u", i);
        cr_assert_gt(st.pooled_bytes, 0, "pool %u: its free buffers were lost", i);
        cr_assert_leq(st.pooled_bytes, c.pool_bytes);
    }
    for (unsigned i = 0; i < NP; i++)
        zp_pool_destroy(pools[i]);
}

typedef struct user_ctx {
    zp_pool_t *pool;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int stage; /* 1: used the pool; 2: may exit */
} user_ctx_t;

static void *pool_user(void *arg)
{
    user_ctx_t *u = arg;
    char *p = zp_get(u->pool, 200 * KiB);
    p[0] = 1;
    zp_put(u->pool, p); /* stays in this thread's cache */
    pthread_mutex_lock(&u->lock);
    u->stage = 1;
    pthread_cond_broadcast(&u->cond);
    while (u->stage < 2)
        pthread_cond_wait(&u->cond, &u->lock);
    pthread_mutex_unlock(&u->lock);
    return NULL;
}

/* A pool used by this thread and by another one, destroyed before (odd rounds) or after
 * (even rounds) that thread exits with the pool's buffers in its cache. */
static void create_use_destroy(const zp_config_t *c, unsigned round)
{
    zp_pool_t *pool = zp_pool_new(c);
    cr_assert_not_null(pool);
    char *a = zp_get(pool, 100 * KiB), *b = zp_get(pool, 2 * MiB);
    cr_assert(a && b);
    a[0] = b[0] = 1;
    zp_put(pool, a);
    zp_put(pool, b);
    user_ctx_t u = { .pool = pool };
    pthread_mutex_init(&u.lock, NULL);
    pthread_cond_init(&u.cond, NULL);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, pool_user, &u), 0);
    pthread_mutex_lock(&u.lock);
    while (u.stage < 1)
        pthread_cond_wait(&u.cond, &u.lock);
    u.stage = 2;
    pthread_cond_broadcast(&u.cond);
    pthread_mutex_unlock(&u.lock);
    if (round % 2)
        zp_pool_destroy(pool);
    pthread_join(t, NULL);
    if (!(round % 2))
        zp_pool_destroy(pool);
    pthread_mutex_destroy(&u.lock);
    pthread_cond_destroy(&u.cond);
}

Test(core_threads, pool_destroy_new_no_leak)
{
    zp_config_t c = test_cfg(4, 4);
    /* Warm up: the address map's leaves, the cache allocator's first block and glibc's
     * cached thread stack stay. */
    for (unsigned i = 0; i < 4; i++)
        create_use_destroy(&c, i);
    maps_lines(); /* and the heap our own /proc readers use */
    status_kb("VmSize");
    unsigned maps0 = maps_lines();
    long vm0 = status_kb("VmSize");
    for (unsigned i = 0; i < 100; i++)
        create_use_destroy(&c, i);
    unsigned maps1 = maps_lines();
    long vm1 = status_kb("VmSize");
    cr_assert_leq(maps1, maps0 + 2, "mappings %u -> %u over 100 pools", maps0, maps1);
    /* AddressSanitizer keeps ~160 bytes per thread that ever ran: 100 threads here. */
    long slack = ZP_TEST_ASAN ? 64 : 0;
    cr_assert_leq(vm1, vm0 + slack, "VmSize %ld kB -> %ld kB over 100 pools", vm0, vm1);
}

/* ---- fork ---- */

typedef struct fork_ctx {
    zp_pool_t *pool;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int stage; /* 1: thread has cached buffers; 2: main says finish; 3: done */
    bool hammer;
    _Atomic bool stop;
    char *cached[3];
} fork_ctx_t;

static void *holder_thread(void *arg)
{
    fork_ctx_t *f = arg;
    for (unsigned i = 0; i < 3; i++) {
        f->cached[i] = zp_get(f->pool, 128 * KiB);
        memset(f->cached[i], 0x33, 128 * KiB);
    }
    for (unsigned i = 0; i < 3; i++)
        zp_put(f->pool, f->cached[i]);
    pthread_mutex_lock(&f->lock);
    f->stage = 1;
    pthread_cond_broadcast(&f->cond);
    while (f->stage < 2)
        pthread_cond_wait(&f->cond, &f->lock);
    pthread_mutex_unlock(&f->lock);
    /* After the forks: the cache still works in the parent. */
    for (unsigned i = 0; i < 10; i++) {
        char *p = zp_get(f->pool, 128 * KiB);
        if (!p || first_nonzero(p, 128 * KiB) != (size_t)-1)
            return (void *)1;
        p[5] = 5;
        zp_put(f->pool, p);
    }
    return NULL;
}

static int fork_child(void *arg)
{
    fork_ctx_t *f = arg;
    zp_stats_t st;
    zp_pool_stats(f->pool, &st);
    /* The other thread does not exist here, and it changed its cache without locks, so fork
     * may have caught it half-way: its cached buffers are not pooled again as they are. Their
     * memory went back to the kernel (whatever that thread wrote is gone) and their address
     * space is reused. */
    for (unsigned i = 0; i < 3; i++)
        CHILD_CHECK(resident_pages(f->cached[i], 128 * KiB) == 0);
    uint64_t reserved = st.reserved_bytes;
    char *p[3];
    for (unsigned i = 0; i < 3; i++) {
        p[i] = zp_get(f->pool, 128 * KiB);
        CHILD_CHECK(p[i] != NULL);
        CHILD_CHECK(first_nonzero(p[i], 128 * KiB) == (size_t)-1);
        memset(p[i], 0x44, 128 * KiB);
    }
    zp_pool_stats(f->pool, &st);
    CHILD_CHECK(st.reserved_bytes == reserved);
    for (unsigned i = 0; i < 3; i++)
        zp_put(f->pool, p[i]);
    char *q = zp_get(f->pool, 3 * MiB);
    CHILD_CHECK(q && first_nonzero(q, 3 * MiB) == (size_t)-1);
    zp_put(f->pool, q);
    zp_pool_stats(f->pool, &st);
    CHILD_CHECK(st.misuse == 0);
    return 0;
}

static void *hammer_thread(void *arg)
{
    fork_ctx_t *f = arg;
    unsigned i = 0;
    while (!atomic_load(&f->stop)) {
        char *p = zp_get(f->pool, (64 + 32 * (i++ % 8)) * KiB);
        if (p) {
            p[0] = 1;
            zp_put(f->pool, p);
        }
    }
    return NULL;
}

Test(core_threads, forked_child_uses_pool)
{
    zp_config_t c = test_cfg(4, 4);
    fork_ctx_t f = { .pool = new_pool(&c) };
    pthread_mutex_init(&f.lock, NULL);
    pthread_cond_init(&f.cond, NULL);
    pthread_t t, h;
    cr_assert_eq(pthread_create(&t, NULL, holder_thread, &f), 0);
    pthread_mutex_lock(&f.lock);
    while (f.stage < 1)
        pthread_cond_wait(&f.cond, &f.lock);
    pthread_mutex_unlock(&f.lock);
    char out[2048];
    int st = run_child(fork_child, &f, out, sizeof out);
    assert_exited_ok(st, out);
    /* Fork while another thread hammers the pool: locks held at fork time must not
     * deadlock the child (run_child's alarm turns a hang into a failure). */
    cr_assert_eq(pthread_create(&h, NULL, hammer_thread, &f), 0);
    for (unsigned i = 0; i < 20; i++) {
        st = run_child(fork_child, &f, out, sizeof out);
        assert_exited_ok(st, out);
    }
    atomic_store(&f.stop, true);
    pthread_join(h, NULL);
    /* The parent goes on: its own gets and the holder thread's cache still work. */
    char *p = zp_get(f.pool, 128 * KiB);
    cr_assert_not_null(p);
    assert_zero(p, 128 * KiB);
    zp_put(f.pool, p);
    pthread_mutex_lock(&f.lock);
    f.stage = 2;
    pthread_cond_broadcast(&f.cond);
    pthread_mutex_unlock(&f.lock);
    void *ret;
    pthread_join(t, &ret);
    cr_assert_null(ret, "the holder thread saw a bad buffer after the forks");
    zp_stats_t s = stats_of(f.pool);
    cr_assert_eq(s.gets, s.puts);
    cr_assert_eq(s.misuse, 0);
    zp_pool_destroy(f.pool);
}

/* ---- concurrency ----
 * 4 threads get and put random sizes; each buffer carries a stamp (thread, sequence) at its
 * start, middle and end, checked before the put; some buffers are handed to another thread
 * through a small locked queue and put there. A shared table of live buffers catches a buffer
 * handed out twice at the moment it happens. */
enum { NTHREADS = 4, OPS = 25000, QCAP = 8, LIVE_TABLE = 4096 };

typedef struct stamp {
    uint64_t magic, thread, seq, size;
} stamp_t;

static struct {
    zp_pool_t *pool;
    pthread_mutex_t qlock;
    char *q[QCAP];
    unsigned qn;
    pthread_mutex_t tlock;
    void *live[LIVE_TABLE];
    _Atomic unsigned errors;
    char why[256];
} cc;

static void cc_fail(const char *what, const void *p)
{
    if (atomic_fetch_add(&cc.errors, 1) == 0)
        snprintf(cc.why, sizeof cc.why, "%s (%p)", what, p);
}

static void live_add(void *p)
{
    size_t h = ((uintptr_t)p >> 12) % LIVE_TABLE;
    pthread_mutex_lock(&cc.tlock);
    for (unsigned k = 0; k < LIVE_TABLE; k++, h = (h + 1) % LIVE_TABLE) {
        if (cc.live[h] == p) {
            cc_fail("buffer handed out twice", p);
            break;
        }
        if (!cc.live[h]) {
            cc.live[h] = p;
            break;
        }
    }
    pthread_mutex_unlock(&cc.tlock);
}

static void live_remove(void *p)
{
    size_t h = ((uintptr_t)p >> 12) % LIVE_TABLE;
    pthread_mutex_lock(&cc.tlock);
    unsigned k;
    for (k = 0; k < LIVE_TABLE && cc.live[h] != p; k++)
        h = (h + 1) % LIVE_TABLE;
    if (k == LIVE_TABLE) {
        cc_fail("put of a buffer not live", p);
    } else { /* backward-shift delete keeps the probe chains intact */
        size_t i = h;
        cc.live[i] = NULL;
        for (size_t j = (i + 1) % LIVE_TABLE; cc.live[j]; j = (j + 1) % LIVE_TABLE) {
            size_t home = ((uintptr_t)cc.live[j] >> 12) % LIVE_TABLE;
            bool move = i <= j ? (home <= i || home > j) : (home <= i && home > j);
            if (move) {
                cc.live[i] = cc.live[j];
                cc.live[j] = NULL;
                i = j;
            }
        }
    }
    pthread_mutex_unlock(&cc.tlock);
}

static void stamp_write(char *p, size_t size, uint64_t t, uint64_t seq)
{
    stamp_t s = { 0x5a5a5a5a5a5a5a5aull, t, seq, size };
    memcpy(p, &s, sizeof s);
    memcpy(p + size / 2 - sizeof s / 2, &s, sizeof s);
    memcpy(p + size - sizeof s, &s, sizeof s);
}

static bool stamp_ok(const char *p, size_t size)
{
    stamp_t a, b, e;
    memcpy(&a, p, sizeof a);
    memcpy(&b, p + size / 2 - sizeof a / 2, sizeof b);
    memcpy(&e, p + size - sizeof a, sizeof e);
    return a.magic == 0x5a5a5a5a5a5a5a5aull && a.size == size && memcmp(&a, &b, sizeof a) == 0 &&
           memcmp(&a, &e, sizeof a) == 0;
}

static void cc_put(char *p)
{
    size_t size = zp_usable_size(cc.pool, p);
    if (!size) {
        cc_fail("a live buffer has no usable size", p);
        return;
    }
    if (!stamp_ok(p, size)) {
        cc_fail("stamp overwritten while the buffer was live", p);
        return;
    }
    live_remove(p);
    zp_put(cc.pool, p);
}

static void *cc_thread(void *arg)
{
    uint64_t t = (uint64_t)(uintptr_t)arg, seed = t * 7919 + 1;
    static const size_t sizes[] = { 64 * KiB, 72 * KiB, 100 * KiB, 200 * KiB, 512 * KiB, 3 * MiB };
    char *mine[16] = { 0 };
    for (uint64_t seq = 0; seq < OPS && !atomic_load(&cc.errors); seq++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        unsigned r = (unsigned)(seed >> 33), i = r % 16;
        if (mine[i]) {
            if (r & 0x100) { /* hand it to whichever thread takes it from the queue */
                pthread_mutex_lock(&cc.qlock);
                if (cc.qn < QCAP) {
                    cc.q[cc.qn++] = mine[i];
                    mine[i] = NULL;
                }
                pthread_mutex_unlock(&cc.qlock);
            }
            if (mine[i]) {
                cc_put(mine[i]);
                mine[i] = NULL;
            }
        } else {
            size_t size = sizes[(r >> 4) % 6] - (r >> 12) % 8192;
            char *p = zp_get(cc.pool, size);
            if (!p) {
                cc_fail("get failed", NULL);
                break;
            }
            live_add(p);
            /* Fresh from the pool: zero where the stamps go and at a few other places. */
            if (first_nonzero(p, 256) != (size_t)-1 || first_nonzero(p + size - 256, 256) != (size_t)-1 ||
                first_nonzero(p + size / 2 - 128, 256) != (size_t)-1)
                cc_fail("buffer not zero", p);
            stamp_write(p, size, t, seq);
            mine[i] = p;
        }
        if ((r & 0x3000) == 0) { /* take one from the queue and put it */
            char *p = NULL;
            pthread_mutex_lock(&cc.qlock);
            if (cc.qn)
                p = cc.q[--cc.qn];
            pthread_mutex_unlock(&cc.qlock);
            if (p)
                cc_put(p);
        }
    }
    for (unsigned i = 0; i < 16; i++)
        if (mine[i])
            cc_put(mine[i]);
    return NULL;
}

Test(core_threads, concurrent_stamped_get_put)
{
    zp_config_t c = test_cfg(4, 4);
    c.pool_bytes = 32 * MiB;
    c.max_pooled_size = 2 * MiB;
    cc.pool = new_pool(&c);
    pthread_mutex_init(&cc.qlock, NULL);
    pthread_mutex_init(&cc.tlock, NULL);
    pthread_t t[NTHREADS];
    for (uintptr_t i = 0; i < NTHREADS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, cc_thread, (void *)(i + 1)), 0);
    for (unsigned i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    cr_assert_eq(atomic_load(&cc.errors), 0, "%u errors, first: %s", atomic_load(&cc.errors), cc.why);
    while (cc.qn)
        cc_put(cc.q[--cc.qn]);
    cr_assert_eq(atomic_load(&cc.errors), 0, "%s", cc.why);
    for (unsigned i = 0; i < LIVE_TABLE; i++)
        cr_assert_null(cc.live[i], "buffer %p still live", cc.live[i]);
    zp_stats_t st = stats_of(cc.pool);
    cr_assert_eq(st.gets, st.puts, "gets %llu puts %llu", (unsigned long long)st.gets,
                 (unsigned long long)st.puts);
    cr_assert_eq(st.tls_hits + st.shard_hits + st.fresh + st.direct, st.gets);
    cr_assert_eq(st.live_bytes, 0);
    cr_assert_eq(st.misuse, 0);
    cr_assert_leq(st.pooled_bytes, c.pool_bytes);
    cr_assert_leq(st.peak_pooled_bytes, c.pool_bytes);
    zp_pool_destroy(cc.pool);
}

/* ---- thread caches for every thread ----
 * 32 threads, each reusing one buffer size, on a pool whose lease space (half of 16 MiB) would
 * hold only two caches at a fixed 4 MiB each. Leases follow what a cache holds, so each thread
 * leases one buffer's worth and hits its cache; a sampler checks the budget all along. */
#define LEASE_THREADS 32
#define LEASE_ITERS 2000

typedef struct lease_ctx {
    zp_pool_t *pool;
    size_t budget;
    pthread_barrier_t start;
    atomic_bool done;
    atomic_uint errors;
    uint64_t hits[LEASE_THREADS], gets[LEASE_THREADS];
    uint64_t worst_pooled;
} lease_ctx_t;

static lease_ctx_t lc;

/* A 16 MiB pool: half of it is lease space for the caches. */
static zp_config_t lease_cfg(unsigned shards, unsigned tls, size_t cache_bytes, size_t max_pooled)
{
    zp_config_t c = test_cfg(shards, tls);
    c.pool_bytes = 16 * MiB;
    c.tls_cache_bytes = cache_bytes;
    c.max_pooled_size = max_pooled;
    return c;
}

static void *lease_thread(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    size_t size = 64 * KiB + (id % 4) * 64 * KiB - (id % 3) * 1000;
    pthread_barrier_wait(&lc.start);
    for (unsigned i = 0; i < LEASE_ITERS; i++) {
        unsigned char *p = zp_get(lc.pool, size);
        if (!p || p[0] || p[size - 1] || p[size / 2]) {
            atomic_fetch_add(&lc.errors, 1);
            break;
        }
        p[0] = p[size / 2] = p[size - 1] = (unsigned char)(id + 1);
        zp_put(lc.pool, p);
    }
    zp_tcache_t *tc = zp_tcache_get(lc.pool);
    lc.hits[id] = tc ? tc->st.tls_hits : 0;
    lc.gets[id] = tc ? tc->st.gets : 0;
    pthread_barrier_wait(&lc.start); /* the caches stay until every thread has counted */
    return NULL;
}

static void *lease_sampler(void *arg)
{
    (void)arg;
    while (!atomic_load(&lc.done)) {
        zp_stats_t st = stats_of(lc.pool);
        if (st.pooled_bytes > lc.worst_pooled)
            lc.worst_pooled = st.pooled_bytes;
        sched_yield();
    }
    return NULL;
}

Test(core_threads, every_thread_gets_a_cache_at_32_threads)
{
    zp_config_t c = lease_cfg(4, 4, 4 * MiB, 4 * MiB);
    memset(&lc, 0, sizeof lc);
    lc.pool = new_pool(&c);
    lc.budget = c.pool_bytes;
    pthread_barrier_init(&lc.start, NULL, LEASE_THREADS);
    pthread_t t[LEASE_THREADS], sampler;
    cr_assert_eq(pthread_create(&sampler, NULL, lease_sampler, NULL), 0);
    for (uintptr_t i = 0; i < LEASE_THREADS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, lease_thread, (void *)i), 0);
    for (unsigned i = 0; i < LEASE_THREADS; i++)
        pthread_join(t[i], NULL);
    atomic_store(&lc.done, true);
    pthread_join(sampler, NULL);
    pthread_barrier_destroy(&lc.start);
    cr_assert_eq(atomic_load(&lc.errors), 0, "a buffer came back not zeroed");
    unsigned worst = 0;
    for (unsigned i = 0; i < LEASE_THREADS; i++) {
        cr_assert_eq(lc.gets[i], LEASE_ITERS);
        if (lc.hits[i] * lc.gets[worst] < lc.hits[worst] * lc.gets[i])
            worst = i;
    }
    cr_log_info("worst thread-cache hit rate at %u threads: %llu/%llu", LEASE_THREADS,
                (unsigned long long)lc.hits[worst], (unsigned long long)lc.gets[worst]);
    for (unsigned i = 0; i < LEASE_THREADS; i++)
        cr_assert_gt(lc.hits[i] * 10, lc.gets[i] * 9, "thread %u: %llu of %llu gets hit its cache",
                     i, (unsigned long long)lc.hits[i], (unsigned long long)lc.gets[i]);
    zp_stats_t st = stats_of(lc.pool);
    cr_assert_leq(lc.worst_pooled, c.pool_bytes, "pooled %llu > budget",
                  (unsigned long long)lc.worst_pooled);
    cr_assert_leq(st.peak_pooled_bytes, c.pool_bytes);
    cr_assert_leq(lc.pool->leased, lc.pool->lease_cap);
    cr_assert_eq(lc.pool->leased, 0, "exited threads kept %zu leased bytes", lc.pool->leased);
    zp_pool_destroy(lc.pool);
}

/* A cache that took the whole lease space gives back what it does not hold, and what it holds
 * beyond its share, once another cache is refused: on its next slow path. */
typedef struct giveback_ctx {
    zp_pool_t *pool;
    pthread_barrier_t step;
    uint64_t late_hits, late_gets;
} giveback_ctx_t;

static void *giveback_second(void *arg)
{
    giveback_ctx_t *g = arg;
    pthread_barrier_wait(&g->step); /* the first thread holds the lease space */
    char *p = zp_get(g->pool, 64 * KiB);
    zp_put(g->pool, p); /* refused: the pool asks the caches for spare lease */
    pthread_barrier_wait(&g->step);
    pthread_barrier_wait(&g->step); /* the first thread took a slow path */
    zp_tcache_t *tc = zp_tcache_get(g->pool);
    uint64_t h0 = tc->st.tls_hits, g0 = tc->st.gets;
    for (unsigned i = 0; i < 100; i++) {
        p = zp_get(g->pool, 64 * KiB);
        p[0] = 1;
        zp_put(g->pool, p);
    }
    g->late_hits = tc->st.tls_hits - h0;
    g->late_gets = tc->st.gets - g0;
    return NULL;
}

Test(core_threads, refused_lease_makes_others_give_back)
{
    zp_config_t c = lease_cfg(1, 8, 8 * MiB, 2 * MiB);
    giveback_ctx_t g = { .pool = new_pool(&c) };
    pthread_barrier_init(&g.step, NULL, 2);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, giveback_second, &g), 0);
    char *b[4];
    for (unsigned i = 0; i < 4; i++)
        b[i] = zp_get(g.pool, 2 * MiB);
    for (unsigned i = 0; i < 4; i++)
        zp_put(g.pool, b[i]);
    zp_tcache_t *tc = zp_tcache_get(g.pool);
    cr_assert_eq(tc->bytes, 8 * MiB, "the first cache holds %zu bytes", tc->bytes);
    cr_assert_eq(g.pool->leased, g.pool->lease_cap);
    pthread_barrier_wait(&g.step);
    pthread_barrier_wait(&g.step);
    cr_assert_neq(atomic_load(&g.pool->lease_gen), tc->lease_gen, "the refusal was not signalled");
    char *q = zp_get(g.pool, 256 * KiB); /* a miss: the slow path fits the lease to the share */
    cr_assert_leq(tc->limit, 4 * MiB, "the first cache still leases %zu bytes", tc->limit);
    cr_assert_eq(tc->limit, tc->bytes);
    pthread_barrier_wait(&g.step);
    pthread_join(t, NULL);
    cr_assert_geq(g.late_hits, 99, "the second thread hit its cache %llu times of %llu",
                  (unsigned long long)g.late_hits, (unsigned long long)g.late_gets);
    zp_put(g.pool, q);
    zp_stats_t st = stats_of(g.pool);
    cr_assert_leq(st.peak_pooled_bytes, c.pool_bytes);
    pthread_barrier_destroy(&g.step);
    zp_pool_destroy(g.pool);
}
