/* The private jemalloc inside libzeropool.so, built for us from Debian's source
 * (jemalloc-build.sh): its public names are zp_je_* (zp_je_malloc, zp_je_sdallocx, ...), all
 * hidden, reached only from interpose/. Its header is the one of that build (its flags,
 * MALLCTL_ARENAS_ALL); je_block.h is what its internals tell about a block. */
#ifndef ZP_JE_H
#define ZP_JE_H

#include <stddef.h>

#include <jemalloc/jemalloc.h>

#include "je_block.h"

#endif
