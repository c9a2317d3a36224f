/* Statistics of the preload library: the effective configuration, the pool's counters and size
 * classes, small blocks, misuse counts and jemalloc's totals, written by ONE code path through
 * the emitter (emit.c) as a table (ZEROPOOL_STATS=1, malloc_stats), one JSON object
 * (ZEROPOOL_STATS=json) or glibc's XML shape (malloc_info). Written at exit and on
 * SIGTERM by live.c, on demand by libc.c; calls neither. The small-block counters are
 * alloc.c's. */
#include "zp_interpose.h"

#include <fcntl.h>
#include <limits.h>
#include <time.h>
#include <stdlib.h>
#include <unistd.h>

#include "emit.h"
#include "zp_fmt.h"

/* What `zeropool status` finds in a library whose file name carries no version. */
__attribute__((used)) static const char ip_ident[] = "zeropool-version: " ZEROPOOL_VERSION;

/* ==== jemalloc's totals ==== */

_Atomic bool zp_ip_stats_in_signal;

void zp_ip_je_totals(zp_ip_je_totals_t *t)
{
    static zp_ip_je_totals_t last; /* the last figures read, for a write from a signal handler */
    if (atomic_load(&zp_ip_stats_in_signal)) {
        *t = last;
        return;
    }
    uint64_t epoch = 1;
    size_t len = sizeof epoch;
    (void)zp_je_mallctl("epoch", &epoch, &len, &epoch, sizeof epoch); /* refresh the statistics */
    static const char *const names[] = {"stats.allocated", "stats.active", "stats.mapped",
                                        "stats.resident"};
    size_t *out[] = {&t->allocated, &t->active, &t->mapped, &t->resident};
    for (int i = 0; i < 4; i++) {
        len = sizeof(size_t);
        if (zp_je_mallctl(names[i], out[i], &len, NULL, 0) != 0)
            *out[i] = 0;
    }
    last = *t;
}

/* ==== the age of the process ==== */

/* A process younger than this is not "long-lived" for the coverage note (seconds). */
#define IP_LONG_LIVED_S 10
/* Below this resident size the coverage note says nothing (bytes). */
#define IP_COVERAGE_MIN_RSS ((uint64_t)8 << 20)

static uint64_t ip_start_ns;

static uint64_t ip_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void zp_ip_stats_start(void)
{
    ip_start_ns = ip_now_ns();
}

/* Seconds since zp_ip_stats_start, 0 before it. */
static uint64_t ip_uptime(void)
{
    return ip_start_ns == 0 ? 0 : (ip_now_ns() - ip_start_ns) / 1000000000u;
}

/* ==== what is written ==== */

/* One ZEROPOOL_* option of o: JSON gets numbers, booleans and strings; the table and XML the
 * text `zeropool config` shows ("64K", "clock-pro", "on"). */
static void ip_emit_option(zp_em_t *e, const zp_options_t *o, zp_opt_id_t id, const uint64_t *num,
                           const char *path)
{
    char text[ZP_PATH_MAX], raw[32];
    size_t n = zp_option_format(o, id, text, sizeof text);
    text[n < sizeof text ? n : sizeof text - 1] = '\0';
    const char *key = zp_opt_table[id].key;
    int type = zp_opt_table[id].type;
    if (path != NULL) {
        zp_em_value(e, key, NULL, path);
    } else if (type == ZP_OPT_T_BOOL) {
        zp_em_value(e, key, *num ? "true" : "false", text);
    } else if (type == ZP_OPT_T_ENUM) {
        zp_em_value(e, key, NULL, text);
    } else {
        zp_buf_t r = ZP_BUF_INIT(raw);
        zp_buf_u64(&r, *num);
        raw[r.len < sizeof raw ? r.len : sizeof raw - 1] = '\0';
        zp_em_value(e, key, raw, text);
    }
}

#define IP_OPT_ARGS_SIZE(f) &zp_ip.opts.f, NULL
#define IP_OPT_ARGS_UINT(f) &zp_ip.opts.f, NULL
#define IP_OPT_ARGS_POW2(f) &zp_ip.opts.f, NULL
#define IP_OPT_ARGS_BOOL(f) &zp_ip.opts.f, NULL
#define IP_OPT_ARGS_ENUM(f) &zp_ip.opts.f, NULL
#define IP_OPT_ARGS_PATH(f) NULL, zp_ip.opts.f
#define IP_OPT_ARGS_TIME(f) &zp_ip.opts.f, NULL

static void ip_emit_config(zp_em_t *e)
{
    zp_em_obj_begin(e, "config", "config (ZEROPOOL_*)");
#define ZP_OPT(NAME, field, TYPE, def, lo, hi, choices, help) \
    ip_emit_option(e, &zp_ip.opts, ZP_OPT_##NAME, IP_OPT_ARGS_##TYPE(field));
#include "options.def"
#undef ZP_OPT
    zp_em_obj_end(e);
}

/* The user's name of a knob: its ZEROPOOL_CONF key in options.def, the name "config" and
 * `zeropool config` show, rather than zp_config_t's field name (threshold, not min_buffer_size). */
#define IP_KNOB(NAME) zp_opt_table[ZP_OPT_##NAME].key

/* The pool's configuration after clamping and degradations, knob by knob under the names of
 * "config", so that the two read side by side. check_slack has no option: always on here. */
static void ip_emit_pool_config(zp_em_t *e, zp_pool_t *pool)
{
    zp_config_t c;
    zp_pool_config(pool, &c);
    /* The choices (eviction, zero_on_alloc) are written by the options' own formatter. */
    zp_options_t o = zp_ip.opts;
    o.eviction = c.eviction; /* options.def orders the choices as zp_eviction_t */
    o.zero_on_alloc = c.verify_on_alloc ? ZP_ZERO_ALLOC_VERIFY
                      : c.zero_on_alloc ? ZP_ZERO_ALLOC_ON
                                        : ZP_ZERO_ALLOC_OFF;
    zp_em_obj_begin(e, "pool_config", "pool configuration in force");
    zp_em_u64(e, IP_KNOB(SHARDS), c.num_shards, ZP_EM_COUNT);
    zp_em_u64(e, IP_KNOB(TLS_CACHE), c.tls_cache_size, ZP_EM_COUNT);
    zp_em_u64(e, IP_KNOB(MAX_PER_SHARD), c.max_buffers_per_shard, ZP_EM_COUNT);
    zp_em_u64(e, IP_KNOB(THRESHOLD), c.min_buffer_size, ZP_EM_BYTES);
    zp_em_u64(e, IP_KNOB(MAX_POOLED), c.max_pooled_size, ZP_EM_BYTES);
    zp_em_u64(e, IP_KNOB(POOL_BYTES), c.pool_bytes, ZP_EM_BYTES);
    zp_em_u64(e, IP_KNOB(TLS_CACHE_BYTES), c.tls_cache_bytes, ZP_EM_BYTES);
    ip_emit_option(e, &o, ZP_OPT_EVICTION, &o.eviction, NULL);
    zp_em_bool(e, IP_KNOB(PIN), c.pin);
    zp_em_bool(e, IP_KNOB(GUARD), c.guard_pages);
    zp_em_bool(e, IP_KNOB(DONTDUMP), c.dontdump);
    ip_emit_option(e, &o, ZP_OPT_ZERO_ON_ALLOC, &o.zero_on_alloc, NULL);
    zp_em_bool(e, "check_slack", c.check_slack);
    zp_em_obj_end(e);
}

static void ip_emit_pool(zp_em_t *e, zp_pool_t *pool)
{
    zp_stats_t st;
    memset(&st, 0, sizeof st);
    if (pool != NULL)
        zp_pool_stats(pool, &st);
    zp_em_obj_begin(e, "pool_stats", "pool (large requests)");
/* zp_stats_t, every field, from the core's one list. */
#define IP_STAT_EMIT(f, unit) zp_em_u64(e, #f, st.f, ZP_EM_##unit);
    ZP_STATS_FIELDS(IP_STAT_EMIT)
#undef IP_STAT_EMIT
    zp_em_obj_end(e);

    /* The size classes that saw any use. */
    static const char *const cols[] = {"size", "gets", "fresh", "evictions", "free_now"};
    zp_em_arr_begin(e, "classes", "size classes used", cols, 5);
    zp_class_stats_t cs;
    for (unsigned i = 0; pool != NULL && zp_pool_class_stats(pool, i, &cs); i++) {
        if (cs.gets == 0 && cs.fresh == 0 && cs.evictions == 0 && cs.free_now == 0)
            continue;
        zp_em_row_begin(e, "size");
        zp_em_cell(e, "size", cs.size, ZP_EM_BYTES);
        zp_em_cell(e, "gets", cs.gets, ZP_EM_COUNT);
        zp_em_cell(e, "fresh", cs.fresh, ZP_EM_COUNT);
        zp_em_cell(e, "evictions", cs.evictions, ZP_EM_COUNT);
        zp_em_cell(e, "free_now", cs.free_now, ZP_EM_COUNT);
        zp_em_row_end(e);
    }
    zp_em_arr_end(e);
}

/* The resident set of this process, from /proc/self/statm (pages); 0 if unreadable. */
static uint64_t ip_rss_bytes(void)
{
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    (void)close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    const char *p = buf;
    while (*p && *p != ' ')
        p++;
    uint64_t pages = 0;
    for (p++; *p >= '0' && *p <= '9'; p++)
        pages = pages * 10 + (uint64_t)(*p - '0');
    return pages * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* How much of the process's memory passes through us: the bytes freed (and so scrubbed)
 * through the pool and as small blocks, next to what the process holds. A service that keeps
 * its own slabs or arenas frees little; the note tells the admin that zeropool cannot scrub
 * that memory, once the process has run long enough for the comparison to mean something. */
static void ip_emit_coverage(zp_em_t *e, uint64_t pool_freed, uint64_t small_freed)
{
    uint64_t rss = ip_rss_bytes(), up = ip_uptime();
    uint64_t freed = pool_freed + small_freed;
    zp_em_obj_begin(e, "coverage", "coverage (memory that passed through zeropool)");
    zp_em_u64(e, "freed_pool_bytes_min", pool_freed, ZP_EM_BYTES);
    zp_em_u64(e, "freed_small_bytes", small_freed, ZP_EM_BYTES);
    zp_em_u64(e, "freed_bytes", freed, ZP_EM_BYTES);
    zp_em_u64(e, "rss_bytes", rss, ZP_EM_BYTES);
    zp_em_u64(e, "uptime_s", up, ZP_EM_COUNT);
    if (up >= IP_LONG_LIVED_S && rss >= IP_COVERAGE_MIN_RSS && freed < rss / 4)
        zp_em_value(e, "note", NULL,
                 "most of this process's memory is managed by the program itself: "
                 "zeropool cannot scrub it");
    zp_em_obj_end(e);
}

static void ip_emit(zp_em_t *e)
{
    zp_pool_t *pool = atomic_load_explicit(&zp_ip.pool, memory_order_acquire);
    char pid[24];
    zp_buf_t pb = ZP_BUF_INIT(pid);
    zp_buf_u64(&pb, (uint64_t)getpid());
    pid[pb.len] = '\0';
    zp_em_value(e, "pid", pid, pid);
    /* "pool": was the pool created; its counters are "pool_stats". */
    zp_em_value(e, "pool", pool != NULL ? "true" : "false",
             pool != NULL ? "created" : "never created");
    zp_em_value(e, "version", NULL, ZEROPOOL_VERSION);
    bool ready = atomic_load(&zp_ip.state) == ZP_IP_READY;
    if (ready)
        ip_emit_config(e);
    if (pool != NULL)
        ip_emit_pool_config(e, pool);
    ip_emit_pool(e, pool);

    uint64_t frees, scrubbed;
    zp_ip_count_sum(&frees, &scrubbed);
    zp_em_obj_begin(e, "small", "small blocks (jemalloc)");
    zp_em_u64(e, "frees", frees, ZP_EM_COUNT);
    zp_em_u64(e, "bytes_scrubbed", scrubbed, ZP_EM_BYTES);
    zp_em_obj_end(e);

    uint64_t total = 0;
    zp_em_obj_begin(e, "misuse", "misuse reports");
    for (int k = 0; k < ZP_IP_M_COUNT; k++) {
        uint64_t n = atomic_load_explicit(&zp_ip_misuse_counts[k], memory_order_relaxed);
        total += n;
        zp_em_u64(e, zp_ip_misuse_keys[k], n, ZP_EM_COUNT);
    }
    zp_em_u64(e, "total", total, ZP_EM_COUNT);
    zp_em_obj_end(e);

    zp_ip_je_totals_t je;
    zp_ip_je_totals(&je);
    zp_em_obj_begin(e, "jemalloc", "jemalloc");
    zp_em_u64(e, "allocated", je.allocated, ZP_EM_BYTES);
    zp_em_u64(e, "active", je.active, ZP_EM_BYTES);
    zp_em_u64(e, "mapped", je.mapped, ZP_EM_BYTES);
    zp_em_u64(e, "resident", je.resident, ZP_EM_BYTES);
    zp_em_obj_end(e);

    zp_stats_t st;
    memset(&st, 0, sizeof st);
    if (pool != NULL)
        zp_pool_stats(pool, &st);
    /* Bytes freed through the pool: the core counts buffers given back and bytes scrubbed or
     * dropped, not the sizes freed, so this is a lower bound (a buffer is at least the
     * threshold; a scrub counts only what was dirtied). */
    uint64_t pool_freed = st.bytes_scrubbed + st.bytes_dropped;
    uint64_t by_count = st.puts * (uint64_t)zp_ip.opts.threshold;
    ip_emit_coverage(e, pool_freed > by_count ? pool_freed : by_count, scrubbed);
}

static int ip_stats_emit(zp_em_mode_t mode, int fd, FILE *fp)
{
    zp_em_t e;
    zp_em_begin(&e, mode, fd, fp);
    ip_emit(&e);
    return zp_em_end(&e);
}

void zp_ip_stats_write(int fd, int format)
{
    (void)ip_stats_emit(format == ZP_STATS_JSON ? ZP_EM_JSON : ZP_EM_TABLE, fd, NULL);
}

int zp_ip_stats_emit_fd(int fd, int format)
{
    return ip_stats_emit(format == ZP_STATS_JSON ? ZP_EM_JSON : ZP_EM_TABLE, fd, NULL);
}

int zp_ip_stats_write_file(FILE *fp)
{
    return ip_stats_emit(ZP_EM_XML, -1, fp);
}
