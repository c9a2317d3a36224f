/* The preload shim's slow paths: bootstrap, pool creation, the large-request path, realloc,
 * the aligned family, the small-block counters' registration, and the policy for pointers that
 * neither the pool nor jemalloc allocated. See zp_interpose.h for the call tree and ownership. */
#include "zp_interpose.h"

#include <dlfcn.h>
#include <gnu/lib-names.h>
#include <pthread.h>
#include <unistd.h>

#include "backtrace.h"
#include "platform.h"
#include "zp_config_map.h"
#include "zp_fmt.h"
#define ZP_STATUS_LIBRARY
#include "zp_status.h"
#include "zp_list.h"

zp_ip_state_t zp_ip = {.brk_lo = UINTPTR_MAX};
bool zp_ip_scrub_small = true;
/* The threshold, set once the options are loaded (and again when the pool cannot be made). */
static void ip_threshold_set(size_t t)
{
    atomic_store_explicit(&zp_ip.threshold, t, memory_order_release);
}


/* ---- bootstrap ----
 * The first call of any allocation function loads the options (zp_options_load scans environ:
 * no malloc, no stdio). While one thread does that, every request of every thread, including
 * this thread's own recursive ones, goes to jemalloc: threshold stays 0 and the state is not
 * READY. The pool itself is created at the first large request (zp_ip_pool_get). */

/* ZEROPOOL_VERBOSE: the one line that answers "is it loaded?". */
static void ip_say_hello(bool disabled)
{
    static const zp_opt_id_t shown[] = {
        ZP_OPT_THRESHOLD, ZP_OPT_MAX_POOLED, ZP_OPT_POOL_BYTES, ZP_OPT_SHARDS, ZP_OPT_TLS_CACHE,
        ZP_OPT_TLS_CACHE_BYTES, ZP_OPT_MAX_PER_SHARD, ZP_OPT_EVICTION, ZP_OPT_PIN, ZP_OPT_GUARD,
        ZP_OPT_DONTDUMP, ZP_OPT_ZERO_ON_ALLOC, ZP_OPT_SCRUB_SMALL, ZP_OPT_ON_ERROR,
    };
    char line[640];
    zp_buf_t b = ZP_BUF_INIT(line);
    zp_buf_str(&b, disabled ? "zeropool: disabled (pid " : "zeropool: active (pid ");
    zp_buf_u64(&b, (uint64_t)getpid());
    zp_buf_chr(&b, ')');
    if (disabled) {
        zp_buf_str(&b, ": every call goes to jemalloc");
    } else {
        for (size_t i = 0; i < sizeof shown / sizeof shown[0]; i++) {
            char val[ZP_PATH_MAX];
            size_t n = zp_option_format(&zp_ip.opts, shown[i], val, sizeof val);
            zp_buf_str(&b, i ? " " : ": ");
            zp_buf_str(&b, zp_opt_table[shown[i]].key);
            zp_buf_chr(&b, '=');
            zp_buf_mem(&b, val, n < sizeof val ? n : sizeof val);
        }
    }
    zp_buf_chr(&b, '\n');
    zp_buf_flush(&b, 2);
}

void zp_ip_init(void)
{
    /* Before libc has set environ (allocations from the dynamic loader), the options cannot
     * be read yet: stay uninitialised and let jemalloc serve until then. */
    if (environ == NULL)
        return;
    int s = ZP_IP_UNINIT;
    if (!atomic_compare_exchange_strong(&zp_ip.state, &s, ZP_IP_INITIALIZING))
        return;
    int e = errno;
    /* Every allocation so far came to us, so glibc's heap, if it ever grows, starts here. */
    atomic_store_explicit(&zp_ip.brk_lo, (uintptr_t)sbrk(0), memory_order_relaxed);
    zp_options_load(&zp_ip.opts, NULL);
    /* Strict mode: a bad setting stops the program here, before main (the constructor in
     * live.c loads the options if no allocation did), with one line. */
    if (zp_ip.opts.strict && zp_options_bad(&zp_ip.opts) > 0) {
        zp_options_say_strict(&zp_ip.opts, 2);
        _exit(ZP_STRICT_EXIT);
    }
    bool off = zp_ip.opts.disable != 0;
    bool scrub = !off && zp_ip.opts.scrub_small;
    __atomic_store_n(&zp_ip_scrub_small, scrub, __ATOMIC_SEQ_CST);
    if (zp_ip.opts.verbose) {
        ip_say_hello(off);
        zp_options_say_verdicts(&zp_ip.opts, 2);
    }
    zp_status_publish();
    atomic_store(&zp_ip.state, ZP_IP_READY);
    ip_threshold_set(off ? ZP_IP_HUGE : (size_t)zp_ip.opts.threshold);
    errno = e;
}


/* One thread creates the pool; the others, and the creating thread's own recursive calls
 * (zp_pool_new may allocate), get NULL meanwhile and are served by jemalloc. */
ZP_NOINLINE zp_pool_t *zp_ip_pool_get(void)
{
    zp_pool_t *pool = atomic_load_explicit(&zp_ip.pool, memory_order_acquire);
    if (pool != NULL)
        return pool;
    int s = ZP_IP_POOL_NONE;
    if (atomic_load(&zp_ip.state) != ZP_IP_READY || zp_ip.opts.disable ||
        !atomic_compare_exchange_strong(&zp_ip.pool_state, &s, ZP_IP_POOL_CREATING))
        return NULL;
    int e = errno;
    zp_config_t cfg;
    zp_config_from_options(&cfg, &zp_ip.opts);
    /* stderr is the program's: the pool's own warnings (mlock at RLIMIT_MEMLOCK) go there
     * only with VERBOSE or when pinning was asked in this process's environment; zeropool
     * status reads the count either way. */
    zp_opt_source_t pin_src = zp_ip.opts.source[ZP_OPT_PIN];
    cfg.quiet = !zp_ip.opts.verbose && pin_src != ZP_SRC_ENV && pin_src != ZP_SRC_CONF;
    pool = zp_pool_new(&cfg);
    if (pool == NULL) {
        /* Kept for `zeropool status`; on stderr only when asked (ZEROPOOL_VERBOSE). */
        char msg[160];
        zp_buf_t b = ZP_BUF_INIT(msg);
        zp_buf_str(&b, "zeropool: cannot create the pool (errno ");
        zp_buf_i64(&b, errno);
        zp_buf_str(&b, "); every request goes to jemalloc");
        msg[b.len < sizeof msg ? b.len : sizeof msg - 1] = '\0';
        zp_status_note_pool_error(msg + sizeof "zeropool: " - 1);
        if (zp_ip.opts.verbose) {
            zp_buf_chr(&b, '\n');
            zp_buf_flush(&b, 2);
        }
        ip_threshold_set(ZP_IP_HUGE);
        atomic_store(&zp_ip.pool_state, ZP_IP_POOL_FAILED);
        errno = e;
        return NULL;
    }
    zp_pool_set_misuse_handler(pool, zp_ip_report_misuse, NULL);
    zp_ip_segv_install(); /* before the pool is published: no guard page exists yet */
    atomic_store_explicit(&zp_ip.pool, pool, memory_order_release);
    atomic_store(&zp_ip.pool_state, ZP_IP_POOL_UP);
    errno = e;
    return pool;
}

/* ---- allocation ---- */

static int ip_flags(size_t align, bool zero)
{
    int f = zero ? MALLOCX_ZERO : 0;
    if (align > ZP_IP_MIN_ALIGN)
        f |= MALLOCX_LG_ALIGN(__builtin_ctzl(align));
    return f;
}

/* A request jemalloc serves although it is not small: the pool is off, being created, or out
 * of address space. jemalloc maps with MAP_NORESERVE and so promises what the kernel could
 * never back (malloc(1 << 46) "succeeds"); glibc and the pool ask the kernel's overcommit
 * accounting, and so does this, for sizes where a wrong promise matters. */
static void *ip_unpooled(size_t n, size_t align, bool zero)
{
    if (n >= ZP_IP_HUGE && !zp_os_can_commit(n))
        return zp_ip_enomem();
    return zp_ip_small(n, ip_flags(align, zero));
}

/* A large request: n >= threshold, align 0 or a power of two. */
static void *ip_large(size_t n, size_t align, bool zero)
{
    if (n > PTRDIFF_MAX)
        return zp_ip_enomem();
    zp_pool_t *pool = zp_ip_pool_get();
    if (pool != NULL) {
        int e = errno;
        /* Past 64 bytes, the alignment asked for: a large buffer's start varies by 64. */
        void *p = align > 64 ? zp_get_aligned(pool, n, align) : zp_get(pool, n);
        errno = e;
        if (p != NULL) {
            if (ZP_UNLIKELY(zp_ip.opts.trace_alloc))
                zp_bt_note_alloc(p);
            return p; /* zeroed: no memset for calloc */
        }
    }
    return ip_unpooled(n, align, zero);
}

ZP_NOINLINE void *zp_ip_alloc_slow(size_t n, size_t align, bool zero)
{
    size_t t = zp_ip_threshold();
    if (t == 0) {
        zp_ip_init();
        t = zp_ip_threshold();
    }
    /* t == 0: the options are being loaded; reporting: libunwind asks during a misuse report */
    if (t == 0 || n < t || ZP_UNLIKELY(zp_ip_reporting))
        return zp_ip_small(n, ip_flags(align, zero));
    if (n > PTRDIFF_MAX)
        return zp_ip_enomem();
    if (zp_ip.opts.disable) /* threshold is ZP_IP_HUGE then: only the size check */
        return ip_unpooled(n, align, zero);
    return ip_large(n, align, zero);
}

/* zp_ip_small_malloc's way out (je_block.c): a request of 4 KiB or more, malloc(0), a thread
 * whose jemalloc data is not ready (the process's first malloc: the options load here), an
 * empty cache bin. Its fast path ignores the threshold, which no setting puts under 4 KiB: */
#define ZP_OPT(NAME, field, TYPE, def, lo, hi, choices, help)                                  \
    _Static_assert(ZP_OPT_##NAME != ZP_OPT_THRESHOLD || (lo) >= 4 * ZP_KIB,                  \
                   "malloc's fast path takes every request under 4 KiB");
#include "options.def"
#undef ZP_OPT

ZP_NOINLINE void *zp_ip_malloc_slow(size_t n)
{
    if (ZP_LIKELY(n < zp_ip_threshold()))
        return zp_ip_small_malloc_below(n); /* NULL + ENOMEM on failure, as malloc */
    return zp_ip_alloc_slow(n, 0, false);
}

/* ---- small frees ----
 * free and delete of a jemalloc block are je_block.c's (one lookup in jemalloc's metadata, the
 * scrub, jemalloc's thread cache). A pointer that does not start a block (p + 16, a misaligned
 * one, the inside of a large block) is reported as an invalid free and left alone: jemalloc
 * would hand the address out again, and the scrub would run into the next block. So is a
 * sized free whose size or alignment the block cannot hold. */

/* Reported as an invalid free (inside a block of n bytes) or, n == 0, a wild one; if the
 * report returns (ZEROPOOL_ON_ERROR=report), nothing was written. */
ZP_NOINLINE void zp_ip_small_invalid(void *p, size_t n)
{
    int e = errno; /* free keeps errno (zp_ip_free saves none) */
    zp_ip_report_misuse(NULL, n != 0 ? ZP_MISUSE_INVALID_FREE : ZP_MISUSE_WILD_FREE, p, n);
    errno = e;
}

/* ---- small-block counters ----
 * The free of a jemalloc block (je_block.c) bumps this thread's counts; a thread's first small free
 * lands here to register it, so that the statistics can sum every thread on demand. */

__thread zp_ip_tcount_t zp_ip_tcount;

static pthread_mutex_t ip_tc_lock = PTHREAD_MUTEX_INITIALIZER;
static zp_ip_tcount_t *ip_tc_list;         /* registered threads (ip_tc_lock) */
static uint64_t ip_tc_frees, ip_tc_bytes;  /* exited threads (ip_tc_lock) */
static _Atomic uint64_t ip_tc_late_frees, ip_tc_late_bytes; /* unregistered threads */
static pthread_key_t ip_tc_key;
static bool ip_tc_key_ok;
static pthread_once_t ip_tc_once = PTHREAD_ONCE_INIT;

static void ip_tc_unlink(zp_ip_tcount_t *t)
{
    ip_tc_frees += t->small_frees;
    ip_tc_bytes += t->small_scrubbed;
    ZP_LIST_UNLINK(&ip_tc_list, t, next, prev);
}

/* Thread exit: fold the counts into the global sums; later frees of this thread add there. */
static void ip_tc_exit(void *arg)
{
    zp_ip_tcount_t *t = arg;
    pthread_mutex_lock(&ip_tc_lock);
    ip_tc_unlink(t);
    pthread_mutex_unlock(&ip_tc_lock);
    t->state = 2;
}

static void ip_tc_prepare(void)
{
    pthread_mutex_lock(&ip_tc_lock);
}

static void ip_tc_parent(void)
{
    pthread_mutex_unlock(&ip_tc_lock);
}

/* The child has one thread: the others' blocks stay readable but glibc may reuse their stacks
 * (and TLS) for new threads, so they leave the list now. */
static void ip_tc_child(void)
{
    zp_ip_tcount_t *self = &zp_ip_tcount;
    for (zp_ip_tcount_t *t = ip_tc_list, *next; t != NULL; t = next) {
        next = t->next;
        if (t != self)
            ip_tc_unlink(t);
    }
    pthread_mutex_unlock(&ip_tc_lock);
}

static void ip_tc_init(void)
{
    ip_tc_key_ok = pthread_key_create(&ip_tc_key, ip_tc_exit) == 0;
    pthread_atfork(ip_tc_prepare, ip_tc_parent, ip_tc_child);
}

ZP_NOINLINE void zp_ip_count_slow(size_t scrubbed)
{
    zp_ip_tcount_t *t = &zp_ip_tcount;
    int e = errno; /* free keeps errno (zp_ip_free saves none) */
    if (t->state == 0) {
        t->state = 3; /* frees made while registering (pthread internals) count globally */
        pthread_once(&ip_tc_once, ip_tc_init);
        if (ip_tc_key_ok && pthread_setspecific(ip_tc_key, t) == 0) {
            pthread_mutex_lock(&ip_tc_lock);
            ZP_LIST_PUSH(&ip_tc_list, t, next, prev);
            pthread_mutex_unlock(&ip_tc_lock);
            t->state = 1;
            __atomic_store_n(&t->small_frees, t->small_frees + 1, __ATOMIC_RELAXED);
            __atomic_store_n(&t->small_scrubbed, t->small_scrubbed + scrubbed, __ATOMIC_RELAXED);
            errno = e;
            return;
        }
        t->state = 2;
    }
    atomic_fetch_add_explicit(&ip_tc_late_frees, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&ip_tc_late_bytes, scrubbed, memory_order_relaxed);
    errno = e;
}

void zp_ip_count_sum(uint64_t *frees, uint64_t *bytes)
{
    pthread_mutex_lock(&ip_tc_lock);
    uint64_t f = ip_tc_frees, b = ip_tc_bytes;
    for (zp_ip_tcount_t *t = ip_tc_list; t != NULL; t = t->next) {
        f += __atomic_load_n(&t->small_frees, __ATOMIC_RELAXED);
        b += __atomic_load_n(&t->small_scrubbed, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&ip_tc_lock);
    *frees = f + atomic_load_explicit(&ip_tc_late_frees, memory_order_relaxed);
    *bytes = b + atomic_load_explicit(&ip_tc_late_bytes, memory_order_relaxed);
}

bool zp_ip_count_lock_free(void)
{
    return zp_os_mutex_free_soon(&ip_tc_lock);
}

/* The sums above, as a reader outside the process makes them (addresses are absolute). */
void zp_ip_count_places(zp_status_var_t *frees, zp_status_var_t *bytes)
{
    frees->add[0] = (uint64_t)(uintptr_t)&ip_tc_frees;
    frees->add[1] = (uint64_t)(uintptr_t)&ip_tc_late_frees;
    bytes->add[0] = (uint64_t)(uintptr_t)&ip_tc_bytes;
    bytes->add[1] = (uint64_t)(uintptr_t)&ip_tc_late_bytes;
    frees->head = bytes->head = (uint64_t)(uintptr_t)&ip_tc_list;
    frees->next = bytes->next = offsetof(zp_ip_tcount_t, next);
    frees->item = offsetof(zp_ip_tcount_t, small_frees);
    bytes->item = offsetof(zp_ip_tcount_t, small_scrubbed);
}

/* ---- pointers nobody here allocated ----
 * Policy: a block in the brk heap belongs to glibc's own malloc. The only ways to get
 * one are a library opened with RTLD_DEEPBIND (its malloc binds to glibc's, not ours) or
 * memory a program got from glibc by name (dlsym of libc.so.6). free and realloc hand such
 * a block to glibc's own free, malloc_usable_size asks glibc. glibc blocks outside the break
 * (its mmap'ed chunks >= 128 KiB, its per-thread arenas) cannot be told apart from jemalloc's
 * without reading memory in front of them, and passing one of our blocks to glibc's free
 * (a DEEPBIND library freeing what the program allocated) cannot be intercepted at all:
 * both are unsupported, as with every preloaded malloc. jemalloc's "arenas.lookup" is no way
 * out: in jemalloc 5.3 it takes a global mutex and crashes on a pointer it does not know. */
static void *ip_glibc_sym(void *_Atomic *cache, const char *name)
{
    void *f = atomic_load_explicit(cache, memory_order_acquire);
    if (f == NULL) {
        void *h = dlopen(LIBC_SO, RTLD_NOLOAD | RTLD_LAZY);
        if (h != NULL) {
            f = dlsym(h, name); /* searched in libc's own scope: glibc's, never ours */
            dlclose(h);
        }
        atomic_store_explicit(cache, f, memory_order_release);
    }
    return f;
}

static size_t ip_glibc_usable(void *p)
{
    static void *_Atomic sym;
    size_t (*f)(void *) = (size_t(*)(void *))ip_glibc_sym(&sym, "malloc_usable_size");
    return f != NULL ? f(p) : 0;
}

/* Scrubbed first, as our own blocks are: every byte glibc says the program could use (its own
 * malloc_usable_size), so glibc's next block of that size holds none of it. */
static void ip_glibc_free(void *p)
{
    static void *_Atomic sym;
    void (*f)(void *) = (void (*)(void *))ip_glibc_sym(&sym, "free");
    if (f == NULL)
        return; /* leak it: better than a crash */
    explicit_bzero(p, ip_glibc_usable(p));
    f(p);
}

static zp_pool_t *ip_pool_of(const void *p)
{
    zp_pool_t *pool = atomic_load_explicit(&zp_ip.pool, memory_order_acquire);
    return pool != NULL && zp_owns(pool, p) ? pool : NULL;
}

/* What jemalloc has no live block for: NULL, a pool buffer, a glibc block; anything else
 * (an address nobody handed out, the inside of a large jemalloc block, a block jemalloc freed
 * already and returned to its extents) is reported as a wild free and left alone. */
ZP_NOINLINE void zp_ip_free_slow(void *p)
{
    if (p == NULL)
        return;
    int e = errno;
    zp_pool_t *pool = ip_pool_of(p);
    if (pool != NULL)
        zp_put(pool, p); /* scrubs; misuse goes to zp_ip_report_misuse */
    else if (zp_ip_is_glibc(p))
        ip_glibc_free(p);
    else
        zp_ip_small_invalid(p, 0);
    errno = e;
}

/* jemalloc's metadata first, as free asks it: one lookup answers for every block of its (a
 * program that counts its memory, like redis, asks at every malloc and free); the pool and the
 * brk heap only for what jemalloc does not know. */
size_t zp_ip_usable_size(void *p)
{
    zp_je_block_t b = zp_je_block(p); /* {0, false}: not a block jemalloc handed out */
    if (ZP_LIKELY(b.size != 0))
        return b.start ? b.size : 0;
    if (p == NULL)
        return 0;
    zp_pool_t *pool = ip_pool_of(p);
    if (pool != NULL)
        return zp_claim_usable(pool, p);
    return zp_ip_is_glibc(p) ? ip_glibc_usable(p) : 0; /* a wild pointer: no block */
}

/* ---- realloc ---- */

static size_t ip_min(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* realloc of a pointer into the pool that is not a live buffer (freed, interior, never handed
 * out): report it; if the report returns (ZEROPOOL_ON_ERROR=report), fail the call and touch
 * nothing. */
static void *ip_realloc_misuse(zp_pool_t *pool, void *p)
{
    zp_ip_report_realloc(pool, p);
    errno = EINVAL;
    return NULL;
}

static void *ip_realloc_pool(zp_pool_t *pool, void *p, size_t n)
{
    size_t old = zp_usable_size(pool, p);
    if (old == 0)
        return ip_realloc_misuse(pool, p);
    /* In place, or moved by its pages: the pool's rule; an overflow into the slack is
     * reported either way. Failing that (no pool buffer), copied to what malloc finds. */
    if (n >= zp_ip_threshold()) {
        int e = errno;
        void *q = zp_realloc(pool, p, n);
        errno = e;
        if (q != NULL) {
            if (q != p && ZP_UNLIKELY(zp_ip.opts.trace_alloc))
                zp_bt_note_alloc(q);
            return q;
        }
    }
    void *q = zp_ip_malloc(n);
    if (q == NULL)
        return zp_resize(pool, p, n) ? p : NULL; /* a shrink always fits: never fail it */
    memcpy(q, p, ip_min(old, n));
    zp_put(pool, p);
    return q;
}

static void *ip_realloc_small(void *p, size_t n)
{
    /* Only a block's start may be resized: jemalloc's sallocx and xallocx would take the
     * inside of a block, or an address it never handed out, for a block of its own. */
    zp_je_block_t b = zp_je_block(p);
    if (ZP_UNLIKELY(!b.start)) {
        zp_ip_report_small_realloc(p, b.size);
        errno = EINVAL;
        return NULL;
    }
    size_t old = b.size;
    size_t t = zp_ip_threshold();
    if (t != 0 && n >= t && !zp_ip.opts.disable) {
        zp_pool_t *pool = zp_ip_pool_get();
        int e = errno;
        void *q = pool != NULL ? zp_get(pool, n) : NULL;
        errno = e;
        if (q != NULL) {
            if (ZP_UNLIKELY(zp_ip.opts.trace_alloc))
                zp_bt_note_alloc(q);
            memcpy(q, p, ip_min(old, n));
            zp_ip_free(p);
            return q;
        }
    }
    /* Never rallocx: when it moves a block it frees the old one inside jemalloc, unscrubbed. */
    bool scrub = __atomic_load_n(&zp_ip_scrub_small, __ATOMIC_RELAXED);
    if (n <= old) {
        if (scrub) /* before xallocx may hand the tail back to jemalloc */
            explicit_bzero((char *)p + n, old - n);
        (void)zp_je_xallocx(p, n, 0, 0);
        return p;
    }
    if (zp_je_xallocx(p, n, 0, 0) >= n)
        return p;
    void *q = ip_unpooled(n, 0, false);
    if (q == NULL)
        return NULL;
    memcpy(q, p, old);
    zp_ip_free(p);
    return q;
}

static void *ip_realloc_glibc(void *p, size_t n)
{
    void *q = zp_ip_malloc(n);
    if (q != NULL) {
        memcpy(q, p, ip_min(ip_glibc_usable(p), n));
        ip_glibc_free(p);
    }
    return q;
}

void *zp_ip_realloc(void *p, size_t n)
{
    if (p == NULL)
        return zp_ip_malloc(n);
    if (n == 0) { /* glibc: realloc(p, 0) frees p and returns NULL */
        zp_ip_free(p);
        return NULL;
    }
    if (n > PTRDIFF_MAX)
        return zp_ip_enomem();
    if (ZP_LIKELY(zp_ip_is_jemalloc(p)))
        return ip_realloc_small(p, n);
    zp_pool_t *pool = ip_pool_of(p);
    return pool != NULL ? ip_realloc_pool(pool, p, n) : ip_realloc_glibc(p, n);
}

void *zp_ip_reallocarray(void *p, size_t n, size_t m)
{
    size_t t;
    if (__builtin_mul_overflow(n, m, &t))
        return zp_ip_enomem();
    return zp_ip_realloc(p, t);
}

/* ---- the aligned family, as glibc 2.36 ---- */

/* align: a power of two. */
static void *ip_aligned(size_t align, size_t n)
{
    if (align <= ZP_IP_MIN_ALIGN)
        return zp_ip_malloc(n);
    if (n < zp_ip_threshold())
        return zp_ip_small(n, ip_flags(align, false));
    return zp_ip_alloc_slow(n, align, false);
}

/* glibc 2.36's memalign and aligned_alloc: an alignment up to 16 is malloc's; one that is not
 * a power of two is rounded up to the next; one above SIZE_MAX / 2 + 1 is EINVAL. */
void *zp_ip_memalign(size_t align, size_t n)
{
    if (align <= ZP_IP_MIN_ALIGN)
        return zp_ip_malloc(n);
    if (align > SIZE_MAX / 2 + 1) {
        errno = EINVAL;
        return NULL;
    }
    if (align & (align - 1))
        align = (size_t)1 << (64 - __builtin_clzl(align));
    return ip_aligned(align, n);
}

void *zp_ip_aligned_alloc(size_t align, size_t n)
{
    return zp_ip_memalign(align, n);
}

int zp_ip_posix_memalign(void **out, size_t align, size_t n)
{
    if (align % sizeof(void *) != 0 || (align & (align - 1)) != 0 || align == 0)
        return EINVAL; /* *out and errno untouched */
    int e = errno;
    void *p = ip_aligned(align, n);
    if (p == NULL)
        return ENOMEM; /* errno is ENOMEM too, as glibc leaves it */
    errno = e;
    *out = p;
    return 0;
}

void *zp_ip_valloc(size_t n)
{
    return ip_aligned((size_t)getpagesize(), n);
}

void *zp_ip_pvalloc(size_t n)
{
    size_t page = (size_t)getpagesize(), r;
    if (__builtin_add_overflow(n, page - 1, &r))
        return zp_ip_enomem();
    return ip_aligned(page, r & ~(page - 1));
}
