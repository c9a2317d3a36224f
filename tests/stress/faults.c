/* Resource exhaustion under LD_PRELOAD=libzeropool.so, one case per run:
 *   rlimit_as    a tight RLIMIT_AS: large malloc/calloc/posix_memalign end in NULL + ENOMEM,
 *                nothing crashes, small allocations keep working, every block obtained is
 *                zero and intact, and after frees the same sizes succeed again;
 *   as_other_class  the same limit, everything freed: a size never asked before must succeed
 *                (the address space the pool keeps for other sizes must not be in the way);
 *   realloc_oom  a block grown by realloc until the address space runs out: the failing call
 *                returns NULL + ENOMEM and the old block is intact, writable and freeable
 *                (and so is a small block whose realloc into the pool fails);
 *   map_count    40,000 live pooled buffers, each with its guard page: vm.max_map_count is
 *                respected by degrading, malloc and the program's own mmap go on working;
 *   memlock      ZEROPOOL_PIN=1 without CAP_IPC_LOCK and a 1 MiB RLIMIT_MEMLOCK: every
 *                allocation succeeds, exactly one warning, locked memory stays within the limit.
 * Usage: faults CASE   (exit 0: passed; 77: cannot be run here) */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "test_util.h"

#define MiB ((size_t)1 << 20)

/* The address space limit: what is mapped now plus room. */
static void limit_as(size_t room)
{
    size_t lim = test_status_bytes("VmSize") + room;
    struct rlimit rl = {lim, lim};
    if (setrlimit(RLIMIT_AS, &rl) != 0) {
        perror("setrlimit(RLIMIT_AS)");
        exit(77);
    }
}

/* Stamp: byte k of a block with seed s is (s + k * 131) >> 3, whatever its length. */
static unsigned char stamp_byte(unsigned seed, size_t k)
{
    return (unsigned char)((seed + k * 131) >> 3);
}

static void stamp(unsigned char *p, size_t from, size_t to, unsigned seed)
{
    for (size_t k = from; k < to; k++)
        p[k] = stamp_byte(seed, k);
}

static bool stamped(const unsigned char *p, size_t n, unsigned seed)
{
    for (size_t k = 0; k < n; k++)
        if (p[k] != stamp_byte(seed, k))
            return false;
    return true;
}

/* Sparse writes keep the resident memory small: first and last page, and one byte a MiB. */
static void mark(unsigned char *p, size_t n, unsigned char v)
{
    for (size_t k = 0; k < n; k += MiB)
        p[k] = v;
    p[n - 1] = v;
}

static bool marked(const unsigned char *p, size_t n, unsigned char v)
{
    for (size_t k = 0; k < n; k += MiB)
        if (p[k] != v)
            return false;
    return p[n - 1] == v;
}

static bool zeropool; /* libzeropool.so is mapped: large blocks must be zero */

static bool zero_edges(const unsigned char *p, size_t n)
{
    if (!zeropool)
        return true;
    for (size_t k = 0; k < n; k += MiB)
        if (p[k] != 0)
            return false;
    return p[n - 1] == 0;
}

/* Room for jemalloc's small blocks after the address space runs out: it keeps what it has. */
static void warm_small(void)
{
    void *v[4000];
    for (int i = 0; i < 4000; i++)
        v[i] = malloc(16 + (size_t)i % 1000);
    for (int i = 0; i < 4000; i++)
        free(v[i]);
}

static int small_allocs_ok(void)
{
    int ok = 0;
    void *v[500];
    for (int i = 0; i < 500; i++) {
        v[i] = malloc(16 + (size_t)i * 7 % 900);
        if (v[i] != NULL) {
            memset(v[i], 0x11, 16);
            ok++;
        }
    }
    for (int i = 0; i < 500; i++)
        free(v[i]);
    return ok;
}

#define MAX_BLOCKS 4096

static int case_rlimit_as(void)
{
    static const size_t sizes[] = {64 << 10, 1 << 20, 4 << 20, 16 << 20, 48 << 20, 100 << 20};
    enum { NSIZES = sizeof sizes / sizeof sizes[0] };
    static unsigned char *blk[MAX_BLOCKS];
    static size_t len[MAX_BLOCKS];
    warm_small();
    free(malloc(1 << 20)); /* the pool exists before the limit */
    limit_as(768 * MiB);
    int n = 0, nulls = 0;
    size_t got = 0;
    /* Largest first, then smaller: fill the address space until even 64 KiB fails. */
    for (int s = NSIZES - 1; s >= 0 && n < MAX_BLOCKS; s--) {
        for (int kind = 0; n < MAX_BLOCKS; kind = (kind + 1) % 3) {
            unsigned char *p = NULL;
            errno = 0;
            if (kind == 0) {
                p = malloc(sizes[s]);
            } else if (kind == 1) {
                p = calloc(1, sizes[s]);
            } else {
                void *q = NULL;
                int rc = posix_memalign(&q, 64 << 10, sizes[s]);
                CHECK(rc == 0 || rc == ENOMEM, "posix_memalign returned %d", rc);
                p = rc == 0 ? q : NULL;
                if (rc != 0)
                    errno = rc;
            }
            if (p == NULL) {
                CHECK(errno == ENOMEM, "%zu bytes: NULL with errno %d, not ENOMEM", sizes[s],
                      errno);
                nulls++;
                break;
            }
            CHECK(zero_edges(p, sizes[s]), "a %zu-byte block is not zero", sizes[s]);
            mark(p, sizes[s], (unsigned char)(n | 1));
            blk[n] = p;
            len[n++] = sizes[s];
            got += sizes[s];
        }
    }
    CHECK(nulls == NSIZES, "only %d of %d sizes ran out", nulls, NSIZES);
    CHECK(got >= 256 * MiB, "only %zu MiB obtained under a 768 MiB limit", got >> 20);
    int small = small_allocs_ok();
    CHECK(small == 500, "%d of 500 small allocations succeeded once large ones failed", small);
    for (int i = 0; i < n; i++)
        CHECK(marked(blk[i], len[i], (unsigned char)(i | 1)), "block %d (%zu bytes) changed", i,
              len[i]);
    /* Free every other block: the same sizes must be served again. */
    int again = 0, want = 0;
    for (int i = 0; i < n; i += 2) {
        free(blk[i]);
        blk[i] = NULL;
    }
    for (int i = 0; i < n; i += 2) {
        want++;
        blk[i] = malloc(len[i]);
        if (blk[i] != NULL) {
            again++;
            CHECK(zero_edges(blk[i], len[i]), "a reused %zu-byte block is not zero", len[i]);
        }
    }
    CHECK(again == want, "after frees, %d of %d blocks could be allocated again", again, want);
    for (int i = 0; i < n; i++)
        free(blk[i]);
    printf("rlimit_as: %d blocks (%zu MiB) under a 768 MiB limit, then ENOMEM for all %d sizes; "
           "%d/500 small allocations after; %d/%d again after frees\n",
           n, got >> 20, NSIZES, small, again, want);
    return test_failures ? 1 : 0;
}

/* Everything freed, a size class never used before: the address space the pool kept for
 * the other classes must not make it fail (glibc succeeds). */
static int case_as_other_class(void)
{
    warm_small();
    free(malloc(1 << 20));
    limit_as(512 * MiB);
    static void *b[1000];
    int n = 0;
    while (n < 1000 && (b[n] = malloc(16 * MiB)) != NULL)
        n++;
    for (int i = 0; i < n; i++)
        free(b[i]);
    malloc_trim(0);
    errno = 0;
    unsigned char *p = malloc(40 * MiB);
    CHECK(p != NULL, "malloc(40 MiB) after %d x 16 MiB were allocated and all freed: NULL, "
          "errno %d", n, errno);
    CHECK(p == NULL || zero_edges(p, 40 * MiB), "40 MiB block not zero");
    free(p);
    printf("as_other_class: %d x 16 MiB until ENOMEM, all freed, then 40 MiB %s\n", n,
           p != NULL ? "succeeded" : "FAILED");
    return test_failures ? 1 : 0;
}

static int case_realloc_oom(void)
{
    warm_small();
    free(malloc(1 << 20));
    limit_as(512 * MiB);
    size_t n = MiB;
    unsigned char *p = malloc(n);
    CHECK(p != NULL, "malloc(1 MiB)");
    if (p == NULL)
        return 1;
    stamp(p, 0, n, 7);
    int grows = 0;
    for (;;) {
        size_t m = n + n / 2;
        errno = 0;
        unsigned char *q = realloc(p, m);
        if (q == NULL) {
            CHECK(errno == ENOMEM, "realloc to %zu MiB: NULL with errno %d", m >> 20, errno);
            break;
        }
        CHECK(stamped(q, n, 7), "realloc %zu -> %zu MiB lost the prefix", n >> 20, m >> 20);
        stamp(q, n, m, 7);
        p = q;
        n = m;
        grows++;
    }
    CHECK(stamped(p, n, 7), "the old %zu MiB block changed after the failed realloc", n >> 20);
    stamp(p, 0, n, 9); /* still writable */
    CHECK(stamped(p, n, 9), "rewriting the old block");
    /* A small block moving into the pool while there is no room: also intact. */
    unsigned char *s = malloc(1000);
    CHECK(s != NULL, "malloc(1000) with the address space full");
    size_t fails_small = 0;
    if (s != NULL) {
        stamp(s, 0, 1000, 3);
        unsigned char *t = realloc(s, 400 * MiB);
        if (t == NULL) {
            fails_small = 1;
            CHECK(stamped(s, 1000, 3), "the small block changed after its realloc failed");
            free(s);
        } else {
            CHECK(stamped(t, 1000, 3), "small -> 400 MiB realloc lost the prefix");
            free(t);
        }
    }
    /* Shrinking never fails, and keeps the prefix. */
    unsigned char *q = realloc(p, n / 3);
    CHECK(q != NULL, "shrinking realloc failed");
    if (q != NULL) {
        CHECK(stamped(q, n / 3, 9), "shrinking realloc lost the prefix");
        p = q;
    }
    free(p);
    unsigned char *again = malloc(64 * MiB);
    CHECK(again != NULL && zero_edges(again, 64 * MiB), "64 MiB after freeing");
    free(again);
    printf("realloc_oom: grew 1 MiB x1.5 %d times to %zu MiB under a 512 MiB limit, then "
           "ENOMEM with the block intact; small->400 MiB realloc %s\n",
           grows, n >> 20, fails_small ? "failed with the block intact" : "succeeded");
    return test_failures ? 1 : 0;
}

/* Many live pooled buffers, each with a guard page: vm.max_map_count must be respected by
 * degrading (unguarded slots), never by failing malloc or leaving the process without room
 * for its own mappings. 40,000 buffers of 70,000 bytes, 64 bytes of each touched. */
static int case_map_count(void)
{
    enum { COUNT = 40000 };
    const size_t n = 70000;
    static unsigned char *v[COUNT];
    int got = 0;
    for (; got < COUNT; got++) {
        errno = 0;
        v[got] = malloc(n);
        if (v[got] == NULL)
            break;
        memset(v[got], 0x33, 64);
    }
    int e = errno;
    CHECK(got == COUNT, "malloc(%zu) = NULL (errno %d) with %d buffers live", n, e, got);
    void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED, "the program's own mmap fails (%s) with %d buffers live",
          strerror(errno), got);
    if (m != MAP_FAILED)
        munmap(m, 4096);
    long lines = test_maps_count();
    for (int i = 0; i < got; i++)
        free(v[i]);
    printf("map_count: %d of %d buffers of %zu bytes live, %ld mappings, own mmap %s\n", got,
           COUNT, n, lines, m != MAP_FAILED ? "ok" : "failed");
    return test_failures ? 1 : 0;
}

/* Drop CAP_IPC_LOCK (root may lock beyond RLIMIT_MEMLOCK) from every set. */
static void drop_ipc_lock(void)
{
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d) != 0) {
        perror("capget");
        exit(77);
    }
    uint32_t bit = 1u << (CAP_IPC_LOCK % 32);
    int w = CAP_IPC_LOCK / 32;
    d[w].effective &= ~bit;
    d[w].permitted &= ~bit;
    d[w].inheritable &= ~bit;
    if (syscall(SYS_capset, &h, d) != 0) {
        perror("capset");
        exit(77);
    }
}

static int case_memlock(void)
{
    const char *pin = getenv("ZEROPOOL_PIN");
    if (pin == NULL || strcmp(pin, "1") != 0) {
        fprintf(stderr, "memlock: run with ZEROPOOL_PIN=1\n");
        return 2;
    }
    drop_ipc_lock();
    struct rlimit rl;
    getrlimit(RLIMIT_MEMLOCK, &rl);
    size_t lim = MiB;
    if (rl.rlim_max < lim)
        lim = rl.rlim_max;
    rl.rlim_cur = rl.rlim_max = lim;
    if (setrlimit(RLIMIT_MEMLOCK, &rl) != 0) {
        perror("setrlimit(RLIMIT_MEMLOCK)");
        return 77;
    }
    /* Capture stderr: the warning must come exactly once. */
    char path[] = "/tmp/zp-memlock.XXXXXX";
    int cap = mkstemp(path);
    if (cap < 0)
        return 77;
    unlink(path);
    fflush(stderr);
    int saved = dup(2);
    dup2(cap, 2);

    enum { N = 24 };
    unsigned char *b[N];
    int ok = 0;
    size_t max_lck = 0;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            size_t n = (size_t)(256 + 64 * i) << 10;
            b[i] = malloc(n);
            if (b[i] != NULL && zero_edges(b[i], n)) {
                ok++;
                memset(b[i], 0x77, n);
            }
        }
        size_t l = test_status_bytes("VmLck");
        if (l > max_lck)
            max_lck = l;
        for (int i = 0; i < N; i++)
            free(b[i]);
        l = test_status_bytes("VmLck");
        if (l > max_lck)
            max_lck = l;
    }

    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char text[8192];
    ssize_t len = pread(cap, text, sizeof text - 1, 0);
    close(cap);
    text[len > 0 ? len : 0] = '\0';
    int warnings = 0;
    for (const char *s = text; (s = strstr(s, "mlock")) != NULL; s++)
        warnings++;
    CHECK(ok == 3 * N, "%d of %d allocations succeeded with pinning at the limit", ok, 3 * N);
    CHECK(warnings == 1, "%d lines about mlock on stderr, want exactly 1:\n%s", warnings, text);
    CHECK(max_lck > 0, "nothing was locked (VmLck 0): pinning did not happen at all");
    CHECK(max_lck <= lim, "VmLck %zu KiB above RLIMIT_MEMLOCK %zu KiB", max_lck >> 10,
          lim >> 10);
    printf("memlock: %d/%d allocations with ZEROPOOL_PIN=1 and a %zu KiB RLIMIT_MEMLOCK; peak "
           "VmLck %zu KiB; %d warning\n",
           ok, 3 * N, lim >> 10, max_lck >> 10, warnings);
    return test_failures ? 1 : 0;
}

int main(int argc, char **argv)
{
    zeropool = test_maps_has("libzeropool");
    if (argc == 2 && strcmp(argv[1], "rlimit_as") == 0)
        return case_rlimit_as();
    if (argc == 2 && strcmp(argv[1], "as_other_class") == 0)
        return case_as_other_class();
    if (argc == 2 && strcmp(argv[1], "realloc_oom") == 0)
        return case_realloc_oom();
    if (argc == 2 && strcmp(argv[1], "map_count") == 0)
        return case_map_count();
    if (argc == 2 && strcmp(argv[1], "memlock") == 0)
        return case_memlock();
    fprintf(stderr, "usage: %s rlimit_as|as_other_class|realloc_oom|map_count|memlock\n",
            argv[0]);
    return 2;
}
