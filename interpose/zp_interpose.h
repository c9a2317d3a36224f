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

/* ---- misuse reports (report.c) and statistics (stats.c) ---- */
void zp_ip_report_misuse(void *ctx, zp_misuse_t kind, const void *addr, size_t buf_size);
void zp_ip_stats_write(int fd, int format);
void zp_ip_stats_at_exit(void);

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
    if (atomic_load_explicit(&zp_ip.scrub_small, memory_order_relaxed))
        explicit_bzero(p, sallocx(p, 0));
    dallocx(p, 0);
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
