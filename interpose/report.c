/* Misuse reports of the preload library: one block on stderr written with write(2): a first
 * line naming the kind, the address and the buffer's size, the backtrace of the offending call
 * (libunwind), and with ZEROPOOL_TRACE_ALLOC=1 where the buffer was allocated. Then abort
 * (ZEROPOOL_ON_ERROR=abort, the default) or carry on (report). The pool calls this from zp_put
 * and zp_get without its locks held; segv.c calls it from a signal handler. No stdio, no malloc
 * of ours: a request libunwind makes meanwhile goes straight to jemalloc (zp_ip_reporting). */
#include "zp_interpose.h"

#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include "backtrace.h"
#include "zp_fmt.h"

_Atomic uint64_t zp_ip_misuse_counts[ZP_IP_M_COUNT];
const char *const zp_ip_misuse_keys[ZP_IP_M_COUNT] = {
#define ZP_IP_M_KEY(id, key, text) #key,
    ZP_IP_MISUSE(ZP_IP_M_KEY)
#undef ZP_IP_M_KEY
};
static const char *const ip_misuse_text[ZP_IP_M_COUNT] = {
#define ZP_IP_M_TEXT(id, key, text) text,
    ZP_IP_MISUSE(ZP_IP_M_TEXT)
#undef ZP_IP_M_TEXT
};

__thread int zp_ip_reporting;

/* ---- where an address lies: zp_find, one O(1) metadata lookup ---- */
enum { IP_AT_NOTHING, IP_AT_LIVE, IP_AT_FREED };

typedef struct ip_where {
    int what;
    uintptr_t start; /* the buffer's start */
    size_t size;     /* live: the size asked for; freed: the slot's size */
} ip_where_t;

static ip_where_t ip_find(zp_pool_t *pool, uintptr_t a)
{
    ip_where_t w = {IP_AT_NOTHING, 0, 0};
    void *start = NULL;
    zp_misuse_t k = zp_find(pool, (const void *)a, &start, &w.size);
    if (k == ZP_MISUSE_NONE || k == ZP_MISUSE_DOUBLE_FREE) {
        w.what = k == ZP_MISUSE_NONE ? IP_AT_LIVE : IP_AT_FREED;
        w.start = (uintptr_t)start;
    }
    return w;
}

/* ---- the block ---- */

typedef struct ip_report {
    zp_ip_misuse_t kind;
    uintptr_t addr;
    size_t size;
    ip_where_t at; /* the buffer involved, when known */
    void *uc;      /* signal context, or NULL: the backtrace starts here */
} ip_report_t;

static void ip_first_line(zp_buf_t *b, const ip_report_t *r)
{
    zp_buf_str(b, "zeropool: ");
    zp_buf_str(b, ip_misuse_text[r->kind]);
    switch (r->kind) {
    case ZP_IP_M_INVALID_FREE:
    case ZP_IP_M_INVALID_REALLOC:
        zp_buf_str(b, " of ");
        zp_buf_hex(b, r->addr);
        if (r->at.what == IP_AT_NOTHING) {
            zp_buf_str(b, " (");
            zp_buf_u64(b, r->size);
            zp_buf_str(b, "-byte buffer)");
            break;
        }
        zp_buf_str(b, r->at.what == IP_AT_LIVE ? " (inside " : " (inside freed ");
        zp_buf_u64(b, r->at.size);
        zp_buf_str(b, "-byte buffer at ");
        zp_buf_hex(b, r->at.start);
        zp_buf_chr(b, ')');
        break;
    case ZP_IP_M_WILD_FREE:
    case ZP_IP_M_WILD_REALLOC:
        zp_buf_str(b, " of ");
        zp_buf_hex(b, r->addr);
        zp_buf_str(b, " (pool address never handed out)");
        break;
    case ZP_IP_M_INVALID_ACCESS:
        zp_buf_str(b, " to pool memory at ");
        zp_buf_hex(b, r->addr);
        zp_buf_str(b, " (never handed out)");
        break;
    case ZP_IP_M_GUARD_OVERFLOW:
    case ZP_IP_M_USE_AFTER_FREE:
        zp_buf_str(b, " at ");
        zp_buf_hex(b, r->addr);
        zp_buf_str(b, r->kind == ZP_IP_M_GUARD_OVERFLOW ? " (after " : " (freed ");
        zp_buf_u64(b, r->at.size);
        zp_buf_str(b, "-byte buffer at ");
        zp_buf_hex(b, r->at.start);
        zp_buf_chr(b, ')');
        break;
    case ZP_IP_M_OVERFLOW:
        zp_buf_str(b, " past the end of ");
        zp_buf_hex(b, r->addr);
        zp_buf_str(b, " (");
        zp_buf_u64(b, r->size);
        zp_buf_str(b, "-byte buffer)");
        break;
    case ZP_IP_M_NOT_ZERO:
        zp_buf_str(b, " at ");
        zp_buf_hex(b, r->addr);
        zp_buf_str(b, " (");
        zp_buf_u64(b, r->size);
        zp_buf_str(b, "-byte buffer)");
        break;
    default: /* double free, realloc of freed buffer */
        zp_buf_str(b, r->kind == ZP_IP_M_REALLOC_FREED ? " " : " of ");
        zp_buf_hex(b, r->addr);
        zp_buf_str(b, " (");
        zp_buf_u64(b, r->size);
        zp_buf_str(b, "-byte buffer)");
        break;
    }
    zp_buf_chr(b, '\n');
}

/* Reports of several threads do not interleave; a report never waits long for another. */
static atomic_flag ip_report_busy = ATOMIC_FLAG_INIT;

static bool ip_report_lock(void)
{
    for (int i = 0; i < 20000; i++) {
        if (!atomic_flag_test_and_set_explicit(&ip_report_busy, memory_order_acquire))
            return true;
        sched_yield();
    }
    return false;
}

/* Writes the block. Returns false for a nested report (suppressed). */
static bool ip_report(const ip_report_t *r)
{
    atomic_fetch_add_explicit(&zp_ip_misuse_counts[r->kind], 1, memory_order_relaxed);
    if (zp_ip_reporting)
        return false;
    zp_ip_reporting = 1;
    bool locked = ip_report_lock();
    /* Mostly on the stack of a signal handler: one buffer of 2 KiB, flushed as it fills. */
    char out[2048];
    zp_buf_t b = ZP_BUF_INIT(out);
    ip_first_line(&b, r);
    zp_bt_t bt;
    if (r->uc != NULL)
        zp_bt_signal(&bt, r->uc);
    else
        zp_bt_here(&bt);
    zp_bt_write(&b, 2, &bt);
    if (r->at.what != IP_AT_NOTHING || r->kind == ZP_IP_M_DOUBLE_FREE ||
        r->kind == ZP_IP_M_OVERFLOW || r->kind == ZP_IP_M_REALLOC_FREED) {
        const void *buf = r->at.what != IP_AT_NOTHING ? (const void *)r->at.start
                                                       : (const void *)r->addr;
        if (!zp_ip.opts.trace_alloc) {
            zp_buf_str(&b, "  (ZEROPOOL_TRACE_ALLOC=1 shows where the buffer was allocated)\n");
        } else if (zp_bt_alloc_site(buf, &bt)) {
            zp_buf_str(&b, "  allocated at:\n");
            zp_bt_write(&b, 2, &bt);
        } else {
            zp_buf_str(&b, "  allocated at: not recorded\n");
        }
    }
    if (r->uc == NULL && zp_ip.opts.on_error != ZP_ON_ERROR_REPORT)
        zp_buf_str(&b, "zeropool: aborting (ZEROPOOL_ON_ERROR=report carries on)\n");
    zp_buf_flush(&b, 2);
    if (locked)
        atomic_flag_clear_explicit(&ip_report_busy, memory_order_release);
    zp_ip_reporting = 0;
    return true;
}

static void ip_report_and_decide(const ip_report_t *r)
{
    int e = errno;
    if (ip_report(r) && zp_ip.opts.on_error != ZP_ON_ERROR_REPORT)
        abort();
    errno = e;
}

/* ---- entry points ---- */

/* The pool's misuse handler: zp_put (double, invalid, wild free, overflow into the slack) and
 * zp_get (verify_on_alloc). If it returns, the pool ignores the operation. */
void zp_ip_report_misuse(void *ctx, zp_misuse_t kind, const void *addr, size_t buf_size)
{
    (void)ctx;
    ip_report_t r = {ZP_IP_M_DOUBLE_FREE, (uintptr_t)addr, buf_size, {IP_AT_NOTHING, 0, 0}, NULL};
    switch (kind) {
    case ZP_MISUSE_DOUBLE_FREE: r.kind = ZP_IP_M_DOUBLE_FREE; break;
    case ZP_MISUSE_WILD_FREE: r.kind = ZP_IP_M_WILD_FREE; break;
    case ZP_MISUSE_OVERFLOW: r.kind = ZP_IP_M_OVERFLOW; break;
    case ZP_MISUSE_NOT_ZERO: r.kind = ZP_IP_M_NOT_ZERO; break;
    default:
        r.kind = ZP_IP_M_INVALID_FREE;
        zp_pool_t *pool = atomic_load_explicit(&zp_ip.pool, memory_order_acquire);
        if (pool != NULL)
            r.at = ip_find(pool, (uintptr_t)addr);
        break;
    }
    ip_report_and_decide(&r);
}

/* realloc of a pointer jemalloc has no block start at: inside a block of n bytes, or (n 0) at
 * no block at all. */
void zp_ip_report_small_realloc(const void *addr, size_t n)
{
    ip_report_t r = {n != 0 ? ZP_IP_M_INVALID_REALLOC : ZP_IP_M_WILD_REALLOC, (uintptr_t)addr, n,
                     {IP_AT_NOTHING, 0, 0}, NULL};
    ip_report_and_decide(&r);
}

void zp_ip_report_realloc(zp_pool_t *pool, const void *addr)
{
    size_t size = 0;
    zp_misuse_t k = zp_check(pool, addr, &size);
    ip_report_t r = {ZP_IP_M_INVALID_REALLOC, (uintptr_t)addr, size, {IP_AT_NOTHING, 0, 0}, NULL};
    if (k == ZP_MISUSE_DOUBLE_FREE)
        r.kind = ZP_IP_M_REALLOC_FREED;
    else if (k == ZP_MISUSE_WILD_FREE)
        r.kind = ZP_IP_M_WILD_REALLOC;
    else
        r.at = ip_find(pool, (uintptr_t)addr);
    ip_report_and_decide(&r);
}

/* A fault in the pool's address space: past a live buffer into its guard page, into a freed
 * buffer whose memory was returned (direct mappings), or into space never handed out. A fault
 * inside a live buffer is not ours to explain (the program may have mprotect'ed it): silent. */
void zp_ip_report_fault(zp_pool_t *pool, const void *addr, void *uc)
{
    uintptr_t a = (uintptr_t)addr;
    ip_report_t r = {ZP_IP_M_INVALID_ACCESS, a, 0, ip_find(pool, a), uc};
    if (r.at.what == IP_AT_LIVE) {
        size_t cap = zp_capacity(pool, (const void *)r.at.start);
        if (a < r.at.start + cap)
            return;
        r.kind = ZP_IP_M_GUARD_OVERFLOW;
    } else if (r.at.what == IP_AT_FREED) {
        r.kind = ZP_IP_M_USE_AFTER_FREE;
    }
    (void)ip_report(&r);
}
