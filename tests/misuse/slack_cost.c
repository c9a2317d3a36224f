/* What the overflow check at free costs: zp_get + zp_put of a 1 MiB buffer (requested
 * 1 MiB - 100 bytes, so the slot has slack to check), with check_slack off and on, best of 7
 * runs. Two workloads: 4 KiB written (the check is a larger share) and every byte written.
 * Not a test: `build/tests/misuse/misuse_slack_cost` prints ns per cycle. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "zeropool.h"

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static double run(bool check, size_t written, int iters)
{
    zp_config_t cfg;
    zp_config_init(&cfg);
    cfg.check_slack = check;
    zp_pool_t *pool = zp_pool_new(&cfg);
    size_t n = ((size_t)1 << 20) - 100;
    double best = 1e30;
    for (int r = 0; r < 7; r++) {
        double t = now_ns();
        for (int i = 0; i < iters; i++) {
            char *p = zp_get(pool, n);
            memset(p, i | 1, written);
            zp_put(pool, p);
        }
        t = (now_ns() - t) / iters;
        if (t < best)
            best = t;
    }
    zp_pool_destroy(pool);
    return best;
}

int main(void)
{
    for (int w = 0; w < 2; w++) {
        size_t written = w ? ((size_t)1 << 20) - 100 : 4096;
        int iters = w ? 2000 : 50000;
        double off = run(false, written, iters), on = run(true, written, iters);
        printf("1 MiB buffer, %7zu bytes written: check off %9.1f ns, on %9.1f ns, "
               "difference %+.1f ns\n", written, off, on, on - off);
    }
    return 0;
}
