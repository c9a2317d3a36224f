/* The preload shim's internals: routing of the malloc family between the pool (large requests)
 * and jemalloc (small ones), reached through jemalloc's own mallocx/dallocx API because the
 * standard names resolve to us. override.c forwards every libc name to a zp_ip_* function.
 *
 * Call tree (fast paths are the static inlines below, everything else is noinline in alloc.c):
 *
 *   malloc/calloc   n < threshold ----------------------> mallocx         (jemalloc)
 *                   else -> zp_ip_alloc_slow: first call loads the options; then zp_get from
 *                           the process-wide pool (created at the first large request), and
 *                           mallocx when the pool is off, busy being created, or exhausted
 *   free            jemalloc block --------------------> explicit_bzero + dallocx
 *                   NULL, pool buffer, glibc block ----> zp_ip_free_slow: zp_put / glibc free
 *   realloc, memalign & co, malloc_usable_size -------> alloc.c
 *
 * Ownership: zp_owns (an O(1) address test) says "pool"; an address in glibc's brk heap (the
 * break moved since start-up; jemalloc's dss is turned off) says "glibc"; the rest is jemalloc's.
 * Until the options are loaded, threshold is 0, so every allocation takes the slow path. */
#ifndef ZP_INTERPOSE_H
#define ZP_INTERPOSE_H

#include <errno.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jemalloc/jemalloc.h>

#include "zeropool.h"
#include "zp_options.h"

#define ZP_IP_LIKELY(x) __builtin_expect(!!(x), 1)
#define ZP_IP_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define ZP_IP_NOINLINE __attribute__((noinline))
#define ZP_IP_INLINE static inline __attribute__((always_inline))

/* glibc's malloc alignment: jemalloc's 8-byte class is only 8-aligned, so tiny requests are
 * rounded up to 16 (glibc's smallest chunk holds 24 bytes anyway). */
#define ZP_IP_MIN_ALIGN 16

typedef struct zp_ip_state {
    _Atomic size_t threshold;    /* smallest pooled request; 0 until loaded, SIZE_MAX: no pool */
    zp_pool_t *_Atomic pool;     /* created at the first large request */
    _Atomic bool scrub_small;    /* explicit_bzero jemalloc blocks on free */
    _Atomic int state;           /* ZP_IP_UNINIT -> ZP_IP_INITIALIZING -> ZP_IP_READY */
    _Atomic int pool_state;      /* ZP_IP_POOL_NONE -> CREATING -> UP or FAILED */
    _Atomic uintptr_t brk_lo;    /* the program break at start-up; UINTPTR_MAX before */
    zp_options_t opts;           /* effective options, valid from ZP_IP_READY on */
} zp_ip_state_t;

enum { ZP_IP_UNINIT = 0, ZP_IP_INITIALIZING, ZP_IP_READY };
enum { ZP_IP_POOL_NONE = 0, ZP_IP_POOL_CREATING, ZP_IP_POOL_UP, ZP_IP_POOL_FAILED };

extern zp_ip_state_t zp_ip;
extern void *__curbrk; /* glibc's program break (exported, GLIBC_2.2.5) */

/* ---- slow paths (alloc.c) ---- */
void *zp_ip_alloc_slow(size_t n, size_t align, bool zero);
void zp_ip_free_slow(void *p);
void *zp_ip_realloc(void *p, size_t n);
void *zp_ip_reallocarray(void *p, size_t n, size_t m);
void *zp_ip_memalign(size_t align, size_t n);
void *zp_ip_aligned_alloc(size_t align, size_t n);
int zp_ip_posix_memalign(void **out, size_t align, size_t n);
void *zp_ip_valloc(size_t n);
void *zp_ip_pvalloc(size_t n);
size_t zp_ip_usable_size(void *p);
void zp_ip_init(void);
zp_pool_t *zp_ip_pool_get(void); /* the pool, creating it if needed; NULL when unavailable */

/* ---- libc extras (libc.c) ---- */
int zp_ip_mallopt(int param, int value);
int zp_ip_malloc_trim(size_t pad);
void zp_ip_malloc_stats(void);
int zp_ip_malloc_info(int options, FILE *fp);
struct mallinfo2 zp_ip_mallinfo2(void);
struct mallinfo zp_ip_mallinfo(void);

/* ---- misuse reports (report.c, segv.c) ----
 * Every kind the interposer reports, counted for the statistics: id, JSON key, report wording.
 * The first line of a report names the kind, the address and the buffer's size. */
#define ZP_IP_MISUSE(X)                                                              \
    X(DOUBLE_FREE, double_free, "double free")                                       \
    X(INVALID_FREE, invalid_free, "invalid free")                                    \
    X(WILD_FREE, wild_free, "wild free")                                             \
    X(OVERFLOW, overflow, "overflow")                                                \
    X(NOT_ZERO, not_zero, "non-zero buffer")                                         \
    X(REALLOC_FREED, realloc_freed, "realloc of freed buffer")                       \
    X(INVALID_REALLOC, invalid_realloc, "invalid realloc")                           \
    X(WILD_REALLOC, wild_realloc, "wild realloc")                                    \
    X(GUARD_OVERFLOW, guard_overflow, "overflow into guard page")                    \
    X(USE_AFTER_FREE, use_after_free, "use after free")                              \
    X(INVALID_ACCESS, invalid_access, "invalid access")
typedef enum {
#define ZP_IP_M_ENUM(id, key, text) ZP_IP_M_##id,
    ZP_IP_MISUSE(ZP_IP_M_ENUM)
#undef ZP_IP_M_ENUM
    ZP_IP_M_COUNT
} zp_ip_misuse_t;
extern _Atomic uint64_t zp_ip_misuse_counts[ZP_IP_M_COUNT];
extern const char *const zp_ip_misuse_keys[ZP_IP_M_COUNT];

/* Set while this thread writes a report: its allocations go straight to jemalloc and a
 * nested report is suppressed (libunwind's symbol lookup mallocs a little). */
extern __thread int zp_ip_reporting;

void zp_ip_report_misuse(void *ctx, zp_misuse_t kind, const void *addr, size_t buf_size);
/* realloc of a pointer into the pool that is not a live buffer. */
void zp_ip_report_realloc(zp_pool_t *pool, const void *addr);
/* A SIGSEGV at addr in the pool's address space (segv.c calls it; async-signal-safe). */
void zp_ip_report_fault(zp_pool_t *pool, const void *addr, void *uc);
/* Install the SIGSEGV reporter (once, at pool creation), chaining to the previous handler. */
void zp_ip_segv_install(void);

/* ---- statistics (stats.c) ---- */
void zp_ip_stats_write(int fd, int format);
int zp_ip_stats_write_file(FILE *fp); /* malloc_info's XML; 0 or -1 */
void zp_ip_stats_at_exit(void);

typedef struct zp_ip_je_totals {
    size_t allocated, active, mapped, resident;
} zp_ip_je_totals_t;
void zp_ip_je_totals(zp_ip_je_totals_t *t); /* libc.c */

/* Small-block counters: per thread, no atomics on the free path, summed on demand. A thread
 * registers at its first small free (state 1); at its exit the counts move to a global sum
 * and later frees of that thread add there (state 2). */
typedef struct zp_ip_tcount {
    uint64_t small_frees;
    uint64_t small_scrubbed; /* bytes */
    int state;               /* 0 new, 1 registered, 2 global sums, 3 registering */
    struct zp_ip_tcount *next, *prev;
} zp_ip_tcount_t;
extern __thread zp_ip_tcount_t zp_ip_tcount;
void zp_ip_count_slow(size_t scrubbed);

/* ---- fast paths ---- */
ZP_IP_INLINE size_t zp_ip_threshold(void)
{
    return atomic_load_explicit(&zp_ip.threshold, memory_order_acquire);
}

ZP_IP_INLINE void *zp_ip_enomem(void)
{
    errno = ENOMEM;
    return NULL;
}

/* A jemalloc block of n bytes (n < threshold, or the pool could not serve it). */
ZP_IP_INLINE void *zp_ip_small(size_t n, int flags)
{
    void *p = mallocx(n < ZP_IP_MIN_ALIGN ? ZP_IP_MIN_ALIGN : n, flags);
    return ZP_IP_LIKELY(p != NULL) ? p : zp_ip_enomem();
}

/* A block of glibc's own malloc: in its brk heap, between the break at our start-up and the
 * current one. Nothing else can be mapped there, and jemalloc runs with dss disabled. */
ZP_IP_INLINE bool zp_ip_is_glibc(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    return a >= atomic_load_explicit(&zp_ip.brk_lo, memory_order_relaxed) &&
           a < (uintptr_t)__curbrk;
}

/* True for a block that jemalloc allocated: not NULL, not glibc's, not in the pool. Reads no
 * memory at p. */
ZP_IP_INLINE bool zp_ip_is_jemalloc(const void *p)
{
    zp_pool_t *pool = atomic_load_explicit(&zp_ip.pool, memory_order_acquire);
    if (p == NULL || zp_ip_is_glibc(p))
        return false;
    return pool == NULL || !zp_owns(pool, p);
}

ZP_IP_INLINE void zp_ip_small_free(void *p)
{
    size_t n = 0;
    if (atomic_load_explicit(&zp_ip.scrub_small, memory_order_relaxed)) {
        n = sallocx(p, 0);
        explicit_bzero(p, n);
    }
    dallocx(p, 0);
    zp_ip_tcount_t *t = &zp_ip_tcount;
    if (ZP_IP_UNLIKELY(t->state != 1)) {
        zp_ip_count_slow(n);
        return;
    }
    /* Only this thread writes them; relaxed stores because the statistics read them. */
    __atomic_store_n(&t->small_frees, t->small_frees + 1, __ATOMIC_RELAXED);
    __atomic_store_n(&t->small_scrubbed, t->small_scrubbed + n, __ATOMIC_RELAXED);
}

ZP_IP_INLINE void *zp_ip_malloc(size_t n)
{
    if (ZP_IP_LIKELY(n < zp_ip_threshold()))
        return zp_ip_small(n, 0);
    return zp_ip_alloc_slow(n, 0, false);
}

ZP_IP_INLINE void *zp_ip_calloc(size_t n, size_t m)
{
    size_t t;
    if (ZP_IP_UNLIKELY(__builtin_mul_overflow(n, m, &t)))
        return zp_ip_enomem();
    if (ZP_IP_LIKELY(t < zp_ip_threshold()))
        return zp_ip_small(t, MALLOCX_ZERO); /* jemalloc's own metadata may have used it */
    return zp_ip_alloc_slow(t, 0, true);     /* pool buffers are known zero */
}

ZP_IP_INLINE void zp_ip_free(void *p)
{
    if (ZP_IP_UNLIKELY(!zp_ip_is_jemalloc(p))) {
        zp_ip_free_slow(p);
        return;
    }
    int e = errno; /* dallocx may unmap; free must not change errno */
    zp_ip_small_free(p);
    errno = e;
}

#endif
