/* A C program (no C++ runtime of its own) that loads a C++ library with dlopen, lets it free
 * secrets through operator delete, then looks for them in fresh allocations of its own.
 *
 * usage: surface_host PLUGIN CASE SIZE
 *   CASE: vector, string, new_array, aligned_vector, aligned_new (leave a secret of SIZE
 *         bytes), out_of_memory (the C++ contract), interior (free(p + 16) of a small block)
 * Prints "leaked N" (secret words found); exit 0, or 1 on a broken contract. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secret.h"

#define ROUNDS 64

static void *sym(void *h, const char *name)
{
    void *f = dlsym(h, name);
    if (f == NULL) {
        fprintf(stderr, "surface_host: %s: %s\n", name, dlerror());
        exit(1);
    }
    return f;
}

/* Secret words in ROUNDS fresh malloc blocks of n bytes (the host's side) plus ROUNDS from
 * operator new (the plugin's side). */
static size_t scan(void *h, size_t n)
{
    void *held[ROUNDS];
    size_t hits = 0;
    for (int i = 0; i < ROUNDS; i++) {
        held[i] = malloc(n);
        if (held[i] != NULL)
            hits += zpt_count(held[i], n);
    }
    for (int i = 0; i < ROUNDS; i++)
        free(held[i]);
    size_t (*scan_new)(size_t, int) = (size_t(*)(size_t, int))sym(h, "zpt_scan_new");
    return hits + scan_new(n, ROUNDS);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: surface_host PLUGIN CASE SIZE\n");
        return 2;
    }
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        fprintf(stderr, "surface_host: %s\n", dlerror());
        return 1;
    }
    const char *c = argv[2];
    size_t n = strtoull(argv[3], NULL, 0);
    if (strcmp(c, "out_of_memory") == 0) {
        int (*f)(void) = (int (*)(void))sym(h, "zpt_out_of_memory");
        int bad = f();
        printf("contract %s (%#x)\n", bad ? "broken" : "kept", bad);
        return bad ? 1 : 0;
    }
    char name[64];
    snprintf(name, sizeof name, "zpt_%s", c);
    void (*leave)(size_t) = (void (*)(size_t))sym(h, name);
    for (int i = 0; i < 4; i++)
        leave(n);
    printf("leaked %zu\n", scan(h, n));
    return 0;
}
