/* Fuzz harness of config/: ZEROPOOL_CONF strings, single values for every option, whole
 * environments (plain and secure-execution), the cgroup reader, the auto-configuration
 * formulas and the size parser. After every call the effective options must be in range,
 * round-trip through zp_option_format, and match a small independent model of the parser.
 *
 * Input: byte 0 picks the mode (low 3 bits) and flags; the rest is the payload.
 *   0 conf     payload is a ZEROPOOL_CONF string
 *   1 set      payload is one value, given to zp_option_set for every option
 *   2 env      payload split on '\n' into an envp; "@x" means "ZEROPOOL_x" and "%<b>x" means
 *              "ZEROPOOL_<name of option b>=x" (b = option count: ZEROPOOL_CONF), so that
 *              mutations reach real names quickly; flag 0x08 = secure-execution mode
 *   3 cgroup   payload is the text of /proc/self/cgroup, read against a fake cgroup tree;
 *              8 bytes of it also feed zp_autoconf_compute
 *   4 size     payload is given to zp_parse_size and compared with a reference parser */
#include "fuzz_util.h"
#include "zp_options.h"

#include <sys/stat.h>

/* ---- the table, seen from outside: where each option lives ---- */
static const size_t opt_off[ZP_OPT_COUNT] = {
#define ZP_OPT(NAME, field, TYPE, def, lo, hi, choices, help) \
    [ZP_OPT_##NAME] = offsetof(zp_options_t, field),
#include "options.def"
#undef ZP_OPT
};

static uint64_t opt_u64(const zp_options_t *o, int id)
{
    uint64_t v;
    memcpy(&v, (const char *)o + opt_off[id], sizeof v);
    return v;
}

static const char *opt_path(const zp_options_t *o, int id)
{
    return (const char *)o + opt_off[id];
}

static bool is_path(int id)
{
    return zp_opt_table[id].type == ZP_OPT_T_PATH;
}

static unsigned enum_count(const char *choices)
{
    unsigned n = 1;
    for (; *choices; choices++)
        n += *choices == '|';
    return n;
}

static zp_autoconf_t g_ac;           /* detected once: "auto" then means the same everywhere */
static char g_cgroot[128];           /* fake cgroup v2 tree */
static zp_options_t g_defaults;

/* ---- reference parsers, written from the option table's documentation ---- */
static bool ref_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void ref_trim(const char **s, size_t *n)
{
    while (*n && ref_space(**s))
        (*s)++, (*n)--;
    while (*n && ref_space((*s)[*n - 1]))
        (*n)--;
}

static bool ref_ieq(const char *s, size_t n, const char *w)
{
    if (strlen(w) != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char a = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] + 32) : s[i];
        if (a != w[i])
            return false;
    }
    return true;
}

/* A time as the README documents it: digits, then nothing (seconds) or one of s, m, h, d. */
static bool ref_digits(const char *s, size_t n, uint64_t *v);
static bool ref_time(const char *s, size_t n, uint64_t *v)
{
    static const struct { char c; uint64_t mult; } unit[] = {
        { 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 } };
    if (n > 1 && !(s[n - 1] >= '0' && s[n - 1] <= '9')) {
        for (size_t i = 0; i < sizeof unit / sizeof unit[0]; i++)
            if ((s[n - 1] | 0x20) == unit[i].c)
                return ref_digits(s, n - 1, v) && !__builtin_mul_overflow(*v, unit[i].mult, v);
        return false;
    }
    return ref_digits(s, n, v);
}

static bool ref_digits(const char *s, size_t n, uint64_t *v)
{
    if (n == 0)
        return false;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        if (__builtin_mul_overflow(x, 10, &x) || __builtin_add_overflow(x, (uint64_t)(s[i] - '0'), &x))
            return false;
    }
    *v = x;
    return true;
}

static bool ref_size(const char *s, size_t n, uint64_t *v)
{
    static const struct {
        const char *suffix;
        unsigned shift;
    } units[] = {
        { "", 0 },    { "b", 0 },    { "k", 10 },   { "kb", 10 }, { "kib", 10 }, { "m", 20 },
        { "mb", 20 }, { "mib", 20 }, { "g", 30 },   { "gb", 30 }, { "gib", 30 }, { "t", 40 },
        { "tb", 40 }, { "tib", 40 },
    };
    size_t d = 0;
    while (d < n && s[d] >= '0' && s[d] <= '9')
        d++;
    uint64_t x;
    if (!ref_digits(s, d, &x))
        return false;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (ref_ieq(s + d, n - d, units[i].suffix)) {
            if (units[i].shift && x > (UINT64_MAX >> units[i].shift))
                return false;
            *v = x << units[i].shift;
            return true;
        }
    }
    return false;
}

static bool ref_bool(const char *s, size_t n, uint64_t *v)
{
    static const char *const words[] = { "0", "false", "no", "off", "1", "true", "yes", "on" };
    for (unsigned i = 0; i < 8; i++)
        if (ref_ieq(s, n, words[i])) {
            *v = i >= 4;
            return true;
        }
    return false;
}

/* ---- invariants of a loaded or modified option set ---- */
static void check_format_truncation(const zp_options_t *o, int id, const char *full, size_t n)
{
    char small[8];
    memset(small, 'X', sizeof small);
    CHECK(zp_option_format(o, (zp_opt_id_t)id, small, 0) == 0 && small[0] == 'X',
          "format with len 0 wrote (option %s)", zp_opt_table[id].name);
    for (size_t len = 1; len <= sizeof small; len++) {
        memset(small, 'X', sizeof small);
        size_t r = zp_option_format(o, (zp_opt_id_t)id, small, len);
        CHECK(r < len && small[r] == '\0', "format len %zu returned %zu (option %s)", len, r,
              zp_opt_table[id].name);
        CHECK(r == (n < len - 1 ? n : len - 1) && memcmp(small, full, r) == 0,
              "truncated format of %s is not a prefix of \"%s\"", zp_opt_table[id].name, full);
    }
}

static void check_options(const zp_options_t *o, const char *ctx)
{
    for (int id = 0; id < ZP_OPT_COUNT; id++) {
        const zp_opt_desc_t *d = &zp_opt_table[id];
        CHECK((unsigned)o->source[id] <= ZP_SRC_ENV, "%s: bad source %d for %s", ctx,
              (int)o->source[id], d->name);
        if (is_path(id)) {
            const char *p = opt_path(o, id);
            CHECK(memchr(p, '\0', ZP_PATH_MAX) != NULL, "%s: %s not NUL-terminated", ctx, d->name);
            if (o->secure)
                CHECK(p[0] == '\0' && o->source[id] == ZP_SRC_DEFAULT,
                      "%s: secure mode took path %s=\"%s\"", ctx, d->name, p);
            if (p[0] == '\0')
                CHECK(o->source[id] != ZP_SRC_AUTO, "%s: path %s auto", ctx, d->name);
        } else {
            uint64_t v = opt_u64(o, id);
            CHECK(v >= d->lo && v <= d->hi, "%s: %s=%llu outside [%llu, %llu]", ctx, d->name,
                  (unsigned long long)v, (unsigned long long)d->lo, (unsigned long long)d->hi);
            if (d->type == ZP_OPT_T_POW2)
                CHECK(v && !(v & (v - 1)), "%s: %s=%llu not a power of two", ctx, d->name,
                      (unsigned long long)v);
            if (d->type == ZP_OPT_T_BOOL)
                CHECK(v <= 1, "%s: %s=%llu not a bool", ctx, d->name, (unsigned long long)v);
            if (d->type == ZP_OPT_T_ENUM)
                CHECK(v < enum_count(d->choices), "%s: %s=%llu past its choices", ctx, d->name,
                      (unsigned long long)v);
            if (o->source[id] == ZP_SRC_DEFAULT)
                CHECK(d->def != ZP_AUTO && v == d->def, "%s: %s=%llu marked default", ctx,
                      d->name, (unsigned long long)v);
            /* STATS is derived too: a statistics file named alone means JSON. */
            if (o->source[id] == ZP_SRC_AUTO)
                CHECK(d->def == ZP_AUTO || (id == ZP_OPT_STATS && o->stats_file[0] != '\0' &&
                                            v == ZP_STATS_JSON),
                      "%s: %s marked auto", ctx, d->name);
        }

        /* Round trip: the text `zeropool config` prints sets the same value again. */
        char buf[ZP_PATH_MAX + 8];
        size_t n = zp_option_format(o, (zp_opt_id_t)id, buf, sizeof buf);
        CHECK(n < sizeof buf && buf[n] == '\0' && strlen(buf) == n, "%s: format of %s", ctx,
              d->name);
        check_format_truncation(o, id, buf, n);
        zp_options_t t;
        memcpy(&t, o, sizeof t);
        int rc = zp_option_set(&t, d->name, strlen(d->name), buf, n, ZP_SRC_ENV);
        CHECK(rc == 0, "%s: %s=\"%s\" (its own format) is rejected", ctx, d->name, buf);
        if (is_path(id))
            CHECK(strcmp(opt_path(&t, id), opt_path(o, id)) == 0,
                  "%s: %s=\"%s\" reads back as \"%s\"", ctx, d->name, opt_path(o, id),
                  opt_path(&t, id));
        else
            CHECK(opt_u64(&t, id) == opt_u64(o, id), "%s: %s=%llu formats as \"%s\", reads back %llu",
                  ctx, d->name, (unsigned long long)opt_u64(o, id), buf,
                  (unsigned long long)opt_u64(&t, id));
    }
}

static void check_same(const zp_options_t *got, const zp_options_t *want, const char *ctx)
{
    for (int id = 0; id < ZP_OPT_COUNT; id++) {
        const char *name = zp_opt_table[id].name;
        if (is_path(id))
            CHECK(strcmp(opt_path(got, id), opt_path(want, id)) == 0,
                  "%s: %s is \"%s\", model says \"%s\"", ctx, name, opt_path(got, id),
                  opt_path(want, id));
        else
            CHECK(opt_u64(got, id) == opt_u64(want, id), "%s: %s is %llu, model says %llu", ctx,
                  name, (unsigned long long)opt_u64(got, id), (unsigned long long)opt_u64(want, id));
        CHECK(got->source[id] == want->source[id], "%s: source of %s is %d, model says %d", ctx,
              name, (int)got->source[id], (int)want->source[id]);
    }
    CHECK(got->secure == want->secure, "%s: secure flag", ctx);
    CHECK(got->problems == want->problems, "%s: %u problems, model says %u", ctx, got->problems,
          want->problems);
}

/* Option id of a name or conf key (case-insensitive), -1 if unknown. */
static int ref_lookup(const char *s, size_t n)
{
    for (int id = 0; id < ZP_OPT_COUNT; id++)
        if (ref_ieq(s, n, zp_opt_table[id].key))
            return id;
    return -1;
}

/* ---- mode 0: ZEROPOOL_CONF ---- */

/* The model of ZEROPOOL_CONF: split a copy with strchr, apply each entry in order. */
static void model_conf(zp_options_t *m, const char *conf)
{
    size_t len = strlen(conf);
    char *copy = malloc(len + 1);
    CHECK(copy != NULL, "malloc");
    memcpy(copy, conf, len + 1);
    for (char *entry = copy; entry;) {
        char *comma = strchr(entry, ',');
        if (comma)
            *comma = '\0';
        char *colon = strchr(entry, ':');
        const char *key = entry;
        size_t klen = colon ? (size_t)(colon - entry) : strlen(entry);
        ref_trim(&key, &klen);
        if (klen == 0 && !colon) {
            /* empty or blank entry: skipped quietly */
        } else if (!colon || klen == 0) {
            m->problems++;
        } else {
            zp_option_set(m, key, klen, colon + 1, strlen(colon + 1), ZP_SRC_CONF);
        }
        entry = comma ? comma + 1 : NULL;
    }
    free(copy);
}

static void mode_conf(const uint8_t *p, size_t n)
{
    char *conf = malloc(n + 1);
    CHECK(conf != NULL, "malloc");
    memcpy(conf, p, n);
    conf[n] = '\0';
    zp_options_t o, m;
    memcpy(&o, &g_defaults, sizeof o);
    memcpy(&m, &g_defaults, sizeof m);
    unsigned problems = zp_options_parse_conf(&o, conf);
    CHECK(problems == o.problems, "parse_conf returned %u, counted %u", problems, o.problems);
    model_conf(&m, conf);
    check_same(&o, &m, "conf");
    check_options(&o, "conf");
    free(conf);
}

/* ---- mode 1: one value for every option ---- */
static void mode_set(const uint8_t *p, size_t n, uint8_t flags)
{
    const char *val = (const char *)p;
    zp_opt_source_t src = (flags & 0x08) ? ZP_SRC_CONF : ZP_SRC_ENV;
    for (int id = 0; id < ZP_OPT_COUNT; id++) {
        const zp_opt_desc_t *d = &zp_opt_table[id];
        const char *name = (flags & 0x10) ? d->key : d->name;
        zp_options_t o, before;
        memcpy(&o, &g_defaults, sizeof o);
        memcpy(&before, &o, sizeof o);
        int rc = zp_option_set(&o, name, strlen(name), val, n, src);
        CHECK(rc == 0 || rc == -1, "zp_option_set returned %d", rc);

        /* What the documentation says should happen to this value. */
        const char *t = val;
        size_t tn = n;
        ref_trim(&t, &tn);
        bool ok, is_auto = d->def == ZP_AUTO && ref_ieq(t, tn, "auto");
        uint64_t v = 0;
        switch (d->type) {
        case ZP_OPT_T_SIZE: ok = ref_size(t, tn, &v); break;
        case ZP_OPT_T_UINT: ok = ref_digits(t, tn, &v); break;
        case ZP_OPT_T_POW2: ok = ref_digits(t, tn, &v) && v && !(v & (v - 1)); break;
        case ZP_OPT_T_BOOL: ok = ref_bool(t, tn, &v); break;
        case ZP_OPT_T_PATH: ok = tn < ZP_PATH_MAX && !memchr(t, '\0', tn); break;
        case ZP_OPT_T_TIME: ok = ref_time(t, tn, &v); break;
        default: ok = rc == 0; break; /* ENUM: the round trip below checks it */
        }
        if (d->type != ZP_OPT_T_PATH && d->type != ZP_OPT_T_ENUM)
            ok = ok && v >= d->lo && v <= d->hi;
        ok = ok || is_auto;
        CHECK((rc == 0) == ok, "%s=\"%.*s\": zp_option_set returned %d, expected %s", name,
              (int)(n > 64 ? 64 : n), val, rc, ok ? "success" : "failure");
        if (rc == 0) {
            CHECK(o.problems == before.problems, "success counted a problem");
            if (is_auto) {
                CHECK(o.source[id] == ZP_SRC_AUTO, "auto not marked auto");
            } else {
                CHECK(o.source[id] == src, "%s: source not recorded", name);
                if (d->type == ZP_OPT_T_PATH) {
                    /* The stored path is the trimmed value, whole. */
                    const char *s = opt_path(&o, id);
                    CHECK(strlen(s) == tn && memcmp(s, t, tn) == 0, "path stored as \"%s\"", s);
                } else if (d->type != ZP_OPT_T_ENUM) {
                    CHECK(opt_u64(&o, id) == v, "%s=\"%.*s\" stored %llu, expected %llu", name,
                          (int)(n > 64 ? 64 : n), val, (unsigned long long)opt_u64(&o, id),
                          (unsigned long long)v);
                }
            }
            /* Nothing else changed. */
            for (int j = 0; j < ZP_OPT_COUNT; j++)
                if (j != id)
                    CHECK(is_path(j) ? strcmp(opt_path(&o, j), opt_path(&before, j)) == 0
                                     : opt_u64(&o, j) == opt_u64(&before, j),
                          "setting %s changed %s", name, zp_opt_table[j].name);
        } else {
            /* A rejected value leaves everything as it was, and is counted once. */
            CHECK(o.problems == before.problems + 1, "failure counted %u problems",
                  o.problems - before.problems);
            o.problems = before.problems;
            /* ...and the first problem's words are kept, for strict mode's line. */
            CHECK(o.first_bad[0] != '\0', "rejected value left no first problem");
            if (before.first_bad[0] != '\0')
                CHECK(strcmp(o.first_bad, before.first_bad) == 0, "the first problem changed");
            memcpy(o.first_bad, before.first_bad, sizeof o.first_bad);
            CHECK(memcmp(&o, &before, sizeof o) == 0, "rejected %s=\"%.*s\" changed the options",
                  name, (int)(n > 64 ? 64 : n), val);
        }
        check_options(&o, "set");
    }
    /* An arbitrary name: unknown names are rejected and change nothing. */
    if (n) {
        size_t nl = n < 40 ? n : 40;
        zp_options_t o;
        memcpy(&o, &g_defaults, sizeof o);
        int rc = zp_option_set(&o, val, nl, "1", 1, ZP_SRC_ENV);
        CHECK(rc == -1 || ref_lookup(val, nl) >= 0, "unknown name \"%.*s\" accepted", (int)nl, val);
        check_options(&o, "set-name");
    }
}

/* ---- mode 2: a whole environment ---- */
#define MAX_ENV 64

/* The model of zp_options_load_ex: ZEROPOOL_CONF (the first), then each variable once. In
 * secure-execution mode none of the environment counts (only /etc/zeropool.conf, absent here). */
static void model_env(zp_options_t *m, char **envp, bool secure)
{
    memcpy(m, &g_defaults, sizeof *m);
    m->secure = secure;
    if (secure)
        envp = (char *[]){ NULL };
    for (char **e = envp; *e; e++)
        if (strncmp(*e, "ZEROPOOL_CONF=", 14) == 0) {
            model_conf(m, *e + 14);
            break;
        }
    bool seen[ZP_OPT_COUNT] = { false };
    for (char **e = envp; *e; e++) {
        if (strncmp(*e, "ZEROPOOL_", 9) != 0)
            continue;
        const char *name = *e + 9, *eq = strchr(name, '=');
        size_t nl = eq ? (size_t)(eq - name) : strlen(name);
        const char *val = eq ? eq + 1 : name + nl;
        if (ref_ieq(name, nl, "conf") || ref_ieq(name, nl, "conf_file") ||
            ref_ieq(name, nl, "lib") || ref_ieq(name, nl, "config_helper"))
            continue; /* not options: the file's name and the zeropool command's own */
        int id = ref_lookup(name, nl);
        if (id >= 0) {
            if (seen[id])
                continue;
            seen[id] = true;
        }
        zp_option_set(m, name, nl, val, strlen(val), ZP_SRC_ENV);
    }
    if (m->source[ZP_OPT_TLS_CACHE_BYTES] == ZP_SRC_AUTO) {
        uint64_t v = zp_autoconf_tls_bytes(m->pool_bytes, m->shards);
        const zp_opt_desc_t *d = &zp_opt_table[ZP_OPT_TLS_CACHE_BYTES];
        m->tls_cache_bytes = v < d->lo ? d->lo : v > d->hi ? d->hi : v;
    }
    /* A statistics file named without a format means JSON. */
    if (m->stats_file[0] != '\0' && m->source[ZP_OPT_STATS] == ZP_SRC_DEFAULT) {
        m->stats = ZP_STATS_JSON;
        m->source[ZP_OPT_STATS] = ZP_SRC_AUTO;
    }
}

static void mode_env(const uint8_t *p, size_t n, uint8_t flags)
{
    char *envp[MAX_ENV + 1];
    unsigned count = 0;
    size_t i = 0;
    while (i <= n && count < MAX_ENV) {
        size_t j = i;
        while (j < n && p[j] != '\n')
            j++;
        const uint8_t *s = p + i;
        size_t sl = j - i;
        char prefix[64] = "";
        if (sl >= 1 && s[0] == '@') {
            strcpy(prefix, "ZEROPOOL_");
            s++, sl--;
        } else if (sl >= 2 && s[0] == '%') {
            unsigned k = s[1] % (ZP_OPT_COUNT + 1);
            snprintf(prefix, sizeof prefix, "ZEROPOOL_%s=", k == ZP_OPT_COUNT ? "CONF" : zp_opt_table[k].name);
            s += 2, sl -= 2;
        }
        size_t pl = strlen(prefix);
        envp[count] = malloc(pl + sl + 1);
        CHECK(envp[count] != NULL, "malloc");
        memcpy(envp[count], prefix, pl);
        memcpy(envp[count] + pl, s, sl);
        envp[count][pl + sl] = '\0';
        count++;
        i = j + 1;
    }
    envp[count] = NULL;
    bool secure = flags & 0x08;
    zp_options_t o, m;
    memset(&o, 0xA5, sizeof o); /* load must set every field */
    zp_options_load_ex(&o, envp, secure, &g_ac);
    model_env(&m, envp, secure);
    check_same(&o, &m, secure ? "env (secure)" : "env");
    for (int id = 0; secure && id < ZP_OPT_COUNT; id++)
        CHECK(o.source[id] != ZP_SRC_ENV && o.source[id] != ZP_SRC_CONF,
              "env (secure): %s taken from the environment", zp_opt_table[id].name);
    check_options(&o, secure ? "env (secure)" : "env");

    /* The dump writes one line per option and must cope with any value. */
    zp_options_dump(&o, fz_null_fd >= 0 ? fz_null_fd : 2);
    for (unsigned k = 0; k < count; k++)
        free(envp[k]);
}

/* ---- mode 3: the cgroup reader and the formulas ---- */
static void write_file(const char *dir, const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    if (write(fd, text, strlen(text)) < 0) {
        /* a missing file only makes the tree smaller */
    }
    close(fd);
}

/* /tmp/zp-fuzz-cgroup-UID: the root has no limits, /a limits memory to 1 GiB and CPUs to
 * 1.5, /a/b to half a CPU; /a/junk holds garbage. */
static void make_cgroup_tree(void)
{
    char d[256];
    snprintf(g_cgroot, sizeof g_cgroot, "/tmp/zp-fuzz-cgroup-%u", (unsigned)getuid());
    mkdir(g_cgroot, 0755);
    write_file(g_cgroot, "cpu.max", "max 100000\n");
    write_file(g_cgroot, "memory.max", "max\n");
    snprintf(d, sizeof d, "%s/a", g_cgroot);
    mkdir(d, 0755);
    write_file(d, "cpu.max", "150000 100000\n");
    write_file(d, "memory.max", "1073741824\n");
    snprintf(d, sizeof d, "%s/a/b", g_cgroot);
    mkdir(d, 0755);
    write_file(d, "cpu.max", "50000 100000\n");
    snprintf(d, sizeof d, "%s/a/junk", g_cgroot);
    mkdir(d, 0755);
    write_file(d, "cpu.max", "99999999999999999999999 0\n");
    write_file(d, "memory.max", "-1\n");
}

static void mode_cgroup(const uint8_t *p, size_t n)
{
    char *text = malloc(n + 1);
    CHECK(text != NULL, "malloc");
    memcpy(text, p, n);
    text[n] = '\0';
    unsigned quota = 12345;
    uint64_t mem = 12345;
    zp_autoconf_cgroup(g_cgroot, text, &quota, &mem);
    CHECK(quota <= 2, "quota %u CPUs: the tree has at most 1.5", quota);
    CHECK(mem == 0 || mem == ZP_GIB, "memory.max %llu: the tree has only 1 GiB",
          (unsigned long long)mem);
    free(text);

    fz_in_t in = { p, n, 0 };
    unsigned cpus = fz_u32(&in);
    uint64_t phys = fz_u64(&in);
    zp_autoconf_t ac;
    zp_autoconf_compute(cpus, phys, &ac);
    CHECK(ac.cpus >= 1, "cpus");
    CHECK(ac.shards >= 4 && ac.shards <= 128 && !(ac.shards & (ac.shards - 1)), "shards %llu",
          (unsigned long long)ac.shards);
    CHECK(ac.tls_cache >= 2 && ac.tls_cache <= 8, "tls_cache");
    CHECK(ac.pool_bytes >= 16 * ZP_MIB, "pool_bytes %llu", (unsigned long long)ac.pool_bytes);
    CHECK(ac.tls_cache_bytes <= ac.pool_bytes / 4 && ac.tls_cache_bytes <= 64 * ZP_MIB,
          "tls_cache_bytes");
    zp_options_t o;
    zp_options_defaults(&o, &ac);
    check_options(&o, "autoconf");
}

/* ---- mode 4: sizes ---- */
static void mode_size(const uint8_t *p, size_t n)
{
    const char *s = (const char *)p;
    uint64_t got = 0xdeadbeef, want = 0;
    bool ok = zp_parse_size(s, n, &got), rok = ref_size(s, n, &want);
    CHECK(ok == rok, "zp_parse_size(\"%.*s\") = %d, reference %d", (int)(n > 64 ? 64 : n), s, ok, rok);
    if (ok)
        CHECK(got == want, "zp_parse_size(\"%.*s\") = %llu, reference %llu", (int)(n > 64 ? 64 : n),
              s, (unsigned long long)got, (unsigned long long)want);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_quiet_init();
    zp_autoconf_detect(&g_ac);
    zp_options_defaults(&g_defaults, &g_ac);
    check_options(&g_defaults, "defaults");
    make_cgroup_tree();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t flags = data[0];
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    fz_quiet_begin();
    switch (flags & 7) {
    case 0: mode_conf(p, n); break;
    case 1: mode_set(p, n, flags); break;
    case 2: mode_env(p, n, flags); break;
    case 3: mode_cgroup(p, n); break;
    case 4: mode_size(p, n); break;
    default: mode_conf(p, n); break;
    }
    fz_quiet_end();
    return 0;
}
