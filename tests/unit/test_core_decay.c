/* Unit tests of free memory given back: free buffers in shards past the pool's hot allowance
 * (hot_bytes) hand their pages to the kernel lazily (MADV_FREE: it may take them, and
 * they read as zero either way), and buffers idle longer than the decay time are released at
 * the next slow operation, thread caches of idle threads included. */
#include "core_test_util.h"
#include "zp_config_map.h"
#include "zp_options.h"

#include <limits.h>
#include <time.h>

static void sleep_ms(unsigned ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* "LazyFree:" of /proc/self/smaps_rollup, in bytes: pages MADV_FREE'd and not yet reused. */
static size_t lazyfree_bytes(void)
{
    char *s = read_proc("/proc/self/smaps_rollup");
    char *l = strstr(s, "LazyFree:");
    size_t v = l ? strtoull(l + 9, NULL, 10) << 10 : 0;
    free(s);
    return v;
}

Test(core_decay, hot_allowance_defaults)
{
    zp_config_t c = test_cfg(1, 0);
    c.pool_bytes = 32 * MiB;
    zp_pool_t *pool = new_pool(&c);
    zp_config_t got;
    zp_pool_config(pool, &got);
    cr_assert_eq(got.hot_bytes, 8 * MiB, "a quarter of the budget: %zu", got.hot_bytes);
    zp_pool_destroy(pool);
    /* From the options: within 1/64 of the memory limit (a 250 MiB cgroup, budget forced). */
    zp_autoconf_t ac;
    zp_autoconf_compute(2, 250 * MiB, &ac);
    zp_options_t o;
    zp_options_defaults(&o, &ac);
    o.pool_bytes = 256 * MiB;
    zp_config_from_options(&c, &o);
    cr_assert_eq(c.hot_bytes, 250 * MiB / 64);
}

Test(core_decay, past_the_hot_allowance_pages_go_lazy)
{
    zp_config_t c = test_cfg(1, 0);
    c.hot_bytes = 2 * MiB;
    zp_pool_t *pool = new_pool(&c);
    char *p[6];
    for (unsigned i = 0; i < 6; i++) {
        p[i] = zp_get(pool, MiB);
        memset(p[i], 0x5C, MiB);
    }
    size_t lazy0 = lazyfree_bytes();
    for (unsigned i = 0; i < 6; i++)
        zp_put(pool, p[i]);
    unsigned lazy = 0;
    for (unsigned i = 0; i < 6; i++)
        lazy += (slot_of(p[i])->flags & ZP_SF_LAZY) != 0;
    cr_assert_eq(lazy, 4, "%u of 6 free 1 MiB buffers lazy; the 2 MiB allowance keeps 2", lazy);
    /* (less a few pages still in the kernel's per-CPU batches) */
    cr_assert_geq(lazyfree_bytes() - lazy0, 4 * MiB - 256 * KiB,
                  "the kernel does not see 4 MiB to take: %zu KiB", (lazyfree_bytes() - lazy0) >> 10);
    /* Reused: zero (the scrub's zeros, or the kernel's), and resident again once written. */
    for (unsigned i = 0; i < 6; i++) {
        char *q = zp_get(pool, MiB);
        assert_zero(q, MiB);
        memset(q, 0x33, MiB);
        p[i] = q;
    }
    for (unsigned i = 0; i < 6; i++)
        zp_put(pool, p[i]);
    for (unsigned i = 0; i < 6; i++) {
        char *q = zp_get(pool, MiB);
        assert_zero(q, MiB);
        zp_put(pool, q);
    }
    zp_pool_destroy(pool);
}

/* A lazy buffer whose pages the kernel took (MADV_DONTNEED stands in for reclaim): its next
 * use writes a few pages; the put scrubs those and faults none of the others back in. */
Test(core_decay, reclaimed_lazy_buffer_is_not_faulted_back_in)
{
    zp_config_t c = test_cfg(1, 0);
    c.hot_bytes = MiB;
    zp_pool_t *pool = new_pool(&c);
    size_t n = 4 * MiB;
    char *p = zp_get(pool, n);
    memset(p, 0x77, n);
    zp_put(pool, p);
    cr_assert_neq(slot_of(p)->flags & ZP_SF_LAZY, 0);
    cr_assert_eq(madvise(p, n, MADV_DONTNEED), 0); /* what reclaim leaves */
    cr_assert_eq(zp_get(pool, n), p);
    assert_zero(p + 8192, 4096);
    p[0] = 1, p[n - 1] = 2;
    zp_put(pool, p);
    cr_assert_leq(resident_pages(p, n), 3, "the put faulted %zu pages in to scrub them",
                  resident_pages(p, n));
    cr_assert_eq(first_nonzero_resident(p, n), (size_t)-1);
    zp_pool_destroy(pool);
}

/* Free buffers idle past the decay time are released at the next slow operation. */
Test(core_decay, idle_buffers_released_after_the_decay_time)
{
    zp_config_t c = test_cfg(1, 0);
    c.decay_ms = 100;
    zp_pool_t *pool = new_pool(&c);
    char *p = zp_get(pool, 2 * MiB), *q = zp_get(pool, 3 * MiB);
    memset(p, 1, 2 * MiB);
    memset(q, 1, 3 * MiB);
    zp_put(pool, p);
    zp_put(pool, q);
    cr_assert_eq(stats_of(pool).pooled_bytes, 5 * MiB);
    zp_put(pool, zp_get(pool, 100 * KiB)); /* before the decay time: nothing goes */
    cr_assert_geq(resident_pages(p, 2 * MiB), 512);
    sleep_ms(250);
    zp_put(pool, zp_get(pool, 200 * KiB)); /* a slow operation: the sweep */
    cr_assert_eq(resident_pages(p, 2 * MiB), 0, "an idle free buffer kept its pages");
    cr_assert_eq(resident_pages(q, 3 * MiB), 0);
    cr_assert_lt(stats_of(pool).pooled_bytes, MiB, "pooled %llu",
                 (unsigned long long)stats_of(pool).pooled_bytes);
    char *r = zp_get(pool, 2 * MiB);
    assert_zero(r, 2 * MiB);
    zp_put(pool, r);
    zp_pool_destroy(pool);
}

/* A thread back after an idle time: its cache's buffers were idle as long, and go. */
Test(core_decay, idle_thread_cache_released)
{
    zp_config_t c = test_cfg(1, 4);
    c.decay_ms = 100;
    zp_pool_t *pool = new_pool(&c);
    char *p = zp_get(pool, MiB), *r = zp_get(pool, 300 * KiB); /* r: its span carved now */
    memset(p, 1, MiB);
    zp_put(pool, p);
    cr_assert_eq(slot_of(p)->state, ZP_SLOT_CACHED);
    sleep_ms(250);
    char *q = zp_get(pool, 300 * KiB); /* a slow operation, from r's span */
    cr_assert_eq(slot_of(p)->state, ZP_SLOT_EMPTY, "the idle thread's cached buffer stayed");
    cr_assert_eq(resident_pages(p, MiB), 0, "the idle thread's cached buffer kept its pages");
    zp_put(pool, q);
    zp_put(pool, r);
    zp_pool_destroy(pool);
}

/* decay_ms UINT_MAX (ZEROPOOL_DECAY=0): never. */
Test(core_decay, never_decays_when_off)
{
    zp_config_t c = test_cfg(1, 0);
    c.decay_ms = UINT_MAX;
    zp_pool_t *pool = new_pool(&c);
    char *p = zp_get(pool, MiB);
    memset(p, 1, MiB);
    zp_put(pool, p);
    sleep_ms(150);
    zp_put(pool, zp_get(pool, 100 * KiB));
    cr_assert_eq(resident_pages(p, MiB), 256);
    zp_pool_destroy(pool);
}
