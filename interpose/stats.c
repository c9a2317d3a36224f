/* Statistics of the preload library: the effective configuration, the pool's counters and size
 * classes, small blocks, misuse counts and jemalloc's totals, written by ONE code path through
 * an emitter (after jemalloc's emitter.h) that renders a table (ZEROPOOL_STATS=1,
 * malloc_stats), one JSON object (ZEROPOOL_STATS=json) or glibc's XML shape (malloc_info).
 * Written at exit, on SIGTERM/SIGINT and every ZEROPOOL_STATS_INTERVAL by live.c. Also here: the per-thread small-block counters that the free fast path bumps. */
#include "zp_interpose.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "zp_fmt.h"
#include "zp_live.h"

/* What `zeropool status` finds in a library whose file name carries no version. */
__attribute__((used)) static const char ip_ident[] = "zeropool-version: " ZEROPOOL_VERSION;

/* ==== small-block counters ==== */

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
    if (t->prev != NULL)
        t->prev->next = t->next;
    else
        ip_tc_list = t->next;
    if (t->next != NULL)
        t->next->prev = t->prev;
    t->next = t->prev = NULL;
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
    if (t->state == 0) {
        t->state = 3; /* frees made while registering (pthread internals) count globally */
        pthread_once(&ip_tc_once, ip_tc_init);
        if (ip_tc_key_ok && pthread_setspecific(ip_tc_key, t) == 0) {
            pthread_mutex_lock(&ip_tc_lock);
            t->prev = NULL;
            t->next = ip_tc_list;
            if (ip_tc_list != NULL)
                ip_tc_list->prev = t;
            ip_tc_list = t;
            pthread_mutex_unlock(&ip_tc_lock);
            t->state = 1;
            __atomic_store_n(&t->small_frees, t->small_frees + 1, __ATOMIC_RELAXED);
            __atomic_store_n(&t->small_scrubbed, t->small_scrubbed + scrubbed, __ATOMIC_RELAXED);
            return;
        }
        t->state = 2;
    }
    atomic_fetch_add_explicit(&ip_tc_late_frees, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&ip_tc_late_bytes, scrubbed, memory_order_relaxed);
}

static void ip_tc_sum(uint64_t *frees, uint64_t *bytes)
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

/* ==== the emitter ====
 * Objects of key/value pairs and arrays of rows (one row per size class). Table: indented
 * "key  value" lines, rows as right-aligned columns under a header. JSON: one object on one
 * line. XML: glibc's malloc_info shape, <total type="key" count|size="v"/>. Output goes through
 * a 4 KiB buffer, flushed to an fd (write(2)) or a FILE (malloc_info's caller's stream). */

typedef enum { EM_TABLE, EM_JSON, EM_XML } em_mode_t;
typedef enum { EM_COUNT, EM_BYTES } em_unit_t;

#define EM_COL 12 /* width of a table column */

typedef struct em {
    em_mode_t mode;
    int fd;
    FILE *fp;
    bool failed;
    int depth;
    bool first; /* JSON: no comma before the next member */
    const char *arr_key, *obj_key[8];
    char out[4096]; /* the whole JSON object in one write(2), usually */
    zp_buf_t b;
} em_t;

static void em_flush(em_t *e)
{
    if (e->fp != NULL) {
        if (fwrite(e->b.p, 1, e->b.len, e->fp) != e->b.len)
            e->failed = true;
        e->b.len = 0;
    } else if (zp_buf_flush(&e->b, e->fd) != 0) {
        e->failed = true;
    }
}

/* Room for one more line; every emitted piece is far shorter than the buffer. */
static void em_room(em_t *e)
{
    if (e->b.cap - e->b.len < ZP_PATH_MAX + 128)
        em_flush(e);
}

static void em_indent(em_t *e)
{
    for (int i = 0; i < e->depth; i++)
        zp_buf_str(&e->b, "  ");
}

static void em_json_key(em_t *e, const char *key)
{
    if (!e->first)
        zp_buf_chr(&e->b, ',');
    e->first = false;
    if (key != NULL) {
        zp_buf_chr(&e->b, '"');
        zp_buf_str(&e->b, key);
        zp_buf_str(&e->b, "\":");
    }
}

static void em_xml_text(zp_buf_t *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': zp_buf_str(b, "&amp;"); break;
        case '<': zp_buf_str(b, "&lt;"); break;
        case '>': zp_buf_str(b, "&gt;"); break;
        case '"': zp_buf_str(b, "&quot;"); break;
        default: zp_buf_chr(b, *s); break;
        }
    }
}

/* The table's "key    " column. */
static void em_table_key(em_t *e, const char *key)
{
    em_indent(e);
    zp_buf_str(&e->b, key);
    size_t n = strlen(key);
    for (size_t i = n; i < 22; i++)
        zp_buf_chr(&e->b, ' ');
    zp_buf_chr(&e->b, ' ');
}

static void em_begin(em_t *e, em_mode_t mode, int fd, FILE *fp)
{
    memset(e, 0, sizeof *e);
    e->mode = mode;
    e->fd = fd;
    e->fp = fp;
    e->first = true;
    zp_buf_t b = ZP_BUF_INIT(e->out);
    e->b = b;
    switch (mode) {
    case EM_JSON:
        zp_buf_str(&e->b, "{\"zeropool\":{");
        e->depth = 1;
        break;
    case EM_XML:
        zp_buf_str(&e->b, "<malloc version=\"zeropool-" ZEROPOOL_VERSION "\" pid=\"");
        zp_buf_u64(&e->b, (uint64_t)getpid());
        zp_buf_str(&e->b, "\">\n");
        break;
    case EM_TABLE:
        zp_buf_str(&e->b, "zeropool: statistics (pid ");
        zp_buf_u64(&e->b, (uint64_t)getpid());
        zp_buf_str(&e->b, ", version " ZEROPOOL_VERSION ")\n");
        e->depth = 1;
        break;
    }
}

static int em_end(em_t *e)
{
    em_room(e);
    if (e->mode == EM_JSON)
        zp_buf_str(&e->b, "}}\n");
    else if (e->mode == EM_XML)
        zp_buf_str(&e->b, "</malloc>\n");
    em_flush(e);
    return e->failed ? -1 : 0;
}

/* Opens an object ('{') or an array ('['): a JSON key and bracket, an XML tag, or a table
 * title line. */
static void em_open(em_t *e, const char *key, const char *title, char bracket)
{
    em_room(e);
    switch (e->mode) {
    case EM_JSON:
        em_json_key(e, key);
        zp_buf_chr(&e->b, bracket);
        e->first = true;
        break;
    case EM_XML:
        zp_buf_chr(&e->b, '<');
        zp_buf_str(&e->b, key);
        zp_buf_str(&e->b, ">\n");
        break;
    case EM_TABLE:
        em_indent(e);
        zp_buf_str(&e->b, title);
        zp_buf_str(&e->b, ":\n");
        break;
    }
}

static void em_obj_begin(em_t *e, const char *key, const char *title)
{
    em_open(e, key, title, '{');
    e->obj_key[e->depth & 7] = key;
    e->depth++;
}

static void em_obj_end(em_t *e)
{
    e->depth--;
    em_room(e);
    if (e->mode == EM_JSON) {
        zp_buf_chr(&e->b, '}');
        e->first = false;
    } else if (e->mode == EM_XML) {
        zp_buf_str(&e->b, "</");
        zp_buf_str(&e->b, e->obj_key[e->depth & 7]);
        zp_buf_str(&e->b, ">\n");
    }
}

static void em_u64(em_t *e, const char *key, uint64_t v, em_unit_t unit)
{
    em_room(e);
    switch (e->mode) {
    case EM_JSON:
        em_json_key(e, key);
        zp_buf_u64(&e->b, v);
        break;
    case EM_XML:
        zp_buf_str(&e->b, "<total type=\"");
        zp_buf_str(&e->b, key);
        zp_buf_str(&e->b, unit == EM_BYTES ? "\" size=\"" : "\" count=\"");
        zp_buf_u64(&e->b, v);
        zp_buf_str(&e->b, "\"/>\n");
        break;
    case EM_TABLE:
        em_table_key(e, key);
        zp_buf_u64(&e->b, v);
        if (unit == EM_BYTES && v >= 1024) {
            char h[32];
            zp_buf_t hb = ZP_BUF_INIT(h);
            zp_buf_size(&hb, v);
            if (hb.len > 0 && h[hb.len - 1] >= 'A') { /* an exact K, M or G */
                zp_buf_str(&e->b, " (");
                zp_buf_mem(&e->b, h, hb.len);
                zp_buf_chr(&e->b, ')');
            }
        }
        zp_buf_chr(&e->b, '\n');
        break;
    }
}

/* A value with a JSON form (raw: a number, true/false, or NULL for a string) and a text form
 * (text: what the table and the XML show, e.g. "64K"). */
static void em_value(em_t *e, const char *key, const char *raw, const char *text)
{
    em_room(e);
    switch (e->mode) {
    case EM_JSON:
        em_json_key(e, key);
        if (raw != NULL) {
            zp_buf_str(&e->b, raw);
        } else {
            zp_buf_chr(&e->b, '"');
            zp_buf_json_str(&e->b, text);
            zp_buf_chr(&e->b, '"');
        }
        break;
    case EM_XML:
        zp_buf_str(&e->b, "<total type=\"");
        zp_buf_str(&e->b, key);
        zp_buf_str(&e->b, "\" value=\"");
        em_xml_text(&e->b, text);
        zp_buf_str(&e->b, "\"/>\n");
        break;
    case EM_TABLE:
        em_table_key(e, key);
        zp_buf_str(&e->b, text);
        zp_buf_chr(&e->b, '\n');
        break;
    }
}

static void em_bool(em_t *e, const char *key, bool v)
{
    em_value(e, key, v ? "true" : "false", v ? "on" : "off");
}

/* An array of rows; cols names the columns (the table's header line). */
static void em_arr_begin(em_t *e, const char *key, const char *title, const char *const *cols,
                         int ncols)
{
    e->arr_key = key;
    em_open(e, key, title, '[');
    if (e->mode != EM_TABLE)
        return;
    em_indent(e);
    for (int i = 0; i < ncols; i++) {
        for (size_t k = strlen(cols[i]); k < EM_COL; k++)
            zp_buf_chr(&e->b, ' ');
        zp_buf_str(&e->b, cols[i]);
    }
    zp_buf_chr(&e->b, '\n');
}

static void em_arr_end(em_t *e)
{
    em_room(e);
    if (e->mode == EM_JSON) {
        zp_buf_chr(&e->b, ']');
        e->first = false;
    } else if (e->mode == EM_XML) {
        zp_buf_str(&e->b, "</");
        zp_buf_str(&e->b, e->arr_key);
        zp_buf_str(&e->b, ">\n");
    }
}

static void em_row_begin(em_t *e, const char *elem)
{
    em_room(e);
    if (e->mode == EM_JSON) {
        em_json_key(e, NULL);
        zp_buf_chr(&e->b, '{');
        e->first = true;
    } else if (e->mode == EM_XML) {
        zp_buf_chr(&e->b, '<');
        zp_buf_str(&e->b, elem);
    } else {
        em_indent(e);
    }
}

static void em_cell(em_t *e, const char *key, uint64_t v, em_unit_t unit)
{
    if (e->mode == EM_JSON) {
        em_json_key(e, key);
        zp_buf_u64(&e->b, v);
    } else if (e->mode == EM_XML) {
        zp_buf_chr(&e->b, ' ');
        zp_buf_str(&e->b, key);
        zp_buf_str(&e->b, "=\"");
        zp_buf_u64(&e->b, v);
        zp_buf_chr(&e->b, '"');
    } else {
        char cell[32];
        zp_buf_t c = ZP_BUF_INIT(cell);
        if (unit == EM_BYTES)
            zp_buf_size(&c, v);
        else
            zp_buf_u64(&c, v);
        for (size_t k = c.len; k < EM_COL; k++)
            zp_buf_chr(&e->b, ' ');
        zp_buf_mem(&e->b, cell, c.len);
    }
}

static void em_row_end(em_t *e)
{
    if (e->mode == EM_JSON) {
        zp_buf_chr(&e->b, '}');
        e->first = false;
    } else if (e->mode == EM_XML) {
        zp_buf_str(&e->b, "/>\n");
    } else {
        zp_buf_chr(&e->b, '\n');
    }
}

/* ==== what is written ==== */

/* Every ZEROPOOL_* option: JSON gets numbers, booleans and strings; the table and XML the
 * text `zeropool config` shows ("64K", "clock-pro", "on"). */
static void ip_emit_option(em_t *e, zp_opt_id_t id, const uint64_t *num, const char *path)
{
    char text[ZP_PATH_MAX], raw[32];
    size_t n = zp_option_format(&zp_ip.opts, id, text, sizeof text);
    text[n < sizeof text ? n : sizeof text - 1] = '\0';
    const char *key = zp_opt_table[id].key;
    int type = zp_opt_table[id].type;
    if (path != NULL) {
        em_value(e, key, NULL, path);
    } else if (type == ZP_OPT_T_BOOL) {
        em_value(e, key, *num ? "true" : "false", text);
    } else if (type == ZP_OPT_T_ENUM) {
        em_value(e, key, NULL, text);
    } else {
        zp_buf_t r = ZP_BUF_INIT(raw);
        zp_buf_u64(&r, *num);
        raw[r.len < sizeof raw ? r.len : sizeof raw - 1] = '\0';
        em_value(e, key, raw, text);
    }
}

#define IP_OPT_ARGS_SIZE(f) &zp_ip.opts.f, NULL
#define IP_OPT_ARGS_UINT(f) &zp_ip.opts.f, NULL
#define IP_OPT_ARGS_POW2(f) &zp_ip.opts.f, NULL
#define IP_OPT_ARGS_BOOL(f) &zp_ip.opts.f, NULL
#define IP_OPT_ARGS_ENUM(f) &zp_ip.opts.f, NULL
#define IP_OPT_ARGS_PATH(f) NULL, zp_ip.opts.f
#define IP_OPT_ARGS_TIME(f) &zp_ip.opts.f, NULL

static void ip_emit_config(em_t *e)
{
    em_obj_begin(e, "config", "config (ZEROPOOL_*)");
#define ZP_OPT(NAME, field, TYPE, def, lo, hi, choices, help) \
    ip_emit_option(e, ZP_OPT_##NAME, IP_OPT_ARGS_##TYPE(field));
#include "options.def"
#undef ZP_OPT
    em_obj_end(e);
}

static void ip_emit_pool_config(em_t *e, zp_pool_t *pool)
{
    zp_config_t c;
    zp_pool_config(pool, &c);
    em_obj_begin(e, "pool_config", "pool configuration in force");
    em_u64(e, "num_shards", c.num_shards, EM_COUNT);
    em_u64(e, "tls_cache_size", c.tls_cache_size, EM_COUNT);
    em_u64(e, "max_buffers_per_shard", c.max_buffers_per_shard, EM_COUNT);
    em_u64(e, "min_buffer_size", c.min_buffer_size, EM_BYTES);
    em_u64(e, "max_pooled_size", c.max_pooled_size, EM_BYTES);
    em_u64(e, "pool_bytes", c.pool_bytes, EM_BYTES);
    em_u64(e, "tls_cache_bytes", c.tls_cache_bytes, EM_BYTES);
    em_value(e, "eviction", NULL, c.eviction == ZP_EVICT_LIFO ? "lifo" : "clock-pro");
    em_bool(e, "pin", c.pin);
    em_bool(e, "guard_pages", c.guard_pages);
    em_bool(e, "dontdump", c.dontdump);
    em_bool(e, "zero_on_alloc", c.zero_on_alloc);
    em_bool(e, "verify_on_alloc", c.verify_on_alloc);
    em_bool(e, "check_slack", c.check_slack);
    em_obj_end(e);
}

/* zp_stats_t, every field; the ones in bytes are marked so. */
#define IP_POOL_STATS(X)                                                                      \
    X(gets, EM_COUNT) X(puts, EM_COUNT) X(tls_hits, EM_COUNT) X(shard_hits, EM_COUNT)          \
    X(steals, EM_COUNT) X(fresh, EM_COUNT) X(direct, EM_COUNT) X(evictions, EM_COUNT)          \
    X(bytes_scrubbed, EM_BYTES) X(bytes_dropped, EM_BYTES) X(pooled_bytes, EM_BYTES)           \
    X(peak_pooled_bytes, EM_BYTES) X(pinned_bytes, EM_BYTES) X(live_bytes, EM_BYTES)           \
    X(reserved_bytes, EM_BYTES) X(misuse, EM_COUNT)

static void ip_emit_pool(em_t *e, zp_pool_t *pool)
{
    zp_stats_t st;
    memset(&st, 0, sizeof st);
    if (pool != NULL)
        zp_pool_stats(pool, &st);
    em_obj_begin(e, "pool_stats", "pool (large requests)");
#define IP_STAT_EMIT(f, unit) em_u64(e, #f, st.f, unit);
    IP_POOL_STATS(IP_STAT_EMIT)
#undef IP_STAT_EMIT
    em_obj_end(e);

    /* The size classes that saw any use. */
    static const char *const cols[] = {"size", "gets", "fresh", "evictions", "free_now"};
    em_arr_begin(e, "classes", "size classes used", cols, 5);
    zp_class_stats_t cs;
    for (unsigned i = 0; pool != NULL && zp_pool_class_stats(pool, i, &cs); i++) {
        if (cs.gets == 0 && cs.fresh == 0 && cs.evictions == 0 && cs.free_now == 0)
            continue;
        em_row_begin(e, "size");
        em_cell(e, "size", cs.size, EM_BYTES);
        em_cell(e, "gets", cs.gets, EM_COUNT);
        em_cell(e, "fresh", cs.fresh, EM_COUNT);
        em_cell(e, "evictions", cs.evictions, EM_COUNT);
        em_cell(e, "free_now", cs.free_now, EM_COUNT);
        em_row_end(e);
    }
    em_arr_end(e);
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
static void ip_emit_coverage(em_t *e, uint64_t pool_freed, uint64_t small_freed)
{
    uint64_t rss = ip_rss_bytes(), up = zp_ip_live_uptime();
    uint64_t freed = pool_freed + small_freed;
    em_obj_begin(e, "coverage", "coverage (memory that passed through zeropool)");
    em_u64(e, "freed_pool_bytes_min", pool_freed, EM_BYTES);
    em_u64(e, "freed_small_bytes", small_freed, EM_BYTES);
    em_u64(e, "freed_bytes", freed, EM_BYTES);
    em_u64(e, "rss_bytes", rss, EM_BYTES);
    em_u64(e, "uptime_s", up, EM_COUNT);
    if (up >= ZP_IP_LONG_LIVED_S && rss >= ZP_IP_COVERAGE_MIN_RSS && freed < rss / 4)
        em_value(e, "note", NULL,
                 "most of this process's memory is managed by the program itself: "
                 "zeropool cannot scrub it");
    em_obj_end(e);
}

static void ip_emit(em_t *e)
{
    zp_pool_t *pool = atomic_load_explicit(&zp_ip.pool, memory_order_acquire);
    char pid[24];
    zp_buf_t pb = ZP_BUF_INIT(pid);
    zp_buf_u64(&pb, (uint64_t)getpid());
    pid[pb.len] = '\0';
    em_value(e, "pid", pid, pid);
    /* "pool": was the pool created; its counters are "pool_stats". */
    em_value(e, "pool", pool != NULL ? "true" : "false",
             pool != NULL ? "created" : "never created");
    em_value(e, "version", NULL, ZEROPOOL_VERSION);
    bool ready = atomic_load(&zp_ip.state) == ZP_IP_READY;
        if (ready)
        ip_emit_config(e);
    if (pool != NULL)
        ip_emit_pool_config(e, pool);
    ip_emit_pool(e, pool);

    uint64_t frees, scrubbed;
    ip_tc_sum(&frees, &scrubbed);
    em_obj_begin(e, "small", "small blocks (jemalloc)");
    em_u64(e, "frees", frees, EM_COUNT);
    em_u64(e, "bytes_scrubbed", scrubbed, EM_BYTES);
    em_obj_end(e);

    uint64_t total = 0;
    em_obj_begin(e, "misuse", "misuse reports");
    for (int k = 0; k < ZP_IP_M_COUNT; k++) {
        uint64_t n = atomic_load_explicit(&zp_ip_misuse_counts[k], memory_order_relaxed);
        total += n;
        em_u64(e, zp_ip_misuse_keys[k], n, EM_COUNT);
    }
    em_u64(e, "total", total, EM_COUNT);
    em_obj_end(e);

    zp_ip_je_totals_t je;
    zp_ip_je_totals(&je);
    em_obj_begin(e, "jemalloc", "jemalloc");
    em_u64(e, "allocated", je.allocated, EM_BYTES);
    em_u64(e, "active", je.active, EM_BYTES);
    em_u64(e, "mapped", je.mapped, EM_BYTES);
    em_u64(e, "resident", je.resident, EM_BYTES);
    em_obj_end(e);

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

static int ip_stats_emit(em_mode_t mode, int fd, FILE *fp)
{
    em_t e;
    em_begin(&e, mode, fd, fp);
    ip_emit(&e);
    return em_end(&e);
}

void zp_ip_stats_write(int fd, int format)
{
    (void)ip_stats_emit(format == ZP_STATS_JSON ? EM_JSON : EM_TABLE, fd, NULL);
}

int zp_ip_stats_emit_fd(int fd, int format)
{
    return ip_stats_emit(format == ZP_STATS_JSON ? EM_JSON : EM_TABLE, fd, NULL);
}

int zp_ip_stats_write_file(FILE *fp)
{
    return ip_stats_emit(EM_XML, -1, fp);
}

/* ==== at exit ====
 * A destructor, not atexit: atexit may allocate during bootstrap. The writing itself (file,
 * rename, held descriptor, stderr) is live.c's, shared with the timer and the signal path. */
__attribute__((destructor)) void zp_ip_stats_at_exit(void)
{
    if (atomic_load(&zp_ip.state) != ZP_IP_READY || zp_ip.opts.stats == ZP_STATS_OFF)
        return;
    int e = errno;
    zp_ip_live_final();
    errno = e;
}
