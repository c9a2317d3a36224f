/* The growth loop: one buffer grown by realloc in 1 MiB steps to TOP MiB, every new MiB
 * written (a log, a decoder's output, a vector of bytes), then freed. Prints the median of 3
 * runs in ms per run (wall clock, and CPU time, page faults included: the figure to trust on
 * a loaded machine) and the peak RSS. Run it under LD_PRELOAD of each allocator:
 *   growth [TOP]        (default 256; bench/bigbuf.sh with BENCH=growth runs the allocators
 *                        interleaved and prints ratios to glibc) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "harness.h"

#define MiB ((size_t)1 << 20)
#define RUNS 3

int main(int argc, char **argv)
{
    size_t top = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 256;
    volatile unsigned char sink = 0;
    double runs[RUNS], cpu[RUNS];
    for (unsigned r = 0; r < RUNS; r++) {
        double t0 = bh_clock_ns(CLOCK_MONOTONIC), c0 = bh_clock_ns(CLOCK_PROCESS_CPUTIME_ID);
        unsigned char *p = NULL;
        for (size_t n = 1; n <= top; n++) {
            unsigned char *q = realloc(p, n * MiB);
            if (!q) {
                perror("realloc");
                return 1;
            }
            p = q;
            memset(p + (n - 1) * MiB, (int)(n | 1), MiB);
            sink ^= p[(n - 1) * MiB / 2];
        }
        free(p);
        runs[r] = (bh_clock_ns(CLOCK_MONOTONIC) - t0) / 1e6;
        cpu[r] = (bh_clock_ns(CLOCK_PROCESS_CPUTIME_ID) - c0) / 1e6;
    }
    qsort(runs, RUNS, sizeof runs[0], bh_cmp_double);
    qsort(cpu, RUNS, sizeof cpu[0], bh_cmp_double);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("growth ms_per_run %.1f peak_rss_kib %ld cpu_ms_per_run %.1f\n", runs[RUNS / 2],
           ru.ru_maxrss, cpu[RUNS / 2]);
    return sink == 0xFF;
}
