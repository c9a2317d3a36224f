/* Many live guarded pool buffers (DESIGN 7: respect vm.max_map_count, degrade, do not fail).
 * Each guarded buffer costs about two mappings; 50,000 of them would pass the default limit
 * of 65,530. Every malloc must succeed, the pool must leave half the mappings to the program,
 * and the program must still be able to open a file and map memory. Exit 0 = all held. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "test_util.h"

int main(void)
{
    long limit = test_proc_long("/proc/sys/vm/max_map_count");
    if (limit <= 0 || limit > 200000) {
        printf("vm.max_map_count is %ld: too high to reach in a test, skipped\n", limit);
        return 77;
    }
    size_t size = 70000; /* above the default threshold: pool buffers, each with a guard */
    long count = limit * 3 / 4;
    void **v = calloc((size_t)count, sizeof *v);
    if (!v)
        return 2;
    for (long i = 0; i < count; i++) {
        v[i] = malloc(size);
        if (v[i] == NULL) {
            printf("FAIL: malloc(%zu) = NULL (errno %d) with %ld buffers live, %ld mappings\n",
                   size, errno, i, test_maps_count());
            return 1;
        }
        memset(v[i], 1, 64);
    }
    long maps = test_maps_count();
    void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("%ld buffers of %zu bytes live, %ld mappings of %ld allowed\n", count, size, maps, limit);
    int bad = 0;
    if (maps < 0 || m == MAP_FAILED) {
        printf("FAIL: the program cannot open a file or map memory any more\n");
        bad = 1;
    } else if (maps > limit / 2 + 1000) {
        printf("FAIL: the pool took more than half of vm.max_map_count\n");
        bad = 1;
    }
    for (long i = 0; i < count; i++)
        free(v[i]);
    free(v);
    return bad;
}
