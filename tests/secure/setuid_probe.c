/* Run setuid-root by test_setuid.sh: allocates on both sides of the threshold, then reports
 * whether it runs in secure-execution mode (AT_SECURE) and whether libzeropool is mapped. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#include "test_util.h"

int main(void)
{
    for (int i = 0; i < 8; i++) {
        unsigned char *big = malloc((size_t)1 << 20), *small = malloc(100);
        if (big == NULL || small == NULL)
            return 1;
        memset(big, 0x42, (size_t)1 << 20);
        memset(small, 0x42, 100);
        free(big);
        free(small);
    }
    printf("probe ok: euid=%d ruid=%d secure=%lu zeropool=%d\n", (int)geteuid(), (int)getuid(),
           getauxval(AT_SECURE), test_maps_has("libzeropool"));
    return 0;
}
