/* zeropool: a buffer pool that hands out only zeroed memory and scrubs every buffer it takes
 * back. Thread-local caches (no locks, no atomics on a hit) over power-of-two shards, size
 * classes, a byte budget with LIFO or CLOCK-Pro eviction, optional mlock pinning, guard pages,
 * and memory kept out of core dumps. This is the whole public API; link with
 * `pkg-config --cflags --libs zeropool`. All functions are thread-safe. */
#ifndef ZEROPOOL_H
#define ZEROPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zeropool_version.h" /* ZEROPOOL_VERSION, generated from meson.build */

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zp_pool zp_pool_t;

typedef enum zp_eviction {
    ZP_EVICT_LIFO = 0,      /* reuse the newest free buffer; when full, release the one put */
    ZP_EVICT_CLOCK_PRO = 1, /* CLOCK-Pro (Jiang, Chen, Zhang 2005): keep the buffers that recur */
} zp_eviction_t;

typedef struct zp_config {
    unsigned num_shards;            /* power of two; 0 = auto */
    unsigned tls_cache_size;        /* free buffers per thread cache; 0 = no thread cache */
    unsigned max_buffers_per_shard; /* free buffers one shard may hold; 0: no count limit */
    size_t min_buffer_size;         /* smallest pooled size: smaller requests are rounded up */
    size_t max_pooled_size;         /* larger requests get a direct mapping, released on put */
    size_t pool_bytes;              /* budget of free buffers, shards and thread caches together */
    size_t tls_cache_bytes;         /* byte bound of one thread cache */
    zp_eviction_t eviction;
    bool pin;             /* mlock buffers while the pool holds them (warns once at the limit) */
    bool guard_pages;     /* PROT_NONE page after each buffer */
    bool dontdump;        /* MADV_DONTDUMP on pool memory */
    bool zero_on_alloc;   /* re-zero every buffer handed out (defence in depth) */
    bool verify_on_alloc; /* check that every buffer handed out is zero; misuse report if not */
    bool check_slack;     /* at put, check that the bytes past the requested size are still 0 */
    unsigned decay_ms;    /* free buffers idle this long are released at the next slow
                             operation; 0 = the default (10 s), UINT_MAX = never */
    size_t hot_bytes;     /* free bytes the shards keep resident; past it, free buffers'
                             pages are the kernel's to take (MADV_FREE). 0 = auto: a quarter
                             of pool_bytes, at most 1/64 of the memory the process may use */
    bool quiet;           /* warnings (mlock at the limit) are only counted, never on stderr */
} zp_config_t;

/* Every counter of zp_stats_t, once: X(name, unit), unit COUNT or BYTES. The struct below,
 * zp_pool_stats and the preload library's statistics writer are generated from this list, so
 * a counter added here cannot be missed by one of them (zp_pool_stats does not compile until
 * it has a value for it). */
#define ZP_STATS_FIELDS(X)                                                                      \
    X(gets, COUNT)               /* zp_get calls that returned a buffer */                      \
    X(puts, COUNT)               /* buffers taken back */                                       \
    X(tls_hits, COUNT)           /* gets served by the calling thread's cache */                \
    X(shard_hits, COUNT)         /* gets served by a shard (own or another) */                  \
    X(steals, COUNT)             /* of shard_hits, those served by another thread's shard */    \
    X(fresh, COUNT)              /* gets that needed a buffer the pool did not hold */          \
    X(direct, COUNT)             /* gets above max_pooled_size (direct mappings) */             \
    X(evictions, COUNT)          /* free buffers released to the kernel to honour the budget */ \
    X(bytes_scrubbed, BYTES)     /* bytes zeroed by stores */                                   \
    X(bytes_dropped, BYTES)      /* bytes zeroed by MADV_DONTNEED instead */                    \
    X(pooled_bytes, BYTES)       /* free bytes held now (shards and thread caches) */           \
    X(peak_pooled_bytes, BYTES)  /* highest pooled_bytes seen */                                \
    X(pinned_bytes, BYTES)       /* bytes mlock'ed now */                                       \
    X(live_bytes, BYTES)         /* bytes handed out and not yet put back */                    \
    X(reserved_bytes, BYTES)     /* address space reserved */                                   \
    X(misuse, COUNT)             /* misuse reports (double free, invalid free, overflow) */

#define ZP_STATS_MEMBER(name, unit) uint64_t name;
typedef struct zp_stats {
    ZP_STATS_FIELDS(ZP_STATS_MEMBER)
} zp_stats_t;
#undef ZP_STATS_MEMBER

/* Auto-configured defaults for the CPUs and memory this process may use. */
void zp_config_init(zp_config_t *cfg);
/* A new pool; NULL cfg means zp_config_init's defaults. NULL + errno (EINVAL, ENOMEM) on failure. */
zp_pool_t *zp_pool_new(const zp_config_t *cfg);
/* A zeroed buffer of at least size usable bytes, 64-byte aligned (its offset in its first page
 * varies, zp_color, unless the request fills its slot); NULL + ENOMEM. */
void *zp_get(zp_pool_t *pool, size_t size);
/* Scrub buf and take it back. NULL is a no-op. Misuse goes to the misuse handler. */
void zp_put(zp_pool_t *pool, void *buf);
/* The usable size of a live buffer of this pool: exactly the size asked for (1 for 0), so
 * that every byte past it is slack that zp_put can check for overflow. 0 if buf is not a
 * live buffer of this pool. */
size_t zp_usable_size(zp_pool_t *pool, const void *buf);
/* The room a live buffer really has (its slot, less the ZP_SLACK_CHECK bytes the overflow
 * check keeps; at least its size), handed to the program: the buffer's size becomes it, so
 * writing all of it is no overflow, the slack is checked from there on and the put scrubs all
 * of it. What malloc_usable_size returns, as glibc's chunk and jemalloc's class size. 0 if buf
 * is not a live buffer of this pool. */
size_t zp_claim_usable(zp_pool_t *pool, void *buf);
/* Counters summed over the shards and every thread's cache. */
void zp_pool_stats(zp_pool_t *pool, zp_stats_t *out);
/* For a signal handler about to read the statistics: true when none of the pool's locks is
 * held (each is tried and released; one another thread holds is retried for up to ~20 ms).
 * False means the interrupted code, or in a freshly forked child the fork itself, may hold
 * one, and zp_pool_stats or zp_pool_class_stats could then wait forever. */
bool zp_pool_locks_free(zp_pool_t *pool);
/* Release every free buffer's memory to the kernel, and the address space of the spans no
 * buffer (live, or cached by another thread) was in at this trim and at the sweep before it
 * (a trim, or a decay sweep). Bytes of memory released. */
size_t zp_pool_trim(zp_pool_t *pool);
/* Unmap everything. Buffers still out become invalid. */
void zp_pool_destroy(zp_pool_t *pool);

/* ---- Extensions used by the preload library; stable, but not in the seed's API ---- */

/* A zeroed buffer whose start is aligned to align (a power of two); NULL + ENOMEM/EINVAL. */
void *zp_get_aligned(zp_pool_t *pool, size_t size, size_t align);
/* O(1): does p point anywhere into this pool's address space? Reads no buffer memory. */
bool zp_owns(const zp_pool_t *pool, const void *p);
/* Resize a live buffer in place: on success returns true, the new bytes read as zero and a
 * shrink has zeroed the dropped tail. False (buffer unchanged) when the slot is too small.
 * A non-zero byte in the checked slack past the old size (an overflow) is reported to the
 * misuse handler first, as zp_put does; if the handler returns, it is cleared. */
bool zp_resize(zp_pool_t *pool, void *buf, size_t new_size);
/* realloc's rule, the pool's to make: resize in place (as zp_resize) when the slot holds
 * new_size and new_size still uses at least half of it; false (buffer unchanged) otherwise,
 * and the caller moves the data to a new buffer, so the slot's memory returns to the pool. */
bool zp_realloc_in_place(zp_pool_t *pool, void *buf, size_t new_size);
/* realloc for a live buffer, new_size > 0: in place where the slot holds it (zp_realloc_in_place)
 * or a direct mapping can grow or shrink by whole pages; otherwise into a new buffer (a direct
 * one with address space to grow in place later), the first min(old, new) bytes moved by their
 * pages (mremap) where that beats a copy, and the old buffer taken back as by zp_put. The new
 * bytes read as zero; an overflow into the slack is reported first, as zp_put does. NULL with
 * errno (ENOMEM; EINVAL when buf is not a live buffer of this pool), buf unchanged. */
void *zp_realloc(zp_pool_t *pool, void *buf, size_t new_size);
/* Bytes the buffer could grow to in place (its slot), 0 if buf is not a live buffer. */
size_t zp_capacity(zp_pool_t *pool, const void *buf);

typedef enum zp_misuse {
    ZP_MISUSE_NONE = 0,
    ZP_MISUSE_DOUBLE_FREE,  /* the buffer is already free */
    ZP_MISUSE_INVALID_FREE, /* a pointer inside a buffer, not its start */
    ZP_MISUSE_WILD_FREE,    /* a pointer into pool address space never handed out */
    ZP_MISUSE_OVERFLOW,     /* a non-zero byte in the slack past the requested size */
    ZP_MISUSE_NOT_ZERO,     /* verify_on_alloc found a non-zero byte (pool corruption) */
    ZP_MISUSE_COUNT
} zp_misuse_t;

/* Short name of a misuse kind: "double free", "invalid free", ... */
const char *zp_misuse_name(zp_misuse_t kind);
/* What zp_put would find wrong with buf, without changing anything: ZP_MISUSE_NONE for a live
 * buffer of this pool. *buf_size receives the buffer's usable size (or the slot's size). */
zp_misuse_t zp_check(zp_pool_t *pool, const void *buf, size_t *buf_size);

/* Which buffer holds addr (anywhere in its slot, guard page included), in O(1):
 * ZP_MISUSE_NONE for a live buffer, ZP_MISUSE_DOUBLE_FREE for one that was handed out and
 * freed, ZP_MISUSE_WILD_FREE otherwise. *start and *size receive the buffer's start and its
 * usable size (freed: the slot's size). Reads only metadata: safe in a signal handler. */
zp_misuse_t zp_find(zp_pool_t *pool, const void *addr, void **start, size_t *size);

/* Called on misuse with the kind, the address given and the buffer's size. The default handler
 * writes one line to stderr and aborts. If the handler returns, the operation is ignored and
 * the pool stays consistent (an overflowing buffer is scrubbed and taken back). */
typedef void (*zp_misuse_fn)(void *ctx, zp_misuse_t kind, const void *addr, size_t buf_size);
void zp_pool_set_misuse_handler(zp_pool_t *pool, zp_misuse_fn fn, void *ctx);

/* Per size class counters, for statistics output. Returns false past the last class. */
typedef struct zp_class_stats {
    size_t size;      /* the class's buffer size */
    uint64_t gets, fresh, evictions;
    uint64_t free_now; /* free buffers of this class in the shards now */
} zp_class_stats_t;
bool zp_pool_class_stats(zp_pool_t *pool, unsigned idx, zp_class_stats_t *out);

/* The configuration the pool actually runs with (after clamping and degradations). */
void zp_pool_config(zp_pool_t *pool, zp_config_t *out);

#ifdef __cplusplus
}
#endif
#endif
