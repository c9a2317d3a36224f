/* zeropool-config: prints the effective ZEROPOOL_* settings, where each came from and what
 * auto-configuration saw; gives the zeropool command the option list, the verdict on values
 * and the "did you mean" (the library's own parser: one table, one verdict); and generates the
 * README's and the man page's option tables. Not allocator code: stdio is fine here. */
#include "zp_fmt.h"
#include "zp_options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *type_name(int type)
{
    switch (type) {
    case ZP_OPT_T_SIZE: return "size";
    case ZP_OPT_T_UINT: return "count";
    case ZP_OPT_T_POW2: return "power of two";
    case ZP_OPT_T_BOOL: return "boolean";
    case ZP_OPT_T_ENUM: return "choice";
    case ZP_OPT_T_TIME: return "time";
    default: return "path";
    }
}

/* The default as text: "auto", or the value formatted as the dump would show it. */
static void default_text(int id, char *buf, size_t len)
{
    const zp_opt_desc_t *d = &zp_opt_table[id];
    if (d->def == ZP_AUTO) {
        (void)snprintf(buf, len, "auto");
        return;
    }
    zp_autoconf_t ac;
    zp_options_t o;
    zp_autoconf_compute(1, 0, &ac);
    zp_options_defaults(&o, &ac);
    if (zp_option_format(&o, (zp_opt_id_t)id, buf, len) == 0)
        (void)snprintf(buf, len, "unset");
}

static void size_text(uint64_t v, char *buf, size_t len)
{
    static const char *const units[] = { "", " KiB", " MiB", " GiB", " TiB" };
    int u = 0;
    while (v && (v & 1023) == 0 && u < 4) {
        v >>= 10;
        u++;
    }
    (void)snprintf(buf, len, "%llu%s", (unsigned long long)v, units[u]);
}

/* "64K": the spelling a user would type, as the error messages show it. */
static void short_size(uint64_t v, char *buf, size_t len)
{
    zp_buf_t b = { buf, 0, len - 1 };
    zp_buf_size(&b, v);
    buf[b.len] = '\0';
}

/* Range or accepted values, for the README and the man page. */
static void range_text(const zp_opt_desc_t *d, char *buf, size_t len)
{
    char lo[32], hi[32];
    switch (d->type) {
    case ZP_OPT_T_SIZE:
        short_size(d->lo, lo, sizeof lo);
        short_size(d->hi, hi, sizeof hi);
        (void)snprintf(buf, len, "%s to %s%s", lo, hi, d->def == ZP_AUTO ? ", or auto" : "");
        break;
    case ZP_OPT_T_UINT:
    case ZP_OPT_T_POW2:
        (void)snprintf(buf, len, "%llu to %llu%s%s", (unsigned long long)d->lo,
                       (unsigned long long)d->hi, d->type == ZP_OPT_T_POW2 ? ", power of two" : "",
                       d->def == ZP_AUTO ? ", or auto" : "");
        break;
    case ZP_OPT_T_BOOL:
        (void)snprintf(buf, len, "1/true/yes/on, 0/false/no/off");
        break;
    case ZP_OPT_T_TIME:
        (void)snprintf(buf, len, "%llus to %llus, s/m/h/d suffixes", (unsigned long long)d->lo,
                       (unsigned long long)d->hi);
        break;
    case ZP_OPT_T_ENUM: {
        size_t n = 0;
        for (const char *c = d->choices; *c && n + 3 < len; c++) {
            if (*c == '|') {
                buf[n++] = ',';
                buf[n++] = ' ';
            } else {
                buf[n++] = *c;
            }
        }
        buf[n] = '\0';
        break;
    }
    default:
        (void)snprintf(buf, len, "file path, at most %d bytes", ZP_PATH_MAX - 1);
        break;
    }
}

/* Markdown table cells may not hold a raw '|'. */
static void md_cell(const char *s)
{
    for (; *s; s++) {
        if (*s == '|')
            (void)fputs("\\|", stdout);
        else
            putchar(*s);
    }
}

static void markdown_options(void)
{
    puts("| variable | type | default | range/values | meaning |");
    puts("|---|---|---|---|---|");
    for (int id = 0; id < ZP_OPT_COUNT; id++) {
        const zp_opt_desc_t *d = &zp_opt_table[id];
        char def[ZP_PATH_MAX], range[128];
        default_text(id, def, sizeof def);
        range_text(d, range, sizeof range);
        printf("| `ZEROPOOL_%s` | %s | `%s` | ", d->name, type_name(d->type), def);
        md_cell(range);
        (void)fputs(" | ", stdout);
        md_cell(d->help);
        puts(" |");
    }
    puts("| `ZEROPOOL_CONF` | key:value list | unset | keys are the lower-case names above |"
         " several settings in one variable, e.g. `threshold:128K,shards:8`; a variable "
         "named alone wins over the same key here, and this over `/etc/zeropool.conf` |");
}

static void markdown_scaling(void)
{
    static const struct {
        unsigned cpus;
        const char *what;
    } rows[] = {
        { 1, "single-CPU container" }, { 2, "small VM" },      { 4, "laptop" },
        { 8, "desktop" },              { 16, "workstation" },  { 32, "server" },
        { 64, "large server" },        { 128, "many-core server" },
    };
    puts("| System | CPUs | TLS cache | Shards | Budget |");
    puts("|---|---|---|---|---|");
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        zp_autoconf_t ac;
        char tls[32], budget[32];
        zp_autoconf_compute(rows[i].cpus, 64 * ZP_GIB, &ac);
        size_text(ac.tls_cache_bytes, tls, sizeof tls);
        size_text(ac.pool_bytes, budget, sizeof budget);
        printf("| %s | %u | %llu buffers, %s | %llu | %s |\n", rows[i].what, rows[i].cpus,
               (unsigned long long)ac.tls_cache, tls, (unsigned long long)ac.shards, budget);
    }
}

/* roff: a backslash is \e, a minus sign is \-, and a line may not start with '.' or '\''. */
static void roff_text(const char *s)
{
    if (*s == '.' || *s == '\'')
        (void)fputs("\\&", stdout);
    for (; *s; s++) {
        if (*s == '\\')
            (void)fputs("\\e", stdout);
        else if (*s == '-')
            (void)fputs("\\-", stdout);
        else
            putchar(*s);
    }
}

static void man_options(void)
{
    for (int id = 0; id < ZP_OPT_COUNT; id++) {
        const zp_opt_desc_t *d = &zp_opt_table[id];
        char def[ZP_PATH_MAX], range[128];
        default_text(id, def, sizeof def);
        range_text(d, range, sizeof range);
        printf(".TP\n.BI ZEROPOOL_%s= \"%s\"\n", d->name, type_name(d->type));
        roff_text(d->help);
        (void)fputs(".\nDefault: ", stdout);
        roff_text(def);
        (void)fputs("; accepted: ", stdout);
        roff_text(range);
        puts(".");
    }
    puts(".TP\n.BI ZEROPOOL_CONF= key:value,...");
    puts("Several settings in one variable, keys in lower case (e.g. threshold:128K,shards:8);");
    puts("a variable set on its own wins over the same key here.");
}

static void show(void)
{
    zp_options_t o;
    zp_autoconf_t ac;
    zp_options_load(&o, NULL);
    if (o.strict && zp_options_bad(&o) > 0) /* strict mode held the messages: its one line */
        zp_options_say_strict(&o, 2);
    zp_options_say_verdicts(&o, 2); /* the library keeps them quiet; here they are asked for */
    (void)fflush(stderr);
    zp_options_dump(&o, 1);
    zp_autoconf_detect(&ac);
    char pool[32], tls[32];
    size_text(ac.pool_bytes, pool, sizeof pool);
    size_text(ac.tls_cache_bytes, tls, sizeof tls);
    printf("\nauto-configuration:\n");
    printf("  cpus             %u\n", ac.cpus);
    printf("  affinity cpus    %u\n", ac.affinity_cpus);
    if (ac.quota_cpus)
        printf("  quota cpus       %u  (cgroup cpu.max)\n", ac.quota_cpus);
    else
        printf("  quota cpus       none\n");
    char mem[96];
    zp_autoconf_memory_text(&ac, ac.mem_source, mem, sizeof mem);
    printf("  memory           %s: sets pool_bytes\n", mem);
    for (unsigned i = 0; i < ZP_MEM_SOURCE_COUNT; i++)
        if (ac.mem_limit[i] && i != (unsigned)ac.mem_source) {
            zp_autoconf_memory_text(&ac, (zp_mem_source_t)i, mem, sizeof mem);
            printf("    also           %s\n", mem);
        }
    printf("  shards           %llu\n", (unsigned long long)ac.shards);
    printf("  tls_cache        %llu\n", (unsigned long long)ac.tls_cache);
    printf("  tls_cache_bytes  %s\n", tls);
    printf("  pool_bytes       %s\n", pool);
    if (o.sys_conf_state == ZP_SYS_CONF_READ)
        printf("system-wide file: %s (read)\n", o.sys_conf);
    else if (o.sys_conf_state == ZP_SYS_CONF_REFUSED)
        printf("system-wide file: %s (ignored, see above)\n", o.sys_conf);
    else
        printf("system-wide file: none\n");
    if (o.secure)
        printf("secure-execution mode: the environment is ignored, only %s counts\n", ZP_SYS_CONF);
    if (o.problems)
        printf("%u problem%s reported above\n", o.problems, o.problems == 1 ? "" : "s");
    if (o.strict && zp_options_bad(&o) > 0)
        printf("strict mode: a program started with these settings stops before main (exit %d)\n",
               ZP_STRICT_EXIT);
}

/* Output errors are checked once, here, rather than after every printf: a README table cut
 * short by a full disk must fail the command, not produce a truncated file. */
static int finish(void)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        (void)fprintf(stderr, "zeropool-config: cannot write the output\n");
        return 1;
    }
    return 0;
}

/* For the zeropool command: one line per option, tab-separated: the option's conf key, its
 * type (size, count, pow2, bool, enum, path, time), "auto" or the enum's choices or "-", the
 * default as text, and the help. The command builds its options and --help from it. */
static void list_options(void)
{
    static const char *const short_type[] = {
        [ZP_OPT_T_SIZE] = "size", [ZP_OPT_T_UINT] = "count", [ZP_OPT_T_POW2] = "pow2",
        [ZP_OPT_T_BOOL] = "bool", [ZP_OPT_T_ENUM] = "enum",   [ZP_OPT_T_PATH] = "path",
        [ZP_OPT_T_TIME] = "time",
    };
    for (int id = 0; id < ZP_OPT_COUNT; id++) {
        const zp_opt_desc_t *d = &zp_opt_table[id];
        char def[ZP_PATH_MAX];
        default_text(id, def, sizeof def);
        printf("%s\t%s\t%s\t%s\t%s\n", d->key, short_type[d->type],
               d->type == ZP_OPT_T_ENUM ? d->choices : d->def == ZP_AUTO ? "auto" : "-", def,
               d->help);
    }
}

/* The verdict on the ZEROPOOL_* variables in the environment, without the system-wide file:
 * the parser's own messages on stderr, exit 2 if any value or name was refused. */
static int check_env(void)
{
    zp_options_t o;
    (void)setenv("ZEROPOOL_CONF_FILE", "", 1);
    zp_options_load_ex(&o, NULL, false, NULL);
    if (o.strict && zp_options_bad(&o) > 0)
        zp_options_say_strict(&o, 2);
    zp_options_say_verdicts(&o, 2);
    return o.problems ? 2 : 0;
}

/* The option nearest to a mistyped name ("treshold", "max-pool"), as a conf key; nothing
 * when none is near. */
static void suggest(const char *word)
{
    char name[64];
    size_t n = 0;
    for (; word[n] && n + 1 < sizeof name; n++)
        name[n] = (char)(word[n] == '-' ? '_' : word[n]);
    name[n] = '\0';
    int id = zp_option_nearest(name, n);
    if (id >= 0)
        puts(zp_opt_table[id].key);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        list_options();
        return finish();
    }
    if (argc == 2 && strcmp(argv[1], "--check") == 0)
        return check_env();
    if (argc == 3 && strcmp(argv[1], "--suggest") == 0) {
        suggest(argv[2]);
        return finish();
    }
    if (argc == 1) {
        show();
        return finish();
    }
    if (argc == 2 && strcmp(argv[1], "--markdown-options") == 0) {
        markdown_options();
        return finish();
    }
    if (argc == 2 && strcmp(argv[1], "--markdown-scaling") == 0) {
        markdown_scaling();
        return finish();
    }
    if (argc == 2 && strcmp(argv[1], "--man-options") == 0) {
        man_options();
        return finish();
    }
    (void)fprintf(stderr, "usage: %s [--markdown-options | --markdown-scaling | --man-options |\n"
                          "        --list | --check | --suggest WORD]\n"
                          "  with no argument: the effective ZEROPOOL_* settings, where each "
                          "came from, and auto-configuration\n",
                  argv[0]);
    return 2;
}
