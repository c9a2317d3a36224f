/* Unit tests of scrubbing pages the kernel swapped out. mincore calls a swapped-out page not
 * resident, exactly like a page never written; the platform layer's ZP_OS_RESIDENT injection
 * makes the residency query say so of written pages, and every byte must still come back zero,
 * the live part of a shrunk buffer must survive, and the slack check must not report an
 * overflow that did not happen. tests/swap/ does the same with real swap. */
#include "core_test_util.h"

static zp_pool_t *swap_pool(misuse_log_t *log)
{
    zp_config_t c = test_cfg(1, 0);
    c.pin = false; /* pinned buffers cannot be swapped, and are scrubbed by memset */
    zp_pool_t *pool = new_pool(&c);
    if (log) {
        memset(log, 0, sizeof *log);
        zp_pool_set_misuse_handler(pool, misuse_record, log);
    }
    return pool;
}

/* The buffer's next put goes through the residency query, not the memset of a buffer known
 * resident: otherwise these tests would pass without looking at swap at all. */
static void assert_uses_residency(const void *p)
{
    cr_assert_eq(slot_of(p)->flags & ZP_SF_RESIDENT, 0,
                 "the pool knows %p resident: the test would not exercise the residency path", p);
}

/* Put p (n bytes, written) while the residency query calls every page not resident and, if
 * drop_err, every drop fails with it; get the same buffer back and check it is zero. */
static void put_swapped_get_zero(zp_pool_t *pool, char *p, size_t n, int drop_err)
{
    zp_os_inject(ZP_OS_RESIDENT, 0, 1000, 0);
    if (drop_err)
        zp_os_inject(ZP_OS_DROP, 0, 1000, drop_err);
    zp_put(pool, p);
    zp_os_inject_clear();
    char *q = zp_get(pool, n);
    cr_assert_eq(q, p, "a different buffer came back: the test could not check the scrub");
    assert_zero(q, zp_capacity(pool, q));
}

/* Every page written, every page "swapped out" at the free: all of it must read zero. */
Test(core_swap, swapped_dense_buffer_comes_back_zero)
{
    misuse_log_t log;
    zp_pool_t *pool = swap_pool(&log);
    char *p = zp_get(pool, MiB);
    cr_assert_not_null(p);
    memset(p, 0x5A, MiB);
    assert_uses_residency(p);
    put_swapped_get_zero(pool, p, MiB, 0);
    zp_put(pool, p);
    cr_assert_eq(log.n, 0, "%u misuse reports", log.n);
    zp_pool_destroy(pool);
}

/* 16 MiB with a few pages written far apart (the sparse case the scrub is tuned for). */
Test(core_swap, swapped_sparse_buffer_comes_back_zero)
{
    zp_pool_t *pool = swap_pool(NULL);
    size_t n = 16 * MiB, pg = page_size();
    char *p = zp_get(pool, n);
    cr_assert_not_null(p);
    static const size_t at[] = { 0, 3 * MiB + 5, 8 * MiB - 1, 16 * MiB - 4096 };
    for (unsigned i = 0; i < 4; i++)
        memset(p + (at[i] & ~(pg - 1)), 0x6B, pg);
    assert_uses_residency(p);
    put_swapped_get_zero(pool, p, n, 0);
    zp_put(pool, p);
    zp_pool_destroy(pool);
}

/* A buffer known resident (scrubbed by memset) that was swapped out since: still zero. */
Test(core_swap, swapped_known_resident_buffer_comes_back_zero)
{
    zp_pool_t *pool = swap_pool(NULL);
    char *p = zp_get(pool, MiB);
    memset(p, 0x11, MiB);
    zp_put(pool, p);
    p = zp_get(pool, MiB);
    memset(p, 0x22, MiB);
    cr_assert_neq(slot_of(p)->flags & ZP_SF_RESIDENT, 0, "the pool should know %p resident", p);
    put_swapped_get_zero(pool, p, MiB, 0);
    zp_put(pool, p);
    zp_pool_destroy(pool);
}

static char pattern(size_t i)
{
    return (char)((i * 7 + 1) | 1); /* never zero */
}

/* An in-place shrink whose dropped tail is swapped out: the tail is scrubbed (so the slack
 * check at the free finds zeros, not stale bytes read back from swap: no false "overflow"),
 * and the bytes the program keeps, including those sharing the tail's first page, survive. */
Test(core_swap, shrink_with_swapped_tail_keeps_data_and_reports_no_overflow)
{
    static const size_t keep[] = { 100000 + 13, 4096, 300 * KiB - 1, 65536 + 4095 };
    for (unsigned k = 0; k < 4; k++) {
        misuse_log_t log;
        zp_pool_t *pool = swap_pool(&log);
        char *p = zp_get(pool, MiB);
        cr_assert_not_null(p);
        for (size_t i = 0; i < MiB; i++)
            p[i] = pattern(i);
        assert_uses_residency(p);
        zp_os_inject(ZP_OS_RESIDENT, 0, 1000, 0);
        cr_assert(zp_resize(pool, p, keep[k]));
        zp_os_inject_clear();
        for (size_t i = 0; i < keep[k]; i++)
            cr_assert_eq(p[i], pattern(i), "kept byte %zu of %zu lost", i,
                         keep[k]);
        assert_zero(p + keep[k], MiB - keep[k]);
        zp_put(pool, p);
        cr_assert_eq(log.n, 0, "keep %zu: %u misuse report(s), the first: %s", keep[k], log.n,
                     log.n ? zp_misuse_name(log.kind[0]) : "");
        char *q = zp_get(pool, MiB);
        cr_assert_eq(q, p);
        assert_zero(q, MiB);
        zp_put(pool, q);
        zp_pool_destroy(pool);
    }
}

/* The residency query fails: scrub as if every page were resident. */
Test(core_swap, residency_query_failure_scrubs_everything)
{
    zp_pool_t *pool = swap_pool(NULL);
    char *p = zp_get(pool, 2 * MiB);
    memset(p, 0x33, 2 * MiB);
    assert_uses_residency(p);
    zp_os_inject(ZP_OS_RESIDENT, 0, 1000, ENOMEM);
    zp_put(pool, p);
    zp_os_inject_clear();
    char *q = zp_get(pool, 2 * MiB);
    cr_assert_eq(q, p);
    assert_zero(q, 2 * MiB);
    zp_put(pool, q);
    zp_pool_destroy(pool);
}

/* Pages "swapped out" and the drop that would free them failing too (MADV_DONTNEED fails
 * with EINVAL on mlocked pages): the scrub falls back to stores, never to skipping. */
Test(core_swap, swapped_and_drop_fails_still_zero)
{
    zp_pool_t *pool = swap_pool(NULL);
    char *p = zp_get(pool, MiB);
    memset(p, 0x44, MiB);
    assert_uses_residency(p);
    put_swapped_get_zero(pool, p, MiB, EINVAL);
    zp_put(pool, p);
    zp_pool_destroy(pool);
}

/* The program mlocked a pool buffer itself and frees it locked: the real MADV_DONTNEED fails
 * with EINVAL, and the buffer must still come back zero. */
Test(core_swap, program_locked_buffer_still_zero)
{
    zp_pool_t *pool = swap_pool(NULL);
    char *p = zp_get(pool, MiB);
    memset(p, 0x55, MiB);
    if (mlock(p, MiB) != 0) {
        zp_put(pool, p);
        zp_pool_destroy(pool);
        cr_skip_test("mlock of 1 MiB failed (%s): RLIMIT_MEMLOCK", strerror(errno));
    }
    assert_uses_residency(p);
    put_swapped_get_zero(pool, p, MiB, 0);
    munlock(p, MiB);
    zp_put(pool, p);
    zp_pool_destroy(pool);
}

/* Residency split into many runs (every third page written, the rest "swapped out" or never
 * written): past the limit of one drop a run, the scrub drops the chunk whole. The buffer
 * must come back zero either way, and the live bytes of a shrunk one must survive. */
Test(core_swap, fragmented_residency_comes_back_zero)
{
    size_t pg = page_size(), n = 4 * MiB;
    for (unsigned inject = 0; inject < 2; inject++) {
        zp_pool_t *pool = swap_pool(NULL);
        char *p = zp_get(pool, n);
        for (size_t off = 0; off < n; off += 3 * pg)
            memset(p + off, 0x77, pg);
        assert_uses_residency(p);
        if (inject)
            zp_os_inject(ZP_OS_RESIDENT, 0, 1000, 0);
        zp_put(pool, p);
        zp_os_inject_clear();
        char *q = zp_get(pool, n);
        cr_assert_eq(q, p);
        assert_zero(q, n);
        for (size_t off = 0; off < n; off += 3 * pg)
            memset(q + off, 0x78, pg);
        size_t keep = MiB + 100;
        cr_assert(zp_resize(pool, q, keep));
        for (size_t off = 0; off < keep; off++)
            cr_assert_eq(q[off], (off / pg) % 3 ? 0 : 0x78, "kept byte %zu changed", off);
        assert_zero(q + keep, n - keep);
        zp_put(pool, q);
        zp_pool_destroy(pool);
    }
}
