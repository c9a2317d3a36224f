/* Helpers shared by the programs that run under LD_PRELOAD (tests/preload, tests/stress,
 * tests/secure): checks, sizes from the environment as the tests set them, and what /proc
 * says about this process. Plain stdio: these are test programs, served by the allocator under test. */
#ifndef ZP_TEST_UTIL_H
#define ZP_TEST_UTIL_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Plain-program checks: a failed CHECK says where and why and counts; the program's exit
 * status is then test_failures ? 1 : 0. */
__attribute__((unused)) static int test_failures;
#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "FAIL %s:%d %s: ", __FILE__, __LINE__, __func__); \
            fprintf(stderr, __VA_ARGS__);                                     \
            fputc('\n', stderr);                                              \
            test_failures++;                                                  \
        }                                                                     \
    } while (0)

/* Is every byte of [p, p + n) zero? */
static inline bool test_all_zero(const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i])
            return false;
    return true;
}

/* A size variable as the tests write it: digits with an optional K, M or G; dflt when it is
 * unset, empty or "auto". */
static inline size_t test_env_size(const char *name, size_t dflt)
{
    const char *s = getenv(name);
    if (s == NULL || *s == '\0' || strcmp(s, "auto") == 0)
        return dflt;
    char *end;
    size_t v = strtoull(s, &end, 10);
    if (*end == 'K' || *end == 'k')
        v <<= 10;
    else if (*end == 'M' || *end == 'm')
        v <<= 20;
    else if (*end == 'G' || *end == 'g')
        v <<= 30;
    return v;
}

/* The threshold the library under test runs with (64K when ZEROPOOL_THRESHOLD is unset).
 * Requests at or above it come from the pool: zeroed, usable size = the request. Below it
 * jemalloc serves them; those blocks are scrubbed on free but may show jemalloc's own
 * metadata, freed inside jemalloc. */
static inline size_t test_threshold(void)
{
    return test_env_size("ZEROPOOL_THRESHOLD", 65536);
}

/* A line "Name:   123 kB" of /proc/self/status (VmRSS, VmHWM, VmLck, VmSize), in bytes;
 * 0 when it is not there. */
static inline size_t test_status_bytes(const char *name)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t v = 0, len = strlen(name);
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, name, len) == 0 && line[len] == ':')
            v = strtoull(line + len + 1, NULL, 10) << 10;
    if (f != NULL)
        fclose(f);
    return v;
}

/* Does a line of /proc/self/maps contain what ("libzeropool", "[anon:zeropool]")? */
static inline bool test_maps_has(const char *what)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    bool found = false;
    while (f != NULL && !found && fgets(line, sizeof line, f) != NULL)
        found = strstr(line, what) != NULL;
    if (f != NULL)
        fclose(f);
    return found;
}

/* The number of mappings of this process (lines of /proc/self/maps); -1 when unreadable. */
static inline long test_maps_count(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    long n = 0;
    int c;
    if (f == NULL)
        return -1;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

/* The number a file of /proc starts with (/proc/sys/vm/max_map_count); -1 when unreadable. */
static inline long test_proc_long(const char *path)
{
    FILE *f = fopen(path, "r");
    long v = -1;
    if (f != NULL) {
        if (fscanf(f, "%ld", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

#endif
