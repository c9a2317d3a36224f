/* Unit tests of the core's basic contract: zeroed reuse, size classes, ownership, usable size
 * and capacity, in-place resize, aligned gets, direct mappings, configuration checks and the
 * relations between the statistics counters. */
#include "core_test_util.h"

/* ---- zeroed reuse ---- */

/* get, dirty every usable byte, put, get the same class again (same and other sizes): the same
 * slot comes back, and every byte up to its capacity is zero. */
static void reuse_cycle(zp_pool_t *pool, const size_t *sizes, unsigned nsizes, unsigned rounds)
{
    for (unsigned r = 0; r < rounds; r++) {
        for (unsigned i = 0; i < nsizes; i++) {
            size_t s1 = sizes[i], s2 = sizes[(i + 1) % nsizes];
            unsigned char *p = zp_get(pool, s1);
            cr_assert_not_null(p);
            size_t us = zp_usable_size(pool, p);
            cr_assert_geq(us, s1);
            assert_zero(p, zp_capacity(pool, p));
            memset(p, 0xA5, us);
            zp_put(pool, p);
            unsigned char *q = zp_get(pool, s2);
            cr_assert_eq((uintptr_t)q / page_size(), (uintptr_t)p / page_size(),
                         "size %zu after %zu: a different buffer (%p, not %p): the test "
                         "could not check the scrub", s2, s1, (void *)q, (void *)p);
            cr_assert_geq(zp_usable_size(pool, q), s2);
            assert_zero(q, zp_capacity(pool, q));
            zp_put(pool, q);
        }
    }
}

Test(core_basic, zeroed_reuse_up_to_usable_size)
{
    /* 80K class, 1.25M class (big enough for the density probe of scrub.c), 16K-aligned. */
    static const size_t small[] = { 65537, 70000, 81920, 81920 - 15 };
    static const size_t big[] = { MiB + 1, MiB + 100000, 1280 * KiB, 1200 * KiB + 3 };
    for (unsigned tls = 0; tls <= 4; tls += 4) {
        zp_config_t c = test_cfg(1, tls);
        zp_pool_t *pool = new_pool(&c);
        reuse_cycle(pool, small, 4, 3);
        reuse_cycle(pool, big, 4, 6); /* 48 puts: several density probes on the way */
        zp_stats_t st = stats_of(pool);
        cr_assert_eq(st.fresh, 2, "every get after the first of a class reuses: fresh %llu",
                     (unsigned long long)st.fresh);
        zp_pool_destroy(pool);
    }
}

/* ---- size classes ---- */

Test(core_basic, class_index_bytes_round_trip)
{
    for (unsigned shift = 12; shift <= 16; shift += 2) {
        size_t prev = 0;
        for (unsigned i = 0; i < 64; i++) {
            size_t b = zp_class_bytes(i, shift);
            cr_assert_gt(b, prev, "class %u (%zu) not above class %u (%zu)", i, b, i - 1, prev);
            cr_assert_eq(b % ((size_t)1 << shift), 0);
            cr_assert_eq(zp_class_index(b, shift), i, "index(bytes(%u) = %zu) = %u", i, b,
                         zp_class_index(b, shift));
            /* Every size in (bytes(i-1), bytes(i)] maps to i: the smallest class that fits. */
            size_t probes[] = { prev + 1, prev + ((size_t)1 << shift), (prev + b) / 2, b - 1, b };
            for (unsigned k = 0; k < 5; k++) {
                size_t x = probes[k];
                if (x <= prev || x > b)
                    continue;
                cr_assert_eq(zp_class_index(x, shift), i, "size %zu -> class %u, want %u", x,
                             zp_class_index(x, shift), i);
                cr_assert_geq(zp_class_bytes(zp_class_index(x, shift), shift), x);
            }
            prev = b;
        }
        /* Monotonic over a sweep of sizes. */
        unsigned last = 0;
        for (size_t x = 1; x < ((size_t)64 << 20); x = x * 9 / 8 + 1) {
            unsigned ix = zp_class_index(x, shift);
            cr_assert_geq(ix, last);
            cr_assert_geq(zp_class_bytes(ix, shift), x);
            last = ix;
        }
    }
}

Test(core_basic, class_boundaries)
{
    zp_config_t c = test_cfg(1, 4);
    c.max_pooled_size = 16 * MiB;
    zp_pool_t *pool = new_pool(&c);
    zp_class_stats_t cs[ZP_MAX_CLASSES];
    unsigned n = 0;
    while (n < ZP_MAX_CLASSES && zp_pool_class_stats(pool, n, &cs[n]))
        n++;
    cr_assert_gt(n, 20);
    cr_assert_eq(cs[0].size, 64 * KiB);
    cr_assert_eq(cs[n - 1].size, 16 * MiB);
    zp_config_t eff;
    zp_pool_config(pool, &eff);
    cr_assert_eq(eff.max_pooled_size, cs[n - 1].size);
    for (unsigned i = 0; i < n; i++) {
        size_t cb = cs[i].size;
        if (i)
            cr_assert_gt(cb, cs[i - 1].size);
        void *p = zp_get(pool, cb);
        cr_assert_not_null(p);
        cr_assert_eq(zp_capacity(pool, p), cb, "size %zu: capacity %zu", cb, zp_capacity(pool, p));
        cr_assert_geq(zp_usable_size(pool, p), cb);
        void *q = zp_get(pool, cb + 1);
        cr_assert_not_null(q);
        if (i + 1 < n) {
            /* From where the buffer starts in its slot (zp_color) */
            cr_assert_eq(zp_capacity(pool, q) + (uintptr_t)q % page_size(), cs[i + 1].size,
                         "size %zu: capacity %zu, want %zu", cb + 1, zp_capacity(pool, q),
                         cs[i + 1].size);
        } else { /* past the largest class: a direct mapping */
            zp_stats_t st = stats_of(pool);
            cr_assert_eq(st.direct, 1);
            cr_assert_geq(zp_capacity(pool, q), cb + 1);
        }
        zp_put(pool, p);
        zp_put(pool, q);
    }
    zp_pool_destroy(pool);

    /* A minimum that is not a class size: requests below it are served by the class above it. */
    c.min_buffer_size = 70000;
    pool = new_pool(&c);
    size_t want = zp_class_bytes(zp_class_index(70000, 12), 12);
    cr_assert_eq(want, 80 * KiB);
    size_t sizes[] = { 0, 1, 4096, 65536, 69999, 70000, 80 * KiB };
    for (unsigned i = 0; i < 7; i++) {
        void *p = zp_get(pool, sizes[i]);
        cr_assert_not_null(p, "size %zu", sizes[i]);
        size_t off = (uintptr_t)p % page_size(); /* zp_color */
        cr_assert_eq(zp_capacity(pool, p) + off, want, "size %zu: capacity %zu", sizes[i],
                     zp_capacity(pool, p));
        cr_assert_geq(zp_usable_size(pool, p), sizes[i] ? sizes[i] : 1);
        cr_assert_eq(off % 64, 0);
        zp_put(pool, p);
    }
    zp_pool_destroy(pool);
}

/* ---- ownership ---- */

static char static_buf[4096];

Test(core_basic, foreign_pointers_not_owned)
{
    zp_config_t c = test_cfg(2, 4);
    zp_pool_t *a = new_pool(&c), *b = new_pool(&c);
    char stack_buf[64];
    void *heap = malloc(4 * MiB); /* mmap'ed by glibc: page-aligned like ours */
    void *small = malloc(100);
    cr_assert(heap && small);
    char *pa = zp_get(a, 128 * KiB), *pb = zp_get(b, 128 * KiB);
    cr_assert(pa && pb);
    const void *foreign[] = { stack_buf, static_buf, heap, small, pb, NULL, (void *)-4096L,
                              (void *)((uintptr_t)1 << 47) };
    for (unsigned i = 0; i < sizeof foreign / sizeof foreign[0]; i++) {
        cr_assert_not(zp_owns(a, foreign[i]), "pool a owns foreign pointer %u (%p)", i, foreign[i]);
        cr_assert_eq(zp_usable_size(a, foreign[i]), 0, "pointer %u", i);
        cr_assert_eq(zp_capacity(a, foreign[i]), 0, "pointer %u", i);
        if (foreign[i])
            cr_assert_eq(zp_check(a, foreign[i], NULL), ZP_MISUSE_WILD_FREE, "pointer %u", i);
    }
    cr_assert_not(zp_owns(b, pa));
    cr_assert_eq(zp_usable_size(b, pa), 0);

    /* Interior and guard addresses of our span are ours (no buffer starts there). */
    size_t cap = zp_capacity(a, pa);
    cr_assert_eq(cap, 128 * KiB);
    const char *inside[] = { pa, pa + 1, pa + cap / 2, pa + cap - 1, pa + cap, pa + cap + page_size() - 1 };
    for (unsigned i = 0; i < 6; i++) {
        cr_assert(zp_owns(a, inside[i]), "interior/guard address %u (%p) not owned", i,
                  (void *)inside[i]);
        if (i)
            cr_assert_eq(zp_usable_size(a, inside[i]), 0, "address %u is not a buffer start", i);
    }

    /* Two pools never hand out each other's buffers, whatever the sizes. */
    static const size_t sizes[] = { 64 * KiB, 100 * KiB, 128 * KiB, 512 * KiB, 3 * MiB };
    void *ha[40], *hb[40];
    for (unsigned i = 0; i < 40; i++) {
        ha[i] = zp_get(a, sizes[i % 5]);
        hb[i] = zp_get(b, sizes[i % 5]);
        cr_assert(ha[i] && hb[i]);
        cr_assert(zp_owns(a, ha[i]) && !zp_owns(b, ha[i]));
        cr_assert(zp_owns(b, hb[i]) && !zp_owns(a, hb[i]));
        if (i % 3 == 0) { /* churn, so that freed buffers are reused across the loop */
            zp_put(a, ha[i]);
            zp_put(b, hb[i]);
            ha[i] = hb[i] = NULL;
        }
    }
    for (unsigned i = 0; i < 40; i++)
        for (unsigned j = 0; j < 40; j++)
            cr_assert(!ha[i] || ha[i] != hb[j]);
    for (unsigned i = 0; i < 40; i++) {
        zp_put(a, ha[i]);
        zp_put(b, hb[i]);
    }
    zp_put(a, pa);
    zp_put(b, pb);
    cr_assert_eq(stats_of(a).misuse, 0);
    cr_assert_eq(stats_of(b).misuse, 0);
    zp_pool_destroy(a);
    zp_pool_destroy(b);
    free(heap);
    free(small);
}

/* ---- usable size, capacity, resize ---- */

Test(core_basic, usable_size_and_capacity)
{
    zp_config_t c = test_cfg(1, 4);
    c.max_pooled_size = 8 * MiB;
    zp_pool_t *pool = new_pool(&c);
    misuse_log_t log = { 0 };
    zp_pool_set_misuse_handler(pool, misuse_record, &log);
    static const size_t sizes[] = { 1, 100, 4095, 4096, 65536, 65537, 100000, MiB, MiB + 1,
                                    3 * MiB + 5, 8 * MiB, 9 * MiB + 17 };
    for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t s = sizes[i];
        char *p = zp_get(pool, s);
        cr_assert_not_null(p);
        size_t us = zp_usable_size(pool, p), cap = zp_capacity(pool, p);
        /* Exact: every byte past it is slack that the overflow check may read. */
        cr_assert_eq(us, s, "size %zu: usable %zu", s, us);
        cr_assert_geq(cap, us, "size %zu: capacity %zu < usable %zu", s, cap, us);
        cap += (uintptr_t)p % page_size(); /* the slot, from where the buffer starts in it */
        if (s <= 8 * MiB)
            cr_assert_eq(cap, zp_class_bytes(zp_class_index(s < 65536 ? 65536 : s, 12), 12),
                         "size %zu: capacity %zu is not its class size", s, cap);
        else
            cr_assert_eq(cap, (s + page_size() - 1) & ~(page_size() - 1), "direct %zu: cap %zu", s, cap);
        size_t chk;
        cr_assert_eq(zp_check(pool, p, &chk), ZP_MISUSE_NONE);
        cr_assert_eq(chk, us);
        /* Writing every usable byte is not an overflow. */
        memset(p, 0x77, us);
        zp_put(pool, p);
        cr_assert_eq(log.n, 0, "size %zu: writing up to the usable size was reported as %s", s,
                     log.n ? zp_misuse_name(log.kind[0]) : "");
        cr_assert_eq(zp_usable_size(pool, p), 0, "freed buffer still has a usable size");
        cr_assert_eq(zp_capacity(pool, p), 0);
    }
    /* get(0) returns a buffer that can be put. */
    void *z = zp_get(pool, 0);
    cr_assert_not_null(z);
    cr_assert_eq(zp_usable_size(pool, z), 1, "get(0): usable size %zu", zp_usable_size(pool, z));
    zp_put(pool, z);
    cr_assert_eq(log.n, 0);
    zp_pool_destroy(pool);
}

Test(core_basic, resize_in_place)
{
    zp_config_t c = test_cfg(1, 4);
    c.max_pooled_size = 8 * MiB;
    zp_pool_t *pool = new_pool(&c);
    misuse_log_t log = { 0 };
    zp_pool_set_misuse_handler(pool, misuse_record, &log);
    static const size_t start[] = { 100 * KiB, 9 * MiB + 100 }; /* pooled, direct */
    for (unsigned k = 0; k < 2; k++) {
        size_t s = start[k];
        unsigned char *p = zp_get(pool, s);
        cr_assert_not_null(p);
        size_t cap = zp_capacity(pool, p);
        /* A buffer starts at a varying offset in its first page: a direct one may keep as
         * little as a few dozen bytes of room past the request. */
        size_t big = cap > s + 200 ? cap - 100 : s + (cap - s) / 2, small = s / 3;
        cr_assert_gt(big, s, "no room to grow: %zu in a %zu slot", s, cap);
        memset(p, 0x11, s);
        /* grow: the new bytes read as zero, the old ones are kept */
        cr_assert(zp_resize(pool, p, big), "grow %zu -> %zu in a %zu slot", s, big, cap);
        cr_assert_eq(zp_usable_size(pool, p), big);
        cr_assert_eq(zp_capacity(pool, p), cap, "resize moved the capacity");
        for (size_t i = 0; i < s; i += 997)
            cr_assert_eq(p[i], 0x11);
        assert_zero(p + s, big - s);
        /* shrink zeroes the dropped tail: write everything, shrink, grow again */
        memset(p, 0xFF, big);
        cr_assert(zp_resize(pool, p, small));
        cr_assert_eq(zp_usable_size(pool, p), small);
        cr_assert(zp_resize(pool, p, big));
        for (size_t i = 0; i < small; i += 331)
            cr_assert_eq(p[i], 0xFF, "kept byte %zu lost", i);
        cr_assert_eq(p[small - 1], 0xFF);
        assert_zero(p + small, big - small);
        /* shrink, then put: no overflow is reported for bytes the shrink gave up */
        cr_assert(zp_resize(pool, p, small));
        zp_put(pool, p);
        cr_assert_eq(log.n, 0, "%s reported after a shrink", log.n ? zp_misuse_name(log.kind[0]) : "");
        /* the same slot again: all of it zero */
        unsigned char *q = zp_get(pool, s);
        if (k == 0)
            cr_assert_eq(q, p);
        assert_zero(q, zp_capacity(pool, q));
        zp_put(pool, q);
    }
    zp_stats_t st = stats_of(pool);
    cr_assert_eq(st.live_bytes, 0, "live_bytes %llu after every buffer was put",
                 (unsigned long long)st.live_bytes);
    zp_pool_destroy(pool);
}

Test(core_basic, resize_too_big_fails_unchanged)
{
    zp_config_t c = test_cfg(1, 4);
    c.max_pooled_size = 8 * MiB;
    zp_pool_t *pool = new_pool(&c);
    misuse_log_t log = { 0 };
    zp_pool_set_misuse_handler(pool, misuse_record, &log);
    static const size_t start[] = { 100000, 9 * MiB + 100 };
    for (unsigned k = 0; k < 2; k++) {
        size_t s = start[k];
        unsigned char *p = zp_get(pool, s);
        cr_assert_not_null(p);
        size_t cap = zp_capacity(pool, p);
        memset(p, 0x5A, s);
        size_t bad[] = { cap + 1, cap + page_size(), 2 * cap, SIZE_MAX, 0 };
        for (unsigned i = 0; i < 5; i++) {
            cr_assert_not(zp_resize(pool, p, bad[i]), "resize %zu -> %zu in a %zu slot succeeded",
                          s, bad[i], cap);
            cr_assert_eq(zp_usable_size(pool, p), s);
            cr_assert_eq(zp_capacity(pool, p), cap);
        }
        for (size_t i = 0; i < s; i++)
            if (p[i] != 0x5A)
                cr_assert_fail("byte %zu changed by a failed resize", i);
        cr_assert_not(zp_resize(pool, p + 4096, s), "resize of an interior pointer");
        cr_assert(zp_resize(pool, p, cap), "resize to exactly the capacity");
        assert_zero(p + s, cap - s);
        zp_put(pool, p);
        cr_assert_not(zp_resize(pool, p, s), "resize of a freed buffer");
    }
    char stack_buf[16];
    cr_assert_not(zp_resize(pool, stack_buf, 8));
    cr_assert_eq(log.n, 0);
    zp_pool_destroy(pool);
}

/* ---- aligned gets ---- */

/* zp_claim_usable (malloc_usable_size): the room the slot really has, less the bytes the
 * overflow check keeps, up to the end of the page the request and that window end in (pages
 * the program does not write stay unfaulted, and a put of a buffer that holds such pages
 * costs a mincore and a drop); the buffer's size becomes it, so
 * writing all of it is no overflow, a write past it still is, and the put scrubs all of it. */
Test(core_basic, claim_usable_is_the_room)
{
    zp_config_t c = test_cfg(1, 4);
    c.max_pooled_size = 8 * MiB;
    zp_pool_t *pool = new_pool(&c);
    misuse_log_t log = { 0 };
    zp_pool_set_misuse_handler(pool, misuse_record, &log);
    static const size_t sizes[] = { 1, 4095, 65536, 65537, 100000, MiB - 8192, MiB - 10,
                                    3 * MiB + 5, 8 * MiB, 9 * MiB + 17 };
    for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t s = sizes[i];
        for (unsigned aligned = 0; aligned < 2; aligned++) {
            char *p = aligned ? zp_get_aligned(pool, s, 64 * KiB) : zp_get(pool, s);
            cr_assert_not_null(p);
            size_t cap = zp_capacity(pool, p);
            size_t want = cap - ZP_SLACK_CHECK > s ? cap - ZP_SLACK_CHECK : s;
            uintptr_t pe = ((uintptr_t)p + s + ZP_SLACK_CHECK + 4095) & ~(uintptr_t)4095;
            size_t page_cap = (size_t)(pe - (uintptr_t)p);
            if (want > page_cap - ZP_SLACK_CHECK)
                want = page_cap - ZP_SLACK_CHECK;
            size_t u = zp_claim_usable(pool, p);
            cr_assert_eq(u, want, "size %zu: usable %zu, want %zu (capacity %zu)", s, u, want, cap);
            cr_assert_eq(zp_claim_usable(pool, p), u, "size %zu: a second ask differs", s);
            cr_assert_eq(zp_usable_size(pool, p), u);
            memset(p, 0x5A, u);
            if (u < cap)
                p[u] = 1; /* past the room reported: an overflow */
            zp_put(pool, p);
            cr_assert_eq(log.n, u < cap ? 1u : 0u, "size %zu: %u reports", s, log.n);
            if (log.n)
                cr_assert_eq(log.kind[0], ZP_MISUSE_OVERFLOW);
            log.n = 0;
            char *q = zp_get(pool, s);
            if (q == p)
                assert_zero(q, zp_capacity(pool, q));
            zp_put(pool, q);
            /* Written up to the room, not past it: no report, and all of it scrubbed. */
            p = zp_get(pool, s);
            u = zp_claim_usable(pool, p);
            memset(p, 0x6B, u);
            zp_put(pool, p);
            cr_assert_eq(log.n, 0, "size %zu: writing up to the usable size was reported", s);
            q = zp_get(pool, s);
            if (q == p)
                assert_zero(q, zp_capacity(pool, q));
            zp_put(pool, q);
        }
    }
    cr_assert_eq(zp_claim_usable(pool, &log), 0);
    zp_pool_destroy(pool);
}

/* Large buffers start at a varying multiple of 64 bytes into their first page (4K aliasing:
 * a copy between two buffers whose starts are 1-63 bytes apart modulo 4096 runs several times
 * slower), unless the request fills its slot; aligned gets keep their alignment. */
Test(core_basic, buffers_off_the_page_boundary)
{
    zp_config_t c = test_cfg(1, 0);
    c.max_pooled_size = 16 * MiB;
    zp_pool_t *pool = new_pool(&c);
    static const size_t sizes[] = { 70000, 100000, MiB - 8192, 3 * MiB + 5, 20 * MiB + 3 };
    for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char *p[8];
        unsigned offsets = 0;
        uint64_t seen = 0;
        for (unsigned k = 0; k < 8; k++) {
            p[k] = zp_get(pool, sizes[i]);
            cr_assert_not_null(p[k]);
            size_t off = (uintptr_t)p[k] % page_size();
            cr_assert_eq(off % 64, 0, "size %zu: %p not 64-byte aligned", sizes[i], (void *)p[k]);
            cr_assert_leq(off + sizes[i], zp_capacity(pool, p[k]) + off);
            if (!(seen & ((uint64_t)1 << (off / 64))))
                offsets++;
            seen |= (uint64_t)1 << (off / 64);
            memset(p[k], 0x3C, sizes[i]);
        }
        cr_assert_geq(offsets, 2, "size %zu: 8 buffers, all at one offset in their page", sizes[i]);
        for (unsigned k = 0; k < 8; k++)
            zp_put(pool, p[k]);
        char *q = zp_get(pool, sizes[i]);
        assert_zero(q, zp_capacity(pool, q));
        zp_put(pool, q);
    }
    /* A request that fills its slot starts at the slot: the guard right after its end. */
    char *f = zp_get(pool, MiB);
    cr_assert_eq((uintptr_t)f % page_size(), 0);
    zp_put(pool, f);
    for (size_t align = 128; align <= 4 * MiB; align *= 2) {
        char *a = zp_get_aligned(pool, 100000, align);
        cr_assert_eq((uintptr_t)a % align, 0, "%p not aligned to %zu", (void *)a, align);
        zp_put(pool, a);
    }
    zp_pool_destroy(pool);
}

Test(core_basic, aligned_gets)
{
    zp_config_t c = test_cfg(1, 4);
    c.max_pooled_size = 16 * MiB;
    zp_pool_t *pool = new_pool(&c);
    static const size_t sizes[] = { 1, 64 * KiB, 100000, MiB };
    for (size_t align = 8 * KiB; align <= 4 * MiB; align *= 2) {
        for (unsigned k = 0; k < 4; k++) {
            for (unsigned rep = 0; rep < 2; rep++) { /* the second time, a reused slot */
                unsigned char *p = zp_get_aligned(pool, sizes[k], align);
                cr_assert_not_null(p, "size %zu align %zu", sizes[k], align);
                cr_assert_eq((uintptr_t)p % align, 0, "%p not aligned to %zu", (void *)p, align);
                cr_assert_geq(zp_usable_size(pool, p), sizes[k]);
                size_t cap = zp_capacity(pool, p);
                cr_assert_geq(cap, sizes[k]);
                assert_zero(p, cap);
                memset(p, 0xC3, sizes[k]);
                zp_put(pool, p);
                cr_assert_eq(zp_usable_size(pool, p), 0);
            }
        }
    }
    zp_stats_t st = stats_of(pool);
    cr_assert_eq(st.gets, st.puts);
    cr_assert_eq(st.misuse, 0);
    cr_assert_eq(st.direct, 0);
    /* An unaligned get afterwards still gets zeroed memory from slots used with offsets. */
    for (unsigned k = 0; k < 4; k++) {
        unsigned char *p = zp_get(pool, sizes[k] + 3 * KiB);
        assert_zero(p, zp_capacity(pool, p));
        zp_put(pool, p);
    }
    /* Small alignments are the 64 bytes every buffer has (zp_color). */
    void *p = zp_get_aligned(pool, 100, 16);
    cr_assert_not_null(p);
    cr_assert_eq((uintptr_t)p % 64, 0);
    zp_put(pool, p);
    /* Not a power of two: NULL + EINVAL. */
    size_t bad[] = { 0, 3, 12 * KiB, 3 * MiB, SIZE_MAX };
    for (unsigned i = 0; i < 5; i++) {
        errno = 0;
        cr_assert_null(zp_get_aligned(pool, 64 * KiB, bad[i]), "align %zu accepted", bad[i]);
        cr_assert_eq(errno, EINVAL, "align %zu: errno %d", bad[i], errno);
    }
    zp_pool_destroy(pool);

    /* Direct mappings with big alignments. */
    c.max_pooled_size = MiB;
    pool = new_pool(&c);
    size_t dsz[] = { 64 * KiB, 2 * MiB, 5 * MiB + 1 };
    size_t dal[] = { 4 * MiB, 4 * MiB, 8 * MiB };
    for (unsigned i = 0; i < 3; i++) {
        unsigned char *q = zp_get_aligned(pool, dsz[i], dal[i]);
        cr_assert_not_null(q);
        cr_assert_eq((uintptr_t)q % dal[i], 0, "direct %p not aligned to %zu", (void *)q, dal[i]);
        assert_zero(q, dsz[i]);
        memset(q, 0x3C, dsz[i]);
        cr_assert_eq(zp_usable_size(pool, q), dsz[i]);
        zp_put(pool, q);
        cr_assert_eq(zp_usable_size(pool, q), 0);
    }
    st = stats_of(pool);
    cr_assert_eq(st.direct, 3);
    cr_assert_eq(st.puts, 3);
    cr_assert_eq(st.misuse, 0);
    zp_pool_destroy(pool);
}

/* ---- direct mappings ---- */

static int touch_and_expect_fault(void *arg)
{
    struct sigaction sa = { 0 };
    sa.sa_handler = SIG_DFL;
    sigaction(SIGSEGV, &sa, NULL);
    volatile char *p = arg;
    return p[0] + 5; /* must not get here */
}

Test(core_basic, direct_mappings_released_on_put)
{
    zp_config_t c = test_cfg(1, 4);
    c.max_pooled_size = MiB;
    zp_pool_t *pool = new_pool(&c);
    size_t sz = 3 * MiB + 4096;
    char *first = NULL;
    uint64_t reserved = 0;
    for (unsigned i = 0; i < 20; i++) {
        char *p = zp_get(pool, sz - (i % 3) * 100000); /* sizes vary: best fit reuses */
        cr_assert_not_null(p);
        size_t us = zp_usable_size(pool, p);
        cr_assert_geq(us, sz - (i % 3) * 100000);
        assert_zero(p, us);
        memset(p, 0xEE, us);
        size_t off = (uintptr_t)p % page_size();
        cr_assert_eq(resident_pages(p - off, off + us), (off + us + page_size() - 1) / page_size());
        zp_put(pool, p);
        cr_assert_eq(resident_pages(p, us), 0, "cycle %u: direct buffer still resident after put", i);
        zp_stats_t st = stats_of(pool);
        cr_assert_eq(st.direct, i + 1);
        cr_assert_eq(st.pooled_bytes, 0, "a direct buffer counted as pooled");
        if (i == 0) {
            first = p;
            reserved = st.reserved_bytes;
        } else {
            cr_assert_eq((uintptr_t)p / page_size(), (uintptr_t)first / page_size(),
                         "cycle %u: direct buffer at a new address", i);
            cr_assert_eq(st.reserved_bytes, reserved, "cycle %u: reserved grew %llu -> %llu", i,
                         (unsigned long long)reserved, (unsigned long long)st.reserved_bytes);
        }
    }
    /* After put the memory is inaccessible. */
    char out[512];
    int ws = run_child(touch_and_expect_fault, first, out, sizeof out);
    cr_assert(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGSEGV, "reading a released direct buffer "
              "did not fault (status 0x%x): %s", ws, out);
    /* Two at once get two mappings; both are released. */
    char *a = zp_get(pool, 2 * MiB), *b = zp_get(pool, 2 * MiB);
    cr_assert(a && b && a != b);
    zp_put(pool, a);
    zp_put(pool, b);
    zp_stats_t st = stats_of(pool);
    cr_assert_eq(st.gets, st.puts);
    cr_assert_eq(st.live_bytes, 0);
    zp_pool_destroy(pool);
}

/* A direct mapping the kernel will not back fails now with ENOMEM, not at first touch. */
Test(core_basic, direct_huge_get_enomem)
{
    char *oc = read_proc("/proc/sys/vm/overcommit_memory");
    bool always = oc[0] == '1';
    free(oc);
    if (always)
        cr_skip_test("vm.overcommit_memory is 1: the kernel backs any size");
    zp_config_t c = test_cfg(1, 4);
    c.max_pooled_size = MiB;
    zp_pool_t *pool = new_pool(&c);
    size_t sizes[] = { (size_t)1 << 40, ((size_t)1 << 46) - 4096, (size_t)1 << 47, SIZE_MAX - 4096, SIZE_MAX };
    for (unsigned i = 0; i < 5; i++) {
        errno = 0;
        void *p = zp_get(pool, sizes[i]);
        cr_assert_null(p, "get of %zu bytes succeeded", sizes[i]);
        cr_assert_eq(errno, ENOMEM, "get of %zu: errno %d", sizes[i], errno);
        errno = 0;
        cr_assert_null(zp_get_aligned(pool, sizes[i], 4 * MiB));
        cr_assert_eq(errno, ENOMEM);
    }
    zp_stats_t st = stats_of(pool);
    cr_assert_eq(st.gets, 0);
    cr_assert_eq(st.live_bytes, 0);
    char *p = zp_get(pool, 3 * MiB);
    cr_assert_not_null(p);
    memset(p, 1, 3 * MiB);
    zp_put(pool, p);
    zp_pool_destroy(pool);
}

/* ---- configuration ---- */

Test(core_basic, bad_config_rejected)
{
    zp_config_t c;
    zp_config_init(&c);
    c.num_shards = 3;
    errno = 0;
    cr_assert_null(zp_pool_new(&c), "num_shards 3 accepted");
    cr_assert_eq(errno, EINVAL);

    zp_config_init(&c);
    c.num_shards = 2048;
    errno = 0;
    cr_assert_null(zp_pool_new(&c), "num_shards 2048 accepted");
    cr_assert_eq(errno, EINVAL);

    zp_config_init(&c);
    c.tls_cache_size = 65;
    errno = 0;
    cr_assert_null(zp_pool_new(&c), "tls_cache_size 65 accepted");
    cr_assert_eq(errno, EINVAL);

    zp_config_init(&c);
    c.min_buffer_size = 4 * MiB;
    c.max_pooled_size = MiB;
    errno = 0;
    cr_assert_null(zp_pool_new(&c), "max_pooled_size < min_buffer_size accepted");
    cr_assert_eq(errno, EINVAL);

    zp_config_init(&c);
    c.eviction = (zp_eviction_t)7;
    errno = 0;
    cr_assert_null(zp_pool_new(&c), "eviction 7 accepted");
    cr_assert_eq(errno, EINVAL);
}

Test(core_basic, default_config_sane)
{
    zp_config_t d;
    memset(&d, 0xFF, sizeof d);
    zp_config_init(&d);
    cr_assert_geq(d.num_shards, 4);
    cr_assert_eq(d.num_shards & (d.num_shards - 1), 0, "num_shards %u", d.num_shards);
    cr_assert(d.tls_cache_size >= 1 && d.tls_cache_size <= ZP_TCACHE_MAX);
    cr_assert_eq(d.max_buffers_per_shard, 0); /* no count limit: the byte budget bounds shards */
    cr_assert_geq(d.min_buffer_size, 4096);
    cr_assert_gt(d.max_pooled_size, d.min_buffer_size);
    cr_assert_geq(d.pool_bytes, 16 * MiB);
    cr_assert(d.tls_cache_bytes > 0 && d.tls_cache_bytes <= d.pool_bytes / 4);
    cr_assert_eq(d.eviction, ZP_EVICT_CLOCK_PRO);
    cr_assert(d.guard_pages && d.dontdump && d.check_slack);
    cr_assert(!d.pin && !d.zero_on_alloc && !d.verify_on_alloc);

    /* NULL config = the defaults; zeros in a config are filled with them. */
    zp_pool_t *pool = new_pool(NULL);
    zp_config_t e;
    zp_pool_config(pool, &e);
    cr_assert_eq(e.num_shards, d.num_shards);
    cr_assert_eq(e.pool_bytes, d.pool_bytes);
    cr_assert_geq(e.max_pooled_size, d.max_pooled_size);
    void *p = zp_get(pool, 100 * KiB);
    cr_assert_not_null(p);
    zp_put(pool, p);
    zp_pool_destroy(pool);

    zp_config_t z;
    memset(&z, 0, sizeof z);
    pool = new_pool(&z);
    zp_pool_config(pool, &e);
    cr_assert_eq(e.num_shards, d.num_shards);
    cr_assert_eq(e.min_buffer_size, d.min_buffer_size);
    cr_assert_eq(e.pool_bytes, d.pool_bytes);
    cr_assert_eq(e.max_buffers_per_shard, d.max_buffers_per_shard);
    zp_pool_destroy(pool);
}

/* ---- statistics ---- */

static uint64_t lcg_next(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

static void check_stats(zp_pool_t *pool, uint64_t live, unsigned nlive, uint64_t budget)
{
    zp_stats_t st = stats_of(pool);
    cr_assert_eq(st.tls_hits + st.shard_hits + st.fresh + st.direct, st.gets,
                 "tls %llu + shard %llu + fresh %llu + direct %llu != gets %llu",
                 (unsigned long long)st.tls_hits, (unsigned long long)st.shard_hits,
                 (unsigned long long)st.fresh, (unsigned long long)st.direct,
                 (unsigned long long)st.gets);
    cr_assert_eq(st.gets - st.puts, nlive);
    cr_assert_eq(st.live_bytes, live, "live_bytes %llu, expected %llu",
                 (unsigned long long)st.live_bytes, (unsigned long long)live);
    cr_assert_leq(st.steals, st.shard_hits);
    cr_assert_leq(st.pooled_bytes, budget);
    cr_assert_geq(st.peak_pooled_bytes, st.pooled_bytes);
    cr_assert_eq(st.misuse, 0);
}

Test(core_basic, stats_consistency)
{
    zp_config_t c = test_cfg(4, 4);
    c.max_pooled_size = 2 * MiB;
    c.pool_bytes = 16 * MiB;
    zp_pool_t *pool = new_pool(&c);
    static const size_t sizes[] = { 64 * KiB, 100 * KiB, 300 * KiB, MiB, 3 * MiB };
    char *held[24] = { 0 };
    size_t held_size[24] = { 0 };
    uint64_t live = 0, seed = 42;
    unsigned nlive = 0;
    for (unsigned op = 0; op < 3000; op++) {
        unsigned i = (unsigned)(lcg_next(&seed) % 24);
        if (held[i]) {
            if (lcg_next(&seed) % 4 == 0) { /* resize in place */
                size_t ns = 1 + lcg_next(&seed) % zp_capacity(pool, held[i]);
                cr_assert(zp_resize(pool, held[i], ns));
                live = live - held_size[i] + ns;
                held_size[i] = ns;
            } else {
                zp_put(pool, held[i]);
                live -= held_size[i];
                nlive--;
                held[i] = NULL;
            }
        } else {
            size_t s = sizes[lcg_next(&seed) % 5] - lcg_next(&seed) % 4096;
            held[i] = lcg_next(&seed) % 5 == 0 ? zp_get_aligned(pool, s, 64 * KiB) : zp_get(pool, s);
            cr_assert_not_null(held[i]);
            held[i][0] = 1;
            held_size[i] = s;
            live += s;
            nlive++;
        }
        if (op % 97 == 0)
            check_stats(pool, live, nlive, c.pool_bytes);
    }
    for (unsigned i = 0; i < 24; i++)
        if (held[i]) {
            zp_put(pool, held[i]);
            live -= held_size[i];
            nlive--;
        }
    check_stats(pool, 0, 0, c.pool_bytes);
    zp_stats_t st = stats_of(pool);
    cr_assert_gt(st.tls_hits, 0);
    cr_assert_gt(st.shard_hits, 0);
    cr_assert_gt(st.fresh, 0);
    cr_assert_gt(st.direct, 0);
    /* Per-class counters add up to the pool's. */
    uint64_t cg = 0, cf = 0, ce = 0, free_bytes = 0;
    zp_class_stats_t cs;
    for (unsigned k = 0; zp_pool_class_stats(pool, k, &cs); k++) {
        cg += cs.gets;
        cf += cs.fresh;
        ce += cs.evictions;
        free_bytes += cs.free_now * cs.size;
    }
    cr_assert_eq(cg, st.gets - st.direct, "class gets %llu vs pooled gets %llu",
                 (unsigned long long)cg, (unsigned long long)(st.gets - st.direct));
    cr_assert_eq(cf, st.fresh);
    cr_assert_eq(ce, st.evictions);
    cr_assert_leq(free_bytes, st.pooled_bytes); /* the rest is in this thread's cache */
    zp_pool_destroy(pool);
}

/* zp_is_zero, the read-check of the scrub and of the slack: one non-zero byte at any place of
 * any length from any start (short ranges, the word loop, the vector loop and their tails)
 * is found, and a zero range is zero. */
Test(core_basic, is_zero_finds_every_byte)
{
    enum { MAX = 1200 };
    static unsigned char buf[MAX + 64] __attribute__((aligned(64)));
    static const size_t lens[] = {0, 1, 7, 8, 15, 16, 63, 64, 65, 127, 128, 255, 256, 257,
                                  383, 511, 512, 513, 1024, 1100, MAX};
    for (size_t start = 0; start < 24; start++) {
        for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
            size_t n = lens[k];
            cr_assert(zp_is_zero(buf + start, n), "zero range %zu+%zu", start, n);
            for (size_t i = 0; i < n; i++) {
                buf[start + i] = 0x80;
                bool z = zp_is_zero(buf + start, n);
                buf[start + i] = 0;
                cr_assert(!z, "byte %zu of %zu+%zu missed", i, start, n);
            }
            /* bytes just outside the range are not its */
            if (start)
                buf[start - 1] = 1;
            buf[start + n] = 1;
            cr_assert(zp_is_zero(buf + start, n), "neighbours of %zu+%zu counted", start, n);
            buf[start + n] = 0;
            if (start)
                buf[start - 1] = 0;
        }
    }
}
