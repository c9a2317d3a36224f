/* Buffers of random size 5-25 MiB, 20 live, each zero-filled by the program (what C++'s
 * std::make_unique<char[]>(n) does): one free and one malloc+memset per step. Prints the
 * median ns per step of 5 runs (wall clock, and CPU time, page faults included: the figure
 * to trust on a loaded machine) and the peak RSS. Run it under LD_PRELOAD of each allocator:
 *   bigbuf [steps]      (bench/bigbuf.sh runs the allocators interleaved) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "harness.h"

#define LIVE 20
#define MiB ((size_t)1 << 20)

static uint64_t seed = 0x9E3779B97F4A7C15ull;

static uint64_t next_rand(void)
{
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return seed;
}

int main(int argc, char **argv)
{
    unsigned steps = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 400;
    static char *live[LIVE];
    volatile unsigned char sink = 0;
    double runs[5], cpu[5];
    for (unsigned r = 0; r < 5; r++) {
        double t0 = bh_clock_ns(CLOCK_MONOTONIC), c0 = bh_clock_ns(CLOCK_PROCESS_CPUTIME_ID);
        for (unsigned i = 0; i < steps; i++) {
            unsigned k = (unsigned)(next_rand() % LIVE);
            free(live[k]);
            size_t n = 5 * MiB + (size_t)(next_rand() % (20 * MiB + 1));
            live[k] = malloc(n);
            if (!live[k]) {
                perror("malloc");
                return 1;
            }
            memset(live[k], 0, n);
            sink ^= (unsigned char)live[k][n / 2];
        }
        runs[r] = (bh_clock_ns(CLOCK_MONOTONIC) - t0) / steps;
        cpu[r] = (bh_clock_ns(CLOCK_PROCESS_CPUTIME_ID) - c0) / steps;
    }
    for (unsigned k = 0; k < LIVE; k++)
        free(live[k]);
    qsort(runs, 5, sizeof runs[0], bh_cmp_double);
    qsort(cpu, 5, sizeof cpu[0], bh_cmp_double);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("bigbuf ns_per_step %.0f peak_rss_kib %ld cpu_ns_per_step %.0f\n", runs[2], ru.ru_maxrss,
           cpu[2]);
    return sink == 0xFF;
}
