/* Unit tests of misuse detection: double, interior and wild frees and overflow into the slack
 * go to the misuse handler with the right kind, address and size, and the pool stays
 * consistent (nothing handed out twice, later gets zeroed); the default handler's exact line
 * and abort; zero_on_alloc and verify_on_alloc against a buffer corrupted while free. */
#include "core_test_util.h"

static zp_pool_t *misuse_pool(unsigned tls, misuse_log_t *log)
{
    zp_config_t c = test_cfg(1, tls);
    c.max_pooled_size = MiB;
    zp_pool_t *pool = new_pool(&c);
    memset(log, 0, sizeof *log);
    zp_pool_set_misuse_handler(pool, misuse_record, log);
    return pool;
}

#define assert_misuse(log, i, k, a, s)                                                         \
    do {                                                                                       \
        cr_assert_gt((log).n, (i), "misuse %u not reported (%u reports)", (unsigned)(i), (log).n); \
        cr_assert_eq((log).kind[i], (k), "misuse %u: kind %s, want %s", (unsigned)(i),         \
                     zp_misuse_name((log).kind[i]), zp_misuse_name(k));                        \
        cr_assert_eq((log).addr[i], (const void *)(a), "misuse %u: address %p, want %p",       \
                     (unsigned)(i), (log).addr[i], (const void *)(a));                         \
        cr_assert_eq((log).size[i], (size_t)(s), "misuse %u: size %zu, want %zu",              \
                     (unsigned)(i), (log).size[i], (size_t)(s));                               \
    } while (0)

/* After misuse, the class still hands each slot out once: two gets, two different buffers,
 * both zeroed. */
static void assert_consistent(zp_pool_t *pool, size_t size)
{
    char *a = zp_get(pool, size), *b = zp_get(pool, size);
    cr_assert(a && b);
    cr_assert_neq(a, b, "the same slot handed out twice");
    assert_zero(a, zp_capacity(pool, a));
    assert_zero(b, zp_capacity(pool, b));
    zp_put(pool, a);
    zp_put(pool, b);
}

Test(core_misuse, double_free_reported)
{
    for (unsigned tls = 0; tls <= 4; tls += 4) {
        misuse_log_t log;
        zp_pool_t *pool = misuse_pool(tls, &log);
        char *p = zp_get(pool, 128 * KiB);
        memset(p, 0x10, 128 * KiB);
        zp_put(pool, p);
        cr_assert_eq(zp_check(pool, p, NULL), ZP_MISUSE_DOUBLE_FREE);
        zp_put(pool, p);
        assert_misuse(log, 0, ZP_MISUSE_DOUBLE_FREE, p, 128 * KiB);
        cr_assert_eq(log.n, 1);
        zp_stats_t st = stats_of(pool);
        cr_assert_eq(st.misuse, 1);
        cr_assert_eq(st.puts, 1, "the double free was counted as a put");
        /* p comes back once, not twice. */
        char *a = zp_get(pool, 128 * KiB), *b = zp_get(pool, 128 * KiB);
        cr_assert_eq(a, p);
        cr_assert_neq(b, p, "a double-freed slot was handed out twice");
        assert_zero(a, 128 * KiB);
        zp_put(pool, a);
        zp_put(pool, b);
        cr_assert_eq(log.n, 1);
        zp_pool_destroy(pool);
    }
}

Test(core_misuse, double_free_after_other_traffic)
{
    misuse_log_t log;
    zp_pool_t *pool = misuse_pool(4, &log);
    char *p = zp_get(pool, 128 * KiB);
    zp_put(pool, p);
    /* Other gets and puts, including ones that hand p out again and take it back. */
    for (unsigned i = 0; i < 10; i++) {
        char *q = zp_get(pool, (64 + 32 * (i % 4)) * KiB);
        q[0] = 1;
        zp_put(pool, q);
    }
    zp_put(pool, p);
    assert_misuse(log, 0, ZP_MISUSE_DOUBLE_FREE, p, 128 * KiB);
    /* After the slot was evicted (trim), it is still a double free. */
    zp_pool_trim(pool);
    zp_put(pool, p);
    assert_misuse(log, 1, ZP_MISUSE_DOUBLE_FREE, p, 128 * KiB);
    /* A direct mapping freed twice. */
    char *d = zp_get(pool, 3 * MiB);
    zp_put(pool, d);
    zp_put(pool, d);
    assert_misuse(log, 2, ZP_MISUSE_DOUBLE_FREE, d, 3 * MiB);
    cr_assert_eq(log.n, 3);
    assert_consistent(pool, 128 * KiB);
    char *d2 = zp_get(pool, 3 * MiB);
    assert_zero(d2, 3 * MiB);
    zp_put(pool, d2);
    cr_assert_eq(log.n, 3);
    zp_stats_t st = stats_of(pool);
    cr_assert_eq(st.gets, st.puts);
    zp_pool_destroy(pool);
}

Test(core_misuse, interior_pointer_free)
{
    misuse_log_t log;
    zp_pool_t *pool = misuse_pool(4, &log);
    size_t s = 200000;
    char *p = zp_get(pool, s);
    memset(p, 0x20, s);
    zp_put(pool, p + 4096);
    assert_misuse(log, 0, ZP_MISUSE_INVALID_FREE, p + 4096, s);
    zp_put(pool, p + 1);
    assert_misuse(log, 1, ZP_MISUSE_INVALID_FREE, p + 1, s);
    cr_assert_eq(zp_check(pool, p + 1, NULL), ZP_MISUSE_INVALID_FREE);
    /* Still live and intact. */
    cr_assert_eq(zp_usable_size(pool, p), s);
    for (size_t i = 0; i < s; i += 4096)
        cr_assert_eq(p[i], 0x20);
    zp_put(pool, p);
    cr_assert_eq(log.n, 2);
    /* Interior pointer of a free buffer, and of a direct buffer. */
    zp_put(pool, p + 8192);
    assert_misuse(log, 2, ZP_MISUSE_INVALID_FREE, p + 8192, zp_class_bytes(zp_class_index(s, 12), 12));
    char *d = zp_get(pool, 3 * MiB);
    zp_put(pool, d + 100);
    assert_misuse(log, 3, ZP_MISUSE_INVALID_FREE, d + 100, 3 * MiB);
    zp_put(pool, d);
    cr_assert_eq(log.n, 4);
    assert_consistent(pool, s);
    cr_assert_eq(stats_of(pool).misuse, 4);
    zp_pool_destroy(pool);
}

Test(core_misuse, guard_page_and_wild_free)
{
    misuse_log_t log;
    zp_pool_t *pool = misuse_pool(4, &log);
    char *p = zp_get(pool, 128 * KiB); /* the first slot of a new span */
    zp_slot_t *s = slot_of(p);
    cr_assert_eq((size_t)(s - s->span->slots), 0);
    cr_assert(s->span->guarded);
    size_t stride = s->span->stride;
    /* The guard page after a live buffer. */
    zp_put(pool, p + 128 * KiB);
    assert_misuse(log, 0, ZP_MISUSE_INVALID_FREE, p + 128 * KiB, 128 * KiB);
    /* The start of a slot never handed out. */
    zp_put(pool, p + 3 * stride);
    assert_misuse(log, 1, ZP_MISUSE_WILD_FREE, p + 3 * stride, 128 * KiB);
    cr_assert_eq(zp_check(pool, p + 3 * stride, NULL), ZP_MISUSE_WILD_FREE);
    /* Past the last slot of the span (or in reserved space that no span holds). */
    char *end = s->span->base + s->span->bytes - 4096;
    zp_put(pool, end);
    cr_assert_eq(log.n, 3);
    cr_assert_eq(log.kind[2], ZP_MISUSE_WILD_FREE, "kind %s", zp_misuse_name(log.kind[2]));
    cr_assert_eq(log.addr[2], end);
    zp_put(pool, p);
    cr_assert_eq(log.n, 3);
    /* The never-used slots are still handed out once each, zeroed. */
    char *q[6];
    for (unsigned i = 0; i < 6; i++) {
        q[i] = zp_get(pool, 128 * KiB);
        assert_zero(q[i], 128 * KiB);
        for (unsigned j = 0; j < i; j++)
            cr_assert_neq(q[i], q[j]);
        memset(q[i], 1, 128 * KiB);
    }
    for (unsigned i = 0; i < 6; i++)
        zp_put(pool, q[i]);
    cr_assert_eq(log.n, 3);
    zp_pool_destroy(pool);
}

Test(core_misuse, overflow_into_slack)
{
    for (unsigned tls = 0; tls <= 4; tls += 4) {
        misuse_log_t log;
        zp_pool_t *pool = misuse_pool(tls, &log);
        size_t s = 100000; /* class 112K: 14688 bytes of slack */
        char *p = zp_get(pool, s);
        memset(p, 0x30, s);
        p[s] = 1;
        zp_put(pool, p);
        assert_misuse(log, 0, ZP_MISUSE_OVERFLOW, p, s);
        cr_assert_eq(stats_of(pool).puts, 1, "an overflowing buffer is still taken back");
        /* Scrubbed and taken back: the same slot, all zero, also where the overflow wrote. */
        char *q = zp_get(pool, 112 * KiB); /* fills the slot: starts at it (zp_color) */
        cr_assert_eq((uintptr_t)q, (uintptr_t)p & ~(uintptr_t)(page_size() - 1));
        assert_zero(q, 112 * KiB);
        zp_put(pool, q);
        /* The last byte of the checked window. */
        q = zp_get(pool, s);
        q[s + ZP_SLACK_CHECK - 1] = 7;
        zp_put(pool, q);
        assert_misuse(log, 1, ZP_MISUSE_OVERFLOW, q, s);
        cr_assert_eq(log.n, 2);
        assert_consistent(pool, s);
        cr_assert_eq(log.n, 2);
        zp_pool_destroy(pool);
    }
}

/* An overflow past the checked window is not reported, but it must not reach the next holder
 * of the slot: zp_get promises zeroed memory up to the size asked for. */
Test(core_misuse, overflow_beyond_checked_slack_not_handed_out)
{
    misuse_log_t log;
    zp_pool_t *pool = misuse_pool(4, &log);
    size_t s = 100000;
    char *p = zp_get(pool, s);
    memset(p, 0x30, s);
    /* The last byte of the page that holds the buffer's last byte: the scrub's reach (the
     * buffer starts at a varying offset in its first page, zp_color). */
    size_t off = (uintptr_t)p % page_size();
    p[(off + s + page_size() - 1) / page_size() * page_size() - off - 1] = 0x31;
    zp_put(pool, p);
    char *q = zp_get(pool, 112 * KiB); /* fills the slot: starts at it (zp_color) */
    cr_assert_eq((uintptr_t)q, (uintptr_t)p & ~(uintptr_t)(page_size() - 1));
    assert_zero(q, 112 * KiB);
    zp_put(pool, q);
    zp_pool_destroy(pool);
}

/* ---- the default handler ---- */

/* The child names its buffer on stderr, then misuses it; the parent checks the next line. */
static int abort_child(void *arg)
{
    int kind = (int)(intptr_t)arg;
    zp_config_t c = test_cfg(1, 4);
    zp_pool_t *pool = zp_pool_new(&c);
    CHILD_CHECK(pool);
    char *p = zp_get(pool, 128 * KiB);
    CHILD_CHECK(p);
    dprintf(2, "buffer %p\n", (void *)p);
    if (kind == 0) {
        zp_put(pool, p);
        zp_put(pool, p);
    } else {
        zp_put(pool, p + 16);
    }
    return 0; /* the default handler must not return */
}

Test(core_misuse, default_handler_aborts_with_report)
{
    for (int kind = 0; kind < 2; kind++) {
        char out[1024];
        int st = run_child(abort_child, (void *)(intptr_t)kind, out, sizeof out);
        cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "kind %d: status 0x%x, stderr:\n%s",
                  kind, st, out);
        void *addr = NULL;
        cr_assert_eq(sscanf(out, "buffer %p\n", &addr), 1, "stderr:\n%s", out);
        char want[200];
        if (kind == 0)
            snprintf(want, sizeof want, "buffer %p\nzeropool: double free of %p (131072-byte buffer)\n",
                     addr, addr);
        else
            snprintf(want, sizeof want, "buffer %p\nzeropool: invalid free of %p (131072-byte buffer)\n",
                     addr, (void *)((char *)addr + 16));
        cr_assert_str_eq(out, want, "stderr differs from the expected report");
    }
}

Test(core_misuse, misuse_names)
{
    cr_assert_str_eq(zp_misuse_name(ZP_MISUSE_DOUBLE_FREE), "double free");
    cr_assert_str_eq(zp_misuse_name(ZP_MISUSE_INVALID_FREE), "invalid free");
    cr_assert_str_eq(zp_misuse_name(ZP_MISUSE_OVERFLOW), "overflow");
    cr_assert_str_eq(zp_misuse_name(ZP_MISUSE_WILD_FREE), "wild free");
    cr_assert_not_null(zp_misuse_name(ZP_MISUSE_NOT_ZERO));
    cr_assert_not_null(zp_misuse_name((zp_misuse_t)99));
}

/* ---- allocation-time checks ---- */

Test(core_misuse, zero_on_alloc_rezeroes)
{
    for (unsigned tls = 0; tls <= 4; tls += 4) {
        zp_config_t c = test_cfg(1, tls);
        c.zero_on_alloc = true;
        zp_pool_t *pool = new_pool(&c);
        misuse_log_t log = { 0 };
        zp_pool_set_misuse_handler(pool, misuse_record, &log);
        char *p = zp_get(pool, 128 * KiB);
        zp_put(pool, p);
        /* Corrupt the free buffer through the stale pointer. */
        memset(p, 0xBB, 128 * KiB);
        char *q = zp_get(pool, 128 * KiB);
        cr_assert_eq(q, p, "not the same buffer: the test cannot tell");
        assert_zero(q, 128 * KiB);
        cr_assert_eq(log.n, 0);
        zp_put(pool, q);
        zp_pool_destroy(pool);
    }
}

Test(core_misuse, verify_on_alloc_reports_not_zero)
{
    for (unsigned tls = 0; tls <= 4; tls += 4) {
        zp_config_t c = test_cfg(1, tls);
        c.verify_on_alloc = true;
        zp_pool_t *pool = new_pool(&c);
        misuse_log_t log = { 0 };
        zp_pool_set_misuse_handler(pool, misuse_record, &log);
        /* Clean buffers pass the check. */
        for (unsigned i = 0; i < 5; i++) {
            char *p = zp_get(pool, 128 * KiB);
            memset(p, 0x12, 128 * KiB);
            zp_put(pool, p);
        }
        cr_assert_eq(log.n, 0);
        char *p = zp_get(pool, 128 * KiB);
        zp_put(pool, p);
        p[77777] = 0x5C; /* through the stale pointer */
        char *q = zp_get(pool, 128 * KiB);
        cr_assert_eq(q, p);
        assert_misuse(log, 0, ZP_MISUSE_NOT_ZERO, p, 128 * KiB);
        cr_assert_eq(log.n, 1);
        /* The handler returned: the buffer handed out is still zero. */
        assert_zero(q, 128 * KiB);
        zp_put(pool, q);
        zp_pool_destroy(pool);
    }
}

/* The slack rule has one owner, the core: a resize in place reports an overflow past the old
 * size, as a put would, and (the handler returning) clears it, so a growth never hands the
 * overflow to the program. */
Test(core_misuse, resize_reports_dirty_slack)
{
    misuse_log_t log;
    zp_pool_t *pool = misuse_pool(0, &log);
    size_t size = 100 * KiB;
    char *p = zp_get(pool, size);
    cr_assert(p);
    size_t room = zp_capacity(pool, p);
    cr_assert_gt(room, size + 64, "the class must leave slack past the request");
    memset(p, 0x33, size + 8); /* 8 bytes past the end */
    cr_assert(zp_resize(pool, p, size + 4096));
    assert_misuse(log, 0, ZP_MISUSE_OVERFLOW, p, size);
    cr_assert_eq(log.n, 1);
    assert_zero(p + size, 4096); /* the grown part: zero, the overflow gone */
    zp_put(pool, p);
    cr_assert_eq(log.n, 1, "the cleared slack was reported again at put");
    zp_pool_destroy(pool);
}

/* realloc's in-place rule lives in the core: in place while the request uses at least half of
 * its slot; below half, or past the slot, the buffer is left unchanged for the caller to move. */
Test(core_misuse, realloc_in_place_rule)
{
    misuse_log_t log;
    zp_pool_t *pool = misuse_pool(0, &log);
    char *p = zp_get(pool, 200 * KiB);
    cr_assert(p);
    size_t room = zp_capacity(pool, p);
    memset(p, 0x44, 200 * KiB);
    cr_assert(zp_realloc_in_place(pool, p, room), "growing within the slot stays");
    cr_assert_eq(zp_usable_size(pool, p), room);
    cr_assert(zp_realloc_in_place(pool, p, room / 2), "half of the slot stays");
    assert_zero(p + room / 2, room - room / 2);
    cr_assert_not(zp_realloc_in_place(pool, p, room / 2 - 1), "below half must move");
    cr_assert_eq(zp_usable_size(pool, p), room / 2, "a refused resize changed the buffer");
    cr_assert_not(zp_realloc_in_place(pool, p, room + 1), "past the slot must move");
    cr_assert_eq(log.n, 0);
    zp_put(pool, p);
    zp_pool_destroy(pool);
}
