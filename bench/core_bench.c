/* Benchmarks of the core API (zeropool.h), the seed's table redone honestly: every cycle is
 * measured with the buffer untouched, written on one page, or written in full, beside a plain
 * memset reference of the same bytes, so the pool's own overhead is reported apart from the
 * scrubbing that any secure pool must do. Run `core_bench --help`.
 *
 * Benchmarks (name: what one operation is):
 *   pingpong     get + (write) + put of one size, one buffer, LIFO and CLOCK-Pro pools
 *   tls_hit      the thread holds N = 2, 4, 8 buffers (thread cache of N): get N, (write), put N;
 *                one operation = one get + put, every one a thread-cache hit
 *   hot_cold     get + (write) + put; 90% of sizes from {64K, 256K, 1M}, 10% a cold tail 2M..16M
 *   multi_size   a ring of 4 live buffers of 64K..4M: put the oldest, get the next size
 *   eviction     budget 8 MiB: 75% hot sizes 128K..512K, 25% a scan of 1M..6M sizes, 4 live;
 *                reports evictions and hit rate (LIFO vs CLOCK-Pro)
 *   traces       LIFO vs CLOCK-Pro hit rates on the unit tests' eviction traces (loop larger
 *                than the budget, scan with a hot set, drifting working set, one size)
 *   threads      1 to 64 threads each doing get + write + put on one shared pool;
 *                threads start before the clock and wait at a barrier; per-thread ns/op
 *   memset_ref   what the scrub itself must cost: the program's write plus the scrub's zeroing
 *                of the same bytes, on a resident buffer, no pool
 *   *.overhead   the cycle minus its memset_ref: the pool's own cost
 * Touch modes: none (never written), res (written in full once before timing: the pool knows
 * it is resident and scrubs it with one memset, the loop writes nothing), page (first 4 KiB
 * written each use), full (every byte written each use). */
#include "harness.h"
#include "zeropool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { T_NONE, T_RES, T_PAGE, T_FULL };
static const char *const touch_name[] = {"none", "res", "page", "full"};

#define PAGE_BYTES 4096
#define KB ((size_t)1 << 10)
#define MB ((size_t)1 << 20)
#define SEQ_LEN 4096 /* size sequences: a power of two */

static char *ref_buf; /* resident, 16 MiB: the memset reference's buffer */
#define REF_BYTES (16 * MB)

static inline void touch(char *p, size_t n, int mode)
{
    if (mode == T_FULL)
        memset(p, 0xA5, n);
    else if (mode == T_PAGE)
        memset(p, 0xA5, n < PAGE_BYTES ? n : PAGE_BYTES);
    bh_keep(p);
}

/* What the program's write plus the scrub cost, with no pool: one memset and one
 * explicit_bzero of the bytes the touch mode dirties (res: the scrub's memset only). */
static inline void ref_cycle(size_t n, int mode)
{
    char *p = ref_buf;
    if (mode == T_FULL) {
        memset(p, 0xA5, n);
        explicit_bzero(p, n);
    } else if (mode == T_PAGE) {
        size_t k = n < PAGE_BYTES ? n : PAGE_BYTES;
        memset(p, 0xA5, k);
        explicit_bzero(p, k);
    } else if (mode == T_RES) {
        explicit_bzero(p, n);
    }
    bh_keep(p);
}

static zp_pool_t *mkpool(zp_eviction_t ev, unsigned tls, size_t min_size, size_t max_size,
                         size_t budget)
{
    zp_config_t c;
    zp_config_init(&c);
    c.eviction = ev;
    if (tls) {
        c.tls_cache_size = tls;
        if (max_size && c.tls_cache_bytes < (size_t)tls * max_size * 2)
            c.tls_cache_bytes = (size_t)tls * max_size * 2;
    }
    if (min_size)
        c.min_buffer_size = min_size;
    if (budget)
        c.pool_bytes = budget;
    zp_pool_t *p = zp_pool_new(&c);
    if (!p) {
        perror("zp_pool_new");
        exit(1);
    }
    return p;
}

/* Get n buffers of this size, write each in full, put them back: the pool now knows them
 * resident, and the thread cache holds them for the loop. */
static void prime(zp_pool_t *pool, size_t size, unsigned n)
{
    void *b[64];
    for (unsigned i = 0; i < n; i++) {
        b[i] = zp_get(pool, size);
        memset(b[i], 0xA5, size);
    }
    for (unsigned i = n; i-- > 0;)
        zp_put(pool, b[i]);
}

static void size_str(char *out, size_t cap, size_t s)
{
    bh_fmt_size(out, cap, s);
}

/* ---- one size, N buffers held: pingpong (N = 1) and tls_hit ---- */
typedef struct cyc {
    zp_pool_t *pool;
    size_t size;
    int touch;
    unsigned n;
} cyc_t;

static void body_cycle(void *ctx, unsigned tid, uint64_t iters)
{
    (void)tid;
    cyc_t *c = ctx;
    void *b[64];
    for (uint64_t i = 0; i < iters; i++) {
        for (unsigned k = 0; k < c->n; k++) {
            b[k] = zp_get(c->pool, c->size);
            touch(b[k], c->size, c->touch);
        }
        for (unsigned k = c->n; k-- > 0;)
            zp_put(c->pool, b[k]);
    }
}

typedef struct refc {
    size_t size;
    int touch;
    const size_t *seq; /* sizes, or NULL for size */
} refc_t;

static void body_ref(void *ctx, unsigned tid, uint64_t iters)
{
    (void)tid;
    refc_t *r = ctx;
    for (uint64_t i = 0; i < iters; i++)
        ref_cycle(r->seq ? r->seq[i & (SEQ_LEN - 1)] : r->size, r->touch);
}

static void note_stats(zp_pool_t *pool, char *note, size_t cap)
{
    zp_stats_t st;
    zp_pool_stats(pool, &st);
    double gets = st.gets ? (double)st.gets : 1;
    snprintf(note, cap, "tls_hit=%.1f%% shard_hit=%.1f%% fresh=%llu evictions=%llu",
             100.0 * (double)st.tls_hits / gets, 100.0 * (double)st.shard_hits / gets,
             (unsigned long long)st.fresh, (unsigned long long)st.evictions);
}

/* The cycle and its memset reference, run by run in alternation; prints the cycle, the
 * reference and their difference (the pool's own cost). */
static void measure_with_ref(const bh_case_t *cyc, zp_pool_t *pool, int mode, size_t size,
                             const size_t *seq, const char *seqname)
{
    char note[160];
    if (mode == T_NONE) {
        bh_result_t r = bh_run(cyc);
        note_stats(pool, note, sizeof note);
        bh_emit(cyc->bench, cyc->param, &r, note);
        return;
    }
    refc_t rc = {size, mode, seq};
    char param[128], sz[32], b2[64];
    if (seq)
        snprintf(param, sizeof param, "sizes=%s touch=%s", seqname, touch_name[mode]);
    else {
        size_str(sz, sizeof sz, size);
        snprintf(param, sizeof param, "size=%s touch=%s", sz, touch_name[mode]);
    }
    bh_case_t ref = {.bench = "memset_ref", .param = param, .body = body_ref, .ctx = &rc};
    bh_result_t ra, rb, d;
    bh_run_pair(cyc, &ref, &ra, &rb, &d);
    note_stats(pool, note, sizeof note);
    bh_emit(cyc->bench, cyc->param, &ra, note);
    bh_emit("memset_ref", param, &rb, "program write + scrub zeroing of the same bytes; no pool");
    snprintf(b2, sizeof b2, "%s.overhead", cyc->bench);
    bh_emit(b2, cyc->param, &d, "cycle minus memset_ref (paired run by run): the pool's own cost");
}

static void run_cycle(const char *bench, zp_eviction_t ev, const char *evname, size_t size,
                      unsigned n, int mode)
{
    if (!bh_selected(bench))
        return;
    zp_pool_t *pool = mkpool(ev, n > 1 ? n : 0, size < 64 * KB ? size : 0, size, 0);
    if (mode == T_RES)
        prime(pool, size, n);
    cyc_t c = {pool, size, mode, n};
    char param[96], sz[32];
    size_str(sz, sizeof sz, size);
    if (n > 1)
        snprintf(param, sizeof param, "bufs=%u size=%s touch=%s", n, sz, touch_name[mode]);
    else
        snprintf(param, sizeof param, "evict=%s size=%s touch=%s", evname, sz, touch_name[mode]);
    bh_case_t bc = {.bench = bench, .param = param, .body = body_cycle, .ctx = &c,
                    .ops_per_iter = n};
    measure_with_ref(&bc, pool, mode, size, NULL, NULL);
    zp_pool_destroy(pool);
}

/* ---- size sequences: hot/cold and multi-size ---- */
static size_t seq_hotcold[SEQ_LEN], seq_multi[SEQ_LEN], seq_evict[SEQ_LEN];
/* The eviction traces of tests/unit/test_core_evict.c (a 2 MiB budget, 2 buffers live; 8 of
 * one size, where the ring allows 8 and the unit test holds 12). */
static size_t seq_loop[SEQ_LEN], seq_scanhot[SEQ_LEN], seq_drift[SEQ_LEN], seq_uniform[SEQ_LEN];
/* A drift too fast for the budget: the working set moves before it fits (CLOCK-Pro loses). */
static size_t seq_drift_fast[SEQ_LEN];

static void make_trace_seqs(void)
{
    static const size_t loop[] = {64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512};
    static const size_t hot[] = {64, 96, 128, 320, 448};
    for (unsigned i = 0; i < SEQ_LEN; i++) {
        seq_loop[i] = loop[i % 13] * KB - (i % 3) * 1000;
        seq_scanhot[i] = i % 2 ? 512 * KB + ((i / 2) % 24) * 64 * KB : hot[(i / 2) % 5] * KB;
        seq_drift[i] = 64 * KB + ((i / 512 + i % 6) % 40) * 32 * KB;
        seq_drift_fast[i] = 64 * KB + ((i / 128 + i % 6) % 32) * 32 * KB;
        seq_uniform[i] = 256 * KB;
    }
}

static void make_seqs(void)
{
    uint64_t s = 0x9E3779B97F4A7C15ull;
    static const size_t hot[] = {64 * KB, 256 * KB, 1 * MB};
    for (unsigned i = 0; i < SEQ_LEN; i++) {
        if (bh_rand(&s) % 10)
            seq_hotcold[i] = hot[bh_rand(&s) % 3];
        else /* cold tail: 2M..16M in 256 KiB steps */
            seq_hotcold[i] = 2 * MB + (bh_rand(&s) % 57) * 256 * KB;
        seq_multi[i] = (64 * KB) << (i % 7); /* 64K 128K ... 4M */
    }
    static const size_t warm[] = {128 * KB, 256 * KB, 512 * KB};
    unsigned scan = 0;
    for (unsigned i = 0; i < SEQ_LEN; i++) {
        if (bh_rand(&s) % 4)
            seq_evict[i] = warm[bh_rand(&s) % 3];
        else /* a scan over 21 sizes 1M..6M: each one-off until it comes round again */
            seq_evict[i] = 1 * MB + (scan++ % 21) * 256 * KB;
    }
}

typedef struct seqc {
    zp_pool_t *pool;
    const size_t *seq;
    int touch;
    unsigned live;  /* 0: get + put; else a ring of this many live buffers */
    void *ring[8];
    uint64_t pos;
} seqc_t;

static void body_seq(void *ctx, unsigned tid, uint64_t iters)
{
    (void)tid;
    seqc_t *c = ctx;
    for (uint64_t i = 0; i < iters; i++) {
        size_t sz = c->seq[c->pos & (SEQ_LEN - 1)];
        if (!c->live) {
            char *p = zp_get(c->pool, sz);
            touch(p, sz, c->touch);
            zp_put(c->pool, p);
        } else {
            unsigned k = (unsigned)(c->pos % c->live);
            zp_put(c->pool, c->ring[k]);
            c->ring[k] = zp_get(c->pool, sz);
            touch(c->ring[k], sz, c->touch);
        }
        c->pos++;
    }
}

static void run_seq(const char *bench, const char *seqname, const size_t *seq, unsigned live,
                    zp_eviction_t ev, const char *evname, size_t budget, int mode, bool overhead)
{
    if (!bh_selected(bench))
        return;
    zp_pool_t *pool = mkpool(ev, 0, 0, 0, budget);
    seqc_t c = {.pool = pool, .seq = seq, .touch = mode, .live = live};
    for (unsigned k = 0; k < live; k++)
        c.ring[k] = zp_get(pool, seq[SEQ_LEN - 1 - k]);
    char param[128], bs[32];
    if (budget) {
        size_str(bs, sizeof bs, budget);
        snprintf(param, sizeof param, "evict=%s budget=%s sizes=%s touch=%s", evname, bs,
                 seqname, touch_name[mode]);
    } else
        snprintf(param, sizeof param, "evict=%s sizes=%s touch=%s", evname, seqname,
                 touch_name[mode]);
    bh_case_t bc = {.bench = bench, .param = param, .body = body_seq, .ctx = &c};
    /* The reference walks the same size sequence. */
    measure_with_ref(&bc, pool, overhead ? mode : T_NONE, 0, seq, seqname);
    for (unsigned k = 0; k < live; k++)
        zp_put(pool, c.ring[k]);
    zp_pool_destroy(pool);
}

/* ---- thread scaling ---- */
typedef struct thrc {
    zp_pool_t *pool;
    size_t size;
    int touch;
    bool primed[64]; /* res: each thread's cached buffer was written once */
} thrc_t;

static void body_thr(void *ctx, unsigned tid, uint64_t iters)
{
    thrc_t *c = ctx;
    if (c->touch == T_RES && !c->primed[tid]) {
        prime(c->pool, c->size, 1);
        c->primed[tid] = true;
    }
    for (uint64_t i = 0; i < iters; i++) {
        char *p = zp_get(c->pool, c->size);
        touch(p, c->size, c->touch);
        zp_put(c->pool, p);
    }
}

static void run_threads(size_t size, int mode, const unsigned *counts, unsigned ncounts)
{
    if (!bh_selected("threads"))
        return;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    for (unsigned i = 0; i < ncounts; i++) {
        unsigned n = counts[i];
        zp_pool_t *pool = mkpool(ZP_EVICT_CLOCK_PRO, 0, size < 64 * KB ? size : 0, 0, 0);
        thrc_t c = {.pool = pool, .size = size, .touch = mode};
        char param[96], sz[32], note[256], st[160];
        size_str(sz, sizeof sz, size);
        snprintf(param, sizeof param, "threads=%u size=%s touch=%s", n, sz, touch_name[mode]);
        bh_case_t bc = {.bench = "threads", .param = param, .threads = n, .body = body_thr,
                        .ctx = &c};
        bh_result_t r = bh_run(&bc);
        note_stats(pool, st, sizeof st);
        /* On ncpu cores, n > ncpu threads time-share: aggregate ns/op is the fair figure. */
        snprintf(note, sizeof note, "aggregate_ns_per_op=%.1f us_per_1000_ops_per_thread=%.1f "
                 "cpus=%ld %s", r.median_ns / n, r.median_ns, ncpu, st);
        bh_emit("threads", param, &r, note);
        zp_pool_destroy(pool);
    }
}

/* Hit rates of both policies on the eviction traces: one shard, no thread cache, so every
 * get and put goes through the policy. */
static void run_traces(void)
{
    if (!bh_selected("traces"))
        return;
    static const struct { const char *name; const size_t *seq; unsigned live; } tr[] = {
        {"loop13-over-budget", seq_loop, 2}, {"scan+hot5", seq_scanhot, 2},
        {"drift6", seq_drift, 2}, {"uniform256K", seq_uniform, 8},
        {"drift6-fast", seq_drift_fast, 2}};
    static const struct { zp_eviction_t ev; const char *name; } evs[] = {
        {ZP_EVICT_LIFO, "lifo"}, {ZP_EVICT_CLOCK_PRO, "clock-pro"}};
    for (unsigned t = 0; t < 5; t++)
        for (unsigned e = 0; e < 2; e++) {
            zp_config_t cfg;
            zp_config_init(&cfg);
            cfg.eviction = evs[e].ev;
            cfg.num_shards = 1;
            cfg.tls_cache_size = 0;
            cfg.pool_bytes = 2 * MB;
            cfg.max_pooled_size = 2 * MB;
            cfg.max_buffers_per_shard = 1000;
            zp_pool_t *pool = zp_pool_new(&cfg);
            seqc_t c = {.pool = pool, .seq = tr[t].seq, .touch = T_PAGE, .live = tr[t].live};
            for (unsigned k = 0; k < c.live; k++)
                c.ring[k] = zp_get(pool, c.seq[SEQ_LEN - 1 - k]);
            char param[128], note[160];
            snprintf(param, sizeof param, "evict=%s trace=%s", evs[e].name, tr[t].name);
            bh_case_t bc = {.bench = "traces", .param = param, .body = body_seq, .ctx = &c};
            bh_result_t r = bh_run(&bc);
            zp_stats_t st;
            zp_pool_stats(pool, &st);
            snprintf(note, sizeof note, "hit=%.1f%% gets=%llu fresh=%llu evictions=%llu",
                     100.0 * (double)st.shard_hits / (double)(st.gets ? st.gets : 1),
                     (unsigned long long)st.gets, (unsigned long long)st.fresh,
                     (unsigned long long)st.evictions);
            bh_emit("traces", param, &r, note);
            for (unsigned k = 0; k < c.live; k++)
                zp_put(pool, c.ring[k]);
            zp_pool_destroy(pool);
        }
}

static void usage(void)
{
    fprintf(stderr, "usage: core_bench [options]\n"
                    "Benchmarks of the zeropool core API; one CSV/JSON line per measurement.\n");
    bh_usage_common();
}

int main(int argc, char **argv)
{
    argc = bh_parse(argc, argv);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") && strcmp(argv[i], "-h"))
            fprintf(stderr, "core_bench: unknown option %s\n", argv[i]);
        usage();
        return 2;
    }
    ref_buf = aligned_alloc(PAGE_BYTES, REF_BYTES);
    if (!ref_buf) {
        perror("aligned_alloc");
        return 1;
    }
    memset(ref_buf, 1, REF_BYTES);
    make_seqs();
    make_trace_seqs();

    if (bh_opt.smoke) {
        run_cycle("pingpong", ZP_EVICT_LIFO, "lifo", 64 * KB, 1, T_FULL);
        run_cycle("tls_hit", ZP_EVICT_CLOCK_PRO, "clock-pro", 4 * KB, 2, T_RES);
        static const unsigned two[] = {2};
        run_threads(64 * KB, T_FULL, two, 1);
        return 0;
    }

    /* pingpong: the seed's 3.56 / 3.68 us; one 1 MiB buffer (the seed's default size). */
    static const struct { zp_eviction_t ev; const char *name; } evs[] = {
        {ZP_EVICT_LIFO, "lifo"}, {ZP_EVICT_CLOCK_PRO, "clock-pro"}};
    static const int modes3[] = {T_NONE, T_PAGE, T_FULL};
    for (unsigned e = 0; e < 2; e++)
        for (unsigned m = 0; m < 3; m++)
            run_cycle("pingpong", evs[e].ev, evs[e].name, 1 * MB, 1, modes3[m]);
    run_cycle("pingpong", ZP_EVICT_CLOCK_PRO, "clock-pro", 64 * KB, 1, T_FULL);

    /* tls_hit: the seed's 60 / 108 / 288 ns for 2 / 4 / 8 buffers. */
    static const unsigned bufs[] = {2, 4, 8};
    static const size_t tsz[] = {4 * KB, 64 * KB};
    static const int tmodes[] = {T_NONE, T_RES, T_FULL};
    for (unsigned s = 0; s < 2; s++)
        for (unsigned b = 0; b < 3; b++)
            for (unsigned m = 0; m < 3; m++)
                run_cycle("tls_hit", ZP_EVICT_CLOCK_PRO, "clock-pro", tsz[s], bufs[b], tmodes[m]);

    /* hot_cold (seed 1.05 us) and multi_size (seed 6.2 us) */
    for (unsigned m = 1; m < 3; m++) {
        run_seq("hot_cold", "hot64K-1M+cold2M-16M", seq_hotcold, 0, ZP_EVICT_CLOCK_PRO,
                "clock-pro", 0, modes3[m], true);
        run_seq("multi_size", "64K-4M", seq_multi, 4, ZP_EVICT_CLOCK_PRO, "clock-pro", 0,
                modes3[m], true);
    }
    /* eviction pressure (seed 400 ns): evictions must really happen; hit rate per policy. */
    for (unsigned e = 0; e < 2; e++)
        run_seq("eviction", "hot128K-512K+scan1M-6M", seq_evict, 4, evs[e].ev, evs[e].name,
                8 * MB, T_PAGE, false);
    run_traces();

    /* threads: the seed's 44.7 / 141 / 282 / 605 us per 1000 ops (which included spawning). */
    /* Past 2 threads this machine time-shares; what must hold there is the cache hit rate:
     * every thread gets a cache (tls_hit in the note), however many there are. */
    static const unsigned counts[] = {1, 2, 4, 8, 16, 32, 64};
    run_threads(64 * KB, T_FULL, counts, 7);
    run_threads(4 * KB, T_RES, counts, 7);
    return 0;
}
