/* Where settings come from, in their order of precedence: defaults and auto-configuration,
 * the system-wide file (/etc/zeropool.conf, or ZEROPOOL_CONF_FILE), ZEROPOOL_CONF, then each
 * ZEROPOOL_* variable, found by scanning environ (no getenv, no malloc: it runs from the
 * preload library's constructor); secure-execution mode and strict mode's trial load. */
#include "zp_options_int.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

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
            zp_report_entry(o, src, p, (size_t)(e - p), colon == e);
            o->problems++;
        } else {
            zp_set(o, ac, key, klen, colon + 1, (size_t)(e - colon - 1), src);
        }
        p = *e ? e + 1 : e;
    }
    if (semicolon && o->problems != before)
        zp_report_semicolon(o, src);
    return o->problems - before;
}

unsigned zp_options_parse_conf(zp_options_t *o, const char *conf)
{
    return zp_conf_parse(o, NULL, conf, ZP_SRC_CONF);
}

/* Variables of the project's tools that share the prefix: the zeropool command's (LIB and its
 * helpers), the test suite's, and the private jemalloc build's (interpose/jemalloc-build.sh). */
bool zp_option_tool_var(const char *name, size_t n)
{
    static const char *const tools[] = { "LIB",        "CONFIG_HELPER",  "STATUS_HELPER",
                                         "LONG_TESTS", "JEMALLOC_CACHE", "DEBIAN_MIRROR",
                                         "DEBIAN_SUITE" };
    for (size_t i = 0; i < sizeof tools / sizeof tools[0]; i++)
        if (zp_eq(name, n, tools[i]))
            return true;
    return false;
}

bool zp_option_reserved(const char *name, size_t n)
{
    return zp_eq(name, n, "CONF") || zp_eq(name, n, "CONF_FILE") || zp_option_tool_var(name, n);
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

/* ZEROPOOL_CONF (the first one, as getenv would pick), then the variables over it. */
static void zp_env_parse(zp_options_t *o, const zp_autoconf_t *ac, char *const *envp)
{
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
}

/* The trial copy of a strict load: static, not on the stack (4 KiB; loading runs once). */
static zp_options_t zp_options_trial;

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

    /* Strict mode says nothing but its one line: the environment is parsed once with its
     * messages held; only if that did not turn strict on is it parsed again, aloud. */
    zp_options_t *trial = &zp_options_trial;
    *trial = *o;
    trial->hold = true;
    zp_env_parse(trial, ac, envp);
    if (trial->strict) {
        *o = *trial;
        o->hold = false;
    } else {
        zp_env_parse(o, ac, envp);
    }
    zp_finish(o);
}

void zp_options_load(zp_options_t *o, char *const *envp)
{
    zp_options_load_ex(o, envp, getauxval(AT_SECURE) != 0, NULL);
}
