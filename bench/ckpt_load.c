/* A checkpoint loader, written like an unmodified program: read each tensor record of a
 * GPT-2-small-shaped file (float32; 8 of its 12 layers: 383 MB) into a freshly malloc'd
 * buffer, checksum it, free it. One operation is one pass over the whole file, which sits in
 * the page cache after the first pass. The seed claims "200 ms -> 53 ms (3.8x)" for this.
 *
 * Records: wte 50257x768 (154 MB), wpe 1024x768 (3 MB), and per layer c_attn 768x2304
 * (7 MB), attn c_proj 768x768 (2.4 MB), c_fc 768x3072 and mlp c_proj 3072x768 (9.4 MB each),
 * and eight small biases and norms of 3-12 KB.
 *
 * usage: ckpt_load [common options] [--file PATH]   (generates PATH once if missing) */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LAYERS 8
#define MAGIC "ZPCKPT01"

typedef struct rec {
    char name[48];
    uint32_t ndim, pad;
    uint64_t dims[4];
    uint64_t nbytes;
} rec_t;

static int nrecs;
static rec_t recs[2 + LAYERS * 12 + 2];

static void add(const char *name, uint64_t d0, uint64_t d1)
{
    rec_t *r = &recs[nrecs++];
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", name);
    r->ndim = d1 ? 2 : 1;
    r->dims[0] = d0;
    r->dims[1] = d1;
    r->nbytes = 4 * d0 * (d1 ? d1 : 1);
}

static void layout(void)
{
    add("wte", 50257, 768);
    add("wpe", 1024, 768);
    for (int l = 0; l < LAYERS; l++) {
        static const struct { const char *n; uint64_t a, b; } t[] = {
            {"ln_1.weight", 768, 0}, {"ln_1.bias", 768, 0},
            {"attn.c_attn.weight", 768, 2304}, {"attn.c_attn.bias", 2304, 0},
            {"attn.c_proj.weight", 768, 768}, {"attn.c_proj.bias", 768, 0},
            {"ln_2.weight", 768, 0}, {"ln_2.bias", 768, 0},
            {"mlp.c_fc.weight", 768, 3072}, {"mlp.c_fc.bias", 3072, 0},
            {"mlp.c_proj.weight", 3072, 768}, {"mlp.c_proj.bias", 768, 0},
        };
        for (unsigned i = 0; i < sizeof t / sizeof t[0]; i++) {
            char name[48];
            snprintf(name, sizeof name, "h.%d.%s", l, t[i].n);
            add(name, t[i].a, t[i].b);
        }
    }
    add("ln_f.weight", 768, 0);
    add("ln_f.bias", 768, 0);
}

static uint64_t file_bytes(void)
{
    uint64_t n = 8;
    for (int i = 0; i < nrecs; i++)
        n += sizeof(rec_t) + recs[i].nbytes;
    return n;
}

static void write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            perror("ckpt_load: write");
            exit(1);
        }
        c += w;
        n -= (size_t)w;
    }
}

static void generate(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0 && (uint64_t)st.st_size == file_bytes())
        return; /* cached */
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        perror("ckpt_load: create");
        exit(1);
    }
    fprintf(stderr, "ckpt_load: generating %s (%.0f MB, once)\n", path, file_bytes() / 1e6);
    write_all(fd, MAGIC, 8);
    size_t chunk = 1 << 20;
    uint64_t *buf = malloc(chunk);
    uint64_t s = 42;
    for (int i = 0; i < nrecs; i++) {
        write_all(fd, &recs[i], sizeof recs[i]);
        for (uint64_t left = recs[i].nbytes; left;) {
            size_t n = left < chunk ? (size_t)left : chunk;
            for (size_t k = 0; k < (n + 7) / 8; k++) /* small floats: finite, like weights */
                buf[k] = bh_rand(&s) & 0x3DFFFFFF3DFFFFFFull;
            write_all(fd, buf, n);
            left -= n;
        }
    }
    free(buf);
    if (fsync(fd) || close(fd) || rename(tmp, path)) {
        perror("ckpt_load: finish");
        exit(1);
    }
}

static const char *ckpt_path = "/tmp/zeropool-bench-gpt2.ckpt";
static uint64_t checksum_all;

static void read_all(int fd, void *p, size_t n)
{
    char *c = p;
    while (n) {
        ssize_t r = read(fd, c, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            fprintf(stderr, "ckpt_load: short read\n");
            exit(1);
        }
        c += r;
        n -= (size_t)r;
    }
}

static void body(void *ctx, unsigned tid, uint64_t iters)
{
    (void)ctx;
    (void)tid;
    for (uint64_t it = 0; it < iters; it++) {
        int fd = open(ckpt_path, O_RDONLY);
        if (fd < 0) {
            perror("ckpt_load: open");
            exit(1);
        }
        char magic[8];
        read_all(fd, magic, 8);
        uint64_t sum = 0;
        for (int i = 0; i < nrecs; i++) {
            rec_t r;
            read_all(fd, &r, sizeof r);
            uint64_t *p = malloc(r.nbytes);
            if (!p) {
                fprintf(stderr, "ckpt_load: malloc(%llu) failed\n", (unsigned long long)r.nbytes);
                exit(1);
            }
            read_all(fd, p, r.nbytes);
            for (size_t k = 0; k < r.nbytes / 8; k++)
                sum += p[k];
            free(p);
        }
        close(fd);
        checksum_all += sum;
    }
}

int main(int argc, char **argv)
{
    argc = bh_parse(argc, argv);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--file") && i + 1 < argc)
            ckpt_path = argv[++i];
        else {
            fprintf(stderr, "usage: ckpt_load [options] [--file PATH]\n");
            bh_usage_common();
            return 2;
        }
    }
    layout();
    generate(ckpt_path);
    char note[96];
    snprintf(note, sizeof note, "records=%d bytes=%llu", nrecs,
             (unsigned long long)file_bytes());
    bh_case_t c = {.bench = "ckpt_load", .param = "gpt2-8layers", .body = body};
    bh_measure(&c, note);
    bh_keep(checksum_all);
    return 0;
}
