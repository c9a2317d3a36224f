/* The preload shim's internals: routing of the malloc family between the pool (large requests)
 * and jemalloc (small ones). jemalloc is a private copy inside this library (je.h), reached
 * through its own fast paths under zp_je_* names; nothing of it is visible to the process.
 * override.c forwards every libc name, cxx.c every C++ operator, to a zp_ip_* function.
 *
 * Call tree (fast paths are the static inlines below, everything else is noinline in alloc.c):
 *
 *   malloc          n < 4 KiB ------------> zp_ip_small_malloc (je_block.c: jemalloc's fast path)
 *                   else, or that fails --> zp_ip_malloc_slow: n < threshold: zp_je_malloc
 *   calloc          n < threshold ----------------------> zp_ip_small_malloc (every free block
 *                                                        is zero); zp_je_calloc without the scrub
 *   malloc/calloc   else -> zp_ip_alloc_slow: first call loads the options; then zp_get from
 *                           the process-wide pool (created at the first large request), and
 *                           jemalloc when the pool is off, busy being created, or exhausted
 *   free            -> zp_ip_small_free (je_block.c): one lookup in jemalloc's tree
 *                      (size class, block start?), scrub (inline stores; none with
 *                      ZEROPOOL_SCRUB_SMALL=0), its thread cache
 *                   not a block's start -------------> zp_ip_small_invalid: reported
 *                   no jemalloc extent (NULL, pool buffer, glibc block, wild)
 *                                      --------------> zp_ip_free_slow: zp_put / glibc free /
 *                                                      reported as a wild free
 *                   (free's own code is a test and one tail call; nothing on the fast path
 *                   needs a stack frame or an errno save, as jemalloc's calls that may set
 *                   errno keep it: zp_os_quiet_*)
 *   free_sized & co -> zp_ip_small_free_sized: the same, the stated size and alignment checked
 *   realloc, memalign & co, malloc_usable_size -------> alloc.c
 *   operator new/delete -------------------------------> cxx.c, the same routes
 *
 * Ownership, for free: an active extent in jemalloc's tree (O(1), reads no memory at p) says
 * jemalloc; then zp_owns says "pool", an address in glibc's brk heap (the break moved since
 * start-up; jemalloc never uses the break) says "glibc". For realloc and malloc_usable_size
 * (zp_ip_is_jemalloc): zp_owns_inline (owner.h) says "pool", the brk heap "glibc", the rest is
 * jemalloc's.
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

#include "je.h"
#include "zp_base.h"
#include "owner.h"
#include "zeropool.h"
#include "zp_options.h"
#include "zp_small.h"

/* glibc's malloc alignment: jemalloc's 8-byte class is only 8-aligned, so tiny requests are
 * rounded up to 16 (glibc's smallest chunk holds 24 bytes anyway). */
#define ZP_IP_MIN_ALIGN 16
/* Sizes from which a request jemalloc serves is checked against the kernel's overcommit
 * accounting first (alloc.c, ip_unpooled); with ZEROPOOL_DISABLE=1, the threshold. */
#define ZP_IP_HUGE ((size_t)64 << 20)

typedef struct zp_ip_state {
    _Atomic size_t threshold;    /* smallest pooled request; 0 until loaded; ZP_IP_HUGE without a pool */
    zp_pool_t *_Atomic pool;     /* created at the first large request */
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
/* realloc of a pointer that starts no jemalloc block: inside one of n bytes, or none (n 0). */
void zp_ip_report_small_realloc(const void *addr, size_t n);
/* A SIGSEGV at addr in the pool's address space (segv.c calls it; async-signal-safe). */
void zp_ip_report_fault(zp_pool_t *pool, const void *addr, void *uc);
/* Install the SIGSEGV reporter (once, at pool creation), chaining to the previous handler. */
void zp_ip_segv_install(void);

/* ---- statistics (stats.c) ----
 * One direction only: libc.c (malloc_stats, mallinfo) and live.c (the last write at exit or
 * on a signal) call stats.c, which calls neither. */
void zp_ip_stats_write(int fd, int format);
int zp_ip_stats_emit_fd(int fd, int format); /* 0 or -1 */
int zp_ip_stats_write_file(FILE *fp); /* malloc_info's XML; 0 or -1 */
/* The start of this process's life for the statistics (at start-up, and again in a forked
 * child): the coverage note speaks only of a process that ran long enough. */
void zp_ip_stats_start(void);

typedef struct zp_ip_je_totals {
    size_t allocated, active, mapped, resident;
} zp_ip_je_totals_t;
void zp_ip_je_totals(zp_ip_je_totals_t *t);
/* Set by the SIGTERM/SIGINT handler (live.c) around its last write: the statistics then
 * read jemalloc's totals from the last write instead of taking jemalloc's locks, which the
 * interrupted code (or, in a freshly forked child, the fork) may hold. */
extern _Atomic bool zp_ip_stats_in_signal;

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

/* jemalloc's smallest class is 8 bytes and only 8-aligned: glibc's malloc alignment is 16. */
ZP_IP_INLINE size_t zp_ip_small_size(size_t n)
{
    return n < ZP_IP_MIN_ALIGN ? ZP_IP_MIN_ALIGN : n;
}

/* A jemalloc block of n bytes with jemalloc flags (alignment, zero): the slow paths' way. */
ZP_IP_INLINE void *zp_ip_small(size_t n, int flags)
{
    void *p = zp_je_mallocx(zp_ip_small_size(n), flags);
    return ZP_LIKELY(p != NULL) ? p : zp_ip_enomem();
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
    return pool == NULL || !zp_owns_inline(pool, p);
}

/* Under 4 KiB (below any threshold) jemalloc's fast path, whatever the threshold: before the
 * options are loaded it fails (no thread data yet) and zp_ip_malloc_slow loads them. */
ZP_IP_INLINE void *zp_ip_malloc(size_t n)
{
    return zp_ip_small_malloc(n); /* NULL + ENOMEM on failure, as malloc */
}

ZP_IP_INLINE void *zp_ip_calloc(size_t n, size_t m)
{
    size_t t;
    if (ZP_UNLIKELY(__builtin_mul_overflow(n, m, &t)))
        return zp_ip_enomem();
    /* With the scrub every free small block is zero (free scrubs the program's blocks, our
     * jemalloc its own: jemalloc-zeropool.patch), so malloc's block is calloc's: no memset. */
    if (ZP_LIKELY(t < zp_ip_threshold())) {
        if (ZP_LIKELY(__atomic_load_n(&zp_ip_scrub_small, __ATOMIC_RELAXED)))
            return zp_ip_small_malloc(t); /* NULL + ENOMEM on failure */
        return zp_je_calloc(1, zp_ip_small_size(t));
    }
    return zp_ip_alloc_slow(t, 0, true); /* pool buffers are known zero */
}

/* free: jemalloc's metadata first (je_block.c): a block of its is freed there; whatever it
 * has no live extent for (NULL, a pool buffer, a glibc block) goes on to zp_ip_free_slow. No
 * errno save here: jemalloc's calls that may set errno keep it (core/platform.c,
 * zp_os_quiet_*), and the slow paths of ours save it themselves. */
ZP_IP_INLINE void zp_ip_free(void *p)
{
    zp_ip_small_free(p);
}

/* free_sized, free_aligned_sized, sized delete (align 1 when none is given): free's route,
 * the size and alignment the caller states checked against a jemalloc block (je_block.c). */
ZP_IP_INLINE void zp_ip_free_sized(void *p, size_t n, size_t align)
{
    zp_ip_small_free_sized(p, n, align);
}

#endif
