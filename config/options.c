/* The ZEROPOOL_* option table and its parser: environment scan, ZEROPOOL_CONF, validation,
 * the one-line messages for bad or unknown settings, and the effective-settings dump.
 * No malloc, no stdio, no getenv: it runs from the preload library's constructor. */
#include "zp_options.h"

#include "zp_fmt.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

const zp_opt_desc_t zp_opt_table[ZP_OPT_COUNT] = {
#define ZP_OPT(NAME, field, TYPE, def, lo, hi, choices, help) \
    [ZP_OPT_##NAME] = { #NAME, #field, ZP_OPT_T_##TYPE, (def), (lo), (hi), (choices), (help) },
#include "options.def"
#undef ZP_OPT
};

/* Where each option lives in zp_options_t; PATH fields are char arrays, the rest uint64_t. */
static const size_t zp_opt_offset[ZP_OPT_COUNT] = {
#define ZP_OPT(NAME, field, TYPE, def, lo, hi, choices, help) \
    [ZP_OPT_##NAME] = offsetof(zp_options_t, field),
#include "options.def"
#undef ZP_OPT
};

/* Extra spellings accepted for ENUM values, beyond the names in the choices string. */
static const struct {
    zp_opt_id_t id;
    const char *name;
    uint64_t value;
} zp_opt_alias[] = {
    /* ZEROPOOL_STATS takes every boolean word, as the BOOL options do. */
    { ZP_OPT_STATS, "off", ZP_STATS_OFF },
    { ZP_OPT_STATS, "no", ZP_STATS_OFF },
    { ZP_OPT_STATS, "false", ZP_STATS_OFF },
    { ZP_OPT_STATS, "on", ZP_STATS_TEXT },
    { ZP_OPT_STATS, "yes", ZP_STATS_TEXT },
    { ZP_OPT_STATS, "true", ZP_STATS_TEXT },
    { ZP_OPT_STATS, "text", ZP_STATS_TEXT },
    { ZP_OPT_EVICTION, "clockpro", 1 },  /* clock-pro: ZP_EVICT_CLOCK_PRO */
    { ZP_OPT_EVICTION, "clock_pro", 1 },
};

#define ZP_ENV_PREFIX "ZEROPOOL_"
#define ZP_ENV_PREFIX_LEN 9
#define ZP_MSG_VALUE_MAX 64 /* longest value echoed in a message */

static uint64_t *zp_opt_u64(zp_options_t *o, int id)
{
    return (uint64_t *)(void *)((char *)o + zp_opt_offset[id]);
}

static char *zp_opt_path(zp_options_t *o, int id)
{
    return (char *)o + zp_opt_offset[id];
}

static uint64_t zp_opt_get(const zp_options_t *o, int id)
{
    return *(const uint64_t *)(const void *)((const char *)o + zp_opt_offset[id]);
}

static const char *zp_opt_cpath(const zp_options_t *o, int id)
{
    return (const char *)o + zp_opt_offset[id];
}

/* Exact (case-sensitive) prefix test, for the environment scan. */
static bool zp_prefix(const char *s, const char *prefix)
{
    while (*prefix && *s == *prefix) {
        s++;
        prefix++;
    }
    return *prefix == '\0';
}

static char zp_lower(char c)
{
    if (c >= 'A' && c <= 'Z')
        return (char)(c - 'A' + 'a');
    return c;
}

/* Case-insensitive: s[0..n) equals the NUL-terminated word w. */
static bool zp_eq(const char *s, size_t n, const char *w)
{
    size_t i = 0;
    for (; i < n && w[i]; i++)
        if (zp_lower(s[i]) != zp_lower(w[i]))
            return false;
    return i == n && w[i] == '\0';
}

static size_t zp_strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

static bool zp_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void zp_trim(const char **s, size_t *n)
{
    while (*n && zp_space(**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n && zp_space((*s)[*n - 1]))
        (*n)--;
}

/* Decimal digits only, overflow checked; no sign, no spaces. */
static bool zp_parse_u64(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

bool zp_parse_size(const char *s, size_t len, uint64_t *out)
{
    size_t digits = 0;
    while (digits < len && s[digits] >= '0' && s[digits] <= '9')
        digits++;
    uint64_t v;
    if (!zp_parse_u64(s, digits, &v))
        return false;
    const char *suf = s + digits;
    size_t sn = len - digits;
    unsigned shift = 0;
    if (sn > 0) {
        switch (zp_lower(suf[0])) {
        case 'k': shift = 10; break;
        case 'm': shift = 20; break;
        case 'g': shift = 30; break;
        case 't': shift = 40; break;
        case 'b': shift = 0; break;
        default: return false;
        }
        /* After a unit letter: nothing, "B" or "iB"; a lone "B" means bytes. */
        if (shift && !(zp_eq(suf + 1, sn - 1, "") || zp_eq(suf + 1, sn - 1, "b") ||
                       zp_eq(suf + 1, sn - 1, "ib")))
            return false;
        if (!shift && sn != 1)
            return false;
    }
    if (shift && v > (UINT64_MAX >> shift))
        return false;
    *out = v << shift;
    return true;
}

/* Seconds: digits with an optional s, m, h or d suffix ("30s", "5m"); digits alone are seconds. */
static bool zp_parse_time(const char *s, size_t len, uint64_t *out)
{
    size_t digits = 0;
    while (digits < len && s[digits] >= '0' && s[digits] <= '9')
        digits++;
    uint64_t v, mult = 1;
    if (!zp_parse_u64(s, digits, &v))
        return false;
    if (len - digits > 1)
        return false;
    if (len - digits == 1) {
        switch (zp_lower(s[digits])) {
        case 's': mult = 1; break;
        case 'm': mult = 60; break;
        case 'h': mult = 3600; break;
        case 'd': mult = 86400; break;
        default: return false;
        }
    }
    if (v > UINT64_MAX / mult)
        return false;
    *out = v * mult;
    return true;
}

static void zp_buf_time(zp_buf_t *b, uint64_t v)
{
    if (v && v % 86400 == 0) {
        zp_buf_u64(b, v / 86400);
        zp_buf_chr(b, 'd');
    } else if (v && v % 3600 == 0) {
        zp_buf_u64(b, v / 3600);
        zp_buf_chr(b, 'h');
    } else if (v && v % 60 == 0) {
        zp_buf_u64(b, v / 60);
        zp_buf_chr(b, 'm');
    } else {
        zp_buf_u64(b, v);
        zp_buf_chr(b, 's');
    }
}

static bool zp_parse_bool(const char *s, size_t n, uint64_t *out)
{
    static const char *const yes[] = { "1", "true", "yes", "on" };
    static const char *const no[] = { "0", "false", "no", "off" };
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (zp_eq(s, n, yes[i])) {
            *out = 1;
            return true;
        }
        if (zp_eq(s, n, no[i])) {
            *out = 0;
            return true;
        }
    }
    return false;
}

/* The index of choice idx in a "a|b|c" string: its start and length; false past the end. */
static bool zp_choice(const char *choices, uint64_t idx, const char **start, size_t *n)
{
    const char *p = choices;
    for (uint64_t i = 0; i < idx; i++) {
        while (*p && *p != '|')
            p++;
        if (!*p)
            return false;
        p++;
    }
    size_t k = 0;
    while (p[k] && p[k] != '|')
        k++;
    *start = p;
    *n = k;
    return true;
}

static bool zp_parse_enum(int id, const char *s, size_t n, uint64_t *out)
{
    const char *c;
    size_t cn;
    for (uint64_t i = 0; zp_choice(zp_opt_table[id].choices, i, &c, &cn); i++) {
        if (cn == n) {
            size_t k = 0;
            while (k < n && zp_lower(s[k]) == zp_lower(c[k]))
                k++;
            if (k == n) {
                *out = i;
                return true;
            }
        }
    }
    for (size_t i = 0; i < sizeof zp_opt_alias / sizeof zp_opt_alias[0]; i++) {
        if ((int)zp_opt_alias[i].id == id && zp_eq(s, n, zp_opt_alias[i].name)) {
            *out = zp_opt_alias[i].value;
            return true;
        }
    }
    return false;
}

static bool zp_is_pow2(uint64_t v)
{
    return v && (v & (v - 1)) == 0;
}

/* The auto-configured value of one option. */
static uint64_t zp_auto_value(int id, const zp_autoconf_t *ac)
{
    switch (id) {
    case ZP_OPT_POOL_BYTES: return ac->pool_bytes;
    case ZP_OPT_SHARDS: return ac->shards;
    case ZP_OPT_TLS_CACHE: return ac->tls_cache;
    case ZP_OPT_TLS_CACHE_BYTES: return ac->tls_cache_bytes;
    default: return 0;
    }
}

static uint64_t zp_clamp(uint64_t v, uint64_t lo, uint64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

void zp_options_defaults(zp_options_t *o, const zp_autoconf_t *ac)
{
    for (int id = 0; id < ZP_OPT_COUNT; id++) {
        const zp_opt_desc_t *d = &zp_opt_table[id];
        if (d->type == ZP_OPT_T_PATH) {
            zp_opt_path(o, id)[0] = '\0';
            o->source[id] = ZP_SRC_DEFAULT;
        } else if (d->def == ZP_AUTO) {
            /* Clamped so that the option table stays the last word on what is valid. */
            *zp_opt_u64(o, id) = zp_clamp(zp_auto_value(id, ac), d->lo, d->hi);
            o->source[id] = ZP_SRC_AUTO;
        } else {
            *zp_opt_u64(o, id) = d->def;
            o->source[id] = ZP_SRC_DEFAULT;
        }
    }
    o->secure = false;
    o->problems = 0;
    o->nverdicts = 0;
    o->sys_conf[0] = '\0';
    o->sys_conf_state = ZP_SYS_CONF_ABSENT;
    o->mem_bytes = ac->phys_bytes;
    o->mem_source = ac->mem_source;
}

/* A finished message line ("zeropool: ...\n"): the system-wide file's are kept in o->verdicts
 * (without the prefix and newline), the environment's go to fd 2. */
static void zp_say(zp_options_t *o, zp_opt_source_t src, zp_buf_t *b)
{
    if (b->len == b->cap) /* truncation must not eat the newline */
        b->len--;
    if (b->len == 0 || b->p[b->len - 1] != '\n')
        zp_buf_chr(b, '\n');
    if (src != ZP_SRC_FILE || o == NULL) {
        zp_buf_flush(b, 2);
        return;
    }
    if (o->nverdicts < ZP_VERDICTS) {
        const char *t = b->p;
        size_t n = b->len - 1, skip = sizeof "zeropool: " - 1;
        if (n >= skip && zp_prefix(t, "zeropool: ")) {
            t += skip;
            n -= skip;
        }
        if (n > ZP_VERDICT_LEN - 1)
            n = ZP_VERDICT_LEN - 1;
        char *v = o->verdicts[o->nverdicts];
        for (size_t i = 0; i < n; i++)
            v[i] = t[i];
        v[n] = '\0';
    }
    o->nverdicts++;
    b->len = 0;
}

/* Copies value text into a message, bounded and kept on one line. */
static void zp_buf_value(zp_buf_t *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n && i < ZP_MSG_VALUE_MAX; i++) {
        unsigned char c = (unsigned char)s[i];
        char shown = (char)c;
        if (c < 0x20 || c == 0x7f)
            shown = '?';
        zp_buf_chr(b, shown);
    }
    if (n > ZP_MSG_VALUE_MAX)
        zp_buf_str(b, "...");
}

/* "ZEROPOOL_SHARDS" or "ZEROPOOL_CONF key shards": how the user wrote the setting. */
/* The file being parsed, for messages ("/etc/zeropool.conf key shards"); loading is done once,
 * by one thread, before the pool exists. */
static const char *zp_file_label = ZP_SYS_CONF;

/* Where a key:value list came from, as messages name it. */
static void zp_buf_origin(zp_buf_t *b, zp_opt_source_t src)
{
    zp_buf_str(b, src == ZP_SRC_FILE ? zp_file_label : "ZEROPOOL_CONF");
}

static void zp_buf_label(zp_buf_t *b, int id, zp_opt_source_t src)
{
    if (src == ZP_SRC_CONF || src == ZP_SRC_FILE) {
        zp_buf_origin(b, src);
        zp_buf_str(b, " key ");
        zp_buf_str(b, zp_opt_table[id].key);
    } else {
        zp_buf_str(b, ZP_ENV_PREFIX);
        zp_buf_str(b, zp_opt_table[id].name);
    }
}

static void zp_buf_expected(zp_buf_t *b, const zp_opt_desc_t *d)
{
    switch (d->type) {
    case ZP_OPT_T_SIZE:
    case ZP_OPT_T_UINT:
    case ZP_OPT_T_POW2:
        zp_buf_str(b, d->type == ZP_OPT_T_SIZE   ? "a size (K, M, G, T suffixes) from "
                      : d->type == ZP_OPT_T_POW2 ? "a power of two from "
                                                 : "a whole number from ");
        if (d->type == ZP_OPT_T_SIZE) {
            zp_buf_size(b, d->lo);
            zp_buf_str(b, " to ");
            zp_buf_size(b, d->hi);
        } else {
            zp_buf_u64(b, d->lo);
            zp_buf_str(b, " to ");
            zp_buf_u64(b, d->hi);
        }
        if (d->def == ZP_AUTO)
            zp_buf_str(b, " or auto");
        break;
    case ZP_OPT_T_BOOL:
        zp_buf_str(b, "one of 0, 1, true, false, yes, no, on, off");
        break;
    case ZP_OPT_T_TIME:
        zp_buf_str(b, "a time (s, m, h, d suffixes) from ");
        zp_buf_time(b, d->lo);
        zp_buf_str(b, " to ");
        zp_buf_time(b, d->hi);
        break;
    case ZP_OPT_T_ENUM: {
        const char *c;
        size_t n;
        zp_buf_str(b, "one of ");
        for (uint64_t i = 0; zp_choice(d->choices, i, &c, &n); i++) {
            if (i)
                zp_buf_str(b, ", ");
            zp_buf_mem(b, c, n);
        }
        if (d->choices[0] == '0')
            zp_buf_str(b, " (or a boolean word: on, off, yes, no, true, false)");
        break;
    }
    default:
        zp_buf_str(b, "a path of at most ");
        zp_buf_u64(b, ZP_PATH_MAX - 1);
        zp_buf_str(b, " bytes");
        break;
    }
}

static void zp_report_invalid(zp_options_t *o, int id, const char *val, size_t vlen,
                              zp_opt_source_t src)
{
    char line[512], cur[ZP_PATH_MAX];
    zp_buf_t b = ZP_BUF_INIT(line);
    zp_buf_str(&b, "zeropool: ");
    zp_buf_label(&b, id, src);
    zp_buf_chr(&b, '=');
    zp_buf_value(&b, val, vlen);
    zp_buf_str(&b, " is invalid: expected ");
    zp_buf_expected(&b, &zp_opt_table[id]);
    zp_buf_str(&b, "; keeping ");
    size_t n = zp_option_format(o, (zp_opt_id_t)id, cur, sizeof cur);
    if (n)
        zp_buf_value(&b, cur, n);
    else
        zp_buf_str(&b, "(unset)");
    zp_say(o, src, &b);
}

/* Levenshtein distance, case-insensitive; names are short, so one stack row suffices. */
static size_t zp_distance(const char *a, size_t an, const char *b, size_t bn)
{
    size_t row[64];
    if (bn >= sizeof row / sizeof row[0])
        return SIZE_MAX;
    for (size_t j = 0; j <= bn; j++)
        row[j] = j;
    for (size_t i = 1; i <= an; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= bn; j++) {
            size_t up = row[j];
            size_t best = diag + (zp_lower(a[i - 1]) != zp_lower(b[j - 1]));
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[bn];
}

/* The nearest option name, or -1 if none is near enough to be a plausible typo. */
int zp_option_nearest(const char *name, size_t n)
{
    int best = -1;
    size_t best_d = SIZE_MAX;
    for (int id = 0; id < ZP_OPT_COUNT; id++) {
        const char *cand = zp_opt_table[id].name;
        size_t d = zp_distance(name, n, cand, zp_strlen(cand));
        if (d < best_d) {
            best_d = d;
            best = id;
        }
    }
    /* Up to 3 edits, and fewer than half the letters: "FOO" is not a typo of "PIN". */
    if (best < 0 || best_d > 3 || 2 * best_d >= zp_strlen(zp_opt_table[best].name))
        return -1;
    return best;
}

static void zp_report_unknown(zp_options_t *o, const char *name, size_t n, zp_opt_source_t src)
{
    char line[256];
    zp_buf_t b = ZP_BUF_INIT(line);
    int near = zp_option_nearest(name, n);
    bool conf = src == ZP_SRC_CONF || src == ZP_SRC_FILE;
    if (conf) {
        zp_buf_str(&b, "zeropool: unknown ");
        zp_buf_origin(&b, src);
        zp_buf_str(&b, " key ");
    } else {
        zp_buf_str(&b, "zeropool: unknown variable " ZP_ENV_PREFIX);
    }
    zp_buf_value(&b, name, n);
    if (near >= 0) {
        zp_buf_str(&b, "; did you mean ");
        if (conf)
            zp_buf_str(&b, zp_opt_table[near].key);
        else
            zp_buf_label(&b, near, src);
        zp_buf_chr(&b, '?');
    } else {
        zp_buf_str(&b, " (see `zeropool config`)");
    }
    zp_say(o, src, &b);
}

static int zp_lookup(const char *name, size_t n)
{
    for (int id = 0; id < ZP_OPT_COUNT; id++)
        if (zp_eq(name, n, zp_opt_table[id].name))
            return id;
    return -1;
}

/* Parse and range-check one value; false if it is not acceptable. */
static bool zp_parse_value(int id, const char *s, size_t n, uint64_t *v)
{
    const zp_opt_desc_t *d = &zp_opt_table[id];
    bool ok;
    switch (d->type) {
    case ZP_OPT_T_SIZE: ok = zp_parse_size(s, n, v); break;
    case ZP_OPT_T_BOOL: ok = zp_parse_bool(s, n, v); break;
    case ZP_OPT_T_ENUM: ok = zp_parse_enum(id, s, n, v); break;
    case ZP_OPT_T_TIME: ok = zp_parse_time(s, n, v); break;
    case ZP_OPT_T_POW2: ok = zp_parse_u64(s, n, v) && zp_is_pow2(*v); break;
    default: ok = zp_parse_u64(s, n, v); break;
    }
    return ok && *v >= d->lo && *v <= d->hi;
}

/* zp_option_set with the auto-configuration at hand (NULL: detect it if "auto" is asked). */
static int zp_set(zp_options_t *o, const zp_autoconf_t *ac, const char *name, size_t name_len,
                  const char *value, size_t value_len, zp_opt_source_t src)
{
    int id = zp_lookup(name, name_len);
    if (id < 0) {
        zp_report_unknown(o, name, name_len, src);
        o->problems++;
        return -1;
    }
    const zp_opt_desc_t *d = &zp_opt_table[id];
    zp_trim(&value, &value_len);
    if (d->type == ZP_OPT_T_PATH) {
        /* A NUL inside the value (possible only through zp_option_set's explicit length)
         * would cut the path short of what was asked for: refuse it like an overlong one. */
        bool has_nul = false;
        for (size_t i = 0; i < value_len && !has_nul; i++)
            has_nul = value[i] == '\0';
        if (value_len >= ZP_PATH_MAX || has_nul) {
            zp_report_invalid(o, id, value, value_len, src);
            o->problems++;
            return -1;
        }
        char *p = zp_opt_path(o, id);
        for (size_t i = 0; i < value_len; i++)
            p[i] = value[i];
        p[value_len] = '\0';
        o->source[id] = src;
        return 0;
    }
    if (d->def == ZP_AUTO && zp_eq(value, value_len, "auto")) {
        zp_autoconf_t detected;
        if (!ac) {
            zp_autoconf_detect(&detected);
            ac = &detected;
        }
        *zp_opt_u64(o, id) = zp_clamp(zp_auto_value(id, ac), d->lo, d->hi);
        o->source[id] = ZP_SRC_AUTO;
        return 0;
    }
    uint64_t v;
    if (!zp_parse_value(id, value, value_len, &v)) {
        zp_report_invalid(o, id, value, value_len, src);
        o->problems++;
        return -1;
    }
    *zp_opt_u64(o, id) = v;
    o->source[id] = src;
    return 0;
}

int zp_option_set(zp_options_t *o, const char *name, size_t name_len, const char *value,
                  size_t value_len, zp_opt_source_t src)
{
    return zp_set(o, NULL, name, name_len, value, value_len, src);
}

/* "key:value,key:value"; empty entries (",," or a trailing comma) are skipped quietly,
 * an entry without a colon or with an empty key is reported. */
static unsigned zp_conf_parse(zp_options_t *o, const zp_autoconf_t *ac, const char *conf,
                              zp_opt_source_t src)
{
    unsigned before = o->problems;
    bool semicolon = false;
    const char *p = conf;
    while (*p) {
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *key = p, *colon = p;
        while (colon < e && *colon != ':')
            colon++;
        size_t klen = (size_t)(colon - key);
        zp_trim(&key, &klen);
        for (const char *q = p; q < e && !semicolon; q++)
            semicolon = *q == ';';
        if (e == p || (klen == 0 && colon == e)) {
            /* empty entry */
        } else if (colon == e || klen == 0) {
            char line[256];
            zp_buf_t b = ZP_BUF_INIT(line);
            zp_buf_str(&b, "zeropool: ");
            zp_buf_origin(&b, src);
            zp_buf_str(&b, " entry \"");
            zp_buf_value(&b, p, (size_t)(e - p));
            zp_buf_str(&b, colon == e ? "\" has no ':'; expected key:value,key:value\n"
                                      : "\" has an empty key; expected key:value,key:value\n");
            zp_say(o, src, &b);
            o->problems++;
        } else {
            zp_set(o, ac, key, klen, colon + 1, (size_t)(e - colon - 1), src);
        }
        p = *e ? e + 1 : e;
    }
    if (semicolon && o->problems != before) {
        char line[160];
        zp_buf_t b = ZP_BUF_INIT(line);
        zp_buf_str(&b, "zeropool: hint: ");
        zp_buf_origin(&b, src);
        zp_buf_str(&b, " separates entries with ',' (key:value,key:value), not ';'\n");
        zp_say(o, src, &b);
    }
    return o->problems - before;
}

unsigned zp_options_parse_conf(zp_options_t *o, const char *conf)
{
    return zp_conf_parse(o, NULL, conf, ZP_SRC_CONF);
}

bool zp_option_reserved(const char *name, size_t n)
{
    return zp_eq(name, n, "CONF") || zp_eq(name, n, "CONF_FILE") || zp_eq(name, n, "LIB") ||
           zp_eq(name, n, "CONFIG_HELPER") || zp_eq(name, n, "STATUS_HELPER");
}

static void zp_sys_conf_say(zp_options_t *o, const char *path, const char *what, int err)
{
    char line[ZP_PATH_MAX + 160];
    zp_buf_t b = ZP_BUF_INIT(line);
    zp_buf_str(&b, "zeropool: ");
    zp_buf_str(&b, path);
    zp_buf_str(&b, what);
    if (err) {
        zp_buf_str(&b, " (errno ");
        zp_buf_i64(&b, err);
        zp_buf_chr(&b, ')');
    }
    zp_say(o, ZP_SRC_FILE, &b);
}

/* The system-wide file, read into a stack buffer: '#' comments and newlines become blanks and
 * commas, and the rest goes through the ZEROPOOL_CONF parser. Absent is normal and silent.
 * In secure mode the file counts only if root owns it and nobody else may write it. */
static void zp_sys_conf_load(zp_options_t *o, const zp_autoconf_t *ac, const char *path,
                             bool secure)
{
    o->sys_conf_state = ZP_SYS_CONF_ABSENT;
    o->sys_conf[0] = '\0';
    if (path[0] == '\0')
        return;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        if (errno != ENOENT)
            zp_sys_conf_say(o, path, ": cannot be read; ignored", errno);
        return;
    }
    size_t plen = zp_strlen(path);
    if (plen >= ZP_PATH_MAX)
        plen = ZP_PATH_MAX - 1;
    for (size_t i = 0; i < plen; i++)
        o->sys_conf[i] = path[i];
    o->sys_conf[plen] = '\0';
    o->sys_conf_state = ZP_SYS_CONF_REFUSED;
    struct stat st;
    char text[ZP_SYS_CONF_MAX + 1];
    size_t n = 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        zp_sys_conf_say(o, path, ": not a regular file; ignored", 0);
        (void)close(fd);
        return;
    }
    if (secure && (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)))) {
        zp_sys_conf_say(o, path, ": ignored in secure-execution mode: not owned by root, or "
                              "writable by others", 0);
        (void)close(fd);
        return;
    }
    for (;;) {
        ssize_t r = read(fd, text + n, sizeof text - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            zp_sys_conf_say(o, path, ": read error; ignored", errno);
            (void)close(fd);
            return;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n == sizeof text - 1) {
            zp_sys_conf_say(o, path, ": longer than 4096 bytes; ignored", 0);
            (void)close(fd);
            return;
        }
    }
    (void)close(fd);
    bool comment = false;
    for (size_t i = 0; i < n; i++) {
        if (text[i] == '\n') {
            comment = false;
            text[i] = ',';
        } else if (text[i] == '#' || comment) {
            comment = true;
            text[i] = ' ';
        } else if (text[i] == '\0') {
            text[i] = ' ';
        }
    }
    text[n] = '\0';
    o->sys_conf_state = ZP_SYS_CONF_READ;
    zp_file_label = o->sys_conf;
    zp_conf_parse(o, ac, text, ZP_SRC_FILE);
    zp_file_label = ZP_SYS_CONF;
}

/* The thread-cache byte bound follows the effective budget and shard count when it is still
 * automatic, so that ZEROPOOL_POOL_BYTES=8M alone does not leave a larger thread cache. */
static void zp_rederive(zp_options_t *o)
{
    if (o->source[ZP_OPT_TLS_CACHE_BYTES] != ZP_SRC_AUTO)
        return;
    uint64_t v = zp_autoconf_tls_bytes(o->pool_bytes, o->shards);
    const zp_opt_desc_t *d = &zp_opt_table[ZP_OPT_TLS_CACHE_BYTES];
    o->tls_cache_bytes = zp_clamp(v, d->lo, d->hi);
}

/* Derived values, once every source is in. A statistics file named without a format asks
 * for JSON: a daemon's file is read by programs. */
static void zp_finish(zp_options_t *o)
{
    zp_rederive(o);
    if (o->stats_file[0] != '\0' && o->source[ZP_OPT_STATS] == ZP_SRC_DEFAULT) {
        o->stats = ZP_STATS_JSON;
        o->source[ZP_OPT_STATS] = ZP_SRC_AUTO;
    }
}

/* Secure-execution mode: one line when the environment held settings that would have counted,
 * so that an admin who wonders why ZEROPOOL_STATS did nothing learns where to look. Names only,
 * never values. The zeropool command's own variables (LIB, *_HELPER) are not settings. */
static void zp_secure_note(char *const *envp)
{
    unsigned count = 0;
    const char *first = NULL;
    size_t first_len = 0;
    for (char *const *e = envp; *e; e++) {
        if (!zp_prefix(*e, ZP_ENV_PREFIX))
            continue;
        const char *eq = *e;
        while (*eq && *eq != '=')
            eq++;
        const char *name = *e + ZP_ENV_PREFIX_LEN;
        size_t nlen = (size_t)(eq - name);
        if (zp_eq(name, nlen, "LIB") || zp_eq(name, nlen, "CONFIG_HELPER") ||
            zp_eq(name, nlen, "STATUS_HELPER"))
            continue;
        if (count++ == 0) {
            first = *e;
            first_len = (size_t)(eq - *e);
        }
    }
    if (count == 0)
        return;
    char line[256];
    zp_buf_t b = ZP_BUF_INIT(line);
    zp_buf_str(&b, "zeropool: secure-execution mode (setuid or setgid program): ");
    zp_buf_value(&b, first, first_len);
    if (count > 1) {
        zp_buf_str(&b, " and ");
        zp_buf_i64(&b, (int64_t)count - 1);
        zp_buf_str(&b, count > 2 ? " other variables" : " other variable");
    }
    zp_buf_str(&b, " ignored; only " ZP_SYS_CONF " counts\n");
    zp_buf_flush(&b, 2);
}

void zp_options_load_ex(zp_options_t *o, char *const *envp, bool secure, const zp_autoconf_t *ac)
{
    zp_autoconf_t detected;
    if (!ac) {
        zp_autoconf_detect(&detected);
        ac = &detected;
    }
    zp_options_defaults(o, ac);
    o->secure = secure;
    o->sys_conf_state = ZP_SYS_CONF_ABSENT;
    o->sys_conf[0] = '\0';
    if (!envp)
        envp = environ;

    /* The system-wide file first; ZEROPOOL_CONF_FILE names another one, outside secure mode. */
    const char *sys = ZP_SYS_CONF;
    for (char *const *e = envp; e != NULL && *e; e++) {
        if (!secure && zp_prefix(*e, "ZEROPOOL_CONF_FILE=")) {
            sys = *e + 19;
            break;
        }
    }
    zp_sys_conf_load(o, ac, sys, secure);
    if (!envp) {
        zp_finish(o);
        return;
    }
    /* A setuid or setgid program's environment belongs to the user who started it, not to
     * the owner whose rights it runs with: only the root-owned file counts. */
    if (secure) {
        zp_secure_note(envp);
        zp_finish(o);
        return;
    }

    /* ZEROPOOL_CONF (the first one, as getenv would pick), then the variables over it. */
    for (char *const *e = envp; *e; e++) {
        if (zp_prefix(*e, "ZEROPOOL_CONF=")) {
            zp_conf_parse(o, ac, *e + 14, ZP_SRC_CONF);
            break;
        }
    }
    bool seen[ZP_OPT_COUNT] = { false };
    for (char *const *e = envp; *e; e++) {
        if (!zp_prefix(*e, ZP_ENV_PREFIX))
            continue;
        const char *name = *e + ZP_ENV_PREFIX_LEN, *eq = name;
        while (*eq && *eq != '=')
            eq++;
        size_t nlen = (size_t)(eq - name);
        const char *val = *eq ? eq + 1 : eq;
        if (zp_option_reserved(name, nlen))
            continue;
        int id = zp_lookup(name, nlen);
        if (id >= 0 && seen[id])
            continue; /* a duplicate: the first one counts, as with getenv */
        if (id >= 0)
            seen[id] = true;
        zp_set(o, ac, name, nlen, val, zp_strlen(val), ZP_SRC_ENV);
    }
    zp_finish(o);
}

void zp_options_load(zp_options_t *o, char *const *envp)
{
    zp_options_load_ex(o, envp, getauxval(AT_SECURE) != 0, NULL);
}

size_t zp_option_format(const zp_options_t *o, zp_opt_id_t id, char *buf, size_t len)
{
    if (len == 0 || (int)id < 0 || id >= ZP_OPT_COUNT)
        return 0;
    const zp_opt_desc_t *d = &zp_opt_table[id];
    zp_buf_t b = { buf, 0, len - 1 }; /* room for the NUL */
    if (d->type == ZP_OPT_T_PATH) {
        zp_buf_str(&b, zp_opt_cpath(o, id));
    } else {
        uint64_t v = zp_opt_get(o, id);
        const char *c;
        size_t n;
        if (d->type == ZP_OPT_T_SIZE)
            zp_buf_size(&b, v);
        else if (d->type == ZP_OPT_T_BOOL)
            zp_buf_str(&b, v ? "on" : "off");
        else if (d->type == ZP_OPT_T_TIME)
            zp_buf_time(&b, v);
        else if (d->type == ZP_OPT_T_ENUM && zp_choice(d->choices, v, &c, &n))
            zp_buf_mem(&b, c, n);
        else
            zp_buf_u64(&b, v);
    }
    buf[b.len] = '\0';
    return b.len;
}

/* One "ZEROPOOL_NAME=value  (source)" line of the dump, newline included. */
static void zp_dump_line(const zp_options_t *o, int id, zp_buf_t *b)
{
    static const char *const src_name[] = {
        [ZP_SRC_DEFAULT] = "default",
        [ZP_SRC_AUTO] = "auto",
        [ZP_SRC_CONF] = "ZEROPOOL_CONF",
        [ZP_SRC_ENV] = "env",
        [ZP_SRC_FILE] = "file",
    };
    char val[ZP_PATH_MAX];
    zp_buf_str(b, ZP_ENV_PREFIX);
    zp_buf_str(b, zp_opt_table[id].name);
    zp_buf_chr(b, '=');
    size_t n = zp_option_format(o, (zp_opt_id_t)id, val, sizeof val);
    zp_buf_mem(b, val, n);
    zp_buf_str(b, "  (");
    if (o->source[id] == ZP_SRC_FILE)
        zp_buf_str(b, o->sys_conf);
    else if (id == ZP_OPT_STATS && o->source[id] == ZP_SRC_AUTO)
        zp_buf_str(b, "implied by ZEROPOOL_STATS_FILE");
    else
        zp_buf_str(b, src_name[o->source[id]]);
    zp_buf_str(b, ")\n");
}

void zp_options_dump(const zp_options_t *o, int fd)
{
    for (int id = 0; id < ZP_OPT_COUNT; id++) {
        char line[ZP_PATH_MAX + 96];
        zp_buf_t b = ZP_BUF_INIT(line);
        zp_dump_line(o, id, &b);
        zp_buf_flush(&b, fd);
    }
}

size_t zp_options_dump_buf(const zp_options_t *o, char *buf, size_t cap)
{
    if (cap == 0)
        return 0;
    zp_buf_t b = { buf, 0, cap - 1 };
    for (int id = 0; id < ZP_OPT_COUNT; id++)
        zp_dump_line(o, id, &b);
    buf[b.len] = '\0';
    return b.len;
}

void zp_options_say_verdicts(const zp_options_t *o, int fd)
{
    for (unsigned i = 0; i < o->nverdicts && i < ZP_VERDICTS; i++) {
        char line[ZP_VERDICT_LEN + 16];
        zp_buf_t b = ZP_BUF_INIT(line);
        zp_buf_str(&b, "zeropool: ");
        zp_buf_str(&b, o->verdicts[i]);
        zp_buf_chr(&b, '\n');
        zp_buf_flush(&b, fd);
    }
    if (o->nverdicts > ZP_VERDICTS) {
        char line[96];
        zp_buf_t b = ZP_BUF_INIT(line);
        zp_buf_str(&b, "zeropool: and ");
        zp_buf_u64(&b, o->nverdicts - ZP_VERDICTS);
        zp_buf_str(&b, " more problems in the system-wide file\n");
        zp_buf_flush(&b, fd);
    }
}
