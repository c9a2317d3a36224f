/* A block of the private jemalloc, as its own metadata knows it (je_block.c, the one file
 * compiled against jemalloc's internal headers). Plain C types only: both jemalloc's internal
 * headers and ours include it. */
#ifndef ZP_JE_BLOCK_H
#define ZP_JE_BLOCK_H

#include <stdbool.h>
#include <stddef.h>

typedef struct zp_je_block {
    size_t size; /* usable size of the block p is in; 0: no block jemalloc handed out */
    bool start;  /* p is that block's first byte (what free and realloc accept) */
} zp_je_block_t;

/* One lookup in jemalloc's radix tree (its per-thread cache first), reading no memory at p.
 * Safe for any address: one jemalloc never mapped gives {0, false}. */
zp_je_block_t zp_je_block(const void *p);

#endif
