/* The secret the surface tests leave in freed memory and look for in later allocations: an
 * 8-byte word no allocator writes by itself. Shared by the C host, the C++ plugin and the
 * Python extension. */
#ifndef ZP_SURFACE_SECRET_H
#define ZP_SURFACE_SECRET_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define ZPT_SECRET 0x5445524345535a5aULL /* "ZZSECRET" */

static inline void zpt_fill(void *p, size_t n)
{
    uint64_t w = ZPT_SECRET;
    for (size_t i = 0; i + 8 <= n; i += 8)
        memcpy((char *)p + i, &w, 8);
}

/* Secret words in n bytes at p. */
static inline size_t zpt_count(const void *p, size_t n)
{
    size_t hits = 0;
    for (size_t i = 0; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, (const char *)p + i, 8);
        hits += w == ZPT_SECRET;
    }
    return hits;
}

#endif
