/* Internal structures of the pool, shared by the core's modules and by white-box unit tests.
 *
 * Memory layout. Address space is reserved in chunks aligned to a 4 MiB granule, growing in
 * steps with the pool, and carved into spans; a span holds slots of one size class (stride = class size + guard page) or one
 * direct mapping. A global two-level radix map from granule to span answers "whose is this
 * pointer?" in O(1) without reading the buffer. Slot metadata lives in the span's side table,
 * never in front of the buffer.
 *
 * Who may touch a slot: its holder while it is live; the owning thread while it sits in that
 * thread's cache; the shard lock while it is free in a shard; the pool lock while it is
 * unused or empty. Hand-offs go through those locks, so no field needs atomics. */
#ifndef ZP_INTERNAL_H
#define ZP_INTERNAL_H

#include "owner.h"
#include "zp_base.h"
#include "zeropool.h"

#include <pthread.h>
#include <stddef.h>
#include <stdatomic.h>

#define ZP_API __attribute__((visibility("default")))

#define ZP_CHUNK_MIN ((size_t)8 << 20)       /* the first reservation: an idle process stays small */
#define ZP_CHUNK_DEFAULT ((size_t)64 << 20) /* the largest step: a late one adds little to VmSize */
#define ZP_SPAN_TARGET ((size_t)64 << 20)

#define ZP_MAX_CLASSES 64
#define ZP_TCACHE_MAX 64
#define ZP_TLS_POOLS 4      /* pools a thread caches for at once */
#define ZP_SLACK_CHECK 64   /* bytes past the requested size checked for overflow at put */

/* ---- size classes: 4K, 8K, 12K, 16K, then four per power of two (20K 24K 28K 32K 40K ...) ---- */
static inline unsigned zp_class_index(size_t size, size_t page_shift)
{
    size_t pages = (size + ((size_t)1 << page_shift) - 1) >> page_shift;
    if (pages <= 4)
        return pages ? (unsigned)pages - 1 : 0;
    unsigned lg = 63u - (unsigned)__builtin_clzll((unsigned long long)(pages - 1)); /* p = 2^lg < pages */
    size_t step = ((size_t)1 << lg) >> 2;
    size_t within = (pages - ((size_t)1 << lg) + step - 1) / step; /* 1..4 */
    return 4 * (lg - 2) + 3 + (unsigned)within;
}

static inline size_t zp_class_bytes(unsigned gi, size_t page_shift)
{
    if (gi < 4)
        return (size_t)(gi + 1) << page_shift;
    unsigned j = gi - 3, q = (j - 1) / 4, r = (j - 1) % 4 + 1;
    size_t p = (size_t)4 << q;
    return (p + r * (p / 4)) << page_shift;
}

/* ---- slots and spans ---- */
/* UNUSED: never handed out; LIVE: the program's; CACHED: in a thread cache; FREE: in a shard;
 * EMPTY: memory released, address space kept. */
enum { ZP_SLOT_UNUSED = 0, ZP_SLOT_LIVE, ZP_SLOT_CACHED, ZP_SLOT_FREE, ZP_SLOT_EMPTY };
enum {
    ZP_SF_RESIDENT = 1 << 0, /* every page of the buffer is resident: scrub by memset */
    ZP_SF_PINNED = 1 << 1,   /* mlock'ed */
    ZP_SF_HOT = 1 << 2,      /* CLOCK-Pro: hot buffer */
    ZP_SF_REF = 1 << 3,      /* CLOCK-Pro: reused since the hand last passed */
    ZP_SF_TEST = 1 << 4,     /* CLOCK-Pro: in its test period */
    ZP_SF_RING = 1 << 5,     /* in its shard's clock ring */
    ZP_SF_EVER = 1 << 6,     /* was handed out at least once (tells double from wild free) */
    ZP_SF_COMMITTED = 1 << 7, /* read-write (guarded spans commit slot by slot) */
    ZP_SF_PROBED = 1 << 8,    /* last scrub dropped pages: the next one measures density */
    ZP_SF_SAMPLED = 1 << 9,   /* ...only a sample of them (slot->sample), the buffer was dense */
    ZP_SF_DIRTY = 1 << 10,    /* the last zero check found data: memset until the next probe */
    ZP_SF_MOVED = 1 << 11,    /* pages moved in or out (zp_realloc): mapped afresh at put */
    ZP_SF_LAZY = 1 << 12      /* free, its pages handed to the kernel lazily (MADV_FREE) */
};

typedef struct zp_slot zp_slot_t;
typedef struct zp_span zp_span_t;

struct zp_slot {
    zp_slot_t *fnext, *fprev; /* free or empty list of its shard, or the tcache stack */
    zp_slot_t *rnext, *rprev; /* clock ring */
    zp_span_t *span;
    size_t size;          /* requested size while live */
    size_t extent;        /* direct slots: end of this use's bytes, from the slot start */
    size_t user_off;      /* user pointer = slot start + user_off (aligned gets) */
    uint32_t touched;     /* pages the last probed use wrote */
    uint32_t resident;    /* pages resident at the last scrub */
    uint16_t puts;        /* puts since the last density probe */
    uint8_t probe_shift;  /* probe every 2^probe_shift puts */
    uint8_t sample;       /* which eighth of a dense buffer the last sample probe dropped */
    uint8_t state;
    uint8_t cls;          /* pool class index */
    uint16_t flags;
    uint16_t shard;       /* shard it was last free in */
    uint32_t idle_ms;     /* zp_os_now_ms() when it entered its shard (decay) */
};

struct zp_span {
    zp_pool_t *pool;
    char *base;
    size_t bytes;      /* address space of the span */
    size_t stride;     /* slot stride (class size + guard) */
    size_t slot_bytes; /* usable bytes of one slot */
    uint32_t nslots, carved;
    bool guarded, direct;
    zp_span_t *next;     /* pool's list of free direct spans */
    zp_span_t *all_next; /* pool's list of every span */
    /* span release (pool lock and every shard lock held): slots found in shard lists, whether
     * one of them holds memory or history, sweeps in a row that found it idle, the verdict */
    uint32_t listed;
    bool has_free, dying;
    uint8_t idle_sweeps;
    size_t meta_bytes;
    zp_slot_t slots[];
};

/* ---- the address map (global, shared by all pools): owner.h ---- */
_Static_assert(offsetof(zp_span_t, pool) == 0, "owner.h reads a span's pool as its first word");

/* ---- statistics: an X-macro list, per thread on the hit path, summed on demand ---- */
#define ZP_TSTATS(X) \
    X(gets) X(puts) X(tls_hits) X(shard_hits) X(steals) X(fresh) X(direct) X(evictions) \
    X(bytes_scrubbed) X(bytes_dropped) X(misuse) X(bytes_got) X(bytes_put)

typedef struct zp_tstats {
#define ZP_TS_FIELD(n) uint64_t n;
    ZP_TSTATS(ZP_TS_FIELD)
#undef ZP_TS_FIELD
} zp_tstats_t;

/* Counters updated by one thread and read by zp_pool_stats: relaxed, no read-modify-write. */
#define ZP_STAT_SUB(st, field, v) ZP_STAT_ADD(st, field, (uint64_t)0 - (uint64_t)(v))
#define ZP_STAT_ADD(st, field, v) \
    __atomic_store_n(&(st)->field, __atomic_load_n(&(st)->field, __ATOMIC_RELAXED) + (v), \
                     __ATOMIC_RELAXED)

/* ---- thread cache ---- */
typedef struct zp_tcache {
    zp_pool_t *pool;
    uint64_t pool_id;
    unsigned n, cap;
    size_t bytes, limit; /* cached bytes and the byte allowance leased from the budget */
    uint64_t lease_gen;  /* the pool's lease_gen when this cache last fitted its lease */
    size_t max_size;     /* largest buffer it caches */
    uint32_t slow_ms;    /* zp_os_now_ms() of its thread's last slow operation */
    unsigned shard;
    zp_tstats_t st;
    uint64_t class_gets[ZP_MAX_CLASSES];
    struct zp_tcache *next, *prev; /* pool's list of caches (pool lock) */
    zp_slot_t *stack[ZP_TCACHE_MAX];
} zp_tcache_t;

/* ---- shards ---- */
typedef struct zp_shard {
    pthread_mutex_t lock;
    zp_slot_t *free[ZP_MAX_CLASSES];  /* resident free buffers, newest first */
    zp_slot_t *empty[ZP_MAX_CLASSES]; /* evicted slots (address space only), for reuse */
    uint32_t nfree[ZP_MAX_CLASSES];
    _Atomic uint64_t class_mask;      /* bit c set when free[c] is not empty: steal hint */
    unsigned count;                   /* free buffers */
    size_t bytes;                     /* free bytes */
    /* CLOCK-Pro */
    zp_slot_t *hand_hot, *hand_cold, *hand_test;
    size_t ring_resident, ring_hot_bytes, ring_cold_bytes, ring_ghosts;
    size_t cold_target; /* m_c, in bytes, adapted */
    uint64_t class_evictions[ZP_MAX_CLASSES];
    uint64_t class_fresh[ZP_MAX_CLASSES];
} __attribute__((aligned(64))) zp_shard_t;

/* ---- the pool ---- */
struct zp_pool {
    uint64_t id;
    zp_config_t cfg;
    unsigned page_shift;
    unsigned class_base, nclasses;
    size_t class_size[ZP_MAX_CLASSES];
    size_t max_class_size;
    unsigned shard_mask;
    zp_shard_t *shards;
    size_t shards_bytes;

    pthread_mutex_t lock; /* spans, chunks, direct spans, caches, leases */
    zp_span_t *spans;
    zp_span_t *cur_span[ZP_MAX_CLASSES];
    zp_span_t *direct_free;
    char *chunk_cur, *chunk_end; /* the untaken tail of the last reservation */
    zp_tcache_t *caches;
    size_t leased, lease_cap;
    unsigned ncaches;           /* caches that may lease (pool lock) */
    _Atomic uint64_t lease_gen; /* bumped when a lease fell short: caches give back spare */

    _Atomic size_t shard_bytes; /* free bytes in all shards */
    _Atomic size_t hot_bytes;   /* of those, held resident (not ZP_SF_LAZY) */
    size_t hot_cap;             /* bound of hot_bytes: cfg.hot_bytes */
    size_t shard_budget;        /* pool_bytes minus what thread caches may lease */
    _Atomic size_t peak_pooled;
    _Atomic size_t pinned_bytes;
    _Atomic size_t live_bytes;
    _Atomic size_t reserved_bytes;
    _Atomic size_t committed_regions; /* VMAs our guards split off, against vm.max_map_count */
    _Atomic uint64_t pin_failures; /* mlock calls refused; the first warns unless cfg.quiet */
    _Atomic uint64_t misuse_count;
    _Atomic uint32_t decay_next; /* zp_os_now_ms() of the next decay sweep */

    pthread_mutex_t stats_lock;
    zp_tstats_t retired; /* exited threads and threads without a cache */
    uint64_t retired_class_gets[ZP_MAX_CLASSES];

    zp_misuse_fn misuse_fn;
    void *misuse_ctx;
    struct zp_pool *next; /* registry */
};

/* ---- module functions (internal) ---- */
/* span.c */
zp_slot_t *zp_span_carve(zp_pool_t *pool, unsigned cls);
/* A direct mapping of size bytes aligned to align, with address space for `room` bytes (>= size)
 * to grow into in place. */
void *zp_direct_get(zp_pool_t *pool, size_t size, size_t align, size_t room, size_t color,
                    zp_slot_t **slot_out);
/* Where a large buffer starts in its first page: a multiple of 64 below the page, varying
 * from slot to slot (from the slot's address), at most left (the room past the request), so
 * that two buffers are rarely 1-63 bytes apart modulo 4096 (4K aliasing: a copy from one to
 * the other runs several times slower), as jemalloc's cache-oblivious large allocations.
 * want: that offset if it fits (a realloc keeps its page offset so its pages can move),
 * ZP_COLOR_ANY for the slot's own. */
#define ZP_COLOR_ANY ((size_t)-1)
#define ZP_COLOR_STEP ((size_t)64)
static inline size_t zp_color(uintptr_t base, size_t left, size_t want)
{
    size_t c = want != ZP_COLOR_ANY
                   ? want
                   : (size_t)((((uint64_t)base >> 12) * 0x9E3779B97F4A7C15ull) >> 58) * ZP_COLOR_STEP;
    return c <= left ? c : left & ~(ZP_COLOR_STEP - 1);
}
/* Grow or shrink a live direct buffer in place to size bytes: whole pages past its end are
 * committed or given back (the bytes past size in its last page are the caller's). False,
 * buffer unchanged, when its address space is too small or the commit fails. */
bool zp_direct_resize(zp_pool_t *pool, zp_slot_t *s, size_t size);
void zp_direct_put(zp_pool_t *pool, zp_slot_t *slot);
void zp_span_destroy_all(zp_pool_t *pool);
/* Give back the address space of spans no buffer uses (pool lock held): every free direct
 * span, and every span whose slots all sit in shards: free or empty with all (a reservation
 * failed), else empty and out of CLOCK-Pro's history at two sweeps in a row. Returns bytes. */
size_t zp_span_reclaim(zp_pool_t *pool, bool all);
void zp_span_fork_prepare(void);
void zp_span_fork_parent(void);
void zp_span_fork_child(void);
static inline char *zp_slot_base(const zp_slot_t *s)
{
    return s->span->base + (size_t)(s - s->span->slots) * s->span->stride;
}
/* The pages a slot's memory occupies: a pooled slot whole; a direct one from its user pointer
 * (the alignment pad before it is never committed, locked or charged). */
static inline char *zp_slot_mem(const zp_slot_t *s, size_t *bytes)
{
    if (s->span->direct) {
        /* A color (below 4096, zp_color) lives in the first page; an alignment is pages. */
        size_t from = s->user_off - s->user_off % 4096;
        *bytes = s->extent - from;
        return s->span->base + from;
    }
    *bytes = s->span->slot_bytes;
    return zp_slot_base(s);
}
bool zp_slot_commit(zp_pool_t *pool, zp_slot_t *s);
/* scrub.c */
void zp_scrub(zp_pool_t *pool, zp_slot_t *s, char *from, size_t len, zp_tstats_t *st);
void zp_slot_release(zp_pool_t *pool, zp_slot_t *s); /* evict: memory back to the kernel */
/* A free pooled slot that pages moved in or out of: mapped afresh, which scrubs it (every page
 * dropped) and joins the mappings the moves split. */
void zp_slot_refresh(zp_pool_t *pool, zp_slot_t *s, zp_tstats_t *st);
void zp_slot_pin(zp_pool_t *pool, zp_slot_t *s);
/* A scrubbed buffer about to enter a shard, stamped: past the pool's hot_cap of resident free
 * bytes in shards, its pages are handed to the kernel lazily. */
void zp_slot_lazy(zp_pool_t *pool, zp_slot_t *s, uint32_t now);
/* Release the free buffers idle longer than the decay time, at most every quarter of it
 * (slow paths; tc: the calling thread's cache, flushed when its thread was idle as long). */
void zp_pool_decay(zp_pool_t *pool, zp_tcache_t *tc);
bool zp_is_zero(const void *p, size_t n);
/* evict.c: every function runs with the shard lock held */
void zp_shard_push(zp_pool_t *pool, zp_shard_t *sh, zp_slot_t *s, zp_tstats_t *st);
zp_slot_t *zp_shard_pop(zp_pool_t *pool, zp_shard_t *sh, unsigned cls);
zp_slot_t *zp_shard_pop_empty(zp_pool_t *pool, zp_shard_t *sh, unsigned cls);
size_t zp_shard_trim(zp_pool_t *pool, zp_shard_t *sh);
/* Release the free buffers that entered the shard at or before `before` (decay). Bytes. */
size_t zp_shard_decay(zp_pool_t *pool, zp_shard_t *sh, uint32_t now, uint32_t idle);
/* Take a free or empty slot out of its shard for good (its span is being released). */
void zp_shard_forget(zp_pool_t *pool, zp_shard_t *sh, zp_slot_t *s);
void zp_shard_init(zp_pool_t *pool, zp_shard_t *sh);
/* tcache.c */
zp_tcache_t *zp_tcache_slow(zp_pool_t *pool);
void zp_tcache_flush(zp_pool_t *pool, zp_tcache_t *tc, unsigned keep);
/* Every cached buffer to the shards, counted idle since `since` (decay of an idle thread). */
void zp_tcache_flush_idle(zp_pool_t *pool, zp_tcache_t *tc, uint32_t since);
void zp_tcache_lease(zp_pool_t *pool, zp_tcache_t *tc, size_t need);
void zp_tcache_refit(zp_pool_t *pool, zp_tcache_t *tc); /* slow paths: give back on demand */
void zp_tcache_detach_all(zp_pool_t *pool); /* pool destroy */
void zp_tcache_fork_child(void);
void zp_tcache_global_init(void);
extern pthread_mutex_t zp_registry_lock;
extern zp_pool_t *zp_registry;
unsigned zp_thread_shard(zp_pool_t *pool);
/* pool.c */
void zp_pool_misuse(zp_pool_t *pool, zp_misuse_t kind, const void *addr, size_t size);
void zp_pool_give_back(zp_pool_t *pool, zp_slot_t *s, zp_tstats_t *st); /* to a shard */
void zp_pool_stat_orphan(zp_pool_t *pool, const zp_tstats_t *delta);
void zp_pool_note_peak(zp_pool_t *pool, size_t extra);
extern bool zp_drop_zeroes;
/* A miss may take a free buffer of a larger class up to this many times its size (2); 0 or 1
 * turns that off, for white-box tests of the eviction policies alone. */
extern unsigned zp_larger_reach;

/* The calling thread's cache for this pool: one compare on the fast path. */
typedef struct zp_tls_slot {
    uint64_t pool_id;
    zp_tcache_t *tc;
} zp_tls_slot_t;
typedef struct zp_tls {
    zp_tls_slot_t slot[ZP_TLS_POOLS];
    unsigned last;
    bool exiting;   /* past our thread-exit destructor: no new caches */
    bool key_set;
    unsigned shard_seed;
} zp_tls_t;
extern __thread zp_tls_t zp_tls __attribute__((tls_model("initial-exec")));

static inline zp_tcache_t *zp_tcache_get(zp_pool_t *pool)
{
    zp_tls_slot_t *s = &zp_tls.slot[zp_tls.last];
    if (ZP_LIKELY(s->pool_id == pool->id))
        return s->tc;
    return zp_tcache_slow(pool);
}

#endif
