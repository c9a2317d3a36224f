/* demo_secrets: how much of a freed secret can the next allocation read?
 * Writes a recognisable "secret" into large and small buffers, frees them, allocates the same
 * sizes again with malloc (not calloc) and counts the secret bytes the new buffers still hold.
 * Under plain glibc the count is large; under libzeropool.so it must be 0. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOINLINE __attribute__((noinline))

/* Calls through volatile pointers: the compiler may not pair a malloc with its free and drop
 * both, nor assume anything about the memory malloc returns. */
static void *(*volatile demo_malloc)(size_t) = malloc;
static void (*volatile demo_free)(void *) = free;

static const char pattern[] = "SECRET-KEY-0123456789abcdefghij/";
#define PAT_LEN (sizeof pattern - 1)

/* Runs shorter than this are not counted: a few bytes matching by chance are not a secret. */
#define MIN_RUN 8

static const struct {
    const char *what;
    size_t size;
} buffers[] = {
    {"session key store", 1024 * 1024},
    {"TLS record buffer", 256 * 1024},
    {"password", 48},
    {"API token", 200},
};
#define NBUF (sizeof buffers / sizeof buffers[0])

struct result {
    size_t usable;
    size_t readable; /* secret bytes the new allocation can read */
    char sample[48];
};

static NOINLINE void fill_secret(volatile unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)pattern[i % PAT_LEN];
}

/* Length of the run of pattern bytes (at any phase) that starts at p[0], 0 if none. */
static size_t pattern_run(const volatile unsigned char *p, size_t n)
{
    for (size_t phase = 0; phase < PAT_LEN; phase++) {
        if (p[0] != (unsigned char)pattern[phase])
            continue;
        size_t k = 1;
        while (k < n && p[k] == (unsigned char)pattern[(phase + k) % PAT_LEN])
            k++;
        if (k >= MIN_RUN)
            return k;
    }
    return 0;
}

/* Secret bytes readable in p[0..n): the total length of pattern runs of MIN_RUN or more. */
static NOINLINE size_t count_secret(const volatile unsigned char *p, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n;) {
        size_t run = pattern_run(p + i, n - i);
        if (run) {
            total += run;
            i += run;
        } else {
            i++;
        }
    }
    return total;
}

/* What the new buffer shows: the first secret text it holds, or whether it is all zero. */
static void describe(const volatile unsigned char *p, size_t n, char *out, size_t outlen)
{
    size_t i = 0, run = 0;
    while (i < n && !(run = pattern_run(p + i, n - i)))
        i++;
    if (run) {
        char text[21];
        size_t k;
        for (k = 0; k < run && k + 1 < sizeof text; k++)
            text[k] = (char)p[i + k];
        text[k] = '\0';
        snprintf(out, outlen, "\"%s...\" at +%zu", text, i);
        return;
    }
    for (i = 0; i < n && p[i] == 0; i++)
        ;
    snprintf(out, outlen, "%s", i == n ? "all zero" : "no secret");
}

/* Round 1 writes the secrets and frees them; round 2 allocates the same sizes and looks.
 * Nothing is printed before the end: stdio's own buffer would come from malloc and could
 * take the place of a freed secret. */
static NOINLINE int reuse_after_free(struct result *res)
{
    void *p[NBUF];

    /* Start-up work a real program does: one large buffer used and released. Under glibc it
     * also raises the dynamic mmap threshold, so the large secrets live on the heap. */
    void *warm = demo_malloc(2 * 1024 * 1024);
    if (!warm)
        return -1;
    memset(warm, 0, 4096);
    demo_free(warm);

    for (size_t i = 0; i < NBUF; i++) {
        p[i] = demo_malloc(buffers[i].size);
        if (!p[i])
            return -1;
        fill_secret(p[i], buffers[i].size);
    }
    for (size_t i = 0; i < NBUF; i++)
        demo_free(p[i]);

    for (size_t i = 0; i < NBUF; i++) {
        p[i] = demo_malloc(buffers[i].size);
        if (!p[i])
            return -1;
        res[i].usable = malloc_usable_size(p[i]);
        res[i].readable = count_secret(p[i], res[i].usable);
        describe(p[i], res[i].usable, res[i].sample, sizeof res[i].sample);
    }
    for (size_t i = 0; i < NBUF; i++)
        demo_free(p[i]);
    return 0;
}

int main(void)
{
    struct result res[NBUF];
    if (reuse_after_free(res) != 0) {
        fprintf(stderr, "demo_secrets: out of memory\n");
        return 1;
    }

    size_t written = 0, readable = 0;
    printf("%-18s %9s %9s %11s  %s\n", "buffer", "size", "usable", "readable", "what the new buffer holds");
    for (size_t i = 0; i < NBUF; i++) {
        printf("%-18s %9zu %9zu %11zu  %s\n", buffers[i].what, buffers[i].size, res[i].usable,
               res[i].readable, res[i].sample);
        written += buffers[i].size;
        readable += res[i].readable;
    }
    printf("secret bytes written and freed: %zu\n", written);
    printf("freed secret bytes readable by later allocations: %zu\n", readable);
    /* Before exit: a preloaded allocator prints its statistics from a destructor, which runs
     * before stdio flushes a piped stdout. */
    fflush(stdout);
    return 0;
}
