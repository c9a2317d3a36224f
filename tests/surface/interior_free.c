/* free(p + 16) of a small block. Under zeropool it is reported as an invalid free; with
 * ZEROPOOL_ON_ERROR=report the program goes on, and no other block may have changed (the
 * scrub must never write outside the block being freed).
 * usage: interior_free SIZE   (exit 0: every neighbour intact) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 64

int main(int argc, char **argv)
{
    size_t size = argc > 1 ? strtoull(argv[1], NULL, 0) : 32;
    unsigned char *b[N];
    for (int i = 0; i < N; i++) {
        b[i] = malloc(size);
        if (b[i] == NULL)
            return 1;
        memset(b[i], 'B', size);
    }
    free(b[N / 2] + 16);
    int bad = 0;
    for (int i = 0; i < N; i++) {
        size_t from = i == N / 2 ? 16 : 0; /* the freed "block" itself may be scrubbed */
        for (size_t j = from; j < size; j++)
            if (b[i][j] != 'B' && i != N / 2) {
                fprintf(stderr, "interior_free: block %d byte %zu changed\n", i, j);
                bad = 1;
                break;
            }
    }
    printf("neighbours %s\n", bad ? "changed" : "intact");
    return bad;
}
