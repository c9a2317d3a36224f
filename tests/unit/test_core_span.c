/* Core unit tests for the pool's footprint and working set: limits that follow the byte
 * budget, resident memory reused across size classes, address space reserved in steps and
 * given back when reservations fail or spans stay empty. */
#include "core_test_util.h"

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
