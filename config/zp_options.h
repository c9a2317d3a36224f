/* zeropool configuration: the ZEROPOOL_* option table, its parser and auto-configuration.
 * The lowest layer: depends on nothing else of ours, calls no malloc and no stdio, so it can
 * run from a constructor before libc is fully up. Messages go to fd 2 with write(2). */
#ifndef ZP_OPTIONS_H
#define ZP_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZP_KIB ((uint64_t)1 << 10)
#define ZP_MIB ((uint64_t)1 << 20)
#define ZP_GIB ((uint64_t)1 << 30)
#define ZP_AUTO UINT64_MAX /* default computed by zp_autoconf_compute() */

#define ZP_PATH_MAX 256
#define ZP_VERDICTS 8       /* system-wide file problems kept in memory */
#define ZP_VERDICT_LEN 192  /* bytes of one, NUL included */

enum {
    ZP_OPT_T_SIZE,
    ZP_OPT_T_UINT,
    ZP_OPT_T_POW2,
    ZP_OPT_T_BOOL,
    ZP_OPT_T_ENUM,
    ZP_OPT_T_PATH,
    ZP_OPT_T_TIME
};

/* Values of the ENUM options, in the order of their "choices" string. EVICTION's are the
 * public zp_eviction_t of core/zeropool.h (ZP_EVICT_LIFO, ZP_EVICT_CLOCK_PRO): one enum, not
 * named again here; test_config checks that the two orders agree. */
enum { ZP_ZERO_ALLOC_OFF = 0, ZP_ZERO_ALLOC_ON = 1, ZP_ZERO_ALLOC_VERIFY = 2 };
enum { ZP_ON_ERROR_ABORT = 0, ZP_ON_ERROR_REPORT = 1 };
enum { ZP_STATS_OFF = 0, ZP_STATS_TEXT = 1, ZP_STATS_JSON = 2 };

/* Where an effective value came from, for `zeropool config` (precedence: default or auto <
 * FILE < CONF < ENV; FILE is last only to keep the older values stable). */
typedef enum { ZP_SRC_DEFAULT, ZP_SRC_AUTO, ZP_SRC_CONF, ZP_SRC_ENV, ZP_SRC_FILE } zp_opt_source_t;

/* The system-wide file: same syntax as ZEROPOOL_CONF (newlines may separate entries too, '#'
 * starts a comment). ZEROPOOL_CONF_FILE names another one (tests), except in secure mode. */
#define ZP_SYS_CONF "/etc/zeropool.conf"
#define ZP_SYS_CONF_MAX 4096 /* longest file read, in bytes */

/* The option identifiers: ZP_OPT_THRESHOLD, ZP_OPT_MAX_POOLED, ... */
typedef enum {
#define ZP_OPT(NAME, field, TYPE, def, lo, hi, choices, help) ZP_OPT_##NAME,
#include "options.def"
#undef ZP_OPT
    ZP_OPT_COUNT
} zp_opt_id_t;

/* The limits on the memory a process may use, in the order a tie is credited (the first
 * wins): X(id, name shown by `zeropool config` and `zeropool status`). */
#define ZP_MEM_SOURCES(X)                                             \
    X(PHYS, "physical memory")                                        \
    X(CGROUP_V2, "cgroup v2 memory.max")                              \
    X(CGROUP_V1, "cgroup v1 memory.limit_in_bytes")                   \
    X(RLIMIT_AS, "RLIMIT_AS")                                         \
    X(RLIMIT_DATA, "RLIMIT_DATA")                                     \
    X(AVAILABLE, "MemAvailable")
typedef enum {
#define ZP_MEM_ENUM(id, name) ZP_MEM_##id,
    ZP_MEM_SOURCES(ZP_MEM_ENUM)
#undef ZP_MEM_ENUM
    ZP_MEM_SOURCE_COUNT,
    ZP_MEM_UNKNOWN = ZP_MEM_SOURCE_COUNT /* no limit known at all */
} zp_mem_source_t;
extern const char *const zp_mem_source_names[ZP_MEM_SOURCE_COUNT + 1];

/* The effective settings: one uint64_t per option (size, count, bool 0/1 or enum index),
 * stats_file as a string. Always fully resolved: no ZP_AUTO remains after loading. */
typedef struct zp_options {
#define ZP_OPT_FIELD_SIZE(f) uint64_t f;
#define ZP_OPT_FIELD_UINT(f) uint64_t f;
#define ZP_OPT_FIELD_POW2(f) uint64_t f;
#define ZP_OPT_FIELD_BOOL(f) uint64_t f;
#define ZP_OPT_FIELD_ENUM(f) uint64_t f;
#define ZP_OPT_FIELD_PATH(f) char f[ZP_PATH_MAX];
#define ZP_OPT_FIELD_TIME(f) uint64_t f;
#define ZP_OPT(NAME, field, TYPE, def, lo, hi, choices, help) ZP_OPT_FIELD_##TYPE(field)
#include "options.def"
#undef ZP_OPT
    zp_opt_source_t source[ZP_OPT_COUNT];
    bool secure;       /* AT_SECURE: the environment was ignored, only the file counted */
    char sys_conf[ZP_PATH_MAX]; /* the system-wide file that was read, "" if none */
    int sys_conf_state;         /* ZP_SYS_CONF_* */
    unsigned problems; /* bad or unknown settings reported while loading */
    /* What was wrong with the system-wide file, a line each ("key threshold=12x is invalid:
     * ..."): kept here, not printed, because every process on the machine reads the file and
     * must not have its output changed by it; `zeropool config` and `zeropool status` show
     * them. Lines past ZP_VERDICTS are counted in nverdicts but not kept. */
    char verdicts[ZP_VERDICTS][ZP_VERDICT_LEN];
    unsigned nverdicts;
    /* Strict mode: the first problem of any source, without "zeropool: " (kept even when
     * printed), and the system-wide file's problems that are not a value (unreadable, too
     * long): with o->problems, what strict mode counts. hold: the environment's messages are
     * kept, not printed, while a strict load is tried. */
    char first_bad[ZP_VERDICT_LEN];
    unsigned file_errors;
    bool hold;
    uint64_t mem_bytes;          /* auto-configuration's memory: the limit the budget follows */
    zp_mem_source_t mem_source;  /* which limit that was (zeropool config, zeropool status) */
} zp_options_t;

/* The exit status of a program that strict mode stops (as ld.so's when a library is missing). */
#define ZP_STRICT_EXIT 127

enum { ZP_SYS_CONF_ABSENT, ZP_SYS_CONF_READ, ZP_SYS_CONF_REFUSED };

/* One row of the table, for the parser, the dump and the README generator. */
typedef struct zp_opt_desc {
    const char *name;    /* "THRESHOLD" */
    const char *key;     /* "threshold" (ZEROPOOL_CONF key) */
    int type;            /* ZP_OPT_T_* */
    uint64_t def, lo, hi;
    const char *choices; /* ENUM only */
    const char *help;
} zp_opt_desc_t;

extern const zp_opt_desc_t zp_opt_table[ZP_OPT_COUNT];


/* What auto-configuration saw and computed. */
typedef struct zp_autoconf {
    unsigned cpus;         /* CPUs this process may run on: affinity mask, cgroup v2 cpu.max */
    unsigned affinity_cpus;
    unsigned quota_cpus;   /* 0 when there is no quota */
    uint64_t phys_bytes;   /* the memory the budget follows: the smallest of mem_limit[] */
    uint64_t shards, tls_cache, tls_cache_bytes, pool_bytes;
    uint64_t mem_limit[ZP_MEM_SOURCE_COUNT]; /* each limit found, 0 for none */
    zp_mem_source_t mem_source;              /* which one set phys_bytes (and so the budget) */
} zp_autoconf_t;

/* The smallest non-zero limit of ac->mem_limit[] into ac->phys_bytes and ac->mem_source, and
 * the formulas again from it. */
void zp_autoconf_pick_memory(zp_autoconf_t *ac);
/* The nearest cgroup v1 memory.limit_in_bytes up the hierarchy of the memory controller's
 * line in proc_cgroup, under fsroot ("/sys/fs/cgroup": files in fsroot/memory/PATH); 0 for none
 * (v1's "unlimited" is a value near 2^63). */
uint64_t zp_autoconf_cgroup_v1_memory(const char *fsroot, const char *proc_cgroup);
/* One limit for people, "1024 MiB (RLIMIT_AS)"; which = ac->mem_source: the verdict. */
size_t zp_autoconf_memory_text(const zp_autoconf_t *ac, zp_mem_source_t which, char *buf,
                               size_t cap);

/* Count usable CPUs and memory of this process (no malloc, no stdio). */
void zp_autoconf_detect(zp_autoconf_t *ac);
/* The formulas, from a CPU count and a memory size (pure; documented in the README). */
void zp_autoconf_compute(unsigned cpus, uint64_t phys_bytes, zp_autoconf_t *ac);

/* Defaults + auto-configuration, then /etc/zeropool.conf, then ZEROPOOL_CONF, then the
 * individual ZEROPOOL_* variables (a variable wins over the same key in ZEROPOOL_CONF, which
 * wins over the file). envp NULL means environ. The file is read into a stack buffer.
 * In secure-execution mode (setuid, setgid) no ZEROPOOL_* variable counts: only ZP_SYS_CONF,
 * and only when root owns it and nobody else may write it; one line says so on fd 2.
 * Each bad value or unknown name of the environment is reported once on fd 2 and leaves the
 * default in force; the system-wide file's go into o->verdicts, never to fd 2. */
void zp_options_load(zp_options_t *o, char *const *envp);
/* Defaults with auto-configuration filled in, reading no environment. */
void zp_options_defaults(zp_options_t *o, const zp_autoconf_t *ac);
/* Set one option by table name ("THRESHOLD") or conf key ("threshold") from text.
 * Returns 0, or -1 after reporting the problem on fd 2 (the value is left unchanged). */
int zp_option_set(zp_options_t *o, const char *name, size_t name_len, const char *value,
                  size_t value_len, zp_opt_source_t src);
/* Parse a "key:value,key:value" string, as ZEROPOOL_CONF holds. Returns the number of problems. */
unsigned zp_options_parse_conf(zp_options_t *o, const char *conf);

/* Text of one effective value ("64K", "clock-pro", "on") into buf; returns its length. */
size_t zp_option_format(const zp_options_t *o, zp_opt_id_t id, char *buf, size_t len);
/* The effective settings, one "ZEROPOOL_NAME=value  (source)" line each, written to fd. */
void zp_options_dump(const zp_options_t *o, int fd);
/* The same lines into buf (NUL-terminated, cut at cap - 1 bytes); their length. */
size_t zp_options_dump_buf(const zp_options_t *o, char *buf, size_t cap);

/* The system-wide file's verdicts (o->verdicts), one "zeropool: ..." line each, written to fd;
 * a last line counts those not kept. */
void zp_options_say_verdicts(const zp_options_t *o, int fd);

/* Strict mode: the number of bad settings (values, unknown names, an unreadable file). */
unsigned zp_options_bad(const zp_options_t *o);
/* The one line strict mode stops a program with ("zeropool: strict mode: ..."), written to fd. */
void zp_options_say_strict(const zp_options_t *o, int fd);

/* The option nearest to a mistyped name (table name or conf key), or -1: "did you mean". */
int zp_option_nearest(const char *name, size_t n);
/* Is NAME (after "ZEROPOOL_") a variable of ours that is not an option: CONF, CONF_FILE or a
 * tool variable (below)? */
bool zp_option_reserved(const char *name, size_t n);
/* Is NAME one of the project's tool variables (the command's LIB and helpers, LONG_TESTS, the
 * jemalloc build's JEMALLOC_CACHE, DEBIAN_MIRROR, DEBIAN_SUITE)? No setting, never reported. */
bool zp_option_tool_var(const char *name, size_t n);

/* Parse a size with an optional K/M/G (or KiB/MiB/GiB) suffix; false on error or overflow. */
bool zp_parse_size(const char *s, size_t len, uint64_t *out);

/* Internals, declared for the unit tests and the zeropool-config tool; not for other layers. */
/* zp_options_load with the secure-execution flag and the auto-configuration given (ac NULL:
 * detect), so that tests can exercise AT_SECURE and fixed CPU counts. */
void zp_options_load_ex(zp_options_t *o, char *const *envp, bool secure, const zp_autoconf_t *ac);
/* The cgroup v2 limits of the cgroup named in proc_cgroup (the text of /proc/self/cgroup),
 * looked up under fsroot ("/sys/fs/cgroup"), minimum over the cgroup and its ancestors:
 * quota CPUs (0: no quota) and memory.max bytes (0: no limit). */
void zp_autoconf_cgroup(const char *fsroot, const char *proc_cgroup, unsigned *quota_cpus,
                        uint64_t *mem_max);
/* The byte bound of one thread cache for a budget and shard count (the formula in autoconf.c). */
uint64_t zp_autoconf_tls_bytes(uint64_t pool_bytes, uint64_t shards);

#endif
