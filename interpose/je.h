/* The private jemalloc inside libzeropool.so (jemalloc-private.sh renames its public names to
 * zp_je_*): the allocator of small blocks, reached only from interpose/. Its flags and
 * MALLCTL_ARENAS_ALL are jemalloc's own (jemalloc.h); nothing here calls the unprefixed names,
 * which are not linked (a call to mallocx would fail to link, by design). */
#ifndef ZP_JE_H
#define ZP_JE_H

#include <stddef.h>

#include <jemalloc/jemalloc.h>

void *zp_je_malloc(size_t n);
void *zp_je_calloc(size_t n, size_t m);
void zp_je_free(void *p);
void *zp_je_mallocx(size_t n, int flags);
void zp_je_dallocx(void *p, int flags);
void zp_je_sdallocx(void *p, size_t n, int flags);
size_t zp_je_sallocx(const void *p, int flags);
size_t zp_je_xallocx(void *p, size_t n, size_t extra, int flags);
size_t zp_je_nallocx(size_t n, int flags);
int zp_je_mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen);

/* libm's exp, log and round, which jemalloc's heap profiler calls: renamed too, and defined in
 * jemath.c, so that libzeropool.so does not load libm into every process. */
double zp_je_libm_exp(double x);
double zp_je_libm_log(double x);
double zp_je_libm_round(double x);
/* libgcc's _Unwind_Backtrace and _Unwind_GetIP (the profiler's), renamed the same way, are
 * stubs in jemath.c, declared there with <unwind.h>'s types. */

#endif
