/* Looks for jemalloc the way libraries such as folly do (mallocx and mallctl resolvable in
 * the process) and, when found, frees a secret through sdallocx as they would; then looks
 * for the secret in fresh malloc blocks. Prints "jemalloc found|absent" and "leaked N". */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include "secret.h"

#define SIZE 40000
#define ROUNDS 64

int main(void)
{
    void *(*mallocx)(size_t, int) = (void *(*)(size_t, int))dlsym(RTLD_DEFAULT, "mallocx");
    void (*sdallocx)(void *, size_t, int) = (void (*)(void *, size_t, int))dlsym(RTLD_DEFAULT, "sdallocx");
    void *mallctl = dlsym(RTLD_DEFAULT, "mallctl");
    int found = mallocx != NULL && sdallocx != NULL && mallctl != NULL;
    printf("jemalloc %s\n", found ? "found" : "absent");
    for (int i = 0; i < 4; i++) {
        char *p = found ? mallocx(SIZE, 0) : malloc(SIZE);
        if (p == NULL)
            return 1;
        zpt_fill(p, SIZE);
        if (found)
            sdallocx(p, SIZE, 0);
        else
            free(p);
    }
    void *held[ROUNDS];
    size_t hits = 0;
    for (int i = 0; i < ROUNDS; i++) {
        held[i] = found ? mallocx(SIZE, 0) : malloc(SIZE);
        if (held[i] != NULL)
            hits += zpt_count(held[i], SIZE);
    }
    for (int i = 0; i < ROUNDS; i++)
        free(held[i]);
    printf("leaked %zu\n", hits);
    return 0;
}
