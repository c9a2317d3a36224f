/* The benchmark harness: see harness.h. Everything here runs outside the timed loops except
 * the two clock reads (and, for threaded cases, the two barriers) around each run. */
#include "harness.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

bh_opts_t bh_opt = {
    .runs = 7, .warmup = 1, .target_ms = 40.0, .json = false, .alloc = "default",
};

static bool bh_header_done;

uint64_t bh_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

double bh_clock_ns(int clk)
{
    struct timespec ts;
    clock_gettime((clockid_t)clk, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int bh_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

size_t bh_parse_size(const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return 0;
    switch (*end) {
    case 'k': case 'K': v <<= 10; end++; break;
    case 'm': case 'M': v <<= 20; end++; break;
    case 'g': case 'G': v <<= 30; end++; break;
    default: break;
    }
    if (*end == 'i' || *end == 'B')
        end++;
    if (*end == 'B')
        end++;
    return *end ? 0 : (size_t)v;
}

void bh_fmt_size(char *out, size_t cap, size_t b)
{
    if (b && !(b & ((1ull << 30) - 1)))
        snprintf(out, cap, "%zuG", b >> 30);
    else if (b && !(b & ((1ull << 20) - 1)))
        snprintf(out, cap, "%zuM", b >> 20);
    else if (b && !(b & ((1ull << 10) - 1)))
        snprintf(out, cap, "%zuK", b >> 10);
    else
        snprintf(out, cap, "%zu", b);
}

void bh_usage_common(void)
{
    fprintf(stderr,
            "common options:\n"
            "  --runs N        measured runs per case (default %u)\n"
            "  --warmup N      unmeasured runs first (default %u)\n"
            "  --ms X          target milliseconds per run (default %.0f)\n"
            "  --format F      csv (default) or json\n"
            "  --quick         3 runs of 10 ms\n"
            "  --smoke         1 run of 1 ms, a few cases (CI)\n"
            "  --alloc NAME    allocator/config label (default $BENCH_ALLOC or 'default')\n"
            "  --filter S      only benchmarks whose name contains S\n",
            bh_opt.runs, bh_opt.warmup, bh_opt.target_ms);
}

static const char *bh_arg(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "%s: %s needs a value\n", argv[0], argv[*i]);
        exit(2);
    }
    return argv[++*i];
}

int bh_parse(int argc, char **argv)
{
    const char *env = getenv("BENCH_ALLOC");
    if (env && *env)
        bh_opt.alloc = env;
    int out = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--runs"))
            bh_opt.runs = (unsigned)atoi(bh_arg(argc, argv, &i));
        else if (!strcmp(a, "--warmup"))
            bh_opt.warmup = (unsigned)atoi(bh_arg(argc, argv, &i));
        else if (!strcmp(a, "--ms"))
            bh_opt.target_ms = atof(bh_arg(argc, argv, &i));
        else if (!strcmp(a, "--format"))
            bh_opt.json = !strcmp(bh_arg(argc, argv, &i), "json");
        else if (!strcmp(a, "--alloc"))
            bh_opt.alloc = bh_arg(argc, argv, &i);
        else if (!strcmp(a, "--filter"))
            bh_opt.filter = bh_arg(argc, argv, &i);
        else if (!strcmp(a, "--quick")) {
            bh_opt.quick = true;
            bh_opt.runs = 3;
            bh_opt.target_ms = 10.0;
        } else if (!strcmp(a, "--smoke")) {
            bh_opt.smoke = true;
            bh_opt.runs = 1;
            bh_opt.warmup = 0;
            bh_opt.target_ms = 1.0;
        } else
            argv[out++] = argv[i];
    }
    if (bh_opt.runs < 1)
        bh_opt.runs = 1;
    argv[out] = NULL;
    return out;
}

bool bh_selected(const char *bench)
{
    return !bh_opt.filter || strstr(bench, bh_opt.filter);
}

/* ---- threads: started once per case, released for each run by a barrier ---- */
typedef struct bh_team {
    const bh_case_t *c;
    unsigned n;
    pthread_t *tid;
    pthread_barrier_t start, end;
    uint64_t iters; /* of the coming run; 0 tells the workers to exit */
} bh_team_t;

typedef struct bh_worker {
    bh_team_t *team;
    unsigned idx;
} bh_worker_t;

static void *bh_worker_main(void *arg)
{
    bh_worker_t *w = arg;
    bh_team_t *t = w->team;
    for (;;) {
        pthread_barrier_wait(&t->start);
        uint64_t iters = t->iters;
        if (!iters)
            break;
        t->c->body(t->c->ctx, w->idx, iters);
        pthread_barrier_wait(&t->end);
    }
    return NULL;
}

static bh_worker_t *bh_team_start(bh_team_t *t, const bh_case_t *c)
{
    t->c = c;
    t->n = c->threads;
    t->tid = calloc(t->n, sizeof *t->tid);
    bh_worker_t *w = calloc(t->n, sizeof *w);
    if (!t->tid || !w) {
        fprintf(stderr, "bench: out of memory\n");
        exit(1);
    }
    pthread_barrier_init(&t->start, NULL, t->n + 1);
    pthread_barrier_init(&t->end, NULL, t->n + 1);
    for (unsigned i = 0; i < t->n; i++) {
        w[i].team = t;
        w[i].idx = i;
        if (pthread_create(&t->tid[i], NULL, bh_worker_main, &w[i])) {
            fprintf(stderr, "bench: pthread_create failed\n");
            exit(1);
        }
    }
    return w;
}

static void bh_team_stop(bh_team_t *t, bh_worker_t *w)
{
    t->iters = 0;
    pthread_barrier_wait(&t->start);
    for (unsigned i = 0; i < t->n; i++)
        pthread_join(t->tid[i], NULL);
    pthread_barrier_destroy(&t->start);
    pthread_barrier_destroy(&t->end);
    free(t->tid);
    free(w);
}

static uint64_t bh_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* One run of `iters` iterations: wall nanoseconds; *cpu (if not NULL) gets the CPU time the
 * whole process used meanwhile (user + system, all threads). */
static uint64_t bh_once_cpu(const bh_case_t *c, bh_team_t *t, uint64_t iters, uint64_t *cpu)
{
    uint64_t c0 = bh_cpu_ns(), t0, t1;
    if (!t) {
        t0 = bh_now_ns();
        c->body(c->ctx, 0, iters);
        t1 = bh_now_ns();
    } else {
        t->iters = iters;
        pthread_barrier_wait(&t->start);
        t0 = bh_now_ns();
        pthread_barrier_wait(&t->end);
        t1 = bh_now_ns();
    }
    if (cpu)
        *cpu = bh_cpu_ns() - c0;
    return t1 - t0;
}

static uint64_t bh_once(const bh_case_t *c, bh_team_t *t, uint64_t iters)
{
    return bh_once_cpu(c, t, iters, NULL);
}

/* A case ready to be sampled: its threads started, its iteration count calibrated. */
typedef struct bh_state {
    const bh_case_t *c;
    bh_team_t team, *t;
    bh_worker_t *w;
    uint64_t iters, ops;
} bh_state_t;

static void bh_prepare(bh_state_t *s, const bh_case_t *c)
{
    memset(s, 0, sizeof *s);
    s->c = c;
    if (c->threads > 1) {
        s->t = &s->team;
        s->w = bh_team_start(s->t, c);
    }
    s->ops = c->ops_per_iter ? c->ops_per_iter : 1;
    uint64_t iters = c->fixed_iters;
    double target = bh_opt.target_ms * 1e6;
    if (!iters) {
        /* Calibrate: double the count until a run takes a tenth of the target; this also
         * warms the allocator and the caches up. */
        iters = 1;
        for (;;) {
            uint64_t ns = bh_once(c, s->t, iters);
            if ((double)ns >= target / 10 || iters >= (1ull << 40)) {
                double per = (double)ns / (double)iters;
                double want = per > 0 ? target / per : (double)iters * 10;
                iters = want < 1 ? 1 : (uint64_t)want;
                break;
            }
            iters *= 2;
        }
    }
    /* Warm up. The first calibration runs carry cold-start costs (fresh mappings, first
     * faults) and can leave the count far too small: while a warm-up run shows the loop is
     * more than twice as fast as calibrated, recalibrate from it and warm up again. */
    for (unsigned i = 0, extra = 0; i < bh_opt.warmup; i++) {
        uint64_t ns = bh_once(c, s->t, iters);
        if (!c->fixed_iters && ns > 0 && (double)ns < target / 2 && extra < 4) {
            double want = target * (double)iters / (double)ns;
            iters = want < 1 ? 1 : (uint64_t)want;
            extra++;
            i--; /* one more warm-up run at the new count */
        }
    }
    s->iters = iters;
}

/* One measured run: wall nanoseconds per operation (of one thread); *cpu gets CPU
 * nanoseconds per operation (all threads' CPU time over all threads' operations). */
static double bh_sample(bh_state_t *s, double *cpu)
{
    uint64_t c;
    double ops = (double)(s->iters * s->ops);
    double wall = (double)bh_once_cpu(s->c, s->t, s->iters, &c) / ops;
    *cpu = (double)c / (ops * (s->t ? s->t->n : 1));
    return wall;
}

static double bh_median(double *v, unsigned n)
{
    qsort(v, n, sizeof *v, bh_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void bh_finish(bh_state_t *s)
{
    if (s->t)
        bh_team_stop(s->t, s->w);
}

static bh_result_t bh_summarize(double *v, double *cpu, unsigned n, uint64_t iters)
{
    bh_result_t r = {0};
    r.cpu_ns = bh_median(cpu, n);
    r.median_ns = bh_median(v, n);
    r.min_ns = v[0];
    r.max_ns = v[n - 1];
    r.runs = n;
    r.iters = iters;
    r.done = true;
    return r;
}

bh_result_t bh_run(const bh_case_t *c)
{
    bh_result_t r = {0};
    if (!bh_selected(c->bench))
        return r;
    bh_state_t s;
    bh_prepare(&s, c);
    double *v = calloc(2 * (size_t)bh_opt.runs, sizeof *v), *cpu = v + bh_opt.runs;
    for (unsigned i = 0; i < bh_opt.runs; i++)
        v[i] = bh_sample(&s, &cpu[i]);
    bh_finish(&s);
    r = bh_summarize(v, cpu, bh_opt.runs, s.iters);
    free(v);
    return r;
}

void bh_run_pair(const bh_case_t *a, const bh_case_t *b, bh_result_t *ra, bh_result_t *rb,
                 bh_result_t *diff)
{
    memset(ra, 0, sizeof *ra);
    memset(rb, 0, sizeof *rb);
    memset(diff, 0, sizeof *diff);
    if (!bh_selected(a->bench))
        return;
    bh_state_t sa, sb;
    bh_prepare(&sa, a);
    bh_prepare(&sb, b);
    unsigned n = bh_opt.runs;
    double *va = calloc(6 * (size_t)n, sizeof *va), *vb = va + n, *vd = vb + n;
    double *ca = vd + n, *cb = ca + n, *cd = cb + n;
    for (unsigned i = 0; i < n; i++) {
        va[i] = bh_sample(&sa, &ca[i]);
        vb[i] = bh_sample(&sb, &cb[i]);
        vd[i] = va[i] - vb[i];
        cd[i] = ca[i] - cb[i];
    }
    bh_finish(&sb);
    bh_finish(&sa);
    *ra = bh_summarize(va, ca, n, sa.iters);
    *rb = bh_summarize(vb, cb, n, sb.iters);
    *diff = bh_summarize(vd, cd, n, sa.iters);
    free(va);
}

bh_result_t bh_run_timed(const char *bench, bh_timed_fn run, void *ctx)
{
    bh_result_t r = {0};
    if (!bh_selected(bench))
        return r;
    for (unsigned i = 0; i < bh_opt.warmup; i++)
        run(ctx, bh_opt.target_ms);
    unsigned n = bh_opt.runs;
    double *v = calloc(2 * (size_t)n, sizeof *v), *cpu = v + n;
    if (!v) {
        fprintf(stderr, "bench: out of memory\n");
        exit(1);
    }
    for (unsigned i = 0; i < n; i++) {
        uint64_t c0 = bh_cpu_ns(), t0 = bh_now_ns();
        uint64_t ops = run(ctx, bh_opt.target_ms);
        uint64_t t1 = bh_now_ns(), c1 = bh_cpu_ns();
        double o = ops ? (double)ops : 1;
        v[i] = (double)(t1 - t0) / o;
        cpu[i] = (double)(c1 - c0) / o;
    }
    r = bh_summarize(v, cpu, n, 0);
    free(v);
    return r;
}

long bh_peak_rss_kib(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : -1;
}

/* CSV fields must not hold commas, JSON strings no quotes: replace them. */
static const char *bh_clean(char *out, size_t cap, const char *s)
{
    size_t n = 0;
    for (; s && *s && n + 1 < cap; s++)
        out[n++] = *s == ',' ? ';' : *s == '"' ? '\'' : *s;
    out[n] = '\0';
    return out;
}

static void bh_print(const char *bench, const char *param_raw, double med, double lo, double hi,
                     unsigned runs, const char *note_raw)
{
    char param[256], note[512];
    bh_clean(param, sizeof param, param_raw);
    bh_clean(note, sizeof note, note_raw);
    if (bh_opt.json) {
        printf("{\"benchmark\":\"%s\",\"allocator\":\"%s\",\"param\":\"%s\",\"median_ns\":%.1f,"
               "\"min_ns\":%.1f,\"max_ns\":%.1f,\"runs\":%u,\"note\":\"%s\"}\n",
               bench, bh_opt.alloc, param, med, lo, hi, runs, note);
    } else {
        if (!bh_header_done)
            printf("benchmark,allocator,param,median_ns,min_ns,max_ns,runs,note\n");
        printf("%s,%s,%s,%.1f,%.1f,%.1f,%u,%s\n", bench, bh_opt.alloc, param, med, lo, hi, runs,
               note);
    }
    bh_header_done = true;
    fflush(stdout);
}

void bh_emit(const char *bench, const char *param, const bh_result_t *r, const char *note)
{
    if (!r->done)
        return;
    char n2[512];
    snprintf(n2, sizeof n2, "cpu_ns=%.1f%s%s", r->cpu_ns, note && *note ? " " : "",
             note ? note : "");
    bh_print(bench, param, r->median_ns, r->min_ns, r->max_ns, r->runs, n2);
}

bh_result_t bh_measure(const bh_case_t *c, const char *note)
{
    bh_result_t r = bh_run(c);
    bh_emit(c->bench, c->param, &r, note);
    return r;
}

unsigned bh_parse_threads(int argc, char **argv, const char *name, const char *dflt,
                          unsigned *thr, unsigned max)
{
    char buf[64], ncpu[24];
    if (dflt == NULL) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        snprintf(ncpu, sizeof ncpu, "%ld", cpus < 1 ? 1 : cpus);
        dflt = ncpu;
    }
    const char *list = dflt;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            list = argv[++i];
        } else {
            fprintf(stderr, "usage: %s [options] [--threads %s]\n", name, dflt);
            bh_usage_common();
            return 0;
        }
    }
    snprintf(buf, sizeof buf, "%s", list);
    unsigned n = 0;
    for (char *t = strtok(buf, ","); t && n < max; t = strtok(NULL, ","))
        thr[n++] = (unsigned)atoi(t);
    return n;
}
