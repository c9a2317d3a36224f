/* Shared by the preload tests: the threshold the library under test runs with, read from
 * ZEROPOOL_THRESHOLD as the tests set it (64K when unset). Requests at or above it come from
 * the pool: zeroed, usable size = the request. Below it jemalloc serves them; those blocks
 * are scrubbed on free but may show jemalloc's own metadata, freed inside jemalloc. */
#ifndef PRELOAD_UTIL_H
#define PRELOAD_UTIL_H

#include <stdlib.h>

static inline size_t test_threshold(void)
{
    const char *s = getenv("ZEROPOOL_THRESHOLD");
    if (s == NULL || *s == '\0')
        return 65536;
    char *end;
    size_t v = strtoull(s, &end, 10);
    if (*end == 'K' || *end == 'k')
        v <<= 10;
    else if (*end == 'M' || *end == 'm')
        v <<= 20;
    else if (*end == 'G' || *end == 'g')
        v <<= 30;
    return v;
}

#endif
