/* Every C++ allocation operator, written in C so that no process gains a C++ runtime for them:
 * new and new[] (plain, nothrow, aligned, aligned nothrow), delete and delete[] (plain, sized,
 * aligned, sized aligned, nothrow, aligned nothrow). They route like the malloc family: by
 * ownership, never by the size or alignment a delete passes (not trusted: checked against a
 * jemalloc block, whose size comes from jemalloc's metadata), and scrub like free. Exported under their mangled names (exports.map), so C++ code loaded into a C
 * program (an extension module, a plugin) binds to them and not to a C++ runtime's defaults.
 *
 * The C++ contract: when memory runs out, new calls the installed new-handler and tries again,
 * and throws std::bad_alloc when there is none; the nothrow forms return NULL instead. Both
 * the handler and the throw belong to the C++ runtime that the calling code brought
 * (libstdc++, or libc++): looked up by name, only when memory runs out. */
#include "zp_interpose.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>

#include "zp_fmt.h"

#define ZP_EXPORT __attribute__((visibility("default")))

typedef void (*ip_handler_t)(void);

/* ---- the C++ runtime, found when needed ---- */

static void *ip_cxx_sym(const char *name)
{
    /* A runtime that a plugin loaded with RTLD_LOCAL is not in the global scope: ask it
     * by name (RTLD_NOLOAD never loads anything), then the global scope. */
    static const char *const runtimes[] = {"libstdc++.so.6", "libc++.so.1"};
    for (size_t i = 0; i < sizeof runtimes / sizeof runtimes[0]; i++) {
        void *h = dlopen(runtimes[i], RTLD_NOLOAD | RTLD_LAZY);
        if (h == NULL)
            continue;
        void *f = dlsym(h, name);
        dlclose(h);
        if (f != NULL)
            return f;
    }
    return dlsym(RTLD_NEXT, name); /* the next definition after ours, never ours */
}

typedef ip_handler_t (*ip_get_handler_t)(void);

static ip_handler_t ip_new_handler(void)
{
    ip_get_handler_t get_handler = (ip_get_handler_t)ip_cxx_sym("_ZSt15get_new_handlerv");
    return get_handler != NULL ? get_handler() : NULL;
}

__attribute__((noreturn)) static void ip_throw_bad_alloc(void)
{
    void (*thr)(void) = (void (*)(void))ip_cxx_sym("_ZSt17__throw_bad_allocv");
    if (thr != NULL)
        thr();
    /* No C++ runtime to throw with: what an uncaught std::bad_alloc would end in. */
    zp_write_str(2, "zeropool: operator new: out of memory and no C++ runtime to throw "
                    "std::bad_alloc\n");
    abort();
}

/* ---- allocation ---- */

static void *ip_try(size_t n, size_t align)
{
    if (align <= ZP_IP_MIN_ALIGN)
        return zp_ip_malloc(n); /* malloc(0) is a unique pointer, as new(0) must be */
    return zp_ip_memalign(align, n);
}

/* The throwing forms: retry through the new-handler until it gives up. */
ZP_NOINLINE static void *ip_new_slow(size_t n, size_t align)
{
    for (;;) {
        ip_handler_t h = ip_new_handler();
        if (h == NULL)
            ip_throw_bad_alloc();
        h(); /* frees memory, throws, or ends the program */
        void *p = ip_try(n, align);
        if (p != NULL)
            return p;
    }
}

ZP_IP_INLINE void *ip_new(size_t n, size_t align)
{
    void *p = ip_try(n, align);
    return ZP_LIKELY(p != NULL) ? p : ip_new_slow(n, align);
}

/* The nothrow forms: with no handler, NULL at once. With one, the C++ runtime's own nothrow
 * operator runs the loop: it calls our throwing operator inside its try block and turns the
 * std::bad_alloc a handler may throw into NULL, which C cannot catch. */
typedef void *(*ip_nothrow_t)(size_t, const void *);
typedef void *(*ip_nothrow_al_t)(size_t, size_t, const void *);

ZP_NOINLINE static void *ip_new_nothrow_slow(size_t n, size_t align, const char *runtime_op,
                                                const void *self)
{
    if (ip_new_handler() == NULL)
        return NULL;
    void *op = ip_cxx_sym(runtime_op);
    if (op == NULL || op == self)
        return NULL;
    static const char nothrow_tag = 0; /* std::nothrow_t is an empty struct: any address */
    if (align)
        return ((ip_nothrow_al_t)op)(n, align, &nothrow_tag);
    return ((ip_nothrow_t)op)(n, &nothrow_tag);
}

ZP_IP_INLINE void *ip_new_nothrow(size_t n, size_t align, const char *runtime_op, const void *self)
{
    void *p = ip_try(n, align);
    return ZP_LIKELY(p != NULL) ? p : ip_new_nothrow_slow(n, align, runtime_op, self);
}

/* ---- the operators: one line each ---- */
#define ZP_CXX(ret, name, sym, params) ZP_EXPORT ret name params __asm__(sym); ZP_EXPORT ret name params

ZP_CXX(void *, zp_cxx_new, "_Znwm", (size_t n)) { return ip_new(n, 0); }
ZP_CXX(void *, zp_cxx_new_arr, "_Znam", (size_t n)) { return ip_new(n, 0); }
ZP_CXX(void *, zp_cxx_new_al, "_ZnwmSt11align_val_t", (size_t n, size_t al)) { return ip_new(n, al); }
ZP_CXX(void *, zp_cxx_new_arr_al, "_ZnamSt11align_val_t", (size_t n, size_t al)) { return ip_new(n, al); }
ZP_CXX(void *, zp_cxx_new_nt, "_ZnwmRKSt9nothrow_t", (size_t n, const void *nt))
{ (void)nt; return ip_new_nothrow(n, 0, "_ZnwmRKSt9nothrow_t", (const void *)zp_cxx_new_nt); }
ZP_CXX(void *, zp_cxx_new_arr_nt, "_ZnamRKSt9nothrow_t", (size_t n, const void *nt))
{ (void)nt; return ip_new_nothrow(n, 0, "_ZnamRKSt9nothrow_t", (const void *)zp_cxx_new_arr_nt); }
ZP_CXX(void *, zp_cxx_new_al_nt, "_ZnwmSt11align_val_tRKSt9nothrow_t", (size_t n, size_t al, const void *nt))
{ (void)nt; return ip_new_nothrow(n, al, "_ZnwmSt11align_val_tRKSt9nothrow_t", (const void *)zp_cxx_new_al_nt); }
ZP_CXX(void *, zp_cxx_new_arr_al_nt, "_ZnamSt11align_val_tRKSt9nothrow_t", (size_t n, size_t al, const void *nt))
{ (void)nt; return ip_new_nothrow(n, al, "_ZnamSt11align_val_tRKSt9nothrow_t", (const void *)zp_cxx_new_arr_al_nt); }

ZP_CXX(void, zp_cxx_del, "_ZdlPv", (void *p)) { zp_ip_free(p); }
ZP_CXX(void, zp_cxx_del_arr, "_ZdaPv", (void *p)) { zp_ip_free(p); }
ZP_CXX(void, zp_cxx_del_sz, "_ZdlPvm", (void *p, size_t n)) { zp_ip_free_sized(p, n, 1); }
ZP_CXX(void, zp_cxx_del_arr_sz, "_ZdaPvm", (void *p, size_t n)) { zp_ip_free_sized(p, n, 1); }
ZP_CXX(void, zp_cxx_del_al, "_ZdlPvSt11align_val_t", (void *p, size_t al)) { zp_ip_free_sized(p, 0, al); }
ZP_CXX(void, zp_cxx_del_arr_al, "_ZdaPvSt11align_val_t", (void *p, size_t al)) { zp_ip_free_sized(p, 0, al); }
ZP_CXX(void, zp_cxx_del_sz_al, "_ZdlPvmSt11align_val_t", (void *p, size_t n, size_t al))
{ zp_ip_free_sized(p, n, al); }
ZP_CXX(void, zp_cxx_del_arr_sz_al, "_ZdaPvmSt11align_val_t", (void *p, size_t n, size_t al))
{ zp_ip_free_sized(p, n, al); }
ZP_CXX(void, zp_cxx_del_nt, "_ZdlPvRKSt9nothrow_t", (void *p, const void *nt)) { (void)nt; zp_ip_free(p); }
ZP_CXX(void, zp_cxx_del_arr_nt, "_ZdaPvRKSt9nothrow_t", (void *p, const void *nt)) { (void)nt; zp_ip_free(p); }
ZP_CXX(void, zp_cxx_del_al_nt, "_ZdlPvSt11align_val_tRKSt9nothrow_t", (void *p, size_t al, const void *nt))
{ (void)nt; zp_ip_free_sized(p, 0, al); }
ZP_CXX(void, zp_cxx_del_arr_al_nt, "_ZdaPvSt11align_val_tRKSt9nothrow_t", (void *p, size_t al, const void *nt))
{ (void)nt; zp_ip_free_sized(p, 0, al); }
