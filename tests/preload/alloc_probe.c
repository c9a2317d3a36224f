/* A small program for test_env.sh: allocates as told by its argument and exits.
 *   large        malloc, touch and free 2 MiB (and a few small blocks)
 *   maps         exit 0 if /proc/self/maps shows [anon:zeropool] after a large malloc,
 *                77 if this kernel cannot name anonymous mappings, 1 otherwise
 *   double-free  free a 1 MiB buffer twice (a misuse report is expected)
 *   bad-free     free a pointer into the middle of a 1 MiB buffer */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#include "test_util.h"

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "large";
    if (strcmp(mode, "large") == 0) {
        char *p = malloc((size_t)2 << 20);
        memset(p, 1, (size_t)2 << 20);
        free(p);
        for (int i = 0; i < 100; i++)
            free(malloc((size_t)i * 8));
        puts("probe: ok");
        return 0;
    }
    if (strcmp(mode, "maps") == 0) {
        void *m = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (prctl(0x53564d41 /* PR_SET_VMA */, 0 /* ANON_NAME */, (unsigned long)m, 1 << 16,
                  (unsigned long)"probe") != 0)
            return 77;
        char *p = malloc((size_t)2 << 20);
        p[0] = 1;
        int found = test_maps_has("[anon:zeropool]");
        free(p);
        return found ? 0 : 1;
    }
    if (strcmp(mode, "double-free") == 0) {
        char *p = malloc((size_t)1 << 20);
        p[0] = 1;
        free(p);
        free(p);
        puts("probe: still running");
        return 0;
    }
    if (strcmp(mode, "bad-free") == 0) {
        char *p = malloc((size_t)1 << 20);
        free(p + 4096);
        puts("probe: still running");
        free(p);
        return 0;
    }
    return 2;
}
