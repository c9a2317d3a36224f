/* Unit tests of what the pool asks of the kernel: pinning under a tiny RLIMIT_MEMLOCK, guard
 * pages, MADV_DONTDUMP and the [anon:zeropool] name, and failure of every platform call
 * (fault injection through zp_os_inject, and a tight RLIMIT_AS): NULL + ENOMEM, never a crash,
 * and the pool works again once the failure is gone. */
#include "core_test_util.h"
#include "zp_stat_places.h"

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>

/* ---- pinning ---- */

/* The pool's count of refused mlock calls, read as zeropool status reads it: at its place. */
static uint64_t pin_failures_of(zp_pool_t *pool)
{
    zp_stat_place_t places[64];
    size_t n = zp_pool_stat_places(places, 64);
    for (size_t i = 0; i < n && i < 64; i++)
        if (strcmp(places[i].name, "pin_failures") == 0)
            return *(const uint64_t *)((const char *)pool + places[i].add[0]);
    cr_assert_fail("no pin_failures place");
    return 0;
}

/* Root ignores RLIMIT_MEMLOCK: give up CAP_IPC_LOCK so that the limit applies. */
static int drop_ipc_lock(void)
{
    struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d) != 0)
        return -1;
    d[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
    d[CAP_IPC_LOCK / 32].permitted &= ~(1u << (CAP_IPC_LOCK % 32));
    d[CAP_IPC_LOCK / 32].inheritable &= ~(1u << (CAP_IPC_LOCK % 32));
    return (int)syscall(SYS_capset, &h, d);
}

static int pin_child(void *arg)
{
    (void)arg;
    struct rlimit rl = { 256 * KiB, 256 * KiB };
    CHILD_CHECK(setrlimit(RLIMIT_MEMLOCK, &rl) == 0);
    CHILD_CHECK(drop_ipc_lock() == 0);
    /* The limit really applies now. */
    char *probe = mmap(NULL, MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHILD_CHECK(probe != MAP_FAILED);
    CHILD_CHECK(mlock(probe, MiB) != 0);
    munmap(probe, MiB);

    zp_config_t c = test_cfg(1, 4);
    c.pin = true;
    zp_pool_t *pool = zp_pool_new(&c);
    CHILD_CHECK(pool);
    char *p[8];
    for (unsigned i = 0; i < 8; i++) {
        p[i] = zp_get(pool, 128 * KiB);
        CHILD_CHECK(p[i] != NULL); /* never fails because of pinning */
        CHILD_CHECK(first_nonzero(p[i], 128 * KiB) == (size_t)-1);
        memset(p[i], 0x21, 128 * KiB);
        if (i == 0) {
            zp_stats_t st;
            zp_pool_stats(pool, &st);
            CHILD_CHECK(st.pinned_bytes >= 128 * KiB);
            CHILD_CHECK(status_kb("VmLck") > 0);
        }
    }
    zp_stats_t st;
    zp_pool_stats(pool, &st);
    CHILD_CHECK(st.pinned_bytes > 0 && st.pinned_bytes <= 256 * KiB);
    /* Pooled buffers stay locked while the pool holds them... */
    for (unsigned i = 0; i < 8; i++)
        zp_put(pool, p[i]);
    zp_pool_stats(pool, &st);
    CHILD_CHECK(st.pinned_bytes > 0);
    CHILD_CHECK(status_kb("VmLck") > 0);
    /* ...and more gets and puts do not warn again. */
    for (unsigned i = 0; i < 8; i++)
        p[i] = zp_get(pool, 192 * KiB);
    for (unsigned i = 0; i < 8; i++) {
        CHILD_CHECK(p[i] != NULL);
        zp_put(pool, p[i]);
    }
    /* Released memory is unlocked. */
    zp_pool_trim(pool);
    zp_pool_stats(pool, &st);
    CHILD_CHECK(st.pinned_bytes == 0);
    CHILD_CHECK(status_kb("VmLck") == 0);
    zp_pool_destroy(pool);
    return 0;
}

Test(core_os, pinning_tiny_memlock)
{
    if (ZP_TEST_ASAN)
        cr_skip_test("AddressSanitizer turns mlock into a no-op");
    char out[4096];
    int st = run_child(pin_child, NULL, out, sizeof out);
    assert_exited_ok(st, out);
    cr_assert_eq(count_substr(out, "zeropool: mlock failed"), 1,
                 "the RLIMIT_MEMLOCK warning should appear exactly once; stderr:\n%s", out);
}

/* Four gets of 100 KiB, each written, while every mlock fails; what went to stderr meanwhile. */
static const char *gets_while_mlock_fails(zp_pool_t *pool, char *p[4])
{
    capture_start();
    zp_os_inject(ZP_OS_LOCK, 0, 1000, ENOMEM);
    for (unsigned i = 0; i < 4; i++) {
        p[i] = zp_get(pool, 100 * KiB);
        if (p[i] != NULL)
            memset(p[i], 1, 100 * KiB);
    }
    zp_os_inject_clear();
    return capture_end();
}

Test(core_os, pin_lock_failure_still_gets)
{
    zp_config_t c = test_cfg(1, 4);
    c.pin = true;
    zp_pool_t *pool = new_pool(&c);
    char *p[4];
    const char *err = gets_while_mlock_fails(pool, p);
    for (unsigned i = 0; i < 4; i++)
        cr_assert_not_null(p[i], "get %u failed because mlock failed", i);
    cr_assert_eq(stats_of(pool).pinned_bytes, 0);
    cr_assert_eq(count_substr(err, "zeropool: mlock failed"), 1, "stderr:\n%s", err);
    for (unsigned i = 0; i < 4; i++)
        zp_put(pool, p[i]);
    zp_pool_destroy(pool);
}

/* ---- guard pages ---- */

typedef struct guard_arg {
    bool guard;
    bool direct;
} guard_arg_t;

static int guard_child(void *arg)
{
    guard_arg_t *g = arg;
    struct sigaction sa = { 0 };
    sa.sa_handler = SIG_DFL;
    sigaction(SIGSEGV, &sa, NULL);
    zp_config_t c = test_cfg(1, 4);
    c.guard_pages = g->guard;
    c.max_pooled_size = MiB;
    zp_pool_t *pool = zp_pool_new(&c);
    CHILD_CHECK(pool);
    size_t size = g->direct ? 2 * MiB : 128 * KiB; /* exactly a class size / page multiple */
    volatile char *p = zp_get(pool, size);
    /* A neighbour, so that an unguarded slot would be followed by committed memory. */
    volatile char *next = zp_get(pool, size);
    CHILD_CHECK(p != NULL && next != NULL);
    CHILD_CHECK(zp_capacity(pool, (void *)p) == size);
    if (!g->direct && !g->guard)
        CHILD_CHECK(next == p + size);
    p[size - 1] = 1; /* the last byte is fine */
    p[size] = 1;     /* one past the end */
    return 0;
}

Test(core_os, guard_page_faults)
{
    char out[2048];
    for (unsigned direct = 0; direct < 2; direct++) {
        guard_arg_t on = { true, direct }, off = { false, direct };
        int st = run_child(guard_child, &on, out, sizeof out);
        cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV,
                  "%s: a write one past the end did not fault (status 0x%x); stderr:\n%s",
                  direct ? "direct" : "pooled", st, out);
        if (!direct) { /* a direct mapping is followed by reserved address space either way */
            st = run_child(guard_child, &off, out, sizeof out);
            assert_exited_ok(st, out);
        }
    }
}

/* ---- core dumps and mapping names ---- */

/* The text after "key:" in the smaps entry of the mapping that holds p ("" if none). */
static void smaps_field(const void *p, const char *key, char *val, size_t len)
{
    char *s = read_proc("/proc/self/smaps");
    bool in = false;
    val[0] = '\0';
    size_t kl = strlen(key);
    for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
        unsigned long lo, hi;
        char dash;
        if (sscanf(line, "%lx%c%lx ", &lo, &dash, &hi) == 3 && dash == '-') {
            in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
            continue;
        }
        if (in && strncmp(line, key, kl) == 0 && line[kl] == ':') {
            snprintf(val, len, "%s", line + kl + 1);
            break;
        }
    }
    free(s);
}

/* The /proc/self/maps line of the mapping that holds p. */
static void maps_line(const void *p, char *out, size_t len)
{
    char *s = read_proc("/proc/self/maps");
    out[0] = '\0';
    for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && (uintptr_t)p >= lo && (uintptr_t)p < hi) {
            snprintf(out, len, "%s", line);
            break;
        }
    }
    free(s);
}

static bool has_flag(const char *flags, const char *f)
{
    char pad[256 + 2]; /* flags (up to 255 bytes) and a space on each side */
    snprintf(pad, sizeof pad, " %s ", flags);
    char want[8];
    snprintf(want, sizeof want, " %s ", f);
    return strstr(pad, want) != NULL;
}

Test(core_os, dontdump_flag_in_smaps)
{
    for (unsigned dd = 0; dd < 2; dd++) {
        for (unsigned guard = 0; guard < 2; guard++) {
            zp_config_t c = test_cfg(1, 4);
            c.dontdump = dd;
            c.guard_pages = guard;
            c.max_pooled_size = MiB;
            zp_pool_t *pool = new_pool(&c);
            char *bufs[2] = { zp_get(pool, 128 * KiB), zp_get(pool, 3 * MiB) }; /* pooled, direct */
            for (unsigned k = 0; k < 2; k++) {
                cr_assert_not_null(bufs[k]);
                bufs[k][0] = 1;
                char flags[256];
                smaps_field(bufs[k], "VmFlags", flags, sizeof flags);
                cr_assert_neq(flags[0], '\0', "no smaps entry for %p", bufs[k]);
                cr_assert_eq(has_flag(flags, "dd"), (bool)dd,
                             "dontdump=%u guard=%u %s buffer: VmFlags:%s", dd, guard,
                             k ? "direct" : "pooled", flags);
            }
            zp_put(pool, bufs[0]);
            zp_put(pool, bufs[1]);
            zp_pool_destroy(pool);
        }
    }
}

Test(core_os, mapping_named_anon_zeropool)
{
    /* Does this kernel name anonymous mappings (PR_SET_VMA_ANON_NAME, Linux 5.17+)? */
    void *m = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(m, MAP_FAILED);
    int rc = prctl(0x53564d41 /* PR_SET_VMA */, 0, (unsigned long)m, 4096, (unsigned long)"zptest");
    munmap(m, 4096);
    if (rc != 0)
        cr_skip_test("this kernel does not name anonymous mappings");
    zp_config_t c = test_cfg(1, 4);
    c.max_pooled_size = MiB;
    zp_pool_t *pool = new_pool(&c);
    char *bufs[2] = { zp_get(pool, 128 * KiB), zp_get(pool, 3 * MiB) };
    for (unsigned k = 0; k < 2; k++) {
        char line[512];
        maps_line(bufs[k], line, sizeof line);
        cr_assert(strstr(line, "[anon:zeropool]"), "%s buffer's mapping: %s",
                  k ? "direct" : "pooled", line);
        zp_put(pool, bufs[k]);
    }
    zp_pool_destroy(pool);
}

/* ---- fault injection ---- */

static void expect_enomem(zp_pool_t *pool, size_t size, const char *what)
{
    errno = 0;
    void *p = zp_get(pool, size);
    cr_assert_null(p, "%s: get of %zu succeeded", what, size);
    cr_assert_eq(errno, ENOMEM, "%s: errno %d, not ENOMEM", what, errno);
}

static void expect_works(zp_pool_t *pool, size_t size, const char *what)
{
    char *p = zp_get(pool, size);
    cr_assert_not_null(p, "%s: get of %zu still fails after the fault was cleared", what, size);
    assert_zero(p, size);
    memset(p, 0x7E, size);
    zp_put(pool, p);
}

Test(core_os, reserve_failure_enomem_then_recovers)
{
    zp_config_t c = test_cfg(1, 4);
    c.max_pooled_size = MiB;
    zp_pool_t *pool = new_pool(&c);
    zp_os_inject(ZP_OS_RESERVE, 0, 100000, ENOMEM);
    expect_enomem(pool, 128 * KiB, "reserve");
    expect_enomem(pool, 3 * MiB, "reserve (direct)");
    zp_get(pool, 100 * KiB); /* more tries while it fails: no crash, no state damage */
    zp_os_inject_clear();
    zp_stats_t st = stats_of(pool);
    cr_assert_eq(st.gets, 0, "failed gets were counted");
    cr_assert_eq(st.reserved_bytes, 0);
    expect_works(pool, 128 * KiB, "reserve");
    expect_works(pool, 3 * MiB, "reserve (direct)");
    st = stats_of(pool);
    cr_assert_eq(st.gets, 2);
    cr_assert_eq(st.puts, 2);
    cr_assert_eq(st.live_bytes, 0);
    zp_pool_destroy(pool);
}

Test(core_os, commit_failure_enomem_then_recovers)
{
    for (unsigned guard = 0; guard < 2; guard++) {
        zp_config_t c = test_cfg(1, 4);
        c.guard_pages = guard;
        c.max_pooled_size = MiB;
        zp_pool_t *pool = new_pool(&c);
        /* One class already in use, so that the failure hits a slot of an existing span too. */
        char *keep = zp_get(pool, 128 * KiB);
        cr_assert_not_null(keep);
        zp_os_inject(ZP_OS_COMMIT, 0, 100000, ENOMEM);
        if (guard)
            expect_enomem(pool, 128 * KiB, "commit, existing span");
        expect_enomem(pool, 200 * KiB, "commit, new span");
        expect_enomem(pool, 3 * MiB, "commit (direct)");
        expect_enomem(pool, 3 * MiB, "commit (direct, again)");
        zp_os_inject_clear();
        uint64_t reserved = stats_of(pool).reserved_bytes;
        expect_works(pool, 128 * KiB, "commit");
        expect_works(pool, 200 * KiB, "commit");
        expect_works(pool, 3 * MiB, "commit (direct)");
        zp_put(pool, keep);
        zp_stats_t st = stats_of(pool);
        cr_assert_eq(st.gets, st.puts);
        cr_assert_eq(st.live_bytes, 0);
        cr_assert_eq(st.misuse, 0);
        cr_assert_leq(st.reserved_bytes, reserved + 256 * MiB);
        zp_pool_destroy(pool);
    }
}

Test(core_os, meta_failure_enomem_then_recovers)
{
    zp_config_t c = test_cfg(1, 4);
    zp_os_inject(ZP_OS_META, 0, 100000, ENOMEM);
    errno = 0;
    cr_assert_null(zp_pool_new(&c));
    cr_assert_eq(errno, ENOMEM);
    zp_os_inject_clear();
    zp_pool_t *pool = new_pool(&c);
    zp_os_inject(ZP_OS_META, 0, 100000, ENOMEM);
    expect_enomem(pool, 128 * KiB, "meta");
    zp_os_inject_clear();
    expect_works(pool, 128 * KiB, "meta");
    zp_pool_destroy(pool);
}

Test(core_os, drop_failure_still_zero)
{
    zp_config_t c = test_cfg(1, 0);
    zp_pool_t *pool = new_pool(&c);
    char *p[4];
    for (unsigned i = 0; i < 4; i++) {
        p[i] = zp_get(pool, MiB);
        memset(p[i], 0x55, MiB);
    }
    zp_os_inject(ZP_OS_DROP, 0, 100000, EINVAL);
    for (unsigned i = 0; i < 4; i++)
        zp_put(pool, p[i]);
    zp_pool_trim(pool); /* the drops fail: the pages stay, scrubbed */
    /* Many cycles of one buffer: the density probe's drop fails too. */
    for (unsigned i = 0; i < 40; i++) {
        char *q = zp_get(pool, MiB);
        assert_zero(q, MiB);
        memset(q + (i % 4) * 4096, 0x66, 4096);
        zp_put(pool, q);
    }
    zp_os_inject_clear();
    for (unsigned i = 0; i < 4; i++) {
        p[i] = zp_get(pool, MiB);
        assert_zero(p[i], MiB);
    }
    for (unsigned i = 0; i < 4; i++)
        zp_put(pool, p[i]);
    zp_pool_destroy(pool);
}

/* A tight address-space limit: 1 MiB gets succeed until the space is gone, then NULL + ENOMEM;
 * never a crash; what was put can be reused. */
static int rlimit_as_child(void *arg)
{
    (void)arg;
    long vm = status_kb("VmSize");
    CHILD_CHECK(vm > 0);
    struct rlimit rl = { (rlim_t)vm * 1024 + 64 * MiB, (rlim_t)vm * 1024 + 64 * MiB };
    CHILD_CHECK(setrlimit(RLIMIT_AS, &rl) == 0);
    zp_config_t c = test_cfg(1, 4);
    zp_pool_t *pool = zp_pool_new(&c);
    CHILD_CHECK(pool);
    static char *p[4096];
    unsigned n = 0;
    for (; n < 4096; n++) {
        errno = 0;
        p[n] = zp_get(pool, MiB);
        if (!p[n])
            break;
        p[n][0] = 1;
    }
    CHILD_CHECK(n < 4096);
    CHILD_CHECK(errno == ENOMEM);
    dprintf(2, "1 MiB gets under a 64 MiB address-space margin: %u\n", n);
    CHILD_CHECK(n >= 16);
    errno = 0;
    CHILD_CHECK(zp_get(pool, 256 * MiB) == NULL && errno == ENOMEM); /* direct: no room */
    CHILD_CHECK(zp_get(pool, MiB) == NULL);
    for (unsigned i = 0; i < n; i++)
        zp_put(pool, p[i]);
    for (unsigned i = 0; i < n; i++) {
        p[i] = zp_get(pool, MiB);
        CHILD_CHECK(p[i] != NULL);
        CHILD_CHECK(first_nonzero(p[i], 4096) == (size_t)-1);
    }
    for (unsigned i = 0; i < n; i++)
        zp_put(pool, p[i]);
    zp_stats_t st;
    zp_pool_stats(pool, &st);
    CHILD_CHECK(st.gets == st.puts && st.misuse == 0);
    return 0;
}

Test(core_os, rlimit_as_exhaustion_enomem)
{
    if (ZP_TEST_ASAN)
        cr_skip_test("AddressSanitizer needs far more address space than the limit leaves");
    char out[4096];
    int st = run_child(rlimit_as_child, NULL, out, sizeof out);
    assert_exited_ok(st, out);
    cr_log_info("%s", out);
}

/* ---- what the platform layer serves the other layers ---- */

/* The interposer's trace table comes from zp_os_meta_reserve: like the pool's own memory it
 * is out of core dumps, named, and fails under fault injection (ZP_OS_META). */
Test(core_os, meta_reserve_dontdump_named_and_injectable)
{
    zp_os_init();
    size_t bytes = 16 * MiB;
    char *m = zp_os_meta_reserve(bytes);
    cr_assert_not_null(m);
    cr_assert_eq(m[0] | m[bytes - 1], 0, "a fresh reservation reads as zero");
    m[0] = 1;
    m[bytes - 1] = 1;
    char flags[256], line[512];
    smaps_field(m, "VmFlags", flags, sizeof flags);
    cr_assert(has_flag(flags, "dd"), "metadata reservation not DONTDUMP: VmFlags:%s", flags);
    maps_line(m, line, sizeof line);
    void *probe = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(probe, MAP_FAILED);
    bool names = prctl(0x53564d41 /* PR_SET_VMA */, 0, (unsigned long)probe, 4096,
                       (unsigned long)"zptest") == 0;
    munmap(probe, 4096);
    if (names)
        cr_assert(strstr(line, "[anon:zeropool]"), "metadata reservation: %s", line);
    zp_os_meta_free(m, bytes);

    zp_os_inject(ZP_OS_META, 0, 1, ENOMEM);
    errno = 0;
    cr_assert_null(zp_os_meta_reserve(bytes));
    cr_assert_eq(errno, ENOMEM);
    zp_os_inject_clear();
    m = zp_os_meta_reserve(bytes);
    cr_assert_not_null(m, "still failing after the injection was cleared");
    zp_os_meta_free(m, bytes);
}

static void *thread_id_of(void *arg)
{
    *(unsigned *)arg = zp_os_thread_id();
    return NULL;
}

Test(core_os, thread_id_is_the_kernels)
{
    cr_assert_eq(zp_os_thread_id(), (unsigned)syscall(SYS_gettid));
    unsigned other = 0;
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, thread_id_of, &other), 0);
    pthread_join(t, NULL);
    cr_assert_neq(other, 0u);
    cr_assert_neq(other, zp_os_thread_id(), "two threads, one id");
}

/* A quiet pool (the preload library's, when pinning came from the system-wide file) writes
 * nothing on stderr: the failures are only counted, where zeropool status reads them. */
Test(core_os, pin_lock_failure_quiet_is_counted_not_printed)
{
    zp_config_t c = test_cfg(1, 4);
    c.pin = true;
    c.quiet = true;
    zp_pool_t *pool = new_pool(&c);
    char *p[4];
    cr_assert_str_eq(gets_while_mlock_fails(pool, p), "", "nothing on stderr");
    for (unsigned i = 0; i < 4; i++) {
        cr_assert_not_null(p[i]);
        zp_put(pool, p[i]);
    }
    cr_assert_geq(pin_failures_of(pool), 1);
    zp_pool_destroy(pool);
}
