/* calloc of small blocks hands out zeros without a memset of its own when the small scrub is
 * on (every freed block was zeroed over its usable size): churn blocks of every small size
 * class, filled with 0xff, through malloc, realloc and free, then calloc each size and check
 * every usable byte. exit 0: all zero. ZEROPOOL_ZERO_ON_ALLOC=verify checks the same claim
 * inside the library and reports a block that is not. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIVE 512

int main(void)
{
    static unsigned char *held[LIVE];
    unsigned long seed = 12345;
    for (int round = 0; round < 60; round++) {
        for (int i = 0; i < LIVE; i++) {
            seed = seed * 6364136223846793005UL + 1442695040888963407UL;
            size_t n = 1 + (seed >> 33) % 60000;
            free(held[i]);
            held[i] = malloc(n);
            if (held[i] == NULL)
                return 2;
            memset(held[i], 0xff, malloc_usable_size(held[i]));
            if (i % 7 == 0) {
                unsigned char *q = realloc(held[i], n / 2 + 1);
                if (q == NULL)
                    return 2;
                held[i] = q;
                memset(q, 0xff, malloc_usable_size(q));
            }
        }
        for (int i = 0; i < LIVE; i += 3) {
            free(held[i]);
            seed = seed * 6364136223846793005UL + 1442695040888963407UL;
            size_t n = 1 + (seed >> 33) % 60000;
            held[i] = calloc(1, n);
            if (held[i] == NULL)
                return 2;
            size_t u = malloc_usable_size(held[i]);
            for (size_t j = 0; j < u; j++)
                if (held[i][j] != 0) {
                    printf("calloc(%zu): byte %zu of %zu is %#x\n", n, j, u, held[i][j]);
                    return 1;
                }
            memset(held[i], 0xff, u);
        }
    }
    printf("calloc: all zero\n");
    return 0;
}
