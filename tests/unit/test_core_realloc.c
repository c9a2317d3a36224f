/* Unit tests of zp_realloc: a large buffer grows and shrinks in place where its slot or its
 * mapping allows, and otherwise moves by its pages (no copy), keeping the rules of every free:
 * the old range holds nothing readable, the new tail is zero, the guard page follows. */
#include "core_test_util.h"

static void fill(unsigned char *p, size_t from, size_t to, unsigned seed)
{
    for (size_t i = (from + 511) & ~(size_t)511; i < to; i += 512)
        p[i] = (unsigned char)((i / 512) * 31 + seed) | 1;
}

/* Offset of the first byte that fill(p, 0, n, seed) would not have left, or -1. */
static size_t first_wrong(const unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char want = i % 512 ? 0 : (unsigned char)((i / 512) * 31 + seed) | 1;
        if (p[i] != want)
            return i;
    }
    return (size_t)-1;
}

#define assert_content(p, n, seed)                                                             \
    do {                                                                                       \
        size_t at_ = first_wrong((p), (n), (seed));                                            \
        cr_assert_eq(at_, (size_t)-1, "byte %zu of %zu holds 0x%02x", at_, (size_t)(n),        \
                     at_ == (size_t)-1 ? 0 : (p)[at_]);                                        \
    } while (0)

static int write_at(void *arg)
{
    struct sigaction sa = { 0 };
    sa.sa_handler = SIG_DFL; /* the kernel's SIGSEGV, not a sanitizer's report */
    sigaction(SIGSEGV, &sa, NULL);
    *(volatile char *)arg = 1;
    return 0;
}

/* The page at addr faults when written (a guard, or space given back). */
static void assert_faults(void *addr, const char *what)
{
    char out[512];
    int ws = run_child(write_at, addr, out, sizeof out);
    cr_assert(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGSEGV, "%s: writing %p did not fault "
              "(status 0x%x): %s", what, addr, ws, out);
}

/* The page a buffer starts in (a buffer starts at a varying 64-byte offset in it, zp_color). */
static unsigned char *page_floor(void *p)
{
    return (unsigned char *)((uintptr_t)p & ~(uintptr_t)(page_size() - 1));
}

static size_t round_page(size_t n)
{
    return (n + page_size() - 1) & ~(page_size() - 1);
}

/* Where the guard after n bytes at p is: right after the page the buffer ends in. */
static unsigned char *guard_of(void *p, size_t n)
{
    return page_floor(p) + round_page((size_t)((unsigned char *)p - page_floor(p)) + n);
}

/* A pooled buffer grown past its slot moves by its pages: the contents follow, the new part is
 * zero, the old range holds no page (moved, not copied and scrubbed), the guard follows. */
Test(core_realloc, pooled_grow_moves_pages)
{
    zp_config_t c = test_cfg(1, 4);
    zp_pool_t *pool = new_pool(&c);
    size_t old = MiB + 3000, n = 3 * MiB + 5;
    unsigned char *p = zp_get(pool, old);
    cr_assert_not_null(p);
    fill(p, 0, old, 7);
    unsigned char *q = zp_realloc(pool, p, n);
    cr_assert_not_null(q);
    cr_assert_neq(q, p, "a 1 MiB slot cannot hold 3 MiB");
    cr_assert_eq(zp_usable_size(pool, q), n);
    assert_content(q, old, 7);
    assert_zero(q + old, zp_capacity(pool, q) - old);
    cr_assert_eq(resident_pages(p, old), 0, "the old range still holds pages: copied, not moved");
    assert_zero(p, old);
    cr_assert_eq(zp_check(pool, p, NULL), ZP_MISUSE_DOUBLE_FREE, "the old buffer is not free");
    assert_faults(q + zp_capacity(pool, q), "guard after the moved buffer");
    zp_put(pool, q);
    zp_stats_t st = stats_of(pool);
    cr_assert_eq(st.live_bytes, 0);
    zp_pool_destroy(pool);
}

/* A buffer starts at a varying offset in its first page (zp_color): a move keeps that offset,
 * so that its pages move, into the pool and into a direct mapping alike. */
Test(core_realloc, moves_keep_the_page_offset)
{
    zp_config_t c = test_cfg(1, 4);
    c.max_pooled_size = 4 * MiB;
    zp_pool_t *pool = new_pool(&c);
    size_t sizes[] = { 300000, MiB + 3000, 3 * MiB + 5, 12 * MiB, 30 * MiB };
    for (unsigned k = 0; k < 8; k++) {
        unsigned char *p = zp_get(pool, sizes[0]);
        fill(p, 0, sizes[0], 5);
        for (unsigned i = 1; i < sizeof sizes / sizeof sizes[0]; i++) {
            size_t off = (uintptr_t)p % page_size();
            unsigned char *q = zp_realloc(pool, p, sizes[i]);
            cr_assert_not_null(q);
            cr_assert_eq((uintptr_t)q % page_size(), off, "%zu -> %zu: offset %zu -> %zu",
                         sizes[i - 1], sizes[i], off, (size_t)((uintptr_t)q % page_size()));
            assert_content(q, sizes[0], 5);
            if (q != p)
                cr_assert_eq(resident_pages(page_floor(p), off + sizes[i - 1]), 0,
                             "%zu -> %zu: copied, not moved", sizes[i - 1], sizes[i]);
            p = q;
        }
        zp_put(pool, p);
    }
    zp_pool_destroy(pool);
}

/* A shrink below half of its slot moves to a smaller class: the kept part follows, the rest of
 * the new slot is zero, and nothing of the dropped part stays readable in the old range. */
Test(core_realloc, pooled_shrink_moves)
{
    zp_config_t c = test_cfg(1, 4);
    zp_pool_t *pool = new_pool(&c);
    size_t old = 8 * MiB, n = MiB + 100;
    unsigned char *p = zp_get(pool, old);
    fill(p, 0, old, 3);
    unsigned char *q = zp_realloc(pool, p, n);
    cr_assert_not_null(q);
    cr_assert_neq(q, p);
    cr_assert_eq(zp_usable_size(pool, q), n);
    assert_content(q, n, 3);
    assert_zero(q + n, zp_capacity(pool, q) - n);
    cr_assert_eq(first_nonzero_resident(p, old), (size_t)-1, "data left in the old range");
    zp_put(pool, q);
    zp_pool_destroy(pool);
}

/* Small moves copy (a copy is cheaper below the move threshold); the rules are the same. */
Test(core_realloc, small_grow_copies_and_scrubs)
{
    zp_config_t c = test_cfg(1, 4);
    zp_pool_t *pool = new_pool(&c);
    unsigned char *p = zp_get(pool, 70000);
    fill(p, 0, 70000, 9);
    unsigned char *q = zp_realloc(pool, p, 200000);
    cr_assert_neq(q, p);
    assert_content(q, 70000, 9);
    assert_zero(q + 70000, zp_capacity(pool, q) - 70000);
    assert_zero(p, 70000);
    zp_put(pool, q);
    zp_pool_destroy(pool);
}

/* A direct buffer grows into the address space after it, then moves to a mapping with room to
 * grow again; it shrinks in place by giving whole pages back. */
Test(core_realloc, direct_grow_and_shrink_in_place)
{
    zp_config_t c = test_cfg(1, 4);
    c.max_pooled_size = 4 * MiB;
    zp_pool_t *pool = new_pool(&c);
    size_t n1 = 8 * MiB + 100;
    unsigned char *p = zp_get(pool, n1);
    fill(p, 0, n1, 1);
    /* 8 MiB + a guard reserve 12 MiB: 10 MiB fits in place. */
    size_t n2 = 10 * MiB;
    unsigned char *q = zp_realloc(pool, p, n2);
    cr_assert_eq(q, p, "growth within the mapping's address space moved");
    assert_content(q, n1, 1);
    assert_zero(q + n1, n2 - n1);
    assert_faults(guard_of(q, n2), "guard after the grown buffer");
    fill(q, n1, n2, 1);
    /* Past the mapping: a move by pages, to a mapping that leaves room. */
    size_t n3 = 24 * MiB;
    unsigned char *r = zp_realloc(pool, q, n3);
    cr_assert_neq(r, q);
    assert_content(r, n2, 1);
    assert_zero(r + n2, n3 - n2);
    cr_assert_eq(resident_pages(q, n2), 0, "the old mapping still holds pages");
    assert_faults(q, "the old mapping, given back");
    size_t n4 = 40 * MiB;
    unsigned char *s = zp_realloc(pool, r, n4);
    cr_assert_eq(s, r, "the moved buffer has no room to grow in place");
    assert_content(s, n2, 1);
    assert_zero(s + n2, n4 - n2);
    assert_faults(guard_of(s, n4), "guard after the regrown buffer");
    fill(s, 0, n4, 5);
    /* Shrink in place: the dropped pages go back, the last page's tail is zero. */
    size_t n5 = 30 * MiB + 123;
    unsigned char *t = zp_realloc(pool, s, n5);
    cr_assert_eq(t, s, "a direct shrink moved");
    cr_assert_eq(zp_usable_size(pool, t), n5);
    assert_content(t, n5, 5);
    unsigned char *end5 = guard_of(t, n5), *end4 = guard_of(t, n4);
    assert_zero(t + n5, (size_t)(end5 - (t + n5)));
    cr_assert_eq(resident_pages(end5, (size_t)(end4 - end5)), 0,
                 "the dropped pages are still resident");
    assert_faults(guard_of(t, n5), "guard after the shrunk buffer");
    zp_put(pool, t);
    zp_stats_t st = stats_of(pool);
    cr_assert_eq(st.live_bytes, 0, "live %llu", (unsigned long long)st.live_bytes);
    zp_pool_destroy(pool);
}

/* The growth loop: one buffer grown by 1 MiB steps past max_pooled_size. Every byte stays, the
 * memory held stays near the buffer's size (pages move, the old ranges hold none). */
Test(core_realloc, growth_loop_keeps_contents_and_memory)
{
    zp_config_t c = test_cfg(1, 4);
    c.max_pooled_size = 16 * MiB;
    zp_pool_t *pool = new_pool(&c);
    size_t base = rss_bytes(), top = 48 * MiB, most = 0;
    unsigned char *p = zp_get(pool, MiB);
    fill(p, 0, MiB, 2);
    for (size_t n = 2 * MiB; n <= top; n += MiB) {
        unsigned char *q = zp_realloc(pool, p, n);
        cr_assert_not_null(q, "realloc to %zu: %s", n, strerror(errno));
        fill(q, n - MiB, n, 2);
        p = q;
        size_t r = rss_bytes();
        most = r > most ? r : most;
    }
    assert_content(p, top, 2);
    cr_assert_lt(most - base, top + top / 5, "resident grew by %zu MiB for a %zu MiB buffer",
                 (most - base) >> 20, top >> 20);
    zp_put(pool, p);
    zp_pool_destroy(pool);
}

/* Where the kernel refuses the move, the buffer is copied, with the same rules. */
Test(core_realloc, failed_move_falls_back_to_copy)
{
    zp_config_t c = test_cfg(1, 4);
    zp_pool_t *pool = new_pool(&c);
    size_t old = 2 * MiB, n = 5 * MiB;
    unsigned char *p = zp_get(pool, old);
    fill(p, 0, old, 4);
    zp_os_inject(ZP_OS_MOVE, 0, 1, ENOMEM);
    unsigned char *q = zp_realloc(pool, p, n);
    zp_os_inject_clear();
    cr_assert_not_null(q);
    assert_content(q, old, 4);
    assert_zero(q + old, zp_capacity(pool, q) - old);
    cr_assert_eq(first_nonzero_resident(p, old), (size_t)-1, "data left in the old range");
    zp_put(pool, q);
    zp_pool_destroy(pool);
}

/* Moves split mappings; a buffer that received or gave pages is mapped afresh when it is put,
 * so that grow-and-free cycles do not pile up mappings towards vm.max_map_count. */
Test(core_realloc, moves_do_not_pile_up_mappings)
{
    zp_config_t c = test_cfg(1, 4);
    zp_pool_t *pool = new_pool(&c);
    unsigned start = 0;
    for (unsigned i = 0; i < 200; i++) {
        unsigned char *p = zp_get(pool, MiB + (i % 7) * 100000);
        memset(p, 0x11, MiB);
        unsigned char *q = zp_realloc(pool, p, 4 * MiB + (i % 5) * 300000);
        cr_assert_not_null(q);
        cr_assert_eq(q[MiB - 1], 0x11);
        zp_put(pool, q);
        if (i == 20)
            start = maps_lines();
    }
    unsigned end = maps_lines();
    cr_assert_leq(end, start + 8, "mappings grew from %u to %u over 180 cycles", start, end);
    zp_pool_destroy(pool);
}

/* An overflow into the slack is reported before the move: it must not travel with the pages. */
static void count_misuse(void *ctx, zp_misuse_t kind, const void *addr, size_t size)
{
    misuse_record(ctx, kind, addr, size);
}

Test(core_realloc, overflow_reported_not_moved)
{
    zp_config_t c = test_cfg(1, 4);
    zp_pool_t *pool = new_pool(&c);
    misuse_log_t log = { 0 };
    zp_pool_set_misuse_handler(pool, count_misuse, &log);
    size_t old = MiB + 1000;
    unsigned char *p = zp_get(pool, old);
    memset(p, 0x22, old + 10); /* 10 bytes past the end */
    unsigned char *q = zp_realloc(pool, p, 6 * MiB);
    cr_assert_not_null(q);
    cr_assert_eq(log.n, 1);
    cr_assert_eq(log.kind[0], ZP_MISUSE_OVERFLOW);
    cr_assert_eq(q[old - 1], 0x22);
    assert_zero(q + old, zp_capacity(pool, q) - old);
    zp_put(pool, q);
    zp_pool_destroy(pool);
}
