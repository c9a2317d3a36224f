/* The model-checked operation interpreter shared by fuzz_core_ops.c and fuzz_core_misuse.c.
 *
 * An input is a small pool configuration (3 bytes) followed by operations (an opcode byte and
 * its arguments). Every live buffer has a shadow copy of what it must contain; after every
 * operation the pool must agree with the model:
 *   - a new buffer is zero over its whole capacity (what a later grow would expose), aligned,
 *     owned, its usable size is the size asked for (1 for 0);
 *   - live buffers keep their bytes (the buffer an operation touched: every byte; the others:
 *     both ends, a byte of every page), never overlap, and zp_check says NONE;
 *   - a buffer put back has usable size 0 and zp_check says "double free";
 *   - stats: gets - puts = live buffers, live_bytes = sum of sizes, pooled_bytes and its peak
 *     stay within pool_bytes, misuse = the reports the handler received;
 *   - zp_pool_trim empties the pool.
 * With misuse on, the interpreter also frees stale, interior and wild pointers, overflows
 * into the slack and writes to freed buffers, and checks the handler's kind and address. */
#ifndef ZP_FUZZ_CORE_H
#define ZP_FUZZ_CORE_H

#include "fuzz_util.h"
#include "zeropool.h"

#include <errno.h>

#define FZ_MAX_LIVE 32
#define FZ_MAX_OPS 200
#define FZ_GRAVE 16               /* freed pointers remembered for stale frees */
#define FZ_ZERO_CHECK_MAX ((size_t)256 << 10) /* zero-check at most this much past the size */
#define FZ_KIB ((size_t)1 << 10)
#define FZ_MIB ((size_t)1 << 20)

typedef struct fz_handle {
    char *p;
    size_t size;  /* usable size the pool must report */
    size_t cap;   /* zp_capacity at get: constant while live */
    size_t align;
    unsigned char *shadow; /* expected content of [0, size) */
} fz_handle_t;

typedef struct fz_grave {
    char *p;
    size_t cap;
    bool pooled_plain; /* a plain pooled buffer: its memory stays mapped after the put */
} fz_grave_t;

typedef struct fz_model {
    zp_pool_t *pool;
    zp_config_t cfg;
    size_t page;
    fz_handle_t h[FZ_MAX_LIVE];
    unsigned n;
    uint64_t live_bytes;
    unsigned op;
    bool misuse_ops;
    fz_grave_t grave[FZ_GRAVE];
    unsigned ngrave, grave_next;
    /* misuse handler's record */
    unsigned reports, expected_reports;
    zp_misuse_t last_kind;
    const void *last_addr;
    size_t last_size;
    bool uaf_pending; /* a freed buffer was written to: a get may report "non-zero buffer" */
} fz_model_t;

static const unsigned char fz_zeros[64 * 1024];

static void fz_on_misuse(void *ctx, zp_misuse_t kind, const void *addr, size_t buf_size)
{
    fz_model_t *m = ctx;
    m->reports++;
    m->last_kind = kind;
    m->last_addr = addr;
    m->last_size = buf_size;
}

/* ---- sizes: class boundaries, small, anything up to 2 MiB, around max_pooled ---- */
static size_t fz_class_size(unsigned i)
{
    /* 4K 8K 12K 16K, then four steps per power of two: 20K 24K 28K 32K 40K ... 1M */
    if (i < 4)
        return (size_t)(i + 1) * 4 * FZ_KIB;
    unsigned j = i - 4, q = j / 4, r = j % 4 + 1;
    size_t p = (size_t)16 * FZ_KIB << q;
    return p + r * (p / 4);
}

static size_t fz_pick_size(fz_in_t *in)
{
    uint8_t k = fz_u8(in);
    switch (k & 3) {
    case 0: {
        size_t c = fz_class_size(fz_u8(in) % 28); /* up to 1 MiB */
        int d = (int8_t)fz_u8(in) % 17;           /* -16 .. +16 */
        return d < 0 && (size_t)-d >= c ? 0 : c + (size_t)(ptrdiff_t)d;
    }
    case 1: return fz_u16(in);
    case 2: return fz_u24(in) % (2 * FZ_MIB + 1);
    default: return FZ_MIB - 8 * FZ_KIB + fz_u16(in) % (16 * FZ_KIB + 1);
    }
}

/* Mostly page-sized and below, sometimes up to 8 MiB, rarely 1..128 GiB: user offsets past
 * 4 GiB must still give aligned pointers. */
#ifndef FZ_MAX_ALIGN_SHIFT
#define FZ_MAX_ALIGN_SHIFT 35 /* -DFZ_MAX_ALIGN_SHIFT=32 steps around a known bug while fuzzing */
#endif
static size_t fz_pick_align(const fz_model_t *m, fz_in_t *in)
{
    uint8_t k = fz_u8(in);
    unsigned shift = k >= 250 ? 30u + (k - 250u) : k % 24u; /* 1 GiB .. 32 GiB, or up to 8 MiB */
    /* A pinned direct buffer mlocks its alignment pad too: gigabytes for a huge alignment. */
    unsigned most = m->cfg.pin ? 23u : FZ_MAX_ALIGN_SHIFT;
    return (size_t)1 << (shift < most ? shift : most);
}

/* The bytes written: never zero, period 255, so that a misplaced copy shows. Written with
 * memcpy from a table, which keeps the fuzzer's comparison hooks out of a byte loop. */
#define FZ_PCHUNK 4096
static uint8_t fz_ptab[255 + FZ_PCHUNK];

static void fz_pattern_init(void)
{
    for (size_t k = 0; k < sizeof fz_ptab; k++)
        fz_ptab[k] = (uint8_t)((k % 255u) * 167u % 255u + 1u);
}

/* ---- checks ---- */
static void fz_check_zero(const fz_model_t *m, const char *p, size_t len, const char *what)
{
    (void)m;
    for (size_t off = 0; off < len; off += sizeof fz_zeros) {
        size_t k = len - off < sizeof fz_zeros ? len - off : sizeof fz_zeros;
        if (memcmp(p + off, fz_zeros, k) != 0) {
            size_t i = off;
            while (!p[i])
                i++;
            FAIL("%s: byte %zu of %p (%zu checked) is 0x%02x, expected 0", what, i, (const void *)p,
                 len, (unsigned char)p[i]);
        }
    }
}

static void fz_check_content(const fz_model_t *m, const fz_handle_t *h, const char *what)
{
    if (memcmp(h->p, h->shadow, h->size) != 0) {
        size_t i = 0;
        while ((unsigned char)h->p[i] == h->shadow[i])
            i++;
        FAIL("%s (op %u): byte %zu of the %zu-byte buffer %p is 0x%02x, model says 0x%02x", what,
             m->op, i, h->size, (void *)h->p, (unsigned char)h->p[i], h->shadow[i]);
    }
}

/* Both ends and one byte of every page, at an offset that moves with each operation. */
static void fz_check_sampled(const fz_model_t *m, const fz_handle_t *h)
{
    size_t probe = ((size_t)m->op * 131u) % m->page;
    CHECK((unsigned char)h->p[0] == h->shadow[0] &&
              (unsigned char)h->p[h->size - 1] == h->shadow[h->size - 1],
          "op %u: ends of %p (%zu bytes) changed", m->op, (void *)h->p, h->size);
    for (size_t off = probe; off < h->size; off += m->page)
        CHECK((unsigned char)h->p[off] == h->shadow[off],
              "op %u: byte %zu of %p (%zu bytes) is 0x%02x, model says 0x%02x", m->op, off,
              (void *)h->p, h->size, (unsigned char)h->p[off], h->shadow[off]);
}

static void fz_check_live_meta(fz_model_t *m, const fz_handle_t *h)
{
    zp_pool_t *pool = m->pool;
    CHECK(zp_owns(pool, h->p) && zp_owns(pool, h->p + h->size - 1), "op %u: %p not owned", m->op,
          (void *)h->p);
    size_t us = zp_usable_size(pool, h->p);
    CHECK(us == h->size, "op %u: usable size of %p is %zu, asked for %zu", m->op, (void *)h->p, us,
          h->size);
    size_t bs = 0;
    zp_misuse_t k = zp_check(pool, h->p, &bs);
    CHECK(k == ZP_MISUSE_NONE && bs == h->size, "op %u: zp_check(%p) = %d (%zu bytes)", m->op,
          (void *)h->p, (int)k, bs);
    CHECK(zp_capacity(pool, h->p) == h->cap, "op %u: capacity of %p changed from %zu to %zu",
          m->op, (void *)h->p, h->cap, zp_capacity(pool, h->p));
}

static void fz_check_stats(fz_model_t *m)
{
    zp_stats_t st;
    zp_pool_stats(m->pool, &st);
    CHECK(st.gets - st.puts == m->n, "op %u: gets %llu - puts %llu != %u live", m->op,
          (unsigned long long)st.gets, (unsigned long long)st.puts, m->n);
    CHECK(st.live_bytes == m->live_bytes, "op %u: live_bytes %llu, model %llu", m->op,
          (unsigned long long)st.live_bytes, (unsigned long long)m->live_bytes);
    CHECK(st.pooled_bytes <= m->cfg.pool_bytes && st.peak_pooled_bytes <= m->cfg.pool_bytes,
          "op %u: pooled %llu (peak %llu) over the budget %zu", m->op,
          (unsigned long long)st.pooled_bytes, (unsigned long long)st.peak_pooled_bytes,
          m->cfg.pool_bytes);
    CHECK(st.misuse == m->reports, "op %u: stats count %llu misuse, the handler saw %u", m->op,
          (unsigned long long)st.misuse, m->reports);
}

static void fz_check_all(fz_model_t *m)
{
    CHECK(m->reports == m->expected_reports, "op %u: %u misuse reports, expected %u (last: %s at %p)",
          m->op, m->reports, m->expected_reports, zp_misuse_name(m->last_kind), m->last_addr);
    for (unsigned i = 0; i < m->n; i++) {
        const fz_handle_t *h = &m->h[i];
        fz_check_live_meta(m, h);
        fz_check_sampled(m, h);
        for (unsigned j = i + 1; j < m->n; j++) {
            const fz_handle_t *g = &m->h[j];
            CHECK(h->p + h->cap <= g->p || g->p + g->cap <= h->p,
                  "op %u: live buffers %p+%zu and %p+%zu overlap", m->op, (void *)h->p, h->cap,
                  (void *)g->p, g->cap);
        }
    }
    fz_check_stats(m);
}

/* ---- operations ---- */

/* A get may find a use-after-free write: then exactly one "non-zero buffer" report. */
static void fz_accept_uaf(fz_model_t *m)
{
    if (m->uaf_pending && m->reports == m->expected_reports + 1 &&
        m->last_kind == ZP_MISUSE_NOT_ZERO)
        m->expected_reports++;
}

/* A buffer just handed out: aligned, owned, zero over its capacity, then tracked. */
static void fz_adopt(fz_model_t *m, char *p, size_t size, size_t align, const char *what)
{
    size_t want = size ? size : 1;
    /* A direct mapping commits its alignment pad: gigabytes can exceed the overcommit limit. */
    if (!p && errno == ENOMEM && align >= ((size_t)1 << 30))
        return;
    CHECK(p != NULL, "op %u: %s(%zu, align %zu) failed: %s", m->op, what, size, align,
          strerror(errno));
    /* 64 bytes at least: a large buffer starts at a varying offset in its first page. */
    CHECK((uintptr_t)p % 64 == 0 && (uintptr_t)p % align == 0,
          "op %u: %s(%zu, align %zu) = %p is not aligned", m->op, what, size, align, (void *)p);
    size_t cap = zp_capacity(m->pool, p);
    CHECK(cap >= want, "op %u: %s(%zu) = %p has capacity %zu", m->op, what, size, (void *)p, cap);
    fz_check_zero(m, p, cap < want + FZ_ZERO_CHECK_MAX ? cap : want + FZ_ZERO_CHECK_MAX, what);
    fz_handle_t *h = &m->h[m->n];
    h->p = p;
    h->size = want;
    h->cap = cap;
    h->align = align;
    h->shadow = calloc(1, want);
    CHECK(h->shadow != NULL, "calloc");
    m->n++;
    m->live_bytes += want;
    fz_check_live_meta(m, h);
    fz_accept_uaf(m);
}

static bool fz_plain(const fz_model_t *m, const fz_handle_t *h)
{
    return h->size <= m->cfg.max_pooled_size && h->align <= m->page;
}

static void fz_forget(fz_model_t *m, unsigned i)
{
    fz_handle_t *h = &m->h[i];
    fz_grave_t *g = &m->grave[m->grave_next];
    g->p = h->p;
    g->cap = h->cap;
    g->pooled_plain = fz_plain(m, h);
    m->grave_next = (m->grave_next + 1) % FZ_GRAVE;
    if (m->ngrave < FZ_GRAVE)
        m->ngrave++;
    m->live_bytes -= h->size;
    free(h->shadow);
    m->h[i] = m->h[--m->n];
}

static void fz_put(fz_model_t *m, unsigned i)
{
    fz_handle_t *h = &m->h[i];
    char *p = h->p;
    fz_check_content(m, h, "before put");
    zp_put(m->pool, p);
    fz_forget(m, i);
    CHECK(zp_usable_size(m->pool, p) == 0, "op %u: usable size of freed %p", m->op, (void *)p);
    size_t bs;
    zp_misuse_t k = zp_check(m->pool, p, &bs);
    CHECK(k == ZP_MISUSE_DOUBLE_FREE, "op %u: zp_check of freed %p says %s", m->op, (void *)p,
          zp_misuse_name(k));
    CHECK(zp_owns(m->pool, p), "op %u: freed %p no longer owned", m->op, (void *)p);
}

static void fz_write(fz_model_t *m, fz_handle_t *h, size_t off, size_t len, unsigned seed)
{
    (void)m;
    for (size_t done = 0; done < len;) {
        size_t k = len - done < FZ_PCHUNK ? len - done : FZ_PCHUNK;
        const uint8_t *src = fz_ptab + (seed + off + done) % 255u;
        memcpy(h->shadow + off + done, src, k);
        memcpy(h->p + off + done, src, k);
        done += k;
    }
}

/* One byte at every stride-th page and the last byte: a sparse user. */
static void fz_write_sparse(fz_model_t *m, fz_handle_t *h, size_t stride_pages, unsigned seed)
{
    for (size_t off = 0; off < h->size; off += stride_pages * m->page)
        fz_write(m, h, off, 1, seed);
    fz_write(m, h, h->size - 1, 1, seed);
}

static void fz_op_resize(fz_model_t *m, fz_in_t *in)
{
    fz_handle_t *h = &m->h[fz_u8(in) % m->n];
    uint8_t how = fz_u8(in);
    size_t limit = h->cap < 4 * FZ_MIB ? h->cap : 4 * FZ_MIB, ns;
    switch (how & 3) {
    case 0: ns = fz_u24(in) % (limit + 1); break;        /* anywhere in the slot */
    case 1: ns = h->size - fz_u16(in) % h->size; break;  /* shrink a little */
    case 2: ns = h->cap + 1 + fz_u16(in); break;         /* past the slot: refused */
    default: ns = limit; break;                          /* the whole slot */
    }
    fz_check_content(m, h, "before resize");
    bool ok = zp_resize(m->pool, h->p, ns);
    bool expect = ns && ns <= h->cap;
    CHECK(ok == expect, "op %u: zp_resize(%p, %zu) with capacity %zu returned %d", m->op,
          (void *)h->p, ns, h->cap, ok);
    if (!ok) {
        fz_check_content(m, h, "after a refused resize");
        return;
    }
    if (ns > h->size) {
        fz_check_zero(m, h->p + h->size, ns - h->size, "grown part");
        unsigned char *sh = realloc(h->shadow, ns);
        CHECK(sh != NULL, "realloc");
        memset(sh + h->size, 0, ns - h->size);
        h->shadow = sh;
    } else {
        /* The dropped tail reads as zero at once. */
        fz_check_zero(m, h->p + ns, h->size - ns, "dropped tail");
    }
    m->live_bytes = m->live_bytes - h->size + ns;
    h->size = ns;
    fz_check_content(m, h, "after resize");
}

/* Get, write sparsely, put, count times: the same slot cycles, which is what drives the
 * scrubber's density probes (MADV_DONTNEED every 2^k puts) and the thread cache. */
static void fz_op_cycle(fz_model_t *m, fz_in_t *in)
{
    size_t size = fz_pick_size(in);
    unsigned count = 2 + fz_u8(in) % 24, stride = 1 + fz_u8(in) % 8, seed = fz_u8(in);
    bool dense = stride == 8;
    for (unsigned c = 0; c < count; c++) {
        if (m->n == FZ_MAX_LIVE)
            return;
        fz_adopt(m, zp_get(m->pool, size), size, 1, "cycle get");
        fz_handle_t *h = &m->h[m->n - 1];
        if (dense)
            fz_write(m, h, 0, h->size, seed + c);
        else
            fz_write_sparse(m, h, stride, seed + c);
        fz_put(m, m->n - 1);
    }
}

static void fz_op_bad_request(fz_model_t *m, fz_in_t *in)
{
    uint8_t k = fz_u8(in) % 4;
    void *p;
    int want;
    errno = 0;
    switch (k) {
    case 0: p = zp_get(m->pool, SIZE_MAX); want = ENOMEM; break;
    case 1: p = zp_get(m->pool, SIZE_MAX - m->page); want = ENOMEM; break;
    case 2: p = zp_get_aligned(m->pool, 4096, 3 << (fz_u8(in) % 20)); want = EINVAL; break;
    default: p = zp_get_aligned(m->pool, 4096, 0); want = EINVAL; break;
    }
    CHECK(p == NULL && errno == want, "op %u: impossible request %u gave %p, errno %d", m->op, k,
          p, errno);
}

/* ---- misuse operations ---- */
static void fz_expect_report3(fz_model_t *m, const void *addr, zp_misuse_t k1, zp_misuse_t k2,
                              zp_misuse_t k3, const char *what)
{
    m->expected_reports++;
    CHECK(m->reports == m->expected_reports, "op %u: %s of %p: %u reports, expected %u", m->op,
          what, addr, m->reports, m->expected_reports);
    CHECK(m->last_addr == addr, "op %u: %s of %p reported at %p", m->op, what, addr, m->last_addr);
    CHECK(m->last_kind == k1 || m->last_kind == k2 || m->last_kind == k3,
          "op %u: %s of %p reported as %s", m->op, what, addr, zp_misuse_name(m->last_kind));
}

static void fz_expect_report(fz_model_t *m, const void *addr, zp_misuse_t k1, zp_misuse_t k2,
                             const char *what)
{
    fz_expect_report3(m, addr, k1, k2, k2, what);
}

static int fz_find_live(const fz_model_t *m, const char *a, bool *inside)
{
    *inside = false;
    for (unsigned i = 0; i < m->n; i++) {
        if (a == m->h[i].p)
            return (int)i;
        if (a > m->h[i].p && a < m->h[i].p + m->h[i].cap)
            *inside = true;
    }
    return -1;
}

/* Whether the byte at p can be read, probed through a pipe (write(2) fails with EFAULT on an
 * unmapped or PROT_NONE address instead of faulting). Pool slots are either read-write or
 * PROT_NONE, so readable means writable here. */
static bool fz_mapped(const void *p)
{
    static int fd[2] = {-1, -1};
    if (fd[0] < 0 && pipe(fd) != 0)
        return false;
    if (write(fd[1], p, 1) != 1)
        return false;
    char c;
    return read(fd[0], &c, 1) == 1;
}

static void fz_op_misuse(fz_model_t *m, fz_in_t *in)
{
    uint8_t kind = fz_u8(in) % 5;
    bool inside;
    if (kind == 0 && m->ngrave) { /* a pointer freed before */
        const fz_grave_t *g = &m->grave[fz_u8(in) % m->ngrave];
        if (fz_find_live(m, g->p, &inside) >= 0)
            return; /* handed out again: a valid free */
        zp_put(m->pool, g->p);
        if (inside)
            fz_expect_report(m, g->p, ZP_MISUSE_INVALID_FREE, ZP_MISUSE_INVALID_FREE, "stale free");
        else /* the slot may have been reused at another offset (an aligned get), or its span's
              * address space given back to the kernel (then the pointer is no longer ours) */
            fz_expect_report3(m, g->p, ZP_MISUSE_DOUBLE_FREE, ZP_MISUSE_INVALID_FREE,
                              ZP_MISUSE_WILD_FREE, "stale free");
    } else if (kind == 1 && m->n) { /* inside a live buffer */
        fz_handle_t *h = &m->h[fz_u8(in) % m->n];
        if (h->cap < 2)
            return;
        size_t off = 1 + fz_u24(in) % (h->cap - 1);
        zp_put(m->pool, h->p + off);
        fz_expect_report(m, h->p + off, ZP_MISUSE_INVALID_FREE, ZP_MISUSE_INVALID_FREE,
                         "interior free");
        fz_check_content(m, h, "after an interior free");
    } else if (kind == 2 && m->n) { /* anywhere near a live buffer */
        fz_handle_t *h = &m->h[fz_u8(in) % m->n];
        int32_t delta = (int32_t)(fz_u32(in) % (16 * FZ_MIB)) - (int32_t)(8 * FZ_MIB);
        char *a = h->p + delta;
        if (fz_find_live(m, a, &inside) >= 0)
            return;
        zp_put(m->pool, a);
        if (inside)
            fz_expect_report(m, a, ZP_MISUSE_INVALID_FREE, ZP_MISUSE_INVALID_FREE, "wild free");
        else if (!zp_owns(m->pool, a))
            fz_expect_report(m, a, ZP_MISUSE_WILD_FREE, ZP_MISUSE_WILD_FREE, "foreign free");
        else {
            m->expected_reports++;
            CHECK(m->reports == m->expected_reports && m->last_addr == a &&
                      m->last_kind != ZP_MISUSE_NONE && m->last_kind != ZP_MISUSE_OVERFLOW &&
                      m->last_kind != ZP_MISUSE_NOT_ZERO,
                  "op %u: wild free of %p reported %u times as %s", m->op, (void *)a, m->reports,
                  zp_misuse_name(m->last_kind));
        }
    } else if (kind == 3 && m->n) { /* a write past the end, then the free */
        unsigned i = fz_u8(in) % m->n;
        fz_handle_t *h = &m->h[i];
        /* zeropool scrubs through the end of the page that holds the last byte, and reports
         * a non-zero byte in the first 64 bytes of slack; later pages are out of reach. */
        size_t first = (uintptr_t)h->p % m->page; /* where it starts in its first page */
        size_t pend = (first + h->size + m->page - 1) / m->page * m->page - first;
        if (pend > h->cap)
            pend = h->cap;
        size_t room = pend - h->size;
        if (room == 0)
            return;
        size_t off = fz_u16(in) % room, len = 1 + fz_u8(in) % 64;
        if (len > room - off)
            len = room - off;
        char *p = h->p;
        size_t size = h->size;
        memset(p + size + off, 1 + fz_u8(in) % 255, len);
        fz_check_content(m, h, "before an overflowing put");
        zp_put(m->pool, p);
        if (off < 64) {
            fz_expect_report(m, p, ZP_MISUSE_OVERFLOW, ZP_MISUSE_OVERFLOW, "overflow");
            CHECK(m->last_size == size, "op %u: overflow of %p reported %zu bytes, buffer has %zu",
                  m->op, (void *)p, m->last_size, size);
        }
        fz_forget(m, i); /* taken back either way: the next holder must still get zeros */
        CHECK(zp_usable_size(m->pool, p) == 0, "op %u: overflowing %p still live", m->op,
              (void *)p);
    } else if (kind == 4 && m->ngrave && m->cfg.verify_on_alloc) { /* use after free */
        const fz_grave_t *g = &m->grave[fz_u8(in) % m->ngrave];
        if (!g->pooled_plain)
            return; /* direct mappings are PROT_NONE once freed */
        if (fz_find_live(m, g->p, &inside) >= 0 || inside)
            return;
        /* Its span's address space may have been given back (unmapped, or reserved again
         * PROT_NONE): a write there faults, in any program, and is not what this op tests. */
        if (!zp_owns(m->pool, g->p) || !fz_mapped(g->p))
            return;
        g->p[0] = 0x5a; /* the next get of this slot must report it and still hand out zeros */
        m->uaf_pending = true;
    }
}


/* ---- the interpreter ---- */
static void fz_run(const uint8_t *data, size_t size, bool misuse_ops)
{
    static fz_model_t model;
    fz_model_t *m = &model;
    memset(m, 0, sizeof *m);
    fz_in_t in = { data, size, 0 };
    m->page = (size_t)sysconf(_SC_PAGESIZE);
    if (!fz_ptab[0])
        fz_pattern_init();
    m->misuse_ops = misuse_ops;

    uint8_t c0 = fz_u8(&in), c1 = fz_u8(&in), c2 = fz_u8(&in);
    zp_config_t c;
    zp_config_init(&c);
    c.pool_bytes = 4 * FZ_MIB;
    c.min_buffer_size = 4 * FZ_KIB;
    c.max_pooled_size = FZ_MIB;
    c.eviction = (c0 & 1) ? ZP_EVICT_CLOCK_PRO : ZP_EVICT_LIFO;
    c.num_shards = (c0 & 2) ? 2 : 1;
    c.tls_cache_size = ((c0 >> 2) & 3) ? 2 : 0;
    c.pin = ((c0 >> 4) & 1) && (c1 >> 6) == 3; /* mlock populates every page: slow, so rarer */
    c.zero_on_alloc = ((c0 >> 5) & 3) == 1;
    c.verify_on_alloc = ((c0 >> 5) & 3) == 2;
    c.max_buffers_per_shard = 1 + c1 % 64;
    c.tls_cache_bytes = (64 * FZ_KIB) << (c2 % 6);
    c.guard_pages = (c2 & 0xe0) != 0xe0; /* on, except one input in eight */
    c.check_slack = true;
    m->pool = zp_pool_new(&c);
    CHECK(m->pool != NULL, "zp_pool_new: %s", strerror(errno));
    zp_pool_config(m->pool, &m->cfg);
    if (misuse_ops)
        zp_pool_set_misuse_handler(m->pool, fz_on_misuse, m);

    for (m->op = 1; m->op <= FZ_MAX_OPS && fz_left(&in); m->op++) {
        uint8_t op = fz_u8(&in) % (misuse_ops ? 16 : 14);
        switch (op) {
        case 0:
        case 1:
        case 2:
            if (m->n < FZ_MAX_LIVE) {
                size_t s = fz_pick_size(&in);
                fz_adopt(m, zp_get(m->pool, s), s, 1, "zp_get");
            }
            break;
        case 3:
            if (m->n < FZ_MAX_LIVE) {
                size_t s = fz_pick_size(&in), a = fz_pick_align(m, &in);
                fz_adopt(m, zp_get_aligned(m->pool, s, a), s, a, "zp_get_aligned");
            }
            break;
        case 4:
        case 5:
            if (m->n)
                fz_put(m, fz_u8(&in) % m->n);
            break;
        case 6:
            if (m->n)
                fz_op_resize(m, &in);
            break;
        case 7:
            if (m->n) { /* a range */
                fz_handle_t *h = &m->h[fz_u8(&in) % m->n];
                size_t off = fz_u24(&in) % h->size, len = fz_u16(&in);
                if (len > h->size - off)
                    len = h->size - off;
                fz_write(m, h, off, len, fz_u8(&in));
                fz_check_content(m, h, "after write");
            }
            break;
        case 8:
            if (m->n) { /* sparse */
                fz_handle_t *h = &m->h[fz_u8(&in) % m->n];
                fz_write_sparse(m, h, 1 + fz_u8(&in) % 16, fz_u8(&in));
            }
            break;
        case 9:
            if (m->n) { /* every byte */
                fz_handle_t *h = &m->h[fz_u8(&in) % m->n];
                fz_write(m, h, 0, h->size, fz_u8(&in));
            }
            break;
        case 10:
            fz_op_cycle(m, &in);
            break;
        case 11: {
            zp_stats_t before, after;
            zp_pool_stats(m->pool, &before);
            size_t released = zp_pool_trim(m->pool);
            zp_pool_stats(m->pool, &after);
            CHECK(released <= before.pooled_bytes && after.pooled_bytes == 0,
                  "op %u: trim released %zu of %llu pooled, %llu left", m->op, released,
                  (unsigned long long)before.pooled_bytes, (unsigned long long)after.pooled_bytes);
            break;
        }
        case 12:
            fz_op_bad_request(m, &in);
            break;
        case 13:
            zp_put(m->pool, NULL);
            for (unsigned i = 0; i < m->n; i++)
                fz_check_content(m, &m->h[i], "full check");
            break;
        default:
            fz_op_misuse(m, &in);
            break;
        }
        fz_check_all(m);
    }

    /* Everything back, and the pool is empty after a trim. */
    while (m->n) {
        fz_put(m, m->n - 1);
        fz_check_stats(m);
    }
    zp_pool_trim(m->pool);
    zp_stats_t st;
    zp_pool_stats(m->pool, &st);
    CHECK(st.gets == st.puts && st.live_bytes == 0 && st.pooled_bytes == 0,
          "end: gets %llu puts %llu live %llu pooled %llu", (unsigned long long)st.gets,
          (unsigned long long)st.puts, (unsigned long long)st.live_bytes,
          (unsigned long long)st.pooled_bytes);
    if (getenv("ZP_FUZZ_TRACE")) {
        char line[200];
        int n = snprintf(line, sizeof line,
                         "trace: %u ops, gets %llu, fresh %llu, direct %llu, evictions %llu, "
                         "dropped %llu, misuse reports %u\n",
                         m->op - 1, (unsigned long long)st.gets, (unsigned long long)st.fresh,
                         (unsigned long long)st.direct, (unsigned long long)st.evictions,
                         (unsigned long long)st.bytes_dropped, m->reports);
        if (n > 0 && write(fz_err_fd, line, (size_t)n) < 0)
            n = 0;
    }
    zp_pool_destroy(m->pool);
}

#endif
