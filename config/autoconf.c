/* Auto-configuration: how many CPUs and how much memory this process may use, and the
 * defaults that follow from them. No malloc, no stdio: files are read with open/read/close.
 *
 * The formulas (cpus = CPUs in the affinity mask, lowered to the cgroup v2 cpu.max quota,
 * rounded up, of the process's cgroup and every ancestor; memory = the smallest of physical
 * memory, cgroup v2 memory.max on the same path, cgroup v1 memory.limit_in_bytes on the memory
 * controller's path, RLIMIT_AS, RLIMIT_DATA and MemAvailable at start-up; which one it was is
 * kept in zp_autoconf_t.mem_source, for `zeropool config` and `zeropool status`):
 *
 *   shards          = clamp(next_pow2(ceil(cpus / 2)), 4, 128)
 *   tls_cache       = clamp(2 * floor(log2(cpus)), 2, 8)            buffers per thread cache
 *   pool_bytes      = max(min(max(256 MiB, cpus * 64 MiB), memory / 8), 16 MiB)
 *   tls_cache_bytes = min(clamp(pool_bytes / (4 * shards), 4 MiB, 64 MiB), pool_bytes / 4)
 *
 * Shards grow with the CPUs that can contend for them; thread caches stay small because every
 * thread holds one; the budget is a fixed share of memory so a big machine is not starved and
 * a small container is not flooded. Unknown memory (0) leaves out the memory / 8 bound. */
#include "zp_options.h"
#include "zp_file.h"
#include "zp_fmt.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

static uint64_t zp_next_pow2(uint64_t v)
{
    uint64_t p = 1;
    while (p < v)
        p <<= 1;
    return p;
}

static unsigned zp_log2_floor(uint64_t v)
{
    unsigned l = 0;
    while (v > 1) {
        v >>= 1;
        l++;
    }
    return l;
}

static uint64_t zp_clamp_u64(uint64_t v, uint64_t lo, uint64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

uint64_t zp_autoconf_tls_bytes(uint64_t pool_bytes, uint64_t shards)
{
    uint64_t v = zp_clamp_u64(pool_bytes / (4 * (shards ? shards : 1)), 4 * ZP_MIB, 64 * ZP_MIB);
    /* Only a hand-set tiny budget reaches this: one thread cache may not hold all of it. */
    return v < pool_bytes / 4 ? v : pool_bytes / 4;
}

void zp_autoconf_compute(unsigned cpus, uint64_t phys_bytes, zp_autoconf_t *ac)
{
    if (cpus == 0)
        cpus = 1;
    ac->cpus = cpus;
    ac->affinity_cpus = cpus;
    ac->quota_cpus = 0;
    ac->phys_bytes = phys_bytes;
    for (unsigned i = 0; i < ZP_MEM_SOURCE_COUNT; i++)
        ac->mem_limit[i] = 0;
    ac->mem_limit[ZP_MEM_PHYS] = phys_bytes;
    ac->mem_source = phys_bytes ? ZP_MEM_PHYS : ZP_MEM_UNKNOWN;
    ac->shards = zp_clamp_u64(zp_next_pow2(((uint64_t)cpus + 1) / 2), 4, 128);
    ac->tls_cache = zp_clamp_u64(2 * (uint64_t)zp_log2_floor(cpus), 2, 8);
    uint64_t pool = (uint64_t)cpus * 64 * ZP_MIB;
    if (pool < 256 * ZP_MIB)
        pool = 256 * ZP_MIB;
    if (phys_bytes && pool > phys_bytes / 8)
        pool = phys_bytes / 8;
    if (pool < 16 * ZP_MIB)
        pool = 16 * ZP_MIB;
    ac->pool_bytes = pool;
    ac->tls_cache_bytes = zp_autoconf_tls_bytes(pool, ac->shards);
}

ssize_t zp_file_read(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = 0;
    while (len + 1 < cap) {
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    return (ssize_t)len;
}

/* Decimal prefix of s; false if there is none or it overflows. */
static bool zp_read_u64(const char **s, uint64_t *out)
{
    const char *p = *s;
    uint64_t v = 0;
    if (*p < '0' || *p > '9')
        return false;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *s = p;
    *out = v;
    return true;
}

bool zp_file_read_u64(const char *path, uint64_t *out)
{
    char text[32];
    const char *p = text;
    return zp_file_read(path, text, sizeof text) > 0 && zp_read_u64(&p, out);
}

/* fsroot + cgroup path + "/" + file into out; false if it does not fit. */
static bool zp_join(char *out, size_t cap, const char *fsroot, const char *cg, size_t cglen,
                    const char *file)
{
    size_t n = 0;
    for (const char *s = fsroot; *s; s++)
        if (n + 1 < cap)
            out[n++] = *s;
        else
            return false;
    for (size_t i = 0; i < cglen; i++)
        if (n + 1 < cap)
            out[n++] = cg[i];
        else
            return false;
    if (n + 1 < cap)
        out[n++] = '/';
    for (const char *s = file; *s; s++)
        if (n + 1 < cap)
            out[n++] = *s;
        else
            return false;
    out[n] = '\0';
    return true;
}

void zp_autoconf_cgroup(const char *fsroot, const char *proc_cgroup, unsigned *quota_cpus,
                        uint64_t *mem_max)
{
    *quota_cpus = 0;
    *mem_max = 0;
    /* The cgroup v2 line is "0::/path"; v1 lines ("4:cpu,cpuacct:/path") are ignored. */
    const char *line = proc_cgroup;
    while (line && !(line[0] == '0' && line[1] == ':' && line[2] == ':')) {
        while (*line && *line != '\n')
            line++;
        line = *line ? line + 1 : NULL;
    }
    if (!line || line[3] != '/')
        return;
    const char *cg = line + 3;
    size_t len = 0;
    while (cg[len] && cg[len] != '\n')
        len++;
    while (len > 1 && cg[len - 1] == '/')
        len--;

    /* Each level up to the root of the mount: the tightest limit on the path is the one in
     * force. Inside a cgroup namespace the mount's root is the container's own cgroup. */
    for (;;) {
        char path[512], text[64];
        size_t plen = (len == 1) ? 0 : len; /* "/" adds nothing to fsroot */
        if (zp_join(path, sizeof path, fsroot, cg, plen, "cpu.max") &&
            zp_file_read(path, text, sizeof text) > 0) {
            const char *p = text;
            uint64_t quota, period;
            if (zp_read_u64(&p, &quota) && *p == ' ' && (p++, zp_read_u64(&p, &period)) &&
                period) {
                uint64_t c = (quota + period - 1) / period;
                if (c == 0)
                    c = 1;
                if (c > UINT32_MAX)
                    c = UINT32_MAX;
                if (*quota_cpus == 0 || c < *quota_cpus)
                    *quota_cpus = (unsigned)c;
            }
        }
        if (zp_join(path, sizeof path, fsroot, cg, plen, "memory.max") &&
            zp_file_read(path, text, sizeof text) > 0) {
            const char *p = text;
            uint64_t m;
            if (zp_read_u64(&p, &m) && m && (*mem_max == 0 || m < *mem_max))
                *mem_max = m;
        }
        if (plen == 0)
            break;
        while (len > 1 && cg[len - 1] != '/')
            len--;
        if (len > 1)
            len--; /* drop the '/' too, except the root's */
    }
}

const char *const zp_mem_source_names[ZP_MEM_SOURCE_COUNT + 1] = {
#define ZP_MEM_NAME(id, name) name,
    ZP_MEM_SOURCES(ZP_MEM_NAME)
#undef ZP_MEM_NAME
    "unknown",
};

/* cgroup v1 reports "no limit" as the largest page-aligned value below 2^63. */
#define ZP_V1_UNLIMITED ((uint64_t)1 << 62)

uint64_t zp_autoconf_cgroup_v1_memory(const char *fsroot, const char *proc_cgroup)
{
    /* The memory controller's line: "4:memory:/path", or listed with others ("4:a,memory:/p"). */
    const char *line = proc_cgroup, *cg = NULL;
    while (line && *line && !cg) {
        const char *c = line;
        while (*c && *c != ':' && *c != '\n')
            c++;
        if (*c == ':') {
            const char *ctl = ++c;
            while (*c && *c != ':' && *c != '\n')
                c++;
            for (const char *w = ctl; w < c;) {
                const char *e = w;
                while (e < c && *e != ',')
                    e++;
                if (e - w == 6 && __builtin_memcmp(w, "memory", 6) == 0 && *c == ':' &&
                    c[1] == '/')
                    cg = c + 1;
                w = e + 1;
            }
        }
        while (*line && *line != '\n')
            line++;
        line = *line ? line + 1 : NULL;
    }
    if (!cg)
        return 0;
    size_t len = 0;
    while (cg[len] && cg[len] != '\n')
        len++;
    while (len > 1 && cg[len - 1] == '/')
        len--;
    char root[256];
    if (!zp_join(root, sizeof root, fsroot, "", 0, "memory"))
        return 0;
    uint64_t best = 0;
    for (;;) {
        char path[512];
        size_t plen = (len == 1) ? 0 : len;
        uint64_t m;
        if (zp_join(path, sizeof path, root, cg, plen, "memory.limit_in_bytes") &&
            zp_file_read_u64(path, &m) && m && m < ZP_V1_UNLIMITED && (best == 0 || m < best))
            best = m;
        if (plen == 0)
            break;
        while (len > 1 && cg[len - 1] != '/')
            len--;
        if (len > 1)
            len--;
    }
    return best;
}

void zp_autoconf_pick_memory(zp_autoconf_t *ac)
{
    uint64_t best = 0;
    zp_mem_source_t src = ZP_MEM_UNKNOWN;
    for (unsigned i = 0; i < ZP_MEM_SOURCE_COUNT; i++)
        if (ac->mem_limit[i] && (best == 0 || ac->mem_limit[i] < best)) {
            best = ac->mem_limit[i];
            src = (zp_mem_source_t)i;
        }
    zp_autoconf_t keep = *ac;
    zp_autoconf_compute(ac->cpus, best, ac);
    ac->affinity_cpus = keep.affinity_cpus;
    ac->quota_cpus = keep.quota_cpus;
    for (unsigned i = 0; i < ZP_MEM_SOURCE_COUNT; i++)
        ac->mem_limit[i] = keep.mem_limit[i];
    ac->mem_source = src;
}

size_t zp_autoconf_memory_text(const zp_autoconf_t *ac, zp_mem_source_t which, char *buf,
                               size_t cap)
{
    zp_buf_t b = { buf, 0, cap };
    uint64_t v = which == ZP_MEM_UNKNOWN ? 0 : ac->mem_limit[which];
    if (which == ac->mem_source)
        v = ac->phys_bytes;
    if (v) {
        zp_buf_u64(&b, (v + (1 << 19)) >> 20);
        zp_buf_str(&b, " MiB (");
        zp_buf_str(&b, zp_mem_source_names[which]);
        zp_buf_chr(&b, ')');
    } else {
        zp_buf_str(&b, "unknown");
    }
    size_t n = b.len < cap ? b.len : cap - 1;
    if (cap)
        buf[n] = '\0';
    return n;
}

/* "MemAvailable:   123 kB" of /proc/meminfo, in bytes; 0 if absent. */
static uint64_t zp_mem_available(void)
{
    char text[4096];
    if (zp_file_read("/proc/meminfo", text, sizeof text) <= 0)
        return 0;
    for (const char *p = text; *p;) {
        if (__builtin_memcmp(p, "MemAvailable:", 13) == 0) {
            p += 13;
            while (*p == ' ')
                p++;
            uint64_t kb;
            return zp_read_u64(&p, &kb) && kb < (UINT64_MAX >> 10) ? kb << 10 : 0;
        }
        while (*p && *p != '\n')
            p++;
        if (*p)
            p++;
    }
    return 0;
}

static uint64_t zp_rlimit(int which)
{
    struct rlimit r;
    if (getrlimit(which, &r) != 0 || r.rlim_cur == RLIM_INFINITY)
        return 0;
    return (uint64_t)r.rlim_cur;
}

void zp_autoconf_detect(zp_autoconf_t *ac)
{
    /* The raw system call with 8192 bits on the stack: glibc's CPU_ALLOC would malloc, and
     * its fixed cpu_set_t fails with EINVAL on kernels built for more than 1024 CPUs. */
    unsigned long mask[8192 / (8 * sizeof(unsigned long))];
    long got = syscall(SYS_sched_getaffinity, 0, sizeof mask, mask);
    unsigned affinity = 0;
    for (long i = 0; i < got / (long)sizeof(unsigned long); i++)
        affinity += (unsigned)__builtin_popcountl(mask[i]);
    if (affinity == 0)
        affinity = 1;

    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    uint64_t phys = (pages > 0 && page > 0) ? (uint64_t)pages * (uint64_t)page : 0;

    char text[4096]; /* v1 systems list a line per controller before "0::" */
    unsigned quota = 0;
    uint64_t mem = 0, mem_v1 = 0;
    if (zp_file_read("/proc/self/cgroup", text, sizeof text) > 0) {
        zp_autoconf_cgroup("/sys/fs/cgroup", text, &quota, &mem);
        mem_v1 = zp_autoconf_cgroup_v1_memory("/sys/fs/cgroup", text);
    }

    unsigned cpus = (quota && quota < affinity) ? quota : affinity;
    ac->cpus = cpus;
    ac->affinity_cpus = affinity;
    ac->quota_cpus = quota;
    ac->mem_limit[ZP_MEM_PHYS] = phys;
    ac->mem_limit[ZP_MEM_CGROUP_V2] = mem;
    ac->mem_limit[ZP_MEM_CGROUP_V1] = mem_v1;
    ac->mem_limit[ZP_MEM_RLIMIT_AS] = zp_rlimit(RLIMIT_AS);
    ac->mem_limit[ZP_MEM_RLIMIT_DATA] = zp_rlimit(RLIMIT_DATA);
    ac->mem_limit[ZP_MEM_AVAILABLE] = zp_mem_available();
    zp_autoconf_pick_memory(ac);
}
