/* Unit tests of config/: size, bool, enum and power-of-two parsing, ZEROPOOL_CONF, precedence,
 * the exact text of the messages for bad and unknown settings, secure-execution mode, the
 * auto-configuration formulas and detection, the dump and the message formatter. */
#include "zeropool.h" /* ZP_EVICT_*: the values of ZEROPOOL_EVICTION */
#include "zp_fmt.h"
#include "zp_options.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers ---- */

/* fd 2 goes to a memfd between capture_start and capture_end, which returns what was written. */
static int saved_fd = -1, mem_fd = -1;
static char captured[16384];

static void capture_start(void)
{
    fflush(stderr);
    mem_fd = memfd_create("stderr", 0);
    cr_assert(mem_fd >= 0);
    saved_fd = dup(2);
    cr_assert(dup2(mem_fd, 2) == 2);
}

static const char *capture_end(void)
{
    dup2(saved_fd, 2);
    close(saved_fd);
    lseek(mem_fd, 0, SEEK_SET);
    ssize_t n = read(mem_fd, captured, sizeof captured - 1);
    captured[n > 0 ? n : 0] = '\0';
    close(mem_fd);
    return captured;
}

static unsigned count_lines(const char *s)
{
    unsigned n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* A fixed machine (8 CPUs, 64 GiB), so that expected values do not depend on the host. */
static zp_autoconf_t ac8;

static void load(zp_options_t *o, char *const *envp)
{
    zp_autoconf_compute(8, 64 * ZP_GIB, &ac8);
    zp_options_load_ex(o, envp, false, &ac8);
}

static void fresh(zp_options_t *o)
{
    zp_autoconf_compute(8, 64 * ZP_GIB, &ac8);
    zp_options_defaults(o, &ac8);
}

static int set(zp_options_t *o, const char *name, const char *value)
{
    return zp_option_set(o, name, strlen(name), value, strlen(value), ZP_SRC_ENV);
}

static bool size_of(const char *s, uint64_t *v)
{
    return zp_parse_size(s, strlen(s), v);
}

/* ---- sizes ---- */

Test(size, every_suffix)
{
    static const struct {
        const char *s;
        uint64_t v;
    } ok[] = {
        { "0", 0 },           { "4096", 4096 },        { "5B", 5 },
        { "5b", 5 },          { "64K", 64 * ZP_KIB },  { "64k", 64 * ZP_KIB },
        { "64KB", 64 * ZP_KIB }, { "64KiB", 64 * ZP_KIB }, { "64kib", 64 * ZP_KIB },
        { "1M", ZP_MIB },     { "1m", ZP_MIB },        { "1MiB", ZP_MIB },
        { "1MB", ZP_MIB },    { "2G", 2 * ZP_GIB },    { "2g", 2 * ZP_GIB },
        { "2GiB", 2 * ZP_GIB }, { "1T", 1024 * ZP_GIB }, { "3TiB", 3072 * ZP_GIB },
        { "18446744073709551615", UINT64_MAX }, { "16777215T", 16777215ull << 40 },
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint64_t v = 12345;
        cr_expect(size_of(ok[i].s, &v), "%s should parse", ok[i].s);
        cr_expect_eq(v, ok[i].v, "%s gave %llu", ok[i].s, (unsigned long long)v);
    }
}

Test(size, overflow_and_garbage_rejected)
{
    static const char *const bad[] = {
        "", "K", "-1", "+1", "1.5M", "1 M", "1KK", "1Ki", "1KiBB", "1BB", "0x10", "1X", "M1",
        "18446744073709551616", "99999999999999999999", "16777216T", "17179869184G", "1e6",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t v = 777;
        cr_expect(!size_of(bad[i], &v), "%s should be rejected", bad[i]);
        cr_expect_eq(v, 777, "%s changed the output on failure", bad[i]);
    }
}

Test(size, length_bounds_the_text)
{
    uint64_t v;
    cr_assert(zp_parse_size("64K", 2, &v));
    cr_expect_eq(v, 64);
    cr_expect(!zp_parse_size("64K", 0, &v));
}

/* ---- values of each type through zp_option_set ---- */

Test(values, bools_every_spelling)
{
    zp_options_t o;
    fresh(&o);
    static const char *const on[] = { "1", "true", "TRUE", "yes", "Yes", "on", "ON", " on " };
    static const char *const off[] = { "0", "false", "False", "no", "NO", "off", "Off" };
    for (size_t i = 0; i < sizeof on / sizeof on[0]; i++) {
        o.pin = 0;
        cr_expect_eq(set(&o, "PIN", on[i]), 0, "%s", on[i]);
        cr_expect_eq(o.pin, 1, "%s", on[i]);
    }
    for (size_t i = 0; i < sizeof off / sizeof off[0]; i++) {
        o.guard = 1;
        cr_expect_eq(set(&o, "GUARD", off[i]), 0, "%s", off[i]);
        cr_expect_eq(o.guard, 0, "%s", off[i]);
    }
    capture_start();
    cr_expect_eq(set(&o, "GUARD", "2"), -1);
    cr_expect_eq(set(&o, "GUARD", "yess"), -1);
    cr_expect_eq(set(&o, "GUARD", ""), -1);
    const char *err = capture_end();
    cr_expect_eq(o.guard, 0, "a bad bool must leave the value alone");
    cr_expect_eq(count_lines(err), 3);
    cr_expect(strstr(err, "expected one of 0, 1, true, false, yes, no, on, off; keeping off"), "%s",
              err);
}

Test(values, enums_by_name_and_alias)
{
    zp_options_t o;
    fresh(&o);
    cr_expect_eq(o.eviction, ZP_EVICT_CLOCK_PRO);
    cr_expect_eq(set(&o, "EVICTION", "LIFO"), 0);
    cr_expect_eq(o.eviction, ZP_EVICT_LIFO);
    static const char *const cp[] = { "clock-pro", "clockpro", "clock_pro", "Clock-Pro" };
    for (size_t i = 0; i < sizeof cp / sizeof cp[0]; i++) {
        o.eviction = ZP_EVICT_LIFO;
        cr_expect_eq(set(&o, "EVICTION", cp[i]), 0, "%s", cp[i]);
        cr_expect_eq(o.eviction, ZP_EVICT_CLOCK_PRO, "%s", cp[i]);
    }
    static const struct {
        const char *s;
        uint64_t v;
    } stats[] = { { "0", ZP_STATS_OFF }, { "off", ZP_STATS_OFF }, { "1", ZP_STATS_TEXT },
                  { "text", ZP_STATS_TEXT }, { "json", ZP_STATS_JSON }, { "JSON", ZP_STATS_JSON } };
    for (size_t i = 0; i < sizeof stats / sizeof stats[0]; i++) {
        cr_expect_eq(set(&o, "STATS", stats[i].s), 0, "%s", stats[i].s);
        cr_expect_eq(o.stats, stats[i].v, "%s", stats[i].s);
    }
    cr_expect_eq(set(&o, "ZERO_ON_ALLOC", "verify"), 0);
    cr_expect_eq(o.zero_on_alloc, ZP_ZERO_ALLOC_VERIFY);
    cr_expect_eq(set(&o, "ON_ERROR", "report"), 0);
    cr_expect_eq(o.on_error, ZP_ON_ERROR_REPORT);

    capture_start();
    cr_expect_eq(set(&o, "STATS", "2"), -1);
    cr_expect_eq(set(&o, "EVICTION", "clock"), -1);
    cr_expect_eq(set(&o, "ON_ERROR", "lifo"), -1, "choices of another option do not count");
    capture_end();
    cr_expect_eq(o.stats, ZP_STATS_JSON);
    cr_expect_eq(o.eviction, ZP_EVICT_CLOCK_PRO);
    cr_expect_eq(o.on_error, ZP_ON_ERROR_REPORT);
}

Test(values, pow2_and_uint_ranges)
{
    zp_options_t o;
    fresh(&o);
    cr_expect_eq(set(&o, "SHARDS", "1"), 0);
    cr_expect_eq(o.shards, 1);
    cr_expect_eq(set(&o, "SHARDS", "1024"), 0);
    cr_expect_eq(o.shards, 1024);
    cr_expect_eq(set(&o, "MAX_PER_SHARD", "1048576"), 0);
    cr_expect_eq(set(&o, "TLS_CACHE", "0"), 0);
    cr_expect_eq(o.tls_cache, 0);
    capture_start();
    static const char *const bad_shards[] = { "3", "0", "2048", "8K", "-4", "4.0", "0x4" };
    for (size_t i = 0; i < sizeof bad_shards / sizeof bad_shards[0]; i++)
        cr_expect_eq(set(&o, "SHARDS", bad_shards[i]), -1, "%s", bad_shards[i]);
    cr_expect_eq(set(&o, "MAX_PER_SHARD", "1048577"), -1);
    cr_expect_eq(set(&o, "TLS_CACHE", "65"), -1);
    cr_expect_eq(set(&o, "TLS_CACHE", "99999999999999999999999"), -1);
    capture_end();
    cr_expect_eq(o.shards, 1024);
    cr_expect_eq(o.max_per_shard, 1048576);
    cr_expect_eq(o.tls_cache, 0);
    cr_expect_eq(o.problems, 10);
}

Test(values, size_range_errors_keep_default)
{
    zp_options_t o;
    fresh(&o);
    capture_start();
    cr_expect_eq(set(&o, "THRESHOLD", "1K"), -1);
    cr_expect_eq(set(&o, "THRESHOLD", "2G"), -1);
    cr_expect_eq(set(&o, "MAX_POOLED", "lots"), -1);
    const char *err = capture_end();
    cr_expect_eq(o.threshold, 64 * ZP_KIB);
    cr_expect_eq(o.max_pooled, 64 * ZP_MIB);
    cr_expect_eq(o.source[ZP_OPT_THRESHOLD], ZP_SRC_DEFAULT);
    cr_expect(strstr(err, "zeropool: ZEROPOOL_THRESHOLD=1K is invalid: expected a size (K, M, G, "
                          "T suffixes) from 4K to 1G; keeping 64K\n"),
              "%s", err);
    cr_expect_eq(set(&o, "THRESHOLD", "4K"), 0);
    cr_expect_eq(set(&o, "max_pooled", "4GiB"), 0, "conf keys are accepted too");
    cr_expect_eq(o.threshold, 4 * ZP_KIB);
    cr_expect_eq(o.max_pooled, 4 * ZP_GIB);
}

Test(values, auto_only_for_auto_options)
{
    zp_options_t o;
    fresh(&o);
    cr_expect_eq(set(&o, "SHARDS", "64"), 0);
    cr_expect_eq(o.source[ZP_OPT_SHARDS], ZP_SRC_ENV);
    cr_expect_eq(set(&o, "SHARDS", "AUTO"), 0);
    cr_expect_eq(o.source[ZP_OPT_SHARDS], ZP_SRC_AUTO);
    /* zp_option_set detects the machine itself; the value must be the formula's, in range. */
    zp_autoconf_t ac;
    zp_autoconf_detect(&ac);
    cr_expect_eq(o.shards, ac.shards);
    capture_start();
    cr_expect_eq(set(&o, "THRESHOLD", "auto"), -1);
    const char *err = capture_end();
    cr_expect(strstr(err, "ZEROPOOL_THRESHOLD=auto is invalid"), "%s", err);
    cr_expect_eq(o.threshold, 64 * ZP_KIB);
}

Test(values, path_copied_and_bounded)
{
    zp_options_t o;
    fresh(&o);
    cr_expect_eq(o.stats_file[0], '\0');
    cr_expect_eq(set(&o, "STATS_FILE", "/tmp/zp-%p.txt"), 0);
    cr_expect_str_eq(o.stats_file, "/tmp/zp-%p.txt");
    char longest[ZP_PATH_MAX], too_long[ZP_PATH_MAX + 1];
    memset(longest, 'a', sizeof longest - 1);
    longest[sizeof longest - 1] = '\0';
    memset(too_long, 'b', sizeof too_long - 1);
    too_long[sizeof too_long - 1] = '\0';
    cr_expect_eq(set(&o, "STATS_FILE", longest), 0);
    cr_expect_str_eq(o.stats_file, longest);
    capture_start();
    cr_expect_eq(set(&o, "STATS_FILE", too_long), -1);
    const char *err = capture_end();
    cr_expect_str_eq(o.stats_file, longest, "a rejected path must leave the old one");
    cr_expect(strstr(err, "expected a path of at most 255 bytes"), "%s", err);
    cr_expect_eq(count_lines(err), 1, "a long value still gives one line: %s", err);
}

/* ---- ZEROPOOL_CONF ---- */

Test(conf, well_formed)
{
    zp_options_t o;
    fresh(&o);
    cr_expect_eq(zp_options_parse_conf(&o, "threshold:128K,shards:8, eviction : lifo ,pin:yes"), 0);
    cr_expect_eq(o.threshold, 128 * ZP_KIB);
    cr_expect_eq(o.shards, 8);
    cr_expect_eq(o.eviction, ZP_EVICT_LIFO);
    cr_expect_eq(o.pin, 1);
    cr_expect_eq(o.source[ZP_OPT_SHARDS], ZP_SRC_CONF);
    cr_expect_eq(o.source[ZP_OPT_GUARD], ZP_SRC_DEFAULT);
}

Test(conf, malformed_entries_reported_rest_applied)
{
    zp_options_t o;
    fresh(&o);
    capture_start();
    unsigned n = zp_options_parse_conf(&o, "threshold,:5,shards:8,max_pooled:,treshold:1M,pin:on,");
    const char *err = capture_end();
    cr_expect_eq(n, 4, "missing colon, empty key, empty value, unknown key: %s", err);
    cr_expect_eq(o.problems, 4);
    cr_expect_eq(count_lines(err), 4, "%s", err);
    cr_expect_eq(o.shards, 8);
    cr_expect_eq(o.pin, 1, "the entry before the trailing comma still counts");
    cr_expect_eq(o.threshold, 64 * ZP_KIB);
    cr_expect(strstr(err, "ZEROPOOL_CONF entry \"threshold\" has no ':'"), "%s", err);
    cr_expect(strstr(err, "ZEROPOOL_CONF entry \":5\" has an empty key"), "%s", err);
    cr_expect(strstr(err, "ZEROPOOL_CONF key max_pooled= is invalid"), "%s", err);
    cr_expect(strstr(err, "unknown ZEROPOOL_CONF key treshold; did you mean threshold?"), "%s",
              err);
}

Test(conf, empty_entries_are_quiet)
{
    zp_options_t o;
    fresh(&o);
    capture_start();
    cr_expect_eq(zp_options_parse_conf(&o, ""), 0);
    cr_expect_eq(zp_options_parse_conf(&o, ",,,"), 0);
    cr_expect_eq(zp_options_parse_conf(&o, "shards:16,"), 0);
    const char *err = capture_end();
    cr_expect_str_eq(err, "");
    cr_expect_eq(o.shards, 16);
}

/* ---- loading from an environment ---- */

Test(load, variable_beats_conf_whatever_the_order)
{
    char *env[] = { "ZEROPOOL_THRESHOLD=256K", "PATH=/bin",
                    "ZEROPOOL_CONF=threshold:128K,shards:8", NULL };
    zp_options_t o;
    capture_start();
    load(&o, env);
    cr_expect_str_eq(capture_end(), "");
    cr_expect_eq(o.threshold, 256 * ZP_KIB);
    cr_expect_eq(o.source[ZP_OPT_THRESHOLD], ZP_SRC_ENV);
    cr_expect_eq(o.shards, 8);
    cr_expect_eq(o.source[ZP_OPT_SHARDS], ZP_SRC_CONF);
    cr_expect_eq(o.pool_bytes, ac8.pool_bytes);
    cr_expect_eq(o.source[ZP_OPT_POOL_BYTES], ZP_SRC_AUTO);
    cr_expect_eq(o.source[ZP_OPT_GUARD], ZP_SRC_DEFAULT);
    cr_expect_eq(o.problems, 0);
}

Test(load, invalid_variable_keeps_conf_value)
{
    char *env[] = { "ZEROPOOL_CONF=shards:8", "ZEROPOOL_SHARDS=3", NULL };
    zp_options_t o;
    capture_start();
    load(&o, env);
    const char *err = capture_end();
    cr_expect_eq(o.shards, 8);
    cr_expect_str_eq(err, "zeropool: ZEROPOOL_SHARDS=3 is invalid: expected a power of two from 1 "
                          "to 1024 or auto; keeping 8\n");
}

Test(load, exact_error_lines)
{
    char *env[] = { "ZEROPOOL_SHARDS=3", "ZEROPOOL_EVICTION=fifo", NULL };
    zp_options_t o;
    capture_start();
    load(&o, env);
    const char *err = capture_end();
    cr_expect_str_eq(err, "zeropool: ZEROPOOL_SHARDS=3 is invalid: expected a power of two from 1 "
                          "to 1024 or auto; keeping 4\n"
                          "zeropool: ZEROPOOL_EVICTION=fifo is invalid: expected one of lifo, "
                          "clock-pro; keeping clock-pro\n");
    cr_expect_eq(o.problems, 2);
    cr_expect_eq(o.shards, ac8.shards);
    cr_expect_eq(o.source[ZP_OPT_SHARDS], ZP_SRC_AUTO);
}

Test(load, unknown_variable_did_you_mean)
{
    char *env[] = { "ZEROPOOL_TRESHOLD=1M", "ZEROPOOL_GAURD=0", "ZEROPOOL_FOO=1",
                    "ZEROPOOL_THRESHOLDSIZE=1", "ZEROPOOL_stats=1", NULL };
    zp_options_t o;
    capture_start();
    load(&o, env);
    const char *err = capture_end();
    cr_expect_str_eq(err, "zeropool: unknown variable ZEROPOOL_TRESHOLD; did you mean "
                          "ZEROPOOL_THRESHOLD?\n"
                          "zeropool: unknown variable ZEROPOOL_GAURD; did you mean "
                          "ZEROPOOL_GUARD?\n"
                          "zeropool: unknown variable ZEROPOOL_FOO (see `zeropool config`)\n"
                          "zeropool: unknown variable ZEROPOOL_THRESHOLDSIZE (see `zeropool "
                          "config`)\n");
    cr_expect_eq(o.problems, 4);
    cr_expect_eq(o.stats, ZP_STATS_TEXT, "names are matched without regard to case");
    cr_expect_eq(o.threshold, 64 * ZP_KIB);
    cr_expect_eq(o.guard, 1);
}

Test(load, only_the_exact_prefix_counts)
{
    char *env[] = { "zeropool_threshold=1", "XZEROPOOL_FOO=1", "ZEROPOOLFOO=1", "ZEROPOOL",
                    "ZEROPOOL_CONF=", NULL };
    zp_options_t o;
    capture_start();
    load(&o, env);
    cr_expect_str_eq(capture_end(), "");
    cr_expect_eq(o.problems, 0);
}

Test(load, first_duplicate_wins_and_one_message_each)
{
    char *env[] = { "ZEROPOOL_SHARDS=16", "ZEROPOOL_SHARDS=5", "ZEROPOOL_PIN=maybe", NULL };
    zp_options_t o;
    capture_start();
    load(&o, env);
    const char *err = capture_end();
    cr_expect_eq(o.shards, 16);
    cr_expect_eq(count_lines(err), 1, "%s", err);
    cr_expect(strstr(err, "ZEROPOOL_PIN=maybe"), "%s", err);
}

Test(load, hostile_value_stays_on_one_line)
{
    char value[400] = "ZEROPOOL_EVICTION=a\nb\033[31m";
    memset(value + strlen(value), 'x', 300);
    char *env[] = { value, NULL };
    zp_options_t o;
    capture_start();
    load(&o, env);
    const char *err = capture_end();
    cr_expect_eq(count_lines(err), 1, "%s", err);
    cr_expect(strstr(err, "ZEROPOOL_EVICTION=a?b?[31mxxx"), "%s", err);
    cr_expect(strstr(err, "x...") && strstr(err, "keeping clock-pro\n"), "%s", err);
}

Test(load, auto_value_and_tls_bytes_follow_budget)
{
    char *env[] = { "ZEROPOOL_POOL_BYTES=8M", "ZEROPOOL_CONF=tls_cache:auto", NULL };
    zp_options_t o;
    load(&o, env);
    cr_expect_eq(o.pool_bytes, 8 * ZP_MIB);
    cr_expect_eq(o.tls_cache, ac8.tls_cache);
    cr_expect_eq(o.source[ZP_OPT_TLS_CACHE], ZP_SRC_AUTO);
    cr_expect_eq(o.tls_cache_bytes, 2 * ZP_MIB, "a thread cache holds at most a quarter of 8M");

    char *env2[] = { "ZEROPOOL_POOL_BYTES=8M", "ZEROPOOL_TLS_CACHE_BYTES=6M", NULL };
    load(&o, env2);
    cr_expect_eq(o.tls_cache_bytes, 6 * ZP_MIB, "a value set by hand is not re-derived");
}

/* A setuid program's environment is the invoking user's: none of it counts, not even the
 * non-path settings (ZEROPOOL_STATS would print the program's statistics to that user). */
Test(load, secure_mode_ignores_the_environment)
{
    char *env[] = { "ZEROPOOL_STATS_FILE=/tmp/evil", "ZEROPOOL_CONF=stats_file:/tmp/evil2,pin:1",
                    "ZEROPOOL_STATS=json", "ZEROPOOL_THRESHOLD=1M", "ZEROPOOL_VERBOSE=1",
                    "ZEROPOOL_CONF_FILE=/tmp/evil.conf", "ZEROPOOL_LIB=/x/libzeropool.so", NULL };
    zp_options_t o, d;
    zp_autoconf_compute(8, 64 * ZP_GIB, &ac8);
    zp_options_defaults(&d, &ac8);
    capture_start();
    zp_options_load_ex(&o, env, true, &ac8);
    const char *err = capture_end();
    cr_expect(o.secure);
    cr_expect_str_eq(o.stats_file, "");
    cr_expect_eq(o.source[ZP_OPT_STATS_FILE], ZP_SRC_DEFAULT);
    cr_expect_eq(o.stats, ZP_STATS_OFF, "ZEROPOOL_STATS is ignored too");
    cr_expect_eq(o.pin, d.pin, "a ZEROPOOL_CONF key is ignored");
    cr_expect_eq(o.threshold, 64 * ZP_KIB);
    cr_expect_eq(o.verbose, 0);
    for (int id = 0; id < ZP_OPT_COUNT; id++)
        cr_expect(o.source[id] == ZP_SRC_DEFAULT || o.source[id] == ZP_SRC_AUTO,
                  "%s came from source %d", zp_opt_table[id].name, (int)o.source[id]);
    cr_expect_eq(o.problems, 0, "ignoring is the policy, not a bad setting");
    cr_expect_eq(count_lines(err), 1, "%s", err);
    cr_expect(strstr(err, "zeropool: secure-execution mode (setuid or setgid program): "
                          "ZEROPOOL_STATS_FILE and 5 other variables ignored; only "
                          "/etc/zeropool.conf counts\n"),
              "%s", err);
    cr_expect(strstr(err, "/tmp/evil") == NULL, "values are never echoed: %s", err);

    capture_start();
    zp_options_load_ex(&o, env, false, &ac8);
    cr_expect_str_eq(capture_end(), "");
    cr_expect(!o.secure);
    cr_expect_str_eq(o.stats_file, "/tmp/evil");
    cr_expect_eq(o.threshold, ZP_MIB);
}

/* The project's own tool and build variables (the command's, the test suite's, the private
 * jemalloc build's) share the prefix but are no settings: a program run with them set, as
 * under the test suite or a build, must not print a line for each. */
Test(load, tool_variables_are_not_settings)
{
    zp_options_t o;
    zp_autoconf_compute(8, 64 * ZP_GIB, &ac8);
    char *env[] = { "ZEROPOOL_LIB=/x/libzeropool.so", "ZEROPOOL_CONFIG_HELPER=/x/c",
                    "ZEROPOOL_STATUS_HELPER=/x/s", "ZEROPOOL_LONG_TESTS=1",
                    "ZEROPOOL_JEMALLOC_CACHE=/tmp/je", "ZEROPOOL_DEBIAN_MIRROR=http://m/debian",
                    "ZEROPOOL_DEBIAN_SUITE=bookworm", NULL };
    for (int secure = 0; secure < 2; secure++) {
        capture_start();
        zp_options_load_ex(&o, env, secure, &ac8);
        cr_expect_str_eq(capture_end(), "", "secure %d", secure);
        cr_expect_eq(o.problems, 0);
    }
}

Test(load, secure_mode_note_only_for_settings)
{
    zp_options_t o;
    zp_autoconf_compute(8, 64 * ZP_GIB, &ac8);
    char *none[] = { "PATH=/usr/bin", "ZEROPOOL_LIB=/x/libzeropool.so",
                     "ZEROPOOL_CONFIG_HELPER=/x/zeropool-config", NULL };
    capture_start();
    zp_options_load_ex(&o, none, true, &ac8);
    cr_expect_str_eq(capture_end(), "", "the command's own variables are not settings");

    char *one[] = { "ZEROPOOL_SHARDS=4", NULL };
    capture_start();
    zp_options_load_ex(&o, one, true, &ac8);
    const char *err = capture_end();
    cr_expect_eq(o.source[ZP_OPT_SHARDS], ZP_SRC_AUTO);
    cr_expect_str_eq(err, "zeropool: secure-execution mode (setuid or setgid program): "
                          "ZEROPOOL_SHARDS ignored; only /etc/zeropool.conf counts\n");
}

Test(load, public_load_reads_given_env)
{
    char *env[] = { "ZEROPOOL_VERBOSE=1", NULL };
    zp_options_t o;
    zp_options_load(&o, env);
    cr_expect_eq(o.verbose, 1);
    cr_expect(!o.secure, "the test runner is not setuid");
}

Test(load, environ_when_envp_is_null)
{
    cr_assert_eq(setenv("ZEROPOOL_MAX_POOLED", "128M", 1), 0);
    zp_options_t o;
    zp_options_load(&o, NULL);
    cr_expect_eq(o.max_pooled, 128 * ZP_MIB);
    cr_expect_eq(o.source[ZP_OPT_MAX_POOLED], ZP_SRC_ENV);
}

/* ---- format and dump ---- */

Test(dump, every_option_with_its_source)
{
    char *env[] = { "ZEROPOOL_CONF=pin:on", "ZEROPOOL_STATS=json", "ZEROPOOL_STATS_FILE=/x", NULL };
    zp_options_t o;
    load(&o, env);
    int fd = memfd_create("dump", 0);
    cr_assert(fd >= 0);
    zp_options_dump(&o, fd);
    char out[8192];
    lseek(fd, 0, SEEK_SET);
    ssize_t n = read(fd, out, sizeof out - 1);
    cr_assert(n > 0);
    out[n] = '\0';
    close(fd);
    cr_expect_eq(count_lines(out), ZP_OPT_COUNT);
    for (int id = 0; id < ZP_OPT_COUNT; id++) {
        char want[64];
        snprintf(want, sizeof want, "ZEROPOOL_%s=", zp_opt_table[id].name);
        cr_expect(strstr(out, want), "missing %s in\n%s", want, out);
    }
    cr_expect(strstr(out, "ZEROPOOL_THRESHOLD=64K  (default)\n"), "%s", out);
    cr_expect(strstr(out, "ZEROPOOL_SHARDS=4  (auto)\n"), "%s", out);
    cr_expect(strstr(out, "ZEROPOOL_POOL_BYTES=512M  (auto: 65536 MiB physical memory)\n"), "%s", out);
    cr_expect(strstr(out, "ZEROPOOL_PIN=on  (ZEROPOOL_CONF)\n"), "%s", out);
    cr_expect(strstr(out, "ZEROPOOL_STATS=json  (env)\n"), "%s", out);
    cr_expect(strstr(out, "ZEROPOOL_STATS_FILE=/x  (env)\n"), "%s", out);
    cr_expect(strstr(out, "ZEROPOOL_EVICTION=clock-pro  (default)\n"), "%s", out);
}

Test(dump, format_each_type_and_truncate)
{
    zp_options_t o;
    fresh(&o);
    char buf[64];
    cr_expect_eq(zp_option_format(&o, ZP_OPT_THRESHOLD, buf, sizeof buf), 3);
    cr_expect_str_eq(buf, "64K");
    zp_option_format(&o, ZP_OPT_GUARD, buf, sizeof buf);
    cr_expect_str_eq(buf, "on");
    zp_option_format(&o, ZP_OPT_EVICTION, buf, sizeof buf);
    cr_expect_str_eq(buf, "clock-pro");
    zp_option_format(&o, ZP_OPT_STATS, buf, sizeof buf);
    cr_expect_str_eq(buf, "0");
    zp_option_format(&o, ZP_OPT_MAX_PER_SHARD, buf, sizeof buf);
    cr_expect_str_eq(buf, "0");
    cr_expect_eq(zp_option_format(&o, ZP_OPT_STATS_FILE, buf, sizeof buf), 0);
    cr_expect_str_eq(buf, "");
    cr_expect_eq(zp_option_format(&o, ZP_OPT_THRESHOLD, buf, 3), 2);
    cr_expect_str_eq(buf, "64");
    cr_expect_eq(zp_option_format(&o, ZP_OPT_THRESHOLD, buf, 0), 0);
    /* Every formatted value parses back to itself: the dump can be pasted as an environment. */
    for (int id = 0; id < ZP_OPT_COUNT; id++) {
        zp_options_t copy = o;
        size_t n = zp_option_format(&o, (zp_opt_id_t)id, buf, sizeof buf);
        const char *name = zp_opt_table[id].name;
        cr_expect_eq(zp_option_set(&copy, name, strlen(name), buf, n, ZP_SRC_ENV), 0, "%s=%s",
                     name, buf);
        cr_expect_eq(memcmp(&copy, &o, offsetof(zp_options_t, source)), 0, "%s=%s", name, buf);
    }
}

/* ---- auto-configuration ---- */

Test(autoconf, formulas_at_several_cpu_counts)
{
    static const struct {
        unsigned cpus;
        uint64_t shards, tls, pool, tlsb;
    } rows[] = {
        { 1, 4, 2, 256 * ZP_MIB, 16 * ZP_MIB },
        { 2, 4, 2, 256 * ZP_MIB, 16 * ZP_MIB },
        { 3, 4, 2, 256 * ZP_MIB, 16 * ZP_MIB },
        { 8, 4, 6, 512 * ZP_MIB, 32 * ZP_MIB },
        { 64, 32, 8, 4 * ZP_GIB, 32 * ZP_MIB },
        { 256, 128, 8, 8 * ZP_GIB, 16 * ZP_MIB }, /* budget capped at memory / 8 */
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        zp_autoconf_t ac;
        zp_autoconf_compute(rows[i].cpus, 64 * ZP_GIB, &ac);
        cr_expect_eq(ac.cpus, rows[i].cpus);
        cr_expect_eq(ac.shards, rows[i].shards, "cpus %u", rows[i].cpus);
        cr_expect_eq(ac.tls_cache, rows[i].tls, "cpus %u", rows[i].cpus);
        cr_expect_eq(ac.pool_bytes, rows[i].pool, "cpus %u", rows[i].cpus);
        cr_expect_eq(ac.tls_cache_bytes, rows[i].tlsb, "cpus %u", rows[i].cpus);
    }
}

Test(autoconf, tiny_and_unknown_memory)
{
    zp_autoconf_t ac;
    zp_autoconf_compute(4, 64 * ZP_MIB, &ac);
    cr_expect_eq(ac.pool_bytes, 16 * ZP_MIB, "never below 16 MiB");
    cr_expect_eq(ac.tls_cache_bytes, 4 * ZP_MIB);
    zp_autoconf_compute(8, 1 * ZP_GIB, &ac);
    cr_expect_eq(ac.pool_bytes, 128 * ZP_MIB, "memory / 8");
    zp_autoconf_compute(256, 0, &ac);
    cr_expect_eq(ac.pool_bytes, 16 * ZP_GIB, "unknown memory does not cap the budget");
    zp_autoconf_compute(0, 64 * ZP_GIB, &ac);
    cr_expect_eq(ac.cpus, 1, "zero CPUs means one");
}

Test(autoconf, auto_values_always_within_option_ranges)
{
    static const uint64_t mems[] = { 0, 32 * ZP_MIB, 4 * ZP_GIB, 64 * ZP_GIB, 1ull << 50 };
    for (unsigned cpus = 1; cpus <= 4096; cpus += (cpus < 64 ? 1 : 61)) {
        for (size_t m = 0; m < sizeof mems / sizeof mems[0]; m++) {
            zp_autoconf_t ac;
            zp_options_t o;
            zp_autoconf_compute(cpus, mems[m], &ac);
            zp_options_defaults(&o, &ac);
            for (int id = 0; id < ZP_OPT_COUNT; id++) {
                const zp_opt_desc_t *d = &zp_opt_table[id];
                if (d->def != ZP_AUTO)
                    continue;
                char buf[64];
                size_t n = zp_option_format(&o, (zp_opt_id_t)id, buf, sizeof buf);
                zp_options_t copy = o;
                capture_start();
                int rc = zp_option_set(&copy, d->name, strlen(d->name), buf, n, ZP_SRC_ENV);
                capture_end();
                cr_assert_eq(rc, 0, "cpus %u mem %llu: %s=%s out of range", cpus,
                             (unsigned long long)mems[m], d->name, buf);
            }
            cr_assert(o.tls_cache_bytes <= o.pool_bytes);
        }
    }
}

Test(autoconf, detect_sees_restricted_affinity)
{
    cpu_set_t mask;
    cr_assert_eq(sched_getaffinity(0, sizeof mask, &mask), 0);
    zp_autoconf_t ac;
    zp_autoconf_detect(&ac);
    cr_expect_eq(ac.affinity_cpus, (unsigned)CPU_COUNT(&mask));
    cr_expect(ac.cpus >= 1 && ac.cpus <= ac.affinity_cpus);
    cr_expect(ac.phys_bytes > 0);

    int first = 0;
    while (!CPU_ISSET(first, &mask))
        first++;
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(first, &one);
        if (sched_setaffinity(0, sizeof one, &one) != 0)
            _exit(2);
        zp_autoconf_t c;
        zp_autoconf_detect(&c);
        _exit(c.cpus == 1 && c.affinity_cpus == 1 && c.shards == 4 && c.tls_cache == 2 ? 0 : 1);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child saw more than one CPU");
}

/* A fake cgroup v2 tree in a temporary directory. */
static void write_file(const char *dir, const char *rel, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    FILE *f = fopen(path, "w");
    cr_assert(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

Test(autoconf, cgroup_limits_are_minimum_over_ancestors)
{
    char root[] = "/tmp/zp-cgroup-XXXXXX";
    cr_assert(mkdtemp(root));
    char dir[600];
    snprintf(dir, sizeof dir, "%s/a", root);
    cr_assert_eq(mkdir(dir, 0700), 0);
    snprintf(dir, sizeof dir, "%s/a/b", root);
    cr_assert_eq(mkdir(dir, 0700), 0);
    write_file(root, "cpu.max", "max 100000\n");
    write_file(root, "a/cpu.max", "300000 100000\n");
    write_file(root, "a/b/cpu.max", "150000 100000\n"); /* 1.5 CPUs: rounds up to 2 */
    write_file(root, "a/memory.max", "1073741824\n");
    write_file(root, "a/b/memory.max", "max\n");

    unsigned q;
    uint64_t mem;
    zp_autoconf_cgroup(root, "12:memory:/elsewhere\n0::/a/b\n", &q, &mem);
    cr_expect_eq(q, 2);
    cr_expect_eq(mem, ZP_GIB, "the parent's memory.max applies to the child");

    zp_autoconf_cgroup(root, "0::/a/gone\n", &q, &mem);
    cr_expect_eq(q, 3, "a missing cgroup still inherits its ancestors' limits");
    zp_autoconf_cgroup(root, "0::/\n", &q, &mem);
    cr_expect_eq(q, 0);
    cr_expect_eq(mem, 0);
    zp_autoconf_cgroup(root, "4:cpu:/a/b\n", &q, &mem);
    cr_expect_eq(q, 0, "cgroup v1 lines are not read");

    write_file(root, "a/b/cpu.max", "50000 100000\n");
    write_file(root, "a/cpu.max", "garbage\n");
    zp_autoconf_cgroup(root, "0::/a/b/\n", &q, &mem);
    cr_expect_eq(q, 1, "half a CPU is one");

    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    cr_expect_eq(system(cmd), 0);
}

/* cgroup v1 (this machine's kind): memory.limit_in_bytes of the memory controller's path,
 * the nearest limit up the hierarchy; "unlimited" (near 2^63) is none. */
Test(autoconf, cgroup_v1_memory_limit_nearest_up_the_hierarchy)
{
    char root[] = "/tmp/zp-cgroup1-XXXXXX";
    cr_assert(mkdtemp(root));
    char dir[600];
    const char *dirs[] = { "memory", "memory/a", "memory/a/b" };
    for (unsigned i = 0; i < 3; i++) {
        snprintf(dir, sizeof dir, "%s/%s", root, dirs[i]);
        cr_assert_eq(mkdir(dir, 0700), 0);
    }
    write_file(root, "memory/memory.limit_in_bytes", "9223372036854771712\n");
    write_file(root, "memory/a/memory.limit_in_bytes", "536870912\n");
    write_file(root, "memory/a/b/memory.limit_in_bytes", "9223372036854771712\n");
    cr_expect_eq(zp_autoconf_cgroup_v1_memory(root, "5:devices:/\n4:memory:/a/b\n0::/\n"),
                 512 * ZP_MIB, "the parent's limit applies to the child");
    cr_expect_eq(zp_autoconf_cgroup_v1_memory(root, "3:cpuacct,memory:/a/b/\n"), 512 * ZP_MIB,
                 "memory listed with another controller");
    cr_expect_eq(zp_autoconf_cgroup_v1_memory(root, "4:memory:/a/gone\n"), 512 * ZP_MIB,
                 "a missing cgroup still inherits its ancestors' limits");
    write_file(root, "memory/a/b/memory.limit_in_bytes", "262144000\n");
    cr_expect_eq(zp_autoconf_cgroup_v1_memory(root, "4:memory:/a/b\n"), 250 * ZP_MIB);
    cr_expect_eq(zp_autoconf_cgroup_v1_memory(root, "4:memory:/\n"), 0, "unlimited is none");
    cr_expect_eq(zp_autoconf_cgroup_v1_memory(root, "0::/a/b\n"), 0, "no v1 memory line");
    cr_expect_eq(zp_autoconf_cgroup_v1_memory(root, "4:memoryx:/a/b\n"), 0, "not the controller");
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    cr_expect_eq(system(cmd), 0);
}

/* The smallest limit sets the budget, and the verdict names it. */
Test(autoconf, smallest_memory_limit_sets_the_budget)
{
    zp_autoconf_t ac;
    zp_autoconf_compute(2, 24 * ZP_GIB, &ac);
    cr_expect_eq(ac.mem_source, ZP_MEM_PHYS);
    cr_expect_eq(ac.pool_bytes, 256 * ZP_MIB);
    ac.mem_limit[ZP_MEM_AVAILABLE] = 20 * ZP_GIB;
    ac.mem_limit[ZP_MEM_CGROUP_V1] = 250 * ZP_MIB;
    ac.mem_limit[ZP_MEM_CGROUP_V2] = 1 * ZP_GIB;
    ac.mem_limit[ZP_MEM_RLIMIT_AS] = 4 * ZP_GIB;
    zp_autoconf_pick_memory(&ac);
    cr_expect_eq(ac.mem_source, ZP_MEM_CGROUP_V1);
    cr_expect_eq(ac.phys_bytes, 250 * ZP_MIB);
    cr_expect_eq(ac.pool_bytes, 250 * ZP_MIB / 8, "an eighth of the limit");
    cr_expect_eq(ac.mem_limit[ZP_MEM_RLIMIT_AS], 4 * ZP_GIB, "the other limits are kept");
    char text[96];
    zp_autoconf_memory_text(&ac, ac.mem_source, text, sizeof text);
    cr_expect_str_eq(text, "250 MiB (cgroup v1 memory.limit_in_bytes)");
    ac.mem_limit[ZP_MEM_CGROUP_V1] = 0;
    ac.mem_limit[ZP_MEM_RLIMIT_DATA] = 512 * ZP_MIB;
    zp_autoconf_pick_memory(&ac);
    cr_expect_eq(ac.mem_source, ZP_MEM_RLIMIT_DATA);
    cr_expect_eq(ac.pool_bytes, 64 * ZP_MIB);
    zp_options_t o;
    zp_options_defaults(&o, &ac);
    cr_expect_eq(o.mem_source, ZP_MEM_RLIMIT_DATA, "the options keep the verdict");
    cr_expect_eq(o.mem_bytes, 512 * ZP_MIB);
}

/* RLIMIT_AS counts as a limit on memory: detected in a child that sets it. */
Test(autoconf, detect_sees_rlimit_as)
{
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        struct rlimit r = { 1024 * ZP_MIB, 1024 * ZP_MIB };
        if (setrlimit(RLIMIT_AS, &r) != 0)
            _exit(2);
        zp_autoconf_t ac;
        zp_autoconf_detect(&ac);
        _exit(ac.mem_source == ZP_MEM_RLIMIT_AS && ac.phys_bytes == 1024 * ZP_MIB &&
                      ac.pool_bytes == 128 * ZP_MIB
                  ? 0
                  : 1);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "a 1 GiB RLIMIT_AS did not set a 128 MiB budget (status 0x%x)", status);
}

/* `zeropool config` says which limit set the budget. */
Test(autoconf, zeropool_config_shows_the_verdict)
{
    const char *helper = getenv("ZP_CONFIG_HELPER");
#if defined(__SANITIZE_ADDRESS__)
    helper = NULL; /* an ASan build cannot start under a 768 MiB RLIMIT_AS */
#endif
    if (!helper) {
        cr_skip_test("ZP_CONFIG_HELPER is not set (run through meson test) or ASan build");
        return;
    }
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "prlimit --as=805306368 %s 2>/dev/null", helper);
    FILE *f = popen(cmd, "r");
    cr_assert_not_null(f);
    char line[256];
    bool seen = false;
    while (fgets(line, sizeof line, f))
        seen |= strstr(line, "memory           768 MiB (RLIMIT_AS): sets pool_bytes") != NULL;
    cr_expect_eq(pclose(f), 0);
    cr_expect(seen, "no verdict line naming RLIMIT_AS");
}

/* ---- the message formatter ---- */

static const char *fmt_result(zp_buf_t *b)
{
    b->p[b->len < b->cap ? b->len : b->cap - 1] = '\0';
    return b->p;
}

Test(fmt, sizes_numbers_hex_json)
{
    static const struct {
        uint64_t v;
        const char *s;
    } sizes[] = {
        { 0, "0" }, { 1000, "1000" }, { 1536, "1536" }, { 65536, "64K" }, { ZP_MIB, "1M" },
        { 3 * ZP_GIB, "3G" }, { 1024 * ZP_GIB, "1T" }, { 1ull << 50, "1024T" },
        { 64 * ZP_MIB + 4096, "65540K" },
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char arr[32];
        zp_buf_t b = { arr, 0, sizeof arr - 1 };
        zp_buf_size(&b, sizes[i].v);
        cr_expect_str_eq(fmt_result(&b), sizes[i].s);
    }
    char arr[128];
    zp_buf_t b = { arr, 0, sizeof arr - 1 };
    zp_buf_u64(&b, UINT64_MAX);
    zp_buf_chr(&b, ' ');
    zp_buf_i64(&b, INT64_MIN);
    zp_buf_chr(&b, ' ');
    zp_buf_hex(&b, 0);
    zp_buf_chr(&b, ' ');
    zp_buf_hex(&b, 0xdeadbeefull);
    cr_expect_str_eq(fmt_result(&b),
                     "18446744073709551615 -9223372036854775808 0x0 0xdeadbeef");
    b.len = 0;
    zp_buf_json_str(&b, "a\"b\\c\n\x01\x7f" "é");
    cr_expect_str_eq(fmt_result(&b), "a\\\"b\\\\c\\u000a\\u0001\x7f" "é");
}

Test(fmt, truncates_and_flushes)
{
    char arr[4];
    zp_buf_t b = ZP_BUF_INIT(arr);
    zp_buf_str(&b, "hello");
    cr_expect_eq(b.len, 4);
    cr_expect_eq(memcmp(arr, "hell", 4), 0);
    int fd = memfd_create("fmt", 0);
    cr_assert(fd >= 0);
    errno = 42;
    cr_expect_eq(zp_buf_flush(&b, fd), 0);
    cr_expect_eq(errno, 42, "flush keeps errno");
    cr_expect_eq(b.len, 0);
    zp_write_str(fd, "!\n");
    char out[16] = { 0 };
    lseek(fd, 0, SEEK_SET);
    cr_expect_eq(read(fd, out, sizeof out), 6);
    cr_expect_str_eq(out, "hell!\n");
    close(fd);
    cr_expect_eq(zp_buf_flush(&b, -1), 0, "nothing to write is not an error");
    zp_buf_chr(&b, 'x');
    errno = 42;
    cr_expect_eq(zp_buf_flush(&b, -1), -1);
    cr_expect_eq(errno, 42, "a failed write keeps errno too");
}

/* ---- operating a service: the system-wide file, implied JSON, times, boolean stats ---- */

static char sys_path[64];

static void write_sys(const char *text)
{
    snprintf(sys_path, sizeof sys_path, "/tmp/zp-unit-sys-%d.conf", (int)getpid());
    FILE *f = fopen(sys_path, "w");
    cr_assert(f != NULL);
    fputs(text, f);
    fclose(f);
}

Test(sysconf, precedence_file_conf_env)
{
    write_sys("# comment\nthreshold:128K\nshards:2, pin:on # trailing comment\nguard:off\n");
    char file_var[96];
    snprintf(file_var, sizeof file_var, "ZEROPOOL_CONF_FILE=%s", sys_path);
    char *env[] = { file_var, "ZEROPOOL_CONF=shards:4,pin:off", "ZEROPOOL_PIN=1", NULL };
    zp_options_t o;
    capture_start();
    load(&o, env);
    const char *err = capture_end();
    cr_expect_str_eq(err, "");
    cr_expect_eq(o.threshold, 128 * ZP_KIB);
    cr_expect_eq(o.source[ZP_OPT_THRESHOLD], ZP_SRC_FILE);
    cr_expect_eq(o.guard, 0, "a file value nobody overrides stays");
    cr_expect_eq(o.shards, 4, "ZEROPOOL_CONF wins over the file");
    cr_expect_eq(o.source[ZP_OPT_SHARDS], ZP_SRC_CONF);
    cr_expect_eq(o.pin, 1, "a variable wins over both");
    cr_expect_eq(o.source[ZP_OPT_PIN], ZP_SRC_ENV);
    cr_expect_eq(o.sys_conf_state, ZP_SYS_CONF_READ);
    cr_expect_str_eq(o.sys_conf, sys_path);
    unlink(sys_path);
}

/* Every process on the machine reads the system-wide file: its problems change no program's
 * output. They are kept in memory, and zp_options_say_verdicts shows them when asked. */
Test(sysconf, bad_entry_kept_in_memory_named_with_the_file_and_hint)
{
    write_sys("threshold:128K;pin:on\n");
    char file_var[96];
    snprintf(file_var, sizeof file_var, "ZEROPOOL_CONF_FILE=%s", sys_path);
    char *env[] = { file_var, NULL };
    zp_options_t o;
    capture_start();
    load(&o, env);
    cr_expect_str_eq(capture_end(), "", "nothing on stderr");
    cr_expect_eq(o.threshold, 64 * ZP_KIB, "the secure default stays");
    cr_expect_eq(o.nverdicts, 2);
    capture_start();
    zp_options_say_verdicts(&o, 2);
    const char *err = capture_end();
    cr_expect(strstr(err, " key threshold=128K;pin:on is invalid") != NULL, "%s", err);
    cr_expect(strstr(err, sys_path) != NULL, "%s", err);
    cr_expect(strstr(err, "separates entries with ','") != NULL, "%s", err);
    cr_expect_eq(count_lines(err), 2, "%s", err);
    unlink(sys_path);
}

Test(sysconf, many_bad_entries_counted_past_the_kept_ones)
{
    char text[1024] = "";
    for (int i = 0; i < ZP_VERDICTS + 3; i++)
        strcat(text, "nosuchkey:1\n");
    write_sys(text);
    char file_var[96];
    snprintf(file_var, sizeof file_var, "ZEROPOOL_CONF_FILE=%s", sys_path);
    char *env[] = { file_var, NULL };
    zp_options_t o;
    capture_start();
    load(&o, env);
    cr_expect_str_eq(capture_end(), "");
    cr_expect_eq(o.nverdicts, ZP_VERDICTS + 3);
    capture_start();
    zp_options_say_verdicts(&o, 2);
    const char *err = capture_end();
    cr_expect_eq(count_lines(err), ZP_VERDICTS + 1, "%s", err);
    cr_expect(strstr(err, "and 3 more problems") != NULL, "%s", err);
    unlink(sys_path);
}

Test(sysconf, absent_file_is_silent_and_secure_mode_ignores_the_override)
{
    char *env[] = { "ZEROPOOL_CONF_FILE=/nonexistent/zeropool.conf", NULL };
    zp_options_t o;
    capture_start();
    load(&o, env);
    cr_expect_str_eq(capture_end(), "");
    cr_expect_eq(o.sys_conf_state, ZP_SYS_CONF_ABSENT);
    /* In secure mode the override is not even looked at: only /etc/zeropool.conf counts. */
    write_sys("threshold:128K\n");
    char file_var[96];
    snprintf(file_var, sizeof file_var, "ZEROPOOL_CONF_FILE=%s", sys_path);
    char *env2[] = { file_var, NULL };
    capture_start();
    zp_options_load_ex(&o, env2, true, &ac8);
    capture_end();
    cr_expect_eq(o.threshold, 64 * ZP_KIB);
    cr_expect_str_neq(o.sys_conf, sys_path);
    unlink(sys_path);
}

Test(sysconf, stats_file_alone_means_json)
{
    char *env[] = { "ZEROPOOL_STATS_FILE=/tmp/x.json", NULL };
    zp_options_t o;
    load(&o, env);
    cr_expect_eq(o.stats, ZP_STATS_JSON);
    char *env2[] = { "ZEROPOOL_STATS_FILE=/tmp/x.json", "ZEROPOOL_STATS=1", NULL };
    load(&o, env2);
    cr_expect_eq(o.stats, ZP_STATS_TEXT, "an explicit format stays");
}

Test(sysconf, stats_takes_boolean_words)
{
    static const char *const on[] = { "on", "yes", "true", "1", "ON" };
    static const char *const off[] = { "off", "no", "false", "0" };
    zp_options_t o;
    for (size_t i = 0; i < sizeof on / sizeof on[0]; i++) {
        fresh(&o);
        cr_expect_eq(set(&o, "STATS", on[i]), 0, "%s", on[i]);
        cr_expect_eq(o.stats, ZP_STATS_TEXT, "%s", on[i]);
    }
    for (size_t i = 0; i < sizeof off / sizeof off[0]; i++) {
        fresh(&o);
        o.stats = ZP_STATS_JSON;
        cr_expect_eq(set(&o, "STATS", off[i]), 0, "%s", off[i]);
        cr_expect_eq(o.stats, ZP_STATS_OFF, "%s", off[i]);
    }
}

Test(sysconf, command_variables_are_not_unknown)
{
    char *env[] = { "ZEROPOOL_LIB=/x.so", "ZEROPOOL_CONFIG_HELPER=/y", "ZEROPOOL_CONF_FILE=",
                    NULL };
    zp_options_t o;
    capture_start();
    load(&o, env);
    cr_expect_str_eq(capture_end(), "");
    cr_expect_eq(o.problems, 0);
}

/* Strict mode: the load itself prints nothing (the library's one line comes from
 * zp_options_say_strict); the first problem and the count are kept. */
Test(strict, env_problems_held_and_counted)
{
    char *env[] = { "ZEROPOOL_STRICT=1", "ZEROPOOL_THRESHOLD=12x", "ZEROPOOL_NOPE=1",
                    "ZEROPOOL_CONF_FILE=", NULL };
    zp_options_t o;
    capture_start();
    load(&o, env);
    cr_expect_str_eq(capture_end(), "", "nothing on stderr while loading");
    cr_expect_eq(o.strict, 1);
    cr_expect_eq(zp_options_bad(&o), 2);
    cr_expect(strstr(o.first_bad, "ZEROPOOL_THRESHOLD=12x is invalid") != NULL, "%s", o.first_bad);
    capture_start();
    zp_options_say_strict(&o, 2);
    const char *err = capture_end();
    cr_expect_eq(count_lines(err), 1, "%s", err);
    cr_expect(strstr(err, "zeropool: strict mode: ZEROPOOL_THRESHOLD=12x") == err, "%s", err);
    cr_expect(strstr(err, "(2 bad settings)") != NULL, "%s", err);
}

Test(strict, off_prints_as_before_and_good_config_is_unchanged)
{
    char *bad[] = { "ZEROPOOL_THRESHOLD=12x", "ZEROPOOL_CONF_FILE=", NULL };
    zp_options_t o, plain;
    capture_start();
    load(&o, bad);
    cr_expect_eq(count_lines(capture_end()), 1, "off: the warning is printed");
    cr_expect_eq(o.strict, 0);
    char *good[] = { "ZEROPOOL_STRICT=1", "ZEROPOOL_THRESHOLD=128K", "ZEROPOOL_CONF_FILE=", NULL };
    char *same[] = { "ZEROPOOL_THRESHOLD=128K", "ZEROPOOL_CONF_FILE=", NULL };
    capture_start();
    load(&o, good);
    load(&plain, same);
    cr_expect_str_eq(capture_end(), "");
    cr_expect_eq(zp_options_bad(&o), 0);
    plain.strict = 1;
    plain.source[ZP_OPT_STRICT] = ZP_SRC_ENV;
    static char a[4096], b[4096];
    zp_options_dump_buf(&o, a, sizeof a);
    zp_options_dump_buf(&plain, b, sizeof b);
    cr_expect_str_eq(a, b, "strict on changes nothing else");
    cr_expect_eq(o.problems, 0);
    cr_expect_eq(o.nverdicts, 0);
}
