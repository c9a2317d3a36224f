/* One option value: the table, parsing of sizes, times, booleans and enums with their range
 * check, the defaults with auto-configuration, and an effective value as text. Pure: no
 * message, no source; sources.c decides what to parse, diagnostics.c what to say. */
#include "zp_options_int.h"

#include <stddef.h>

const zp_opt_desc_t zp_opt_table[ZP_OPT_COUNT] = {
#define ZP_OPT(NAME, field, TYPE, def, lo, hi, choices, help) \
    [ZP_OPT_##NAME] = { #NAME, #field, ZP_OPT_T_##TYPE, (def), (lo), (hi), (choices), (help) },
#include "options.def"
#undef ZP_OPT
};

const size_t zp_opt_offset[ZP_OPT_COUNT] = {
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

void zp_buf_time(zp_buf_t *b, uint64_t v)
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
bool zp_choice(const char *choices, uint64_t idx, const char **start, size_t *n)
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
uint64_t zp_auto_value(int id, const zp_autoconf_t *ac)
{
    switch (id) {
    case ZP_OPT_POOL_BYTES: return ac->pool_bytes;
    case ZP_OPT_SHARDS: return ac->shards;
    case ZP_OPT_TLS_CACHE: return ac->tls_cache;
    case ZP_OPT_TLS_CACHE_BYTES: return ac->tls_cache_bytes;
    default: return 0;
    }
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
    o->first_bad[0] = '\0';
    o->file_errors = 0;
    o->hold = false;
    o->sys_conf[0] = '\0';
    o->sys_conf_state = ZP_SYS_CONF_ABSENT;
    o->mem_bytes = ac->phys_bytes;
    o->mem_source = ac->mem_source;
}

int zp_lookup(const char *name, size_t n)
{
    for (int id = 0; id < ZP_OPT_COUNT; id++)
        if (zp_eq(name, n, zp_opt_table[id].name))
            return id;
    return -1;
}

/* Parse and range-check one value; false if it is not acceptable. */
bool zp_parse_value(int id, const char *s, size_t n, uint64_t *v)
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
