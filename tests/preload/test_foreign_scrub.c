/* A block that glibc's own malloc made and that reaches the preload's free or realloc is
 * scrubbed before glibc gets it back: glibc's next block of that size holds none of the data.
 * Two ways to hold a glibc block: a library opened with RTLD_DEEPBIND (its malloc binds to
 * glibc's), and glibc's malloc looked up by name. Sizes in glibc's brk heap (the supported
 * policy: its mmap'ed chunks and other arenas are not recognised). Without the preload, or
 * without the scrub, the secret's bytes are there: the test prints how many, and passes at 0. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deepbind_open.h"

int main(int argc, char **argv)
{
    /* glibc's MALLOC_PERTURB_ (meson sets one at random) fills every block glibc hands out
     * with a byte of its own, which may be the secret's: run again without it. */
    const char *perturb = getenv("MALLOC_PERTURB_");
    if (perturb != NULL && strcmp(perturb, "0") != 0) {
        setenv("MALLOC_PERTURB_", "0", 1);
        execv("/proc/self/exe", argv);
        return 2;
    }
    (void)argc;
    void *h = deepbind_helper_open(argv[0]);
    void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    if (h == NULL || libc == NULL) {
        fprintf(stderr, "foreign_scrub: %s\n", dlerror());
        return 2;
    }
    void *(*secret)(size_t, int) = (void *(*)(size_t, int))dlsym(h, "helper_secret");
    size_t (*leaked)(size_t, int) = (size_t(*)(size_t, int))dlsym(h, "helper_leaked");
    size_t (*count_secret)(const unsigned char *, size_t, int) =
        (size_t(*)(const unsigned char *, size_t, int))dlsym(h, "helper_count");
    void *(*glibc_malloc)(size_t) = (void *(*)(size_t))dlsym(libc, "malloc");
    void (*glibc_free)(void *) = (void (*)(void *))dlsym(libc, "free");
    if (!secret || !leaked || !count_secret || !glibc_malloc || !glibc_free)
        return 2;
    static const size_t sizes[] = { 24, 48, 200, 1000, 4000, 60000 };
    size_t total = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        /* RTLD_DEEPBIND, freed by the program */
        free(secret(n, 0xA5));
        size_t a = leaked(n, 0xA5);
        /* RTLD_DEEPBIND, moved by the program's realloc */
        void *r = realloc(secret(n, 0xB6), n * 8);
        size_t b = leaked(n, 0xB6);
        free(r);
        /* glibc's malloc by name */
        unsigned char *p = glibc_malloc(n);
        if (p == NULL)
            return 2;
        memset(p, 0xC7, n);
        free(p);
        unsigned char *q = glibc_malloc(n);
        size_t c = q != NULL ? count_secret(q, n, 0xC7) : 0;
        glibc_free(q);
        printf("%6zu bytes: readable after free %zu, after realloc %zu, dlsym'd malloc %zu\n", n,
               a, b, c);
        total += a + b + c;
    }
    printf("foreign_scrub: %zu bytes of freed data readable\n", total);
    return total == 0 ? 0 : 1;
}
