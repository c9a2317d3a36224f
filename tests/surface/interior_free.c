/* free(p + OFFSET) of a small block. Under zeropool it is reported as an invalid free; with
 * ZEROPOOL_ON_ERROR=report the program goes on, and no other block may have changed (the
 * scrub must never write outside the block being freed), nor the block itself (the free is
 * refused whole). Then every block is allocated again: none may overlap another.
 * With "realloc" the interior pointer goes to realloc instead, which must fail (NULL) after
 * the report and move nothing. With "usable", malloc_usable_size is asked instead: the block's
 * own answer covers SIZE, the interior pointer's, a stack address's and a fresh mapping's are 0
 * (no block starts there), with nothing read at them.
 * usage: interior_free SIZE [OFFSET [realloc|usable]]   (exit 0: every block intact) */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define N 64

int main(int argc, char **argv)
{
    size_t size = argc > 1 ? strtoull(argv[1], NULL, 0) : 32;
    size_t off = argc > 2 ? strtoull(argv[2], NULL, 0) : 16;
    unsigned char *b[N];
    for (int i = 0; i < N; i++) {
        b[i] = malloc(size);
        if (b[i] == NULL)
            return 1;
        memset(b[i], 'B', size);
    }
    int bad = 0;
    if (argc > 3 && strcmp(argv[3], "realloc") == 0) {
        void *r = realloc(b[N / 2] + off, 2 * size + 64);
        if (r != NULL) {
            fprintf(stderr, "interior_free: realloc of an interior pointer returned %p\n", r);
            bad = 1;
        }
    } else if (argc > 3 && strcmp(argv[3], "usable") == 0) {
        char local[64];
        void *map = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        void *ask[] = { b[N / 2] + off, local + 16, map == MAP_FAILED ? NULL : (char *)map + 64 };
        const char *what[] = { "the interior pointer", "a stack address", "a fresh mapping" };
        size_t whole = malloc_usable_size(b[N / 2]);
        if (whole < size) {
            fprintf(stderr, "interior_free: malloc_usable_size of the block: %zu < %zu\n", whole, size);
            bad = 1;
        }
        for (int i = 0; i < 3; i++) {
            size_t u = malloc_usable_size(ask[i]);
            if (u != 0) {
                fprintf(stderr, "interior_free: malloc_usable_size of %s: %zu, not 0\n", what[i], u);
                bad = 1;
            }
        }
    } else {
        free(b[N / 2] + off);
    }
    for (int i = 0; i < N && !bad; i++) {
        for (size_t j = 0; j < size; j++)
            if (b[i][j] != 'B') {
                fprintf(stderr, "interior_free: %s block %d byte %zu changed\n",
                        i == N / 2 ? "the" : "neighbour", i, j);
                bad = 1;
                break;
            }
    }
    /* A block handed out at the interior address would overwrite a live one. */
    unsigned char *q[N];
    for (int i = 0; i < N; i++) {
        q[i] = malloc(size);
        if (q[i] != NULL)
            memset(q[i], 'Q', size);
    }
    for (int i = 0; i < N && !bad; i++)
        for (size_t j = 0; j < size; j++)
            if (b[i][j] != 'B') {
                fprintf(stderr, "interior_free: block %d byte %zu overwritten by a later malloc\n", i, j);
                bad = 1;
                break;
            }
    printf("neighbours %s\n", bad ? "changed" : "intact");
    return bad;
}
