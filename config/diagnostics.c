/* Every word the option parser says: the one-line messages for bad values, unknown names and
 * a broken system-wide file, where each goes (fd 2, the verdicts kept for zeropool status, or
 * held for strict mode), "did you mean", strict mode's line, and the effective-settings dump.
 * No malloc, no stdio: lines are built in stack arrays and written with write(2). */
#include "zp_options_int.h"

#define ZP_MSG_VALUE_MAX 64 /* longest value echoed in a message */

/* A message line into a verdict-sized array, without its "zeropool: " prefix and newline. */
static void zp_keep_line(char *v, const zp_buf_t *b)
{
    const char *t = b->p;
    size_t n = b->len - 1, skip = sizeof "zeropool: " - 1;
    if (n >= skip && zp_prefix(t, "zeropool: ")) {
        t += skip;
        n -= skip;
    }
    if (n > ZP_VERDICT_LEN - 1)
        n = ZP_VERDICT_LEN - 1;
    for (size_t i = 0; i < n; i++)
        v[i] = t[i];
    v[n] = '\0';
}

/* A finished message line ("zeropool: ...\n"): the system-wide file's are kept in o->verdicts
 * (without the prefix and newline), the environment's go to fd 2 (kept instead while a strict
 * load is tried: o->hold). The first of all is kept for strict mode's one line. */
void zp_say(zp_options_t *o, zp_opt_source_t src, zp_buf_t *b)
{
    if (b->len == b->cap) /* truncation must not eat the newline */
        b->len--;
    if (b->len == 0 || b->p[b->len - 1] != '\n')
        zp_buf_chr(b, '\n');
    if (o != NULL && o->first_bad[0] == '\0')
        zp_keep_line(o->first_bad, b);
    if (o == NULL || (src != ZP_SRC_FILE && !o->hold)) {
        zp_buf_flush(b, 2);
        return;
    }
    if (src == ZP_SRC_FILE) {
        if (o->nverdicts < ZP_VERDICTS)
            zp_keep_line(o->verdicts[o->nverdicts], b);
        o->nverdicts++;
    }
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
const char *zp_file_label = ZP_SYS_CONF;

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

void zp_report_invalid(zp_options_t *o, int id, const char *val, size_t vlen,
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

void zp_report_unknown(zp_options_t *o, const char *name, size_t n, zp_opt_source_t src)
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

void zp_report_entry(zp_options_t *o, zp_opt_source_t src, const char *entry, size_t n,
                     bool no_colon)
{
    char line[256];
    zp_buf_t b = ZP_BUF_INIT(line);
    zp_buf_str(&b, "zeropool: ");
    zp_buf_origin(&b, src);
    zp_buf_str(&b, " entry \"");
    zp_buf_value(&b, entry, n);
    zp_buf_str(&b, no_colon ? "\" has no ':'; expected key:value,key:value\n"
                            : "\" has an empty key; expected key:value,key:value\n");
    zp_say(o, src, &b);
}

void zp_report_semicolon(zp_options_t *o, zp_opt_source_t src)
{
    char line[160];
    zp_buf_t b = ZP_BUF_INIT(line);
    zp_buf_str(&b, "zeropool: hint: ");
    zp_buf_origin(&b, src);
    zp_buf_str(&b, " separates entries with ',' (key:value,key:value), not ';'\n");
    zp_say(o, src, &b);
}

void zp_sys_conf_say(zp_options_t *o, const char *path, const char *what, int err)
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
    o->file_errors++;
    zp_say(o, ZP_SRC_FILE, &b);
}

/* Secure-execution mode: one line when the environment held settings that would have counted,
 * so that an admin who wonders why ZEROPOOL_STATS did nothing learns where to look. Names only,
 * never values. The zeropool command's own variables (LIB, *_HELPER) are not settings. */
void zp_secure_note(char *const *envp)
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
        if (zp_option_tool_var(name, nlen))
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
    else if (id == ZP_OPT_POOL_BYTES && o->source[id] == ZP_SRC_AUTO &&
             o->mem_source < ZP_MEM_UNKNOWN && o->mem_bytes) {
        /* The limit the automatic budget follows, as `zeropool config` shows it. */
        zp_buf_str(b, "auto: ");
        zp_buf_u64(b, (o->mem_bytes + (1 << 19)) >> 20);
        zp_buf_str(b, " MiB ");
        zp_buf_str(b, zp_mem_source_names[o->mem_source]);
    }
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

unsigned zp_options_bad(const zp_options_t *o)
{
    return o->problems + o->file_errors;
}

void zp_options_say_strict(const zp_options_t *o, int fd)
{
    char line[ZP_VERDICT_LEN + 160];
    zp_buf_t b = ZP_BUF_INIT(line);
    unsigned bad = zp_options_bad(o);
    zp_buf_str(&b, "zeropool: strict mode: ");
    /* Without the "; keeping 64K" of a warning: nothing is kept, the program stops. */
    size_t n = 0, keep = SIZE_MAX;
    for (; o->first_bad[n]; n++)
        if (keep == SIZE_MAX && zp_prefix(o->first_bad + n, "; keeping "))
            keep = n;
    if (n == 0)
        zp_buf_str(&b, "a bad setting");
    else
        zp_buf_mem(&b, o->first_bad, keep < n ? keep : n);
    if (bad > 1) {
        zp_buf_str(&b, " (");
        zp_buf_i64(&b, bad);
        zp_buf_str(&b, " bad settings)");
    }
    zp_buf_str(&b, "; the program is stopped before main (exit 127)");
    if (b.len == b.cap)
        b.len--;
    zp_buf_chr(&b, '\n');
    zp_buf_flush(&b, fd);
}
