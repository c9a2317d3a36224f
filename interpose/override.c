/* The libc names libzeropool.so exports: pure forwarding, one line each, to the zp_ip_*
 * functions of zp_interpose.h. These and nothing else are exported (exports.map). */
#include "zp_interpose.h"

#define ZP_EXPORT __attribute__((visibility("default")))

/* Not declared by glibc 2.36's headers. */
void cfree(void *p);
void free_sized(void *p, size_t size);
void free_aligned_sized(void *p, size_t align, size_t size);
void *__libc_malloc(size_t n);
void __libc_free(void *p);
void *__libc_calloc(size_t n, size_t m);
void *__libc_realloc(void *p, size_t n);
void *__libc_memalign(size_t align, size_t n);
void *__libc_valloc(size_t n);
void *__libc_pvalloc(size_t n);

ZP_EXPORT void *malloc(size_t n) { return zp_ip_malloc(n); }
ZP_EXPORT void free(void *p) { zp_ip_free(p); }
ZP_EXPORT void *calloc(size_t n, size_t m) { return zp_ip_calloc(n, m); }
ZP_EXPORT void *realloc(void *p, size_t n) { return zp_ip_realloc(p, n); }
ZP_EXPORT void *reallocarray(void *p, size_t n, size_t m) { return zp_ip_reallocarray(p, n, m); }
ZP_EXPORT int posix_memalign(void **out, size_t a, size_t n) { return zp_ip_posix_memalign(out, a, n); }
ZP_EXPORT void *aligned_alloc(size_t a, size_t n) { return zp_ip_aligned_alloc(a, n); }
ZP_EXPORT void *memalign(size_t a, size_t n) { return zp_ip_memalign(a, n); }
ZP_EXPORT void *valloc(size_t n) { return zp_ip_valloc(n); }
ZP_EXPORT void *pvalloc(size_t n) { return zp_ip_pvalloc(n); }
ZP_EXPORT size_t malloc_usable_size(void *p) { return zp_ip_usable_size(p); }
ZP_EXPORT void free_sized(void *p, size_t size) { zp_ip_free_sized(p, size, 1); }
ZP_EXPORT void free_aligned_sized(void *p, size_t a, size_t size) { zp_ip_free_sized(p, size, a); }
ZP_EXPORT void cfree(void *p) { zp_ip_free(p); }

ZP_EXPORT void *__libc_malloc(size_t n) { return zp_ip_malloc(n); }
ZP_EXPORT void __libc_free(void *p) { zp_ip_free(p); }
ZP_EXPORT void *__libc_calloc(size_t n, size_t m) { return zp_ip_calloc(n, m); }
ZP_EXPORT void *__libc_realloc(void *p, size_t n) { return zp_ip_realloc(p, n); }
ZP_EXPORT void *__libc_memalign(size_t a, size_t n) { return zp_ip_memalign(a, n); }
ZP_EXPORT void *__libc_valloc(size_t n) { return zp_ip_valloc(n); }
ZP_EXPORT void *__libc_pvalloc(size_t n) { return zp_ip_pvalloc(n); }

ZP_EXPORT int mallopt(int param, int value) { return zp_ip_mallopt(param, value); }
ZP_EXPORT struct mallinfo mallinfo(void) { return zp_ip_mallinfo(); }
ZP_EXPORT struct mallinfo2 mallinfo2(void) { return zp_ip_mallinfo2(); }
ZP_EXPORT int malloc_trim(size_t pad) { return zp_ip_malloc_trim(pad); }
ZP_EXPORT void malloc_stats(void) { zp_ip_malloc_stats(); }
ZP_EXPORT int malloc_info(int options, FILE *fp) { return zp_ip_malloc_info(options, fp); }
