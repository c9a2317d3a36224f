/* Helpers shared by the core unit tests: pool configurations, zero and residency checks,
 * /proc readers, stderr capture, running a function in a forked child, and a misuse recorder.
 * Everything is static so that each test program includes its own copy. */
#ifndef CORE_TEST_UTIL_H
#define CORE_TEST_UTIL_H

#include "internal.h"
#include "platform.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

#if defined(__SANITIZE_ADDRESS__)
#define ZP_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ZP_TEST_ASAN 1
#endif
#endif
#ifndef ZP_TEST_ASAN
#define ZP_TEST_ASAN 0
#endif

static inline size_t page_size(void)
{
    return (size_t)sysconf(_SC_PAGESIZE);
}

/* The defaults, with the fields tests usually pin down made deterministic. */
static inline zp_config_t test_cfg(unsigned shards, unsigned tls)
{
    zp_config_t c;
    zp_config_init(&c);
    c.num_shards = shards;
    c.tls_cache_size = tls;
    return c;
}

static inline zp_pool_t *new_pool(const zp_config_t *c)
{
    zp_pool_t *p = zp_pool_new(c);
    cr_assert_not_null(p, "zp_pool_new failed: %s", strerror(errno));
    return p;
}

static inline zp_stats_t stats_of(zp_pool_t *pool)
{
    zp_stats_t s;
    zp_pool_stats(pool, &s);
    return s;
}

/* Offset of the first non-zero byte, or (size_t)-1 when all n bytes are zero. */
static inline size_t first_nonzero(const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i])
            return i;
    return (size_t)-1;
}

#define assert_zero(p, n)                                                                      \
    do {                                                                                       \
        size_t at_ = first_nonzero((p), (n));                                                  \
        cr_assert_eq(at_, (size_t)-1, "byte %zu of %p (of %zu) is 0x%02x, not zero", at_,      \
                     (void *)(p), (size_t)(n), at_ == (size_t)-1 ? 0 : ((unsigned char *)(p))[at_]); \
    } while (0)

/* Resident pages of [p, p+len) (both rounded out to pages). */
static inline size_t resident_pages(const void *p, size_t len)
{
    size_t pg = page_size();
    uintptr_t a = (uintptr_t)p & ~(uintptr_t)(pg - 1);
    uintptr_t b = ((uintptr_t)p + len + pg - 1) & ~(uintptr_t)(pg - 1);
    size_t n = (b - a) / pg;
    unsigned char *vec = malloc(n);
    cr_assert_not_null(vec);
    cr_assert_eq(mincore((void *)a, b - a, vec), 0, "mincore: %s", strerror(errno));
    size_t r = 0;
    for (size_t i = 0; i < n; i++)
        r += vec[i] & 1;
    free(vec);
    return r;
}

/* Check for zero only the resident pages: the others read as zero by the kernel's guarantee,
 * and reading them would map the zero page and make the pool think they were written. */
static inline size_t first_nonzero_resident(const void *p, size_t len)
{
    size_t pg = page_size();
    const char *c = p;
    for (size_t off = 0; off < len; off += pg) {
        size_t n = len - off < pg ? len - off : pg;
        if (resident_pages(c + off, n) && first_nonzero(c + off, n) != (size_t)-1)
            return off + first_nonzero(c + off, n);
    }
    return (size_t)-1;
}

/* A whole /proc file into a malloc'd string (caller frees). */
static inline char *read_proc(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 4096 > cap)
            buf = realloc(buf, cap *= 2);
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    return buf;
}

static inline unsigned count_lines(const char *s)
{
    unsigned n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static inline unsigned maps_lines(void)
{
    char *m = read_proc("/proc/self/maps");
    unsigned n = count_lines(m);
    free(m);
    return n;
}

/* A "Name:   123 kB" field of /proc/self/status, in kB; -1 if absent. */
static inline long status_kb(const char *field)
{
    char *s = read_proc("/proc/self/status");
    long v = -1;
    size_t fl = strlen(field);
    for (char *line = s; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
            v = strtol(line + fl + 1, NULL, 10);
            break;
        }
    free(s);
    return v;
}

static inline size_t rss_bytes(void)
{
    char *s = read_proc("/proc/self/statm");
    unsigned long size = 0, res = 0;
    sscanf(s, "%lu %lu", &size, &res);
    free(s);
    return res * page_size();
}

/* fd 2 into a memfd between capture_start and capture_end, which returns what was written
 * (a static buffer). */
static int cap_saved_fd = -1, cap_mem_fd = -1;
static char cap_text[16384];

static inline void capture_start(void)
{
    fflush(stderr);
    cap_mem_fd = memfd_create("stderr", 0);
    cr_assert(cap_mem_fd >= 0);
    cap_saved_fd = dup(2);
    cr_assert(dup2(cap_mem_fd, 2) == 2);
}

static inline const char *capture_end(void)
{
    fflush(stderr);
    dup2(cap_saved_fd, 2);
    close(cap_saved_fd);
    lseek(cap_mem_fd, 0, SEEK_SET);
    ssize_t n = read(cap_mem_fd, cap_text, sizeof cap_text - 1);
    cap_text[n > 0 ? n : 0] = '\0';
    close(cap_mem_fd);
    return cap_text;
}

static inline unsigned count_substr(const char *hay, const char *needle)
{
    unsigned n = 0;
    size_t l = strlen(needle);
    for (const char *p = hay; (p = strstr(p, needle)); p += l)
        n++;
    return n;
}

/* Run fn(arg) in a forked child with stderr sent to a pipe; returns the wait status and puts
 * the child's stderr in out (NUL-terminated). The child exits with fn's return value. A child
 * stuck for 20 s is killed by SIGALRM, so a deadlock fails the test instead of hanging it. */
typedef int (*child_fn)(void *arg);

static inline int run_child(child_fn fn, void *arg, char *out, size_t out_len)
{
    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        close(pfd[0]);
        dup2(pfd[1], 2);
        close(pfd[1]);
        alarm(20);
        _exit(fn(arg));
    }
    close(pfd[1]);
    size_t len = 0;
    for (;;) {
        char tmp[4096];
        ssize_t n = read(pfd[0], tmp, sizeof tmp);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n && out && len + 1 < out_len; i++)
            out[len++] = tmp[i];
    }
    if (out && out_len)
        out[len] = '\0';
    close(pfd[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0)
        cr_assert_eq(errno, EINTR);
    return st;
}

#define assert_exited_ok(st, out)                                                              \
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,                                           \
              "child: %s %d; its stderr:\n%s", WIFEXITED(st) ? "exit" : "signal",              \
              WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), (out))

/* In a forked child, report a failed check with its line and leave with a non-zero status. */
#define CHILD_CHECK(cond)                                                                      \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            dprintf(2, "child check failed at line %d: %s\n", __LINE__, #cond);                \
            return 1;                                                                          \
        }                                                                                      \
    } while (0)

/* Misuse recorder for zp_pool_set_misuse_handler. */
#define MISUSE_MAX 64
typedef struct misuse_log {
    unsigned n;
    zp_misuse_t kind[MISUSE_MAX];
    const void *addr[MISUSE_MAX];
    size_t size[MISUSE_MAX];
} misuse_log_t;

static inline void misuse_record(void *ctx, zp_misuse_t kind, const void *addr, size_t size)
{
    misuse_log_t *l = ctx;
    if (l->n < MISUSE_MAX) {
        l->kind[l->n] = kind;
        l->addr[l->n] = addr;
        l->size[l->n] = size;
    }
    l->n++;
}

/* The slot behind a pointer of a pool, for white-box checks. */
static inline zp_slot_t *slot_of(const void *p)
{
    zp_span_t *sp = zp_map_lookup(p);
    cr_assert_not_null(sp, "%p is in no span", p);
    size_t idx = (size_t)((const char *)p - sp->base) / sp->stride;
    cr_assert_lt(idx, sp->nslots);
    return &sp->slots[idx];
}

#endif
