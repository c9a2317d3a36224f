/* The benchmark harness shared by every program in bench/: warm-up, iteration counts
 * calibrated to a target run time, several measured runs, median and min/max per operation,
 * one CSV or JSON line per measurement. Threaded cases start their threads once and time only
 * the loop between two barriers, so thread creation is never counted.
 *
 * Output, one line per measurement (CSV after a header line, or JSON objects):
 *   benchmark,allocator,param,median_ns,min_ns,max_ns,runs,note
 * Times are wall nanoseconds per operation; for threaded cases, per operation of one thread
 * (wall time of the loop / operations each thread did). The note starts with cpu_ns=X: the
 * median CPU time (user + system, all threads) per operation, which other load on the
 * machine disturbs less than wall time. */
#ifndef BH_HARNESS_H
#define BH_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct bh_opts {
    unsigned runs;      /* measured runs per case */
    unsigned warmup;    /* unmeasured runs before them (after calibration) */
    double target_ms;   /* wall time of one measured run: iterations are calibrated to it */
    bool json;          /* JSON lines instead of CSV */
    bool smoke;         /* CI: one tiny run per case, only a few cases */
    bool quick;         /* fewer runs, shorter runs */
    const char *alloc;  /* allocator/config label written in every line */
    const char *filter; /* only cases whose benchmark name contains this */
} bh_opts_t;

extern bh_opts_t bh_opt;

/* Parse the common options (--runs N, --warmup N, --ms X, --format csv|json, --quick, --smoke,
 * --alloc NAME, --filter S) out of argv. Options it does not know are kept, in order, in
 * argv[1..] and the new argc is returned, so a program can parse its own afterwards.
 * The environment variable BENCH_ALLOC sets the default of --alloc. */
int bh_parse(int argc, char **argv);
void bh_usage_common(void);

/* One loop body: do `iters` iterations for thread `tid` (0 when single-threaded). */
typedef void (*bh_body_fn)(void *ctx, unsigned tid, uint64_t iters);

typedef struct bh_case {
    const char *bench;     /* benchmark name, e.g. "pingpong" */
    const char *param;     /* its parameters, e.g. "evict=lifo size=1M touch=full" */
    unsigned threads;      /* 0 or 1: the calling thread runs the body */
    bh_body_fn body;
    void *ctx;
    uint64_t ops_per_iter; /* operations one iteration does (0 means 1) */
    uint64_t fixed_iters;  /* 0: calibrate to target_ms */
} bh_case_t;

typedef struct bh_result {
    double median_ns, min_ns, max_ns; /* wall time per operation (of one thread) */
    double cpu_ns;                    /* median CPU time per operation (user + system) */
    unsigned runs;
    uint64_t iters; /* iterations of one run (per thread) */
    bool done;      /* false when the case was filtered out */
} bh_result_t;

/* Is this benchmark selected by --filter? */
bool bh_selected(const char *bench);
/* Measure a case (does not print). Returns done=false when filtered out. */
bh_result_t bh_run(const bh_case_t *c);
/* Print one measurement line; note may be NULL (no commas in it). */
void bh_emit(const char *bench, const char *param, const bh_result_t *r, const char *note);
/* bh_run then bh_emit. */
bh_result_t bh_measure(const bh_case_t *c, const char *note);
/* Measure two cases run by run in alternation (a, b, a, b, ...), so that a change in the
 * machine's load hits both alike: *diff is the median (and min/max) of the per-run
 * differences a - b, e.g. a pool cycle minus its memset reference. b ignores --filter. */
void bh_run_pair(const bh_case_t *a, const bh_case_t *b, bh_result_t *ra, bh_result_t *rb,
                 bh_result_t *diff);

/* A case whose threads come and go inside each run (a server simulation): run(ctx, ms) does
 * one run of about ms wall milliseconds with threads of its own and returns the operations
 * done, all threads together. bh_run_timed does the warm-up runs and the measured ones and
 * times each (wall and process CPU): median_ns is wall time per operation of the whole
 * process (the inverse of its throughput), cpu_ns CPU time per operation. */
typedef uint64_t (*bh_timed_fn)(void *ctx, double ms);
bh_result_t bh_run_timed(const char *bench, bh_timed_fn run, void *ctx);
/* The process's peak resident set so far in KiB (getrusage ru_maxrss). */
long bh_peak_rss_kib(void);

uint64_t bh_now_ns(void);
/* Nanoseconds on any clock (CLOCK_PROCESS_CPUTIME_ID for CPU time), as a double. */
double bh_clock_ns(int clk);
/* qsort's comparison of doubles, for medians. */
int bh_cmp_double(const void *a, const void *b);
/* Parse "64K", "1M", "2G", "4096". 0 on error. */
size_t bh_parse_size(const char *s);
/* The only option of a program whose cases differ by thread count: "--threads 1,2" fills
 * thr[] (at most max counts) and returns how many; argv as bh_parse left it (dflt NULL: the
 * number of CPUs online). 0 on a bad or
 * unknown argument, after printing "usage: NAME [options] [--threads DEFAULT]". */
unsigned bh_parse_threads(int argc, char **argv, const char *name, const char *dflt,
                          unsigned *thr, unsigned max);
/* Format a byte count the way bh_parse_size reads it ("64K", "1M", "1536K"). */
void bh_fmt_size(char *out, size_t cap, size_t bytes);
/* A small fast PRNG (xorshift64*), one state per thread. */
static inline uint64_t bh_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}
/* Keep a value alive: the compiler must assume it is used. */
#define bh_keep(v) __asm__ volatile("" : : "r"(v) : "memory")

#endif
