/* glibc's malloc introspection and tuning calls, answered for the pool plus jemalloc:
 * mallopt, mallinfo, mallinfo2, malloc_trim, malloc_stats, malloc_info. */
#include "zp_interpose.h"

#include <limits.h>

#include "zp_fmt.h"


/* glibc's tunables (M_ARENA_MAX, M_MMAP_THRESHOLD, ...) mean nothing to jemalloc or the pool;
 * glibc 2.36 answers 1 even for unknown parameters, and so do we. */
int zp_ip_mallopt(int param, int value)
{
    (void)param;
    (void)value;
    return 1;
}

static zp_pool_t *ip_pool(zp_stats_t *st)
{
    zp_pool_t *pool = atomic_load_explicit(&zp_ip.pool, memory_order_acquire);
    memset(st, 0, sizeof *st);
    if (pool != NULL)
        zp_pool_stats(pool, st);
    return pool;
}

/* glibc's meaning, mapped: jemalloc is the "arena" (non-mmapped heap), pool buffers are the
 * "mmapped chunks" (hblks/hblkhd: live buffers), free pool buffers count as free space. */
struct mallinfo2 zp_ip_mallinfo2(void)
{
    struct mallinfo2 mi;
    memset(&mi, 0, sizeof mi);
    zp_ip_je_totals_t je;
    zp_ip_je_totals(&je);
    zp_stats_t st;
    ip_pool(&st);
    mi.arena = je.mapped;
    mi.hblks = (size_t)(st.gets - st.puts);
    mi.hblkhd = (size_t)st.live_bytes;
    mi.uordblks = je.allocated;
    mi.fordblks = (je.active - je.allocated) + (size_t)st.pooled_bytes;
    return mi;
}

static int ip_clamp(size_t v)
{
    return v > INT_MAX ? INT_MAX : (int)v;
}

struct mallinfo zp_ip_mallinfo(void)
{
    struct mallinfo2 m2 = zp_ip_mallinfo2();
    struct mallinfo mi;
    memset(&mi, 0, sizeof mi);
    mi.arena = ip_clamp(m2.arena);
    mi.hblks = ip_clamp(m2.hblks);
    mi.hblkhd = ip_clamp(m2.hblkhd);
    mi.uordblks = ip_clamp(m2.uordblks);
    mi.fordblks = ip_clamp(m2.fordblks);
    return mi;
}

/* Return free memory to the kernel: the pool's free buffers (address space is kept) and
 * jemalloc's dirty pages in every arena. 1 if anything was released, as glibc. */
int zp_ip_malloc_trim(size_t pad)
{
    (void)pad;
    int e = errno;
    zp_pool_t *pool = atomic_load_explicit(&zp_ip.pool, memory_order_acquire);
    size_t released = pool != NULL ? zp_pool_trim(pool) : 0;
    zp_ip_je_totals_t before, after;
    zp_ip_je_totals(&before);
    (void)zp_je_mallctl("arena." ZP_STR(MALLCTL_ARENAS_ALL) ".purge", NULL, NULL, NULL, 0);
    zp_ip_je_totals(&after);
    errno = e;
    return released > 0 || after.resident < before.resident;
}

/* The table of ZEROPOOL_STATS=1, on stderr as glibc's. */
void zp_ip_malloc_stats(void)
{
    zp_ip_stats_write(2, ZP_STATS_TEXT);
}

/* glibc's XML shape with our numbers (the same writer as ZEROPOOL_STATS); options must be 0. */
int zp_ip_malloc_info(int options, FILE *fp)
{
    if (options != 0) {
        errno = EINVAL;
        return -1;
    }
    return zp_ip_stats_write_file(fp);
}
