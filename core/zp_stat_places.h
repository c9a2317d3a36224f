/* Where a pool keeps each of its counters, for a reader outside the process: the preload
 * library publishes these offsets (interpose/status.c) so that `zeropool status PID` can sum a
 * live process's counters from its memory without any code running in it. Not public API:
 * the offsets are the core's private layout, described here by the only code that knows it. */
#ifndef ZP_STAT_PLACES_H
#define ZP_STAT_PLACES_H

#include <stddef.h>
#include <stdint.h>

#define ZP_PLACE_NONE SIZE_MAX

/* counter = sum of the uint64_t at pool + add[i] (add[i] != NONE), plus, for each element e of
 * the list whose first element pointer sits at pool + head (head != NONE; next pointer at
 * e + next), the uint64_t at e + item. */
typedef struct zp_stat_place {
    const char *name; /* as in ZP_STATS_FIELDS; bytes_got and bytes_put give live_bytes */
    int bytes;        /* 1: a byte count, 0: a count */
    size_t add[2];
    size_t head, next, item;
} zp_stat_place_t;

/* Fills out (up to cap entries) and returns how many places there are. */
size_t zp_pool_stat_places(zp_stat_place_t *out, size_t cap);

#endif
