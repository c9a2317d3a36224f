/* Core unit tests for the pool's footprint and working set: limits that follow the byte
 * budget, resident memory reused across size classes, address space reserved in steps and
 * given back when reservations fail or spans stay empty. */
#include "core_test_util.h"

#include <pthread.h>
#include <sys/resource.h>

/* ---- a service's working set ---- */

/* A server keeping 50 buffers of 100 KB in flight (redis GETs at 50 clients): once warm, a
 * request neither evicts (madvise) nor takes a fresh buffer (page faults), with defaults. */
Test(core_span, working_set_of_50_buffers_steady)
{
    enum { N = 50 };
    zp_pool_t *pool = new_pool(NULL);
    void *b[N];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++)
            cr_assert_not_null(b[i] = zp_get(pool, 100 * 1000));
        for (int i = 0; i < N; i++)
            zp_put(pool, b[i]);
    }
    zp_stats_t w = stats_of(pool);
    uint64_t seed = 1;
    for (int round = 0; round < 200; round++) {
        for (int i = 0; i < N; i++) {
            cr_assert_not_null(b[i] = zp_get(pool, 100 * 1000));
            memset(b[i], 0x5A, 100 * 1000);
        }
        for (int i = N - 1; i > 0; i--) { /* frees in another order than the gets */
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            int j = (int)((seed >> 33) % (uint64_t)(i + 1));
            void *t = b[i];
            b[i] = b[j];
            b[j] = t;
        }
        for (int i = 0; i < N; i++)
            zp_put(pool, b[i]);
    }
    zp_stats_t e = stats_of(pool);
    cr_expect_eq(e.evictions - w.evictions, 0, "%llu evictions after warm-up",
                 (unsigned long long)(e.evictions - w.evictions));
    cr_expect_eq(e.fresh - w.fresh, 0, "%llu fresh buffers after warm-up",
                 (unsigned long long)(e.fresh - w.fresh));
    cr_expect_eq(e.bytes_dropped - w.bytes_dropped, 0, "%llu bytes dropped after warm-up",
                 (unsigned long long)(e.bytes_dropped - w.bytes_dropped));
    zp_pool_destroy(pool);
}

/* ---- address space given back ---- */

/* Under a tight RLIMIT_AS, after 16 MiB buffers filled the address space and were all put
 * back, a size never asked before must still be served: the spans kept for 16 MiB go back. */
static int other_class_child(void *arg)
{
    (void)arg;
    zp_config_t c = test_cfg(2, 2);
    zp_pool_t *pool = zp_pool_new(&c);
    CHILD_CHECK(pool != NULL);
    zp_put(pool, zp_get(pool, 1 * MiB));
    size_t vm = (size_t)status_kb("VmSize") * KiB;
    struct rlimit rl = { vm + 512 * MiB, vm + 512 * MiB };
    CHILD_CHECK(setrlimit(RLIMIT_AS, &rl) == 0);
    static void *b[1000];
    int n = 0;
    while (n < 1000 && (b[n] = zp_get(pool, 16 * MiB)) != NULL)
        memset(b[n++], 0x77, 4096);
    CHILD_CHECK(n >= 8);
    for (int i = 0; i < n; i++)
        zp_put(pool, b[i]);
    unsigned char *p = zp_get(pool, 40 * MiB);
    if (!p)
        dprintf(2, "40 MiB after %d x 16 MiB: NULL, errno %d\n", n, errno);
    CHILD_CHECK(p != NULL);
    CHILD_CHECK(p[0] == 0 && p[40 * MiB - 1] == 0);
    memset(p, 1, 40 * MiB);
    zp_put(pool, p);
    /* And back: 16 MiB buffers again, as many as before less what 40 MiB keeps. */
    int m = 0;
    while (m < n && (b[m] = zp_get(pool, 16 * MiB)) != NULL)
        m++;
    CHILD_CHECK(m >= n - 4);
    for (int i = 0; i < m; i++)
        zp_put(pool, b[i]);
    zp_pool_destroy(pool);
    /* Every range was unmapped once: what the pool reserved is back, nothing else went. */
    CHILD_CHECK((size_t)status_kb("VmSize") * KiB <= vm);
    return 0;
}

Test(core_span, other_class_after_address_space_runs_out)
{
    if (ZP_TEST_ASAN)
        cr_skip_test("AddressSanitizer's shadow memory does not fit under RLIMIT_AS");
    char out[4096];
    int st = run_child(other_class_child, NULL, out, sizeof out);
    assert_exited_ok(st, out);
}

/* A service whose size mix drifts: address space kept for sizes no longer used goes back, so
 * the reservation follows the live working set instead of the sum of every size ever used. */
Test(core_span, address_space_follows_size_mix)
{
    zp_config_t c = test_cfg(1, 0);
    c.pool_bytes = 8 * MiB;
    zp_pool_t *pool = new_pool(&c);
    enum { LIVE = 6, MIXES = 24 };
    size_t first = zp_class_index(256 * KiB, pool->page_shift), peak = 0, live_peak = 0;
    void *b[LIVE];
    for (unsigned m = 0; m < MIXES; m++) {
        size_t sz[2] = { zp_class_bytes((unsigned)(first + m), pool->page_shift),
                         zp_class_bytes((unsigned)(first + m + 1), pool->page_shift) };
        size_t live = 0;
        for (unsigned r = 0; r < 20; r++) {
            live = 0;
            for (unsigned i = 0; i < LIVE; i++) {
                cr_assert_not_null(b[i] = zp_get(pool, sz[(i + r) & 1]));
                ((char *)b[i])[0] = 1;
                live += sz[(i + r) & 1];
            }
            for (unsigned i = 0; i < LIVE; i++)
                zp_put(pool, b[i]);
        }
        size_t res = stats_of(pool).reserved_bytes;
        if (m >= MIXES / 2 && res > peak)
            peak = res;
        if (live > live_peak)
            live_peak = live;
    }
    size_t total = 0;
    for (unsigned k = 0; k <= MIXES; k++)
        total += zp_class_bytes((unsigned)(first + k), pool->page_shift);
    cr_log_info("reserved peak %zu MiB in the second half; live peak %zu MiB; sizes used %zu MiB",
                peak >> 20, live_peak >> 20, total >> 20);
    /* What the live set, the budget and a chunk step need, not four of every size used. */
    cr_expect_leq(peak, 4 * (live_peak + c.pool_bytes), "reserved %zu MiB for a live peak of "
                  "%zu MiB", peak >> 20, live_peak >> 20);
    zp_pool_destroy(pool);
}

/* Buffers one thread frees go to its own shard; malloc_trim (zp_pool_trim) turns every free
 * buffer into an evicted slot, memory dropped, address space kept. The thread that allocates
 * next, with another home shard, must reuse those slots rather than reserve new ones, or the
 * reservation grows every round while the live set stays the same (the soak saw VmSize climb
 * from 0.8 to 1.2 GB this way). */
typedef struct putter {
    zp_pool_t *pool;
    void **b;
    int n;
    unsigned not_shard;
    bool done;
} putter_t;

static void *put_from_other_shard(void *arg)
{
    putter_t *p = arg;
    if (zp_thread_shard(p->pool) == p->not_shard)
        return NULL; /* same shard as the allocating thread: let another thread do it */
    for (int i = 0; i < p->n; i++)
        zp_put(p->pool, p->b[i]);
    p->done = true;
    return NULL;
}

Test(core_span, evicted_slots_of_other_shards_reused)
{
    zp_config_t c = test_cfg(4, 0);
    zp_pool_t *pool = new_pool(&c);
    enum { N = 16, ROUNDS = 12 };
    void *b[N];
    size_t after_first = 0;
    for (int round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < N; i++) {
            cr_assert_not_null(b[i] = zp_get(pool, 1 * MiB));
            memset(b[i], 0x33, 4096);
        }
        putter_t p = { .pool = pool, .b = b, .n = N, .not_shard = zp_thread_shard(pool) };
        for (int t = 0; t < 256 && !p.done; t++) {
            pthread_t th;
            cr_assert_eq(pthread_create(&th, NULL, put_from_other_shard, &p), 0);
            pthread_join(th, NULL);
        }
        cr_assert(p.done, "no thread of 256 had another home shard");
        zp_pool_trim(pool);
        if (round == 0)
            after_first = stats_of(pool).reserved_bytes;
    }
    size_t end = stats_of(pool).reserved_bytes;
    cr_log_info("reserved after the first round %zu MiB, after %d rounds %zu MiB",
                after_first >> 20, ROUNDS, end >> 20);
    cr_expect_leq(end, after_first, "reserved grew from %zu to %zu MiB for %d live MiB",
                 after_first >> 20, end >> 20, N);
    zp_pool_destroy(pool);
}

/* ---- resident memory reused across sizes ---- */

/* A miss in one class is served by a free, resident, scrubbed buffer of a larger class (at
 * most twice the size) before any fresh page is faulted in; the waste bound holds. */
Test(core_span, miss_served_by_larger_resident_buffer)
{
    zp_config_t c = test_cfg(1, 0);
    zp_pool_t *pool = new_pool(&c);
    char *big = zp_get(pool, 12 * MiB);
    cr_assert_not_null(big);
    memset(big, 0xA5, 12 * MiB);
    zp_put(pool, big);
    uint64_t fresh = stats_of(pool).fresh;
    char *p = zp_get(pool, 7 * MiB);
    cr_assert_eq((uintptr_t)p & ~(uintptr_t)(page_size() - 1), (uintptr_t)big,
                 "a 7 MiB miss should reuse the free 12 MiB buffer");
    cr_assert_eq(stats_of(pool).fresh, fresh);
    cr_assert_eq(first_nonzero(big, 12 * MiB), SIZE_MAX, "the reused buffer is not zero");
    cr_assert_eq(zp_usable_size(pool, p), 7 * MiB);
    memset(p, 0x5A, 7 * MiB);
    zp_put(pool, p);
    /* More than twice the size: a fresh buffer, not the 12 MiB one. */
    char *q = zp_get(pool, 5 * MiB);
    cr_assert_neq(q, big);
    cr_assert_eq(stats_of(pool).fresh, fresh + 1);
    zp_put(pool, q);
    /* The 12 MiB buffer went back to its own class, whole and zero. */
    char *r = zp_get(pool, 12 * MiB);
    cr_assert_eq(r, big);
    cr_assert_eq(first_nonzero(r, 12 * MiB), SIZE_MAX);
    zp_put(pool, r);
    zp_pool_destroy(pool);
}

/* A resident buffer small enough to sit in a cache (up to 2 MiB) is scrubbed by stores
 * without being read first: a memset of cached lines costs less than reading them (1 MiB:
 * 21 us against 28 us; 2 MiB: 42 against 85), and calloc of 1 MiB then free spent most of its
 * time reading. Every byte is still zero afterwards. */
Test(core_span, cached_buffer_written_not_read)
{
    zp_config_t c = test_cfg(1, 0);
    zp_pool_t *pool = new_pool(&c);
    static const size_t sizes[] = { MiB, 2 * MiB };
    for (unsigned k = 0; k < 2; k++) {
        size_t n = sizes[k];
        char *p = zp_get(pool, n);
        memset(p, 0x11, n);
        zp_put(pool, p); /* first put: fully resident from now on */
        for (unsigned i = 0; i < 3; i++) {
            char *q = zp_get(pool, n);
            cr_assert_eq(q, p);
            q[4096 * i] = 1;
            uint64_t before = stats_of(pool).bytes_scrubbed;
            zp_put(pool, q);
            cr_expect_eq(stats_of(pool).bytes_scrubbed - before, n, "%zu: put %u stored %llu bytes",
                         n, i, (unsigned long long)(stats_of(pool).bytes_scrubbed - before));
        }
        cr_assert_eq(zp_get(pool, n), p);
        cr_assert_eq(first_nonzero(p, n), SIZE_MAX);
        zp_put(pool, p);
    }
    zp_pool_destroy(pool);
}

/* A resident buffer the program filled with zeros costs a read, not a second pass of stores;
 * one non-zero byte anywhere in it is still found and zeroed. */
Test(core_span, zero_filled_buffer_not_rewritten)
{
    zp_config_t c = test_cfg(1, 0);
    zp_pool_t *pool = new_pool(&c);
    size_t n = 4 * MiB;
    char *p = zp_get(pool, n);
    memset(p, 0x11, n);
    zp_put(pool, p); /* first put: fully resident from now on */
    for (unsigned i = 0; i < 4; i++) {
        cr_assert_eq(zp_get(pool, n), p);
        memset(p, 0, n);
        uint64_t before = stats_of(pool).bytes_scrubbed;
        zp_put(pool, p);
        cr_expect_eq(stats_of(pool).bytes_scrubbed, before, "put %u stored %llu bytes", i,
                     (unsigned long long)(stats_of(pool).bytes_scrubbed - before));
    }
    static const size_t at[] = { 0, 16 * KiB - 1, 3 * MiB + 12345, 4 * MiB - 1 };
    for (unsigned i = 0; i < sizeof at / sizeof at[0]; i++) {
        cr_assert_eq(zp_get(pool, n), p);
        cr_assert_eq(first_nonzero(p, n), SIZE_MAX);
        p[at[i]] = 0x7F;
        zp_put(pool, p);
    }
    cr_assert_eq(zp_get(pool, n), p);
    cr_assert_eq(first_nonzero(p, n), SIZE_MAX, "a byte written before the put survived");
    zp_put(pool, p);
    zp_pool_destroy(pool);
}

/* A live set that shrinks gives its address space back: a big one freed but for the buffers
 * allocated first (a program's long-lived ones), then two of malloc_trim's zp_pool_trim, or
 * of the decay sweeps, leave the reservation near what is still live. (A span is given back whole: one
 * live buffer keeps its span, up to ZP_SPAN_TARGET of address space.) */
static void live_set_shrinks(zp_pool_t *pool, bool by_decay)
{
    enum { N = 4000 };
    static char *v[N];
    uint64_t seed = 42;
    for (unsigned i = 0; i < N; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        size_t n = 64 * KiB + (size_t)(seed >> 33) % (MiB - 64 * KiB);
        v[i] = zp_get(pool, n);
        cr_assert_not_null(v[i]);
        v[i][0] = 1; /* one page each: address space, not memory, is what this is about */
    }
    uint64_t big = stats_of(pool).reserved_bytes;
    cr_assert_gt(big, (uint64_t)N * 64 * KiB);
    for (unsigned i = N / 100; i < N; i++)
        zp_put(pool, v[i]);
    if (by_decay) {
        for (unsigned k = 0; k < 6; k++) {
            struct timespec ts = { 0, 60 * 1000000L };
            nanosleep(&ts, NULL);
            zp_put(pool, zp_get(pool, 70 * KiB + k * 8 * KiB)); /* a slow operation */
        }
    } else {
        zp_pool_trim(pool);
        zp_pool_trim(pool); /* empty at two sweeps in a row */
    }
    uint64_t left = stats_of(pool).reserved_bytes;
    cr_assert_lt(left, big / 8, "%s: %llu MiB of %llu MiB still reserved for 1%% of the buffers",
                 by_decay ? "decay" : "trim", (unsigned long long)(left >> 20),
                 (unsigned long long)(big >> 20));
    for (unsigned i = 0; i < N / 100; i++) {
        cr_assert_eq(zp_check(pool, v[i], NULL), ZP_MISUSE_NONE, "a live buffer lost");
        cr_assert_eq(v[i][0], 1);
        zp_put(pool, v[i]);
    }
}

Test(core_span, address_space_given_back_by_trim)
{
    zp_config_t c = test_cfg(4, 4);
    zp_pool_t *pool = new_pool(&c);
    live_set_shrinks(pool, false);
    zp_pool_destroy(pool);
}

Test(core_span, address_space_given_back_by_decay)
{
    zp_config_t c = test_cfg(4, 4);
    c.decay_ms = 40;
    zp_pool_t *pool = new_pool(&c);
    live_set_shrinks(pool, true);
    zp_pool_destroy(pool);
}
