/* free_sized, free_aligned_sized and C++ sized delete of a small block: the size (and the
 * alignment) the caller states is checked against the block's class from jemalloc's
 * metadata. usage: sized_free CASE, one of
 *   ok           every form with its right size: no report
 *   too_big      free_sized(p, 100) of a 48-byte block
 *   misaligned   free_aligned_sized(p, 64, 48) of a block only 16-aligned
 *   delete_big   operator delete(p, 4096) of a 48-byte block
 * Prints "intact" when the block kept its bytes (a refused free writes nothing). */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Not in glibc 2.36, nor is there a C++ runtime here: the preloaded library's, by name. */
static void (*free_sized)(void *p, size_t size);
static void (*free_aligned_sized)(void *p, size_t align, size_t size);
static void (*_ZdlPvm)(void *p, size_t n); /* operator delete(void *, std::size_t) */
static void *(*_Znwm)(size_t n);           /* operator new(std::size_t) */

int main(int argc, char **argv)
{
    const char *c = argc > 1 ? argv[1] : "ok";
    *(void **)&free_sized = dlsym(RTLD_DEFAULT, "free_sized");
    *(void **)&free_aligned_sized = dlsym(RTLD_DEFAULT, "free_aligned_sized");
    *(void **)&_ZdlPvm = dlsym(RTLD_DEFAULT, "_ZdlPvm");
    *(void **)&_Znwm = dlsym(RTLD_DEFAULT, "_Znwm");
    if (!free_sized || !free_aligned_sized || !_ZdlPvm || !_Znwm) {
        puts("sized_free: run it under the preload (free_sized & co not found)");
        return 2;
    }
    if (strcmp(c, "ok") == 0) {
        free_sized(malloc(48), 48);
        free_sized(malloc(1000), 1000);
        free_aligned_sized(aligned_alloc(64, 128), 64, 128);
        _ZdlPvm(_Znwm(40), 40);
        puts("freed");
        return 0;
    }
    /* A 48-byte block at an address that is not 64-aligned, for the misaligned case. */
    unsigned char *p = NULL, *keep[8];
    for (int i = 0; i < 8 && p == NULL; i++) {
        keep[i] = malloc(48);
        if (((uintptr_t)keep[i] & 63) != 0)
            p = keep[i];
    }
    if (p == NULL)
        return 2;
    memset(p, 'B', 48);
    if (strcmp(c, "too_big") == 0)
        free_sized(p, 100);
    else if (strcmp(c, "misaligned") == 0)
        free_aligned_sized(p, 64, 48);
    else if (strcmp(c, "delete_big") == 0)
        _ZdlPvm(p, 4096);
    else
        return 2;
    for (int j = 0; j < 48; j++)
        if (p[j] != 'B') {
            puts("changed");
            return 1;
        }
    puts("intact");
    return 0;
}
