/* Private to config/: what the three parts of the option parser share. values.c parses and
 * formats one value (sizes, times, booleans, enums) and holds the table; sources.c reads the
 * environment, ZEROPOOL_CONF and the system-wide file in their order of precedence;
 * diagnostics.c words every message, keeps the verdicts, finds "did you mean" and writes the
 * dump. Nothing outside config/ includes this file (zp_options.h is the module's header). */
#ifndef ZP_OPTIONS_INT_H
#define ZP_OPTIONS_INT_H

#include "zp_options.h"

#include "zp_fmt.h"

#define ZP_ENV_PREFIX "ZEROPOOL_"
#define ZP_ENV_PREFIX_LEN 9

/* Where each option lives in zp_options_t; PATH fields are char arrays, the rest uint64_t. */
extern const size_t zp_opt_offset[ZP_OPT_COUNT];

static inline uint64_t *zp_opt_u64(zp_options_t *o, int id)
{
    return (uint64_t *)(void *)((char *)o + zp_opt_offset[id]);
}

static inline char *zp_opt_path(zp_options_t *o, int id)
{
    return (char *)o + zp_opt_offset[id];
}

static inline uint64_t zp_opt_get(const zp_options_t *o, int id)
{
    return *(const uint64_t *)(const void *)((const char *)o + zp_opt_offset[id]);
}

static inline const char *zp_opt_cpath(const zp_options_t *o, int id)
{
    return (const char *)o + zp_opt_offset[id];
}

/* Exact (case-sensitive) prefix test, for the environment scan. */
static inline bool zp_prefix(const char *s, const char *prefix)
{
    while (*prefix && *s == *prefix) {
        s++;
        prefix++;
    }
    return *prefix == '\0';
}

static inline char zp_lower(char c)
{
    if (c >= 'A' && c <= 'Z')
        return (char)(c - 'A' + 'a');
    return c;
}

/* Case-insensitive: s[0..n) equals the NUL-terminated word w. */
static inline bool zp_eq(const char *s, size_t n, const char *w)
{
    size_t i = 0;
    for (; i < n && w[i]; i++)
        if (zp_lower(s[i]) != zp_lower(w[i]))
            return false;
    return i == n && w[i] == '\0';
}

static inline size_t zp_strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

static inline bool zp_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static inline void zp_trim(const char **s, size_t *n)
{
    while (*n && zp_space(**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n && zp_space((*s)[*n - 1]))
        (*n)--;
}

static inline uint64_t zp_clamp(uint64_t v, uint64_t lo, uint64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* ---- values.c ---- */
/* The index of choice idx in a "a|b|c" string: its start and length; false past the end. */
bool zp_choice(const char *choices, uint64_t idx, const char **start, size_t *n);
/* A time in seconds as the largest whole unit ("5m", "1d"). */
void zp_buf_time(zp_buf_t *b, uint64_t v);
/* The auto-configured value of one option. */
uint64_t zp_auto_value(int id, const zp_autoconf_t *ac);
/* The option of a table name ("THRESHOLD", any case), or -1. */
int zp_lookup(const char *name, size_t n);
/* Parse and range-check one value; false if it is not acceptable. */
bool zp_parse_value(int id, const char *s, size_t n, uint64_t *v);

/* ---- diagnostics.c ---- */
/* The file being parsed, for messages ("/etc/zeropool.conf key shards"); loading is done once,
 * by one thread, before the pool exists. */
extern const char *zp_file_label;
/* A finished message line to its place: fd 2, the verdicts, or held (o->hold). */
void zp_say(zp_options_t *o, zp_opt_source_t src, zp_buf_t *b);
void zp_report_invalid(zp_options_t *o, int id, const char *val, size_t vlen, zp_opt_source_t src);
void zp_report_unknown(zp_options_t *o, const char *name, size_t n, zp_opt_source_t src);
/* A key:value list entry without a ':' (no_colon) or with an empty key. */
void zp_report_entry(zp_options_t *o, zp_opt_source_t src, const char *entry, size_t n,
                     bool no_colon);
/* The hint after a list with problems that used ';' between its entries. */
void zp_report_semicolon(zp_options_t *o, zp_opt_source_t src);
/* The system-wide file as a whole: path, what is wrong, errno (0: none); counted as bad. */
void zp_sys_conf_say(zp_options_t *o, const char *path, const char *what, int err);
/* Secure-execution mode: one line naming the ignored variables (never their values). */
void zp_secure_note(char *const *envp);

#endif
