/* The documented policy for blocks that glibc's own malloc handed out (a library opened with
 * RTLD_DEEPBIND binds malloc to glibc's): free, realloc and malloc_usable_size of such a block
 * under the preload go to glibc and never crash. Small blocks only: glibc's mmap'ed chunks and
 * per-thread arenas are outside the supported policy. Plain program: exit 0 = pass. */
#include <dlfcn.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deepbind_open.h"

#define CHECK(cond, msg)                                              \
    do {                                                              \
        if (!(cond)) {                                                \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, msg); \
            return 1;                                                 \
        }                                                             \
    } while (0)

int main(int argc, char **argv)
{
    (void)argc;
    void *h = deepbind_helper_open(argv[0]);
    CHECK(h != NULL, dlerror());
    void *(*malloc_fn)(void) = (void *(*)(void))dlsym(h, "helper_malloc_fn");
    char *(*dup)(const char *) = (char *(*)(const char *))dlsym(h, "helper_strdup");
    void *(*alloc)(size_t) = (void *(*)(size_t))dlsym(h, "helper_alloc");
    CHECK(malloc_fn && dup && alloc, "helper symbols");

    Dl_info info;
    CHECK(dladdr(malloc_fn(), &info), "dladdr");
    CHECK(strstr(info.dli_fname, "libc.so") != NULL, "the DEEPBIND library does not use glibc's malloc");
    Dl_info ours;
    CHECK(dladdr((void *)dlsym(RTLD_DEFAULT, "malloc"), &ours) && strstr(ours.dli_fname, "libzeropool"),
          "the program does not use libzeropool");

    for (int i = 0; i < 20000; i++) {
        char *s = dup("a string from glibc's heap");
        CHECK(s != NULL && (void *)s < sbrk(0), "not a glibc brk block");
        CHECK(malloc_usable_size(s) >= 27, "malloc_usable_size of a glibc block");
        if (i % 3 == 0) {
            s = realloc(s, 5000 + (size_t)i % 100000); /* to ours, glibc's freed */
            CHECK(s != NULL && strcmp(s, "a string from glibc's heap") == 0, "realloc lost the data");
        }
        free(s);
        void *p = alloc((size_t)(i % 4000) + 1);
        CHECK(p != NULL, "helper alloc");
        free(p);
        free(malloc((size_t)(i % 5) << 18)); /* ours, in between */
    }
    dlclose(h);
    printf("deepbind: glibc blocks freed and reallocated through the preload\n");
    return 0;
}
