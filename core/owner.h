/* The pool's address map and the ownership test as inline code, for the callers inside
 * libzeropool.so that ask "is this pointer the pool's?" on every free (interpose/): the same
 * answer as zp_owns, without a call. Not installed: the map is internal to the library.
 *
 * Address space is reserved in chunks aligned to a 4 MiB granule; a global two-level radix map
 * from granule to span says whose a pointer is in O(1), without reading the buffer. */
#ifndef ZP_OWNER_H
#define ZP_OWNER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "zeropool.h"

#define ZP_GRANULE_SHIFT 22 /* 4 MiB */
#define ZP_GRANULE ((size_t)1 << ZP_GRANULE_SHIFT)
#define ZP_MAP_L1_SHIFT 36 /* one leaf covers 64 GiB */
#define ZP_MAP_L1_SIZE ((size_t)1 << (47 - ZP_MAP_L1_SHIFT))
#define ZP_MAP_L2_SIZE ((size_t)1 << (ZP_MAP_L1_SHIFT - ZP_GRANULE_SHIFT))

struct zp_span; /* internal.h; its first member is the owning pool */
extern _Atomic(struct zp_span **) zp_map_l1[ZP_MAP_L1_SIZE];

static inline struct zp_span *zp_map_lookup(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    if (__builtin_expect((a >> 47) != 0, 0))
        return NULL;
    struct zp_span **leaf =
        atomic_load_explicit(&zp_map_l1[a >> ZP_MAP_L1_SHIFT], memory_order_acquire);
    if (!leaf)
        return NULL;
    return __atomic_load_n(&leaf[(a >> ZP_GRANULE_SHIFT) & (ZP_MAP_L2_SIZE - 1)], __ATOMIC_ACQUIRE);
}

/* zp_owns, inline: the span's first word is its pool (checked in internal.h). */
static inline bool zp_owns_inline(const zp_pool_t *pool, const void *p)
{
    const struct zp_span *sp = zp_map_lookup(p);
    return sp != NULL && *(zp_pool_t *const *)(const void *)sp == pool;
}

#endif
