/* Large-buffer churn, written like an unmodified program (plain malloc/calloc/free) so that
 * scripts/bench can run it under LD_PRELOAD of each allocator. One operation is one
 * allocate + write + free cycle; with --threads 2 both threads churn at once and the time is
 * per operation of one thread.
 *
 * Patterns (benchmark name churn.<pattern>):
 *   full      malloc(size), write every byte, free
 *   page      malloc(size), write the first 4 KiB, free
 *   calloc    calloc(1, size), write the first 4 KiB, free
 *   mix       malloc of 64K,128K,...,8M (each 1/8, fixed pseudo-random order), every byte
 *             written, free
 *   mixsmall  the same over 4K,8K,...,1M: for the ZEROPOOL_THRESHOLD sweep
 *   copy      a block of size (each thread's own, written once) copied into a fresh block of
 *             size + 16 after a 16-byte header, which is then freed: redis's reply to a GET
 *             of a large value. Two large blocks 1-63 bytes apart modulo 4096 make the copy
 *             several times slower (4K aliasing), so where an allocator starts large blocks
 *             in their first page shows here.
 *   copyzero  the same, and the program zeroes the block before its free (explicit_bzero):
 *             under glibc the cost floor of any allocator that zeroes a block on free, as
 *             jemalloc with junk:free is for small blocks. The scrub is a second pass of
 *             stores as long as the copy's own, so copyzero/copy under glibc is the least
 *             ratio a scrubbing allocator can reach on churn.copy.
 * A mix is a shuffled sequence holding each size equally often, and one iteration of the
 * harness is a whole pass over it, so every run and every allocator does the same work: sizes
 * that differ 128-fold make a run of a few random draws meaningless (its time is the luck of
 * the draw), which is what a per-draw iteration gave when calibration picked few of them.
 *
 * usage: churn [common options] [--patterns full,page,calloc,copy,copyzero,mix] [--sizes 64K,1M,16M]
 *              [--threads 1,2] */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEQ_LEN 72 /* a pass over a mix: each of its 8 (or 9) sizes 9 (or 8) times */
#define MAX_THREADS 64

enum { P_FULL, P_PAGE, P_CALLOC, P_COPY, P_COPYZERO, P_MIX, P_MIXSMALL, P_COUNT };
static const char *const pat_name[P_COUNT] = {"full", "page", "calloc", "copy",
                                                   "copyzero", "mix", "mixsmall"};

static size_t seq_mix[SEQ_LEN], seq_small[SEQ_LEN];

/* seq: n_sizes sizes doubling from lo, each SEQ_LEN / n_sizes times, in a fixed shuffle. */
static void make_mix(size_t *seq, size_t lo, unsigned n_sizes, uint64_t *s)
{
    for (unsigned i = 0; i < SEQ_LEN; i++)
        seq[i] = lo << (i % n_sizes);
    for (unsigned i = SEQ_LEN - 1; i > 0; i--) {
        unsigned j = (unsigned)(bh_rand(s) % (i + 1));
        size_t t = seq[i];
        seq[i] = seq[j];
        seq[j] = t;
    }
}

typedef struct churn {
    int pat;
    size_t size;
    uint64_t pos[MAX_THREADS]; /* each thread walks the size sequence from its own offset */
    char *src[MAX_THREADS];    /* copy: each thread's source block */
} churn_t;

static void fail_oom(size_t n)
{
    fprintf(stderr, "churn: allocation of %zu bytes failed\n", n);
    exit(1);
}

static void body(void *ctx, unsigned tid, uint64_t iters)
{
    churn_t *c = ctx;
    const size_t *seq = c->pat == P_MIX ? seq_mix : seq_small;
    uint64_t pos = c->pos[tid];
    if (c->pat >= P_MIX)
        iters *= SEQ_LEN; /* an iteration is a pass over the mix */
    for (uint64_t i = 0; i < iters; i++) {
        size_t n = c->size;
        char *p;
        switch (c->pat) {
        case P_FULL:
            if (!(p = malloc(n)))
                fail_oom(n);
            memset(p, 0xA5, n);
            break;
        case P_PAGE:
            if (!(p = malloc(n)))
                fail_oom(n);
            memset(p, 0xA5, n < 4096 ? n : 4096);
            break;
        case P_CALLOC:
            if (!(p = calloc(1, n)))
                fail_oom(n);
            memset(p, 0xA5, n < 4096 ? n : 4096);
            break;
        case P_COPY:
        case P_COPYZERO:
            if (!c->src[tid]) {
                if (!(c->src[tid] = malloc(n)))
                    fail_oom(n);
                memset(c->src[tid], 0x5A, n);
            }
            if (!(p = malloc(n + 16)))
                fail_oom(n + 16);
            memcpy(p + 16, c->src[tid], n);
            if (c->pat == P_COPYZERO)
                explicit_bzero(p, n + 16);
            break;
        default:
            n = seq[pos++ % SEQ_LEN];
            if (!(p = malloc(n)))
                fail_oom(n);
            memset(p, 0xA5, n);
            break;
        }
        bh_keep(p);
        free(p);
    }
    c->pos[tid] = pos;
}

static int parse_list(char *s, size_t *out, int max, bool sizes)
{
    int n = 0;
    for (char *tok = strtok(s, ","); tok && n < max; tok = strtok(NULL, ",")) {
        if (sizes) {
            out[n] = bh_parse_size(tok);
        } else {
            out[n] = (size_t)-1;
            for (int p = 0; p < P_COUNT; p++)
                if (!strcmp(tok, pat_name[p]))
                    out[n] = (size_t)p;
        }
        if ((sizes && out[n] == 0) || out[n] == (size_t)-1) {
            fprintf(stderr, "churn: bad list item '%s'\n", tok);
            exit(2);
        }
        n++;
    }
    return n;
}

int main(int argc, char **argv)
{
    argc = bh_parse(argc, argv);
    char pats_def[] = "full,page,calloc,copy,copyzero,mix", sizes_def[] = "64K,256K,1M,4M,16M", thr_def[] = "1,2";
    char *pats_s = pats_def, *sizes_s = sizes_def, *thr_s = thr_def;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--patterns") && i + 1 < argc)
            pats_s = argv[++i];
        else if (!strcmp(argv[i], "--sizes") && i + 1 < argc)
            sizes_s = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            thr_s = argv[++i];
        else {
            fprintf(stderr, "usage: churn [options] [--patterns %s] [--sizes %s] "
                            "[--threads %s]\n", pats_def, sizes_def, thr_def);
            bh_usage_common();
            return 2;
        }
    }
    size_t pats[P_COUNT], sizes[32], thr[8];
    int np = parse_list(pats_s, pats, P_COUNT, false);
    int ns = parse_list(sizes_s, sizes, 32, true);
    int nt = parse_list(thr_s, thr, 8, true);

    uint64_t s = 0x2545F4914F6CDD1Dull;
    make_mix(seq_mix, (size_t)64 << 10, 8, &s);  /* 64K .. 8M */
    make_mix(seq_small, (size_t)4 << 10, 9, &s); /* 4K .. 1M */
    static churn_t c;
    for (int t = 0; t < nt; t++) {
        unsigned threads = (unsigned)thr[t];
        if (threads > MAX_THREADS)
            threads = MAX_THREADS;
        for (int p = 0; p < np; p++) {
            int pat = (int)pats[p];
            int nsz = pat >= P_MIX ? 1 : ns;
            for (int z = 0; z < nsz; z++) {
                char bench[32], param[64], sz[32];
                memset(&c, 0, sizeof c);
                c.pat = pat;
                c.size = sizes[z];
                for (unsigned k = 0; k < MAX_THREADS; k++)
                    c.pos[k] = (uint64_t)k * 31; /* threads at different points of the pass */
                snprintf(bench, sizeof bench, "churn.%s", pat_name[pat]);
                if (pat >= P_MIX)
                    snprintf(param, sizeof param, "size=%s threads=%u",
                             pat == P_MIX ? "64K-8M" : "4K-1M", threads);
                else {
                    bh_fmt_size(sz, sizeof sz, sizes[z]);
                    snprintf(param, sizeof param, "size=%s threads=%u", sz, threads);
                }
                bh_case_t bc = {.bench = bench, .param = param, .threads = threads,
                                .body = body, .ctx = &c,
                                .ops_per_iter = pat >= P_MIX ? SEQ_LEN : 1};
                bh_measure(&bc, NULL);
                for (unsigned k = 0; k < MAX_THREADS; k++)
                    free(c.src[k]);
            }
        }
    }
    return 0;
}
