/* Instructions per small malloc+free pair, for bench/pair_cost.sh (run under callgrind): N
 * pairs of malloc(SIZE), one byte written, free, after one large block that brings zeropool's
 * pool up (so free takes its usual ownership test). The script runs it with two values of N and
 * divides the difference of the instruction counts by the difference of N: start-up and exit
 * cancel out.
 *   usage: pair_cost SIZE N */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    size_t size = strtoull(argv[1], NULL, 0);
    unsigned long n = strtoul(argv[2], NULL, 0);
    char *big = malloc((size_t)1 << 20);
    if (big == NULL)
        return 1;
    big[0] = 1;
    for (unsigned long i = 0; i < n; i++) {
        volatile char *p = malloc(size);
        if (p == NULL)
            return 1;
        p[0] = 1;
        free((void *)p);
    }
    free(big);
    return 0;
}
