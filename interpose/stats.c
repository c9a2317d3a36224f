/* Statistics of the preload library: the pool's counters as a table or one JSON object,
 * from one code path, written with write(2) at exit (ZEROPOOL_STATS=1|json, to stderr or
 * ZEROPOOL_STATS_FILE) and by malloc_stats(). */
#include "zp_interpose.h"

#include <fcntl.h>
#include <unistd.h>

#include "zp_fmt.h"

#define ZP_IP_STATS(X) \
    X(gets) X(puts) X(tls_hits) X(shard_hits) X(steals) X(fresh) X(direct) X(evictions) \
    X(bytes_scrubbed) X(bytes_dropped) X(pooled_bytes) X(peak_pooled_bytes) X(pinned_bytes) \
    X(live_bytes) X(reserved_bytes) X(misuse)

void zp_ip_stats_write(int fd, int format)
{
    zp_stats_t st;
    memset(&st, 0, sizeof st);
    zp_pool_t *pool = atomic_load_explicit(&zp_ip.pool, memory_order_acquire);
    if (pool != NULL)
        zp_pool_stats(pool, &st);
    bool json = format == ZP_STATS_JSON;
    char out[2048];
    zp_buf_t b = ZP_BUF_INIT(out);
    if (json) {
        zp_buf_str(&b, "{\"zeropool\":{\"pid\":");
        zp_buf_u64(&b, (uint64_t)getpid());
        zp_buf_str(&b, ",\"pool\":");
        zp_buf_str(&b, pool != NULL ? "true" : "false");
    } else {
        zp_buf_str(&b, "zeropool: statistics (pid ");
        zp_buf_u64(&b, (uint64_t)getpid());
        zp_buf_str(&b, pool != NULL ? ")\n" : "): the pool was never created\n");
    }
#define ZP_IP_STAT_ROW(f)                                   \
    if (json) {                                             \
        zp_buf_str(&b, ",\"" #f "\":");                     \
    } else {                                                \
        zp_buf_str(&b, "zeropool:   " #f);                  \
        for (size_t i = sizeof #f; i < 20; i++)             \
            zp_buf_chr(&b, ' ');                            \
    }                                                       \
    zp_buf_u64(&b, st.f);                                   \
    if (!json)                                              \
        zp_buf_chr(&b, '\n');
    if (pool != NULL || json) {
        ZP_IP_STATS(ZP_IP_STAT_ROW)
    }
#undef ZP_IP_STAT_ROW
    if (json)
        zp_buf_str(&b, "}}\n");
    zp_buf_flush(&b, fd);
}

/* ZEROPOOL_STATS_FILE, with %p replaced by the process id. */
static int ip_stats_open(const char *tmpl)
{
    char path[ZP_PATH_MAX + 24];
    zp_buf_t b = ZP_BUF_INIT(path);
    for (const char *s = tmpl; *s; s++) {
        if (s[0] == '%' && s[1] == 'p') {
            zp_buf_u64(&b, (uint64_t)getpid());
            s++;
        } else {
            zp_buf_chr(&b, *s);
        }
    }
    if (b.len >= sizeof path)
        return -1;
    path[b.len] = '\0';
    return open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
}

/* A destructor, not atexit: atexit may allocate during bootstrap. */
__attribute__((destructor)) void zp_ip_stats_at_exit(void)
{
    if (atomic_load(&zp_ip.state) != ZP_IP_READY || zp_ip.opts.stats == ZP_STATS_OFF)
        return;
    int e = errno;
    int fd = 2;
    if (zp_ip.opts.stats_file[0] != '\0') {
        fd = ip_stats_open(zp_ip.opts.stats_file);
        if (fd < 0) {
            zp_write_str(2, "zeropool: cannot open ZEROPOOL_STATS_FILE; statistics on stderr\n");
            fd = 2;
        }
    }
    zp_ip_stats_write(fd, (int)zp_ip.opts.stats);
    if (fd != 2)
        close(fd);
    errno = e;
}
