/* The small-block primitives both routes of a jemalloc free use: the scrub and the per-thread
 * counters. Included by zp_interpose.h and by je_block.c, the file compiled against jemalloc's
 * internal headers (where the free of a jemalloc block lives), so it includes nothing but libc
 * and zp_base.h. */
#ifndef ZP_SMALL_H
#define ZP_SMALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "zp_base.h"

#define ZP_IP_INLINE static inline __attribute__((always_inline))

/* Zero n bytes of a jemalloc block (n: its usable size, a multiple of 16, the block 16-aligned)
 * with stores the compiler may not remove: inline up to 256 bytes, memset beyond. The inline
 * stores cover [0, n) from both ends, overlapping in the middle, so a size costs at most three
 * well-predicted range tests instead of one test per 16 bytes (a random size mispredicted the
 * loop's exit). */
#define ZP_IP_SCRUB_INLINE_MAX 256 /* larger blocks: memset */
ZP_IP_INLINE void zp_ip_scrub_memset(void *p, size_t n)
{
    memset(p, 0, n);
    __asm__ volatile("" : : "r"(p) : "memory"); /* the stores happen, as explicit_bzero's */
}

ZP_IP_INLINE void zp_ip_scrub_block(void *p, size_t n)
{
    typedef uint64_t zp_v16 __attribute__((vector_size(16), aligned(16), may_alias));
    zp_v16 *f = (zp_v16 *)p, *b = (zp_v16 *)((char *)p + n), z = {0, 0};
    if (n <= 64) { /* 16..64: [0, 32) and [n - 32, n), or [0, 16) and [n - 16, n) */
        if (n > 32) {
            f[1] = z;
            b[-2] = z;
        }
        f[0] = z;
        b[-1] = z;
    } else if (n <= 128) { /* [0, 64) and [n - 64, n) */
        f[0] = f[1] = f[2] = f[3] = z;
        b[-1] = b[-2] = b[-3] = b[-4] = z;
    } else if (n <= ZP_IP_SCRUB_INLINE_MAX) { /* [0, 128) and [n - 128, n) */
        f[0] = f[1] = f[2] = f[3] = f[4] = f[5] = f[6] = f[7] = z;
        b[-1] = b[-2] = b[-3] = b[-4] = b[-5] = b[-6] = b[-7] = b[-8] = z;
    } else {
        zp_ip_scrub_memset(p, n);
        return;
    }
    __asm__ volatile("" : : "r"(p) : "memory"); /* the stores happen, as explicit_bzero's */
}

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
void zp_ip_count_slow(size_t scrubbed);                 /* alloc.c: registers the thread */
void zp_ip_count_sum(uint64_t *frees, uint64_t *bytes); /* every thread's, for the statistics */
bool zp_ip_count_lock_free(void); /* zp_ip_count_sum would not wait (signal handlers) */
/* Where the small-block counters sit, for the status block (status.c, zp_status.h). */
struct zp_status_var;
void zp_ip_count_places(struct zp_status_var *frees, struct zp_status_var *bytes);

/* Add v to a counter of this thread's. Only this thread writes it, and the statistics read it
 * from other threads: on x86-64 one add to memory (an aligned 8-byte store, never torn; no lock
 * needed with one writer), elsewhere a relaxed load and store. */
ZP_IP_INLINE void zp_ip_tcount_add(uint64_t *c, uint64_t v)
{
#if defined(__x86_64__)
    __asm__("addq %1, %0" : "+m"(*c) : "er"(v));
#else
    __atomic_store_n(c, *c + v, __ATOMIC_RELAXED);
#endif
}

/* Count a small free in this thread's counters; false (nothing counted) until the thread is
 * registered, which zp_ip_count_slow does. */
ZP_IP_INLINE bool zp_ip_count_fast(size_t scrubbed)
{
    zp_ip_tcount_t *t = &zp_ip_tcount;
    if (ZP_UNLIKELY(t->state != 1))
        return false;
    zp_ip_tcount_add(&t->small_frees, 1);
    if (!__builtin_constant_p(scrubbed) || scrubbed != 0)
        zp_ip_tcount_add(&t->small_scrubbed, scrubbed);
    return true;
}

ZP_IP_INLINE void zp_ip_count(size_t scrubbed)
{
    if (ZP_UNLIKELY(!zp_ip_count_fast(scrubbed)))
        zp_ip_count_slow(scrubbed);
}

/* ---- malloc and free of a jemalloc block (je_block.c) ----
 * malloc: jemalloc's fast path for 1 to 4095 bytes, else zp_ip_malloc_slow (alloc.c), which
 * takes zp_ip_small_malloc_below under the threshold.
 * free and operator delete: one lookup in jemalloc's metadata gives the block's usable size
 * and whether p starts it; the block is scrubbed (unless zp_ip_scrub_small is off: 
 * ZEROPOOL_SCRUB_SMALL=0), counted and pushed on the thread's cache as jemalloc's own free
 * does. A pointer jemalloc has no live extent for (NULL, a pool buffer, a glibc block, a wild
 * pointer, the inside of a large block) goes to zp_ip_free_slow; one inside a block to
 * zp_ip_small_invalid. */
extern bool zp_ip_scrub_small; /* scrub jemalloc blocks on free (read with __atomic builtins) */
/* jemalloc's largest class of its lookup table: malloc's fast path takes 1 to 4095 bytes
 * whatever the threshold (none is under 4 KiB: alloc.c), zp_ip_small_malloc_below up to this. */
#define ZP_IP_SMALL_FAST 4096
void *zp_ip_small_malloc(size_t n);
void *zp_ip_small_malloc_below(size_t n); /* n under the threshold: the same, any size */
void zp_ip_small_free(void *p);
/* free_sized, free_aligned_sized, sized delete (align 1 when none is given): the size and the
 * alignment the caller states must fit the block, or it is reported as an invalid free. */
void zp_ip_small_free_sized(void *p, size_t n, size_t align);
/* alloc.c: */
void *zp_ip_malloc_slow(size_t n); /* zp_ip_small_malloc's way out: threshold, jemalloc */
void zp_ip_free_slow(void *p);
void zp_ip_small_invalid(void *p, size_t n); /* report a free of p inside a jemalloc block */

#endif
