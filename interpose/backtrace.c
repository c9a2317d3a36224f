/* Backtraces for misuse reports (libunwind, local only) and the ZEROPOOL_TRACE_ALLOC table.
 * No stdio, no malloc of ours. Names come from libunwind's ELF symbol table reader (static
 * functions too), which mallocs one small path string per lookup: report.c sets
 * zp_ip_reporting around a report, so such a request goes straight to jemalloc. dladdr (no
 * malloc in glibc) gives the module, and the name when libunwind finds none.
 *
 * libunwind (and the liblzma it links) is loaded at the first backtrace, not with the library:
 * a process that never misuses memory does not map ~110 KiB of code it never runs. */
#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "backtrace.h"
#include "zp_base.h"
#include "platform.h"

#include <dlfcn.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>
#include <ucontext.h>

/* ---- libunwind, loaded on first use ---- */

#ifndef ZP_LIBUNWIND_SONAME
#define ZP_LIBUNWIND_SONAME "libunwind.so.8"
#endif
/* The functions used, and the names libunwind.h's macros give them (_ULx86_64_step for
 * unw_step, ...), which are the names to look up. */
#define BT_NAME(f) BT_NAME_(f)
#define BT_NAME_(f) #f
static struct {
    __typeof__(unw_tdep_getcontext) *getcontext;
    __typeof__(unw_init_local) *init_local;
    __typeof__(unw_init_local2) *init_local2;
    __typeof__(unw_get_reg) *get_reg;
    __typeof__(unw_step) *step;
    __typeof__(unw_get_proc_name) *get_proc_name;
    __typeof__(unw_backtrace) *backtrace;
} bt_unw;
static const struct {
    const char *name;
    void **slot;
} bt_unw_syms[] = {
    {BT_NAME(unw_tdep_getcontext), (void **)&bt_unw.getcontext},
    {BT_NAME(unw_init_local), (void **)&bt_unw.init_local},
    {BT_NAME(unw_init_local2), (void **)&bt_unw.init_local2},
    {BT_NAME(unw_get_reg), (void **)&bt_unw.get_reg},
    {BT_NAME(unw_step), (void **)&bt_unw.step},
    {BT_NAME(unw_get_proc_name), (void **)&bt_unw.get_proc_name},
    {BT_NAME(unw_backtrace), (void **)&bt_unw.backtrace},
};
static _Atomic int bt_unw_state; /* 0 not tried, 1 loading, 2 loaded, 3 unavailable */
static __thread bool bt_unw_loading;

/* True once libunwind is loaded. The first caller loads it (dlopen may allocate: the thread's
 * nested calls find bt_unw_loading set and go without); other threads wait for it. In a signal
 * handler the load takes the dynamic loader's lock, as unwinding does anyway (dl_iterate_phdr). */
static bool bt_unw_ready(void)
{
    int s = atomic_load_explicit(&bt_unw_state, memory_order_acquire);
    if (ZP_LIKELY(s == 2))
        return true;
    if (s == 3 || bt_unw_loading)
        return false;
    if (s == 0 && atomic_compare_exchange_strong(&bt_unw_state, &s, 1)) {
        bt_unw_loading = true;
        void *h = dlopen(ZP_LIBUNWIND_SONAME, RTLD_NOW | RTLD_LOCAL);
        bool ok = h != NULL;
        for (size_t i = 0; ok && i < sizeof bt_unw_syms / sizeof bt_unw_syms[0]; i++)
            ok = (*bt_unw_syms[i].slot = dlsym(h, bt_unw_syms[i].name)) != NULL;
        bt_unw_loading = false;
        atomic_store_explicit(&bt_unw_state, ok ? 2 : 3, memory_order_release);
        return ok;
    }
    while ((s = atomic_load_explicit(&bt_unw_state, memory_order_acquire)) == 1)
        sched_yield();
    return s == 2;
}

/* ---- taking a backtrace ---- */

static void bt_unwind(zp_bt_t *bt, unw_cursor_t *c)
{
    do {
        unw_word_t ip = 0;
        if (bt_unw.get_reg(c, UNW_REG_IP, &ip) != 0 || ip == 0)
            break;
        bt->ip[bt->n++] = (uintptr_t)ip;
    } while (bt->n < ZP_BT_MAX && bt_unw.step(c) > 0);
}

__attribute__((noinline)) void zp_bt_here(zp_bt_t *bt)
{
    unw_context_t ctx;
    unw_cursor_t c;
    bt->n = 0;
    bt->exact0 = false;
    if (!bt_unw_ready() || bt_unw.getcontext(&ctx) != 0 ||
        bt_unw.init_local(&c, &ctx) != 0)
        return;
    bt_unwind(bt, &c);
}

void zp_bt_signal(zp_bt_t *bt, void *uc)
{
    unw_cursor_t c;
    bt->n = 0;
    bt->exact0 = true;
    if (!bt_unw_ready() ||
        bt_unw.init_local2(&c, (unw_context_t *)uc, UNW_INIT_SIGNAL_FRAME) != 0)
        return;
    bt_unwind(bt, &c);
}

/* ---- symbolising ---- */

static const void *bt_self_base(void)
{
    static const void *_Atomic base;
    const void *b = atomic_load_explicit(&base, memory_order_relaxed);
    if (b == NULL) {
        Dl_info di;
        if (dladdr((void *)zp_bt_here, &di) != 0)
            b = di.dli_fbase;
        atomic_store_explicit(&base, b, memory_order_relaxed);
    }
    return b;
}

/* The name of the function holding ip, from libunwind's reading of the ELF symbol table
 * (which also knows static functions): a cursor made up for that one address. For a return
 * address (exact false) libunwind looks up ip - 1 itself and gives the offset from ip. */
static bool bt_unw_name(uintptr_t ip, bool exact, char *name, size_t len, uintptr_t *off)
{
    unw_context_t ctx;
    unw_cursor_t c;
    unw_word_t o = 0;
    if (!bt_unw_ready() || bt_unw.getcontext(&ctx) != 0)
        return false;
    ctx.uc_mcontext.gregs[REG_RIP] = (greg_t)ip;
    if (bt_unw.init_local2(&c, &ctx, exact ? UNW_INIT_SIGNAL_FRAME : 0) != 0 ||
        bt_unw.get_proc_name(&c, name, len, &o) != 0)
        return false;
    *off = (uintptr_t)o;
    return name[0] != '\0';
}

static void bt_frame(zp_buf_t *b, int idx, uintptr_t ip, bool exact)
{
    /* A return address may be the first byte after the calling function: look up the call. */
    uintptr_t pc = exact ? ip : ip - 1;
    Dl_info di;
    memset(&di, 0, sizeof di);
    bool known = dladdr((void *)pc, &di) != 0;
    const char *name = NULL;
    uintptr_t off = 0;
    char nbuf[256];
    /* libunwind first: it reads the ELF symbol table, which names static functions too, where
     * dladdr only knows exported names and answers the nearest one before pc. */
    if (bt_unw_name(ip, exact, nbuf, sizeof nbuf, &off)) {
        name = nbuf;
    } else if (known && di.dli_sname != NULL && di.dli_saddr != NULL) {
        name = di.dli_sname;
        off = ip - (uintptr_t)di.dli_saddr;
    }
    zp_buf_str(b, "    #");
    zp_buf_u64(b, (uint64_t)idx);
    zp_buf_chr(b, ' ');
    zp_buf_hex(b, ip);
    if (name != NULL) {
        zp_buf_str(b, " in ");
        zp_buf_str(b, name);
        zp_buf_chr(b, '+');
        zp_buf_hex(b, off);
    }
    zp_buf_str(b, " (");
    if (known && di.dli_fname != NULL && di.dli_fname[0] != '\0') {
        zp_buf_str(b, di.dli_fname);
        if (name == NULL) {
            zp_buf_chr(b, '+');
            zp_buf_hex(b, ip - (uintptr_t)di.dli_fbase);
        }
    } else {
        zp_buf_str(b, "unknown module");
    }
    zp_buf_str(b, ")\n");
}

void zp_bt_write(zp_buf_t *b, int fd, const zp_bt_t *bt)
{
    const void *self = bt_self_base();
    int i = 0;
    /* The leading frames are the allocator's own (report, zp_put, free): not the program's. */
    while (i < bt->n - 1) {
        Dl_info di;
        if (dladdr((void *)(bt->ip[i] - (i == 0 && bt->exact0 ? 0 : 1)), &di) == 0 ||
            di.dli_fbase != self)
            break;
        i++;
    }
    if (bt->n == 0) {
        zp_buf_str(b, bt_unw_ready() ? "    (no backtrace: libunwind could not unwind this stack)\n"
                                     : "    (no backtrace: " ZP_LIBUNWIND_SONAME " cannot be loaded)\n");
        return;
    }
    for (int k = 0; i < bt->n && k < ZP_BT_PRINT; i++, k++) {
        if (b->cap - b->len < 512)
            zp_buf_flush(b, fd);
        bt_frame(b, k, bt->ip[i], i == 0 && bt->exact0);
    }
}

/* ---- ZEROPOOL_TRACE_ALLOC records ----
 * A hash table keyed by buffer address: 4-way buckets, each with a try-lock, in one metadata
 * reservation made at the first record (zp_os_meta_reserve: only the buckets used cost memory,
 * kept out of core dumps). Records are not removed
 * at free, so a double free still finds where the buffer was allocated; a reuse of the address
 * overwrites it, and a full bucket overwrites its oldest record. Nothing ever waits: a busy
 * bucket drops the record (allocation) or the lookup (report). */

#define BT_WAYS 4
#define BT_BUCKETS_LG 14 /* 16384 buckets x 4 = 65536 records, 13 MiB of address space */

typedef struct bt_rec {
    uintptr_t key;
    uint32_t n;
    uintptr_t ip[ZP_BT_MAX];
} bt_rec_t;

typedef struct bt_bucket {
    atomic_flag busy;
    unsigned next; /* round-robin victim */
    bt_rec_t rec[BT_WAYS];
} bt_bucket_t;

static bt_bucket_t *_Atomic bt_table;
static _Atomic int bt_table_state; /* 0 none, 1 being mapped, 2 up, 3 failed */

static bt_bucket_t *bt_table_get(bool create)
{
    bt_bucket_t *t = atomic_load_explicit(&bt_table, memory_order_acquire);
    if (t != NULL || !create)
        return t;
    int s = 0;
    if (!atomic_compare_exchange_strong(&bt_table_state, &s, 1))
        return NULL; /* another thread maps it, or mapping failed: no record this time */
    size_t bytes = sizeof(bt_bucket_t) << BT_BUCKETS_LG;
    void *m = zp_os_meta_reserve(bytes);
    if (m == NULL) {
        atomic_store(&bt_table_state, 3);
        return NULL;
    }
    atomic_store_explicit(&bt_table, (bt_bucket_t *)m, memory_order_release);
    atomic_store(&bt_table_state, 2);
    return m;
}

static bt_bucket_t *bt_bucket(bt_bucket_t *t, const void *p)
{
    uint64_t h = ((uint64_t)(uintptr_t)p >> 12) * 0x9e3779b97f4a7c15ull;
    return &t[h >> (64 - BT_BUCKETS_LG)];
}

static bool bt_lock(bt_bucket_t *bk, int tries)
{
    while (atomic_flag_test_and_set_explicit(&bk->busy, memory_order_acquire))
        if (--tries <= 0)
            return false;
    return true;
}

static void bt_unlock(bt_bucket_t *bk)
{
    atomic_flag_clear_explicit(&bk->busy, memory_order_release);
}

__attribute__((noinline)) void zp_bt_note_alloc(const void *p)
{
    void *ips[ZP_BT_MAX];
    int n = bt_unw_ready() ? bt_unw.backtrace(ips, ZP_BT_MAX) : 0;
    bt_bucket_t *t = bt_table_get(true);
    if (t == NULL || n <= 0)
        return;
    bt_bucket_t *bk = bt_bucket(t, p);
    if (!bt_lock(bk, 1000))
        return;
    bt_rec_t *r = NULL;
    for (int i = 0; i < BT_WAYS && r == NULL; i++)
        if (bk->rec[i].key == (uintptr_t)p || bk->rec[i].key == 0)
            r = &bk->rec[i];
    if (r == NULL)
        r = &bk->rec[bk->next++ % BT_WAYS];
    r->key = (uintptr_t)p;
    r->n = (uint32_t)n;
    memcpy(r->ip, ips, (size_t)n * sizeof ips[0]);
    bt_unlock(bk);
}

bool zp_bt_alloc_site(const void *p, zp_bt_t *bt)
{
    bt->n = 0;
    bt->exact0 = false;
    bt_bucket_t *t = bt_table_get(false);
    if (t == NULL || p == NULL)
        return false;
    bt_bucket_t *bk = bt_bucket(t, p);
    if (!bt_lock(bk, 100000))
        return false;
    for (int i = 0; i < BT_WAYS; i++) {
        if (bk->rec[i].key == (uintptr_t)p) {
            bt->n = (int)bk->rec[i].n;
            memcpy(bt->ip, bk->rec[i].ip, (size_t)bt->n * sizeof bt->ip[0]);
            break;
        }
    }
    bt_unlock(bk);
    return bt->n > 0;
}
