/* zeropool-status: what a running process's libzeropool.so holds, read from outside
 * (`zeropool status` runs it). Nothing runs in the process: the library keeps a status block
 * in its own ELF section (zp_status.h); this tool finds the library in /proc/PID/maps, the
 * section in the mapped file's section headers (through /proc/PID/map_files when it can, so
 * a library replaced or removed on disk, or one in another mount namespace, is still the one
 * mapped), and reads the block and the counters it points to with process_vm_readv
 * (/proc/PID/mem when that is refused).
 *
 *   zeropool-status [--json] [--every SECONDS] [PID...]
 * Without a PID: every process with the library loaded, and how many could not be read, why.
 * Exit status: 0, 1 when a PID named has no zeropool or could not be read, 2 on usage. */
#include <ctype.h>
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "zp_status.h"

static bool json;

/* ---- the library in the process ---- */

typedef struct lib {
    char path[4096];     /* as /proc/PID/maps names it, " (deleted)" removed */
    bool deleted;        /* maps says (deleted) */
    char range[64];      /* the offset-0 mapping, "start-end", for map_files */
    uint64_t start;      /* its start address */
    dev_t dev;
    ino_t ino;
    uint64_t rw_lo[8], rw_hi[8]; /* its writable mappings, where the block lives */
    int nrw;
} lib_t;

/* 1: found, 0: not loaded, -1: maps unreadable (errno). */
static int find_lib(pid_t pid, lib_t *l)
{
    char name[64], line[4400];
    (void)snprintf(name, sizeof name, "/proc/%d/maps", (int)pid);
    FILE *f = fopen(name, "re");
    if (f == NULL)
        return -1;
    int found = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        unsigned long long lo, hi, off, inode;
        unsigned maj, min;
        char perms[8];
        int pos = 0;
        /* The kernel's own format; a line that does not parse is skipped. */
        if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu %n", // NOLINT(cert-err34-c)
                   &lo, &hi, perms, &off, &maj, &min, &inode, &pos) < 7 ||
            pos == 0)
            continue;
        char *path = line + pos;
        path[strcspn(path, "\n")] = '\0';
        if (found && makedev(maj, min) == l->dev && (ino_t)inode == l->ino && perms[1] == 'w' &&
            l->nrw < 8) {
            l->rw_lo[l->nrw] = lo;
            l->rw_hi[l->nrw++] = hi;
        }
        const char *base = strrchr(path, '/');
        if (found || base == NULL || strncmp(base + 1, "libzeropool.so", 14) != 0 || off != 0)
            continue;
        size_t n = strlen(path);
        l->deleted = n > 10 && strcmp(path + n - 10, " (deleted)") == 0;
        if (l->deleted)
            path[n - 10] = '\0';
        (void)snprintf(l->path, sizeof l->path, "%s", path);
        (void)snprintf(l->range, sizeof l->range, "%llx-%llx", lo, hi);
        l->start = lo;
        l->dev = makedev(maj, min);
        l->ino = (ino_t)inode;
        found = 1;
    }
    if (ferror(f) && !found) {
        int e = errno;
        (void)fclose(f);
        errno = e != 0 ? e : EIO;
        return -1;
    }
    (void)fclose(f);
    return found;
}

/* The mapped file itself: map_files (root), else through the process's root directory, else
 * the path; only a file with the mapping's device and inode counts. *replaced: the file at
 * the path is no longer the one mapped. -1 when none could be opened. */
static int open_lib(pid_t pid, const lib_t *l, bool *replaced)
{
    char name[4200];
    struct stat st;
    *replaced = l->deleted;
    (void)snprintf(name, sizeof name, "/proc/%d/root%s", (int)pid, l->path);
    if ((stat(name, &st) != 0 && stat(l->path, &st) != 0) || st.st_dev != l->dev ||
        st.st_ino != l->ino)
        *replaced = true;
    const char *tries[3];
    char mf[128];
    (void)snprintf(mf, sizeof mf, "/proc/%d/map_files/%s", (int)pid, l->range);
    tries[0] = mf;
    tries[1] = name;
    tries[2] = l->path;
    for (int i = 0; i < 3; i++) {
        int fd = open(tries[i], O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        if (fstat(fd, &st) == 0 && st.st_dev == l->dev && st.st_ino == l->ino)
            return fd;
        close(fd);
    }
    return -1;
}

static bool pread_all(int fd, void *buf, size_t n, uint64_t off)
{
    char *p = buf;
    while (n > 0) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return true;
}

/* The status section's address in the process: its sh_addr plus the load bias. 0 if the
 * file is not a 64-bit ELF or has no such section (a library too old to have one). */
static uint64_t section_addr(int fd, uint64_t map_start, uint64_t *size)
{
    Elf64_Ehdr eh;
    if (!pread_all(fd, &eh, sizeof eh, 0) || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
        eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_shentsize != sizeof(Elf64_Shdr) ||
        eh.e_shnum == 0 || eh.e_shstrndx >= eh.e_shnum || eh.e_shnum > 4096)
        return 0;
    uint64_t vaddr0 = 0;
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        if (!pread_all(fd, &ph, sizeof ph, eh.e_phoff + (uint64_t)i * eh.e_phentsize))
            return 0;
        if (ph.p_type == PT_LOAD && ph.p_offset == 0) {
            vaddr0 = ph.p_vaddr;
            break;
        }
    }
    Elf64_Shdr strs;
    if (!pread_all(fd, &strs, sizeof strs, eh.e_shoff + (uint64_t)eh.e_shstrndx * sizeof strs))
        return 0;
    for (unsigned i = 0; i < eh.e_shnum; i++) {
        Elf64_Shdr sh;
        char nm[sizeof ZP_STATUS_SECTION];
        if (!pread_all(fd, &sh, sizeof sh, eh.e_shoff + (uint64_t)i * sizeof sh))
            return 0;
        if (sh.sh_name + sizeof nm > strs.sh_size ||
            !pread_all(fd, nm, sizeof nm, strs.sh_offset + sh.sh_name))
            continue;
        if (memcmp(nm, ZP_STATUS_SECTION, sizeof nm) == 0) {
            *size = sh.sh_size;
            return map_start - vaddr0 + sh.sh_addr;
        }
    }
    return 0;
}

/* ---- reading the process's memory ---- */

typedef struct proc {
    pid_t pid;
    int mem; /* /proc/PID/mem, opened when process_vm_readv is refused; -1 before */
} proc_t;

static bool peek(proc_t *p, uint64_t addr, void *buf, size_t n);

/* Without the file (not root, and the file replaced or removed: /proc/PID/map_files is root's
 * only), the block is looked for in the library's writable mappings: the magic, at the
 * block's 64-byte alignment. 0 if not found. */
static uint64_t scan_for_block(proc_t *p, const lib_t *l)
{
    static char chunk[1 << 16];
    for (int i = 0; i < l->nrw; i++) {
        for (uint64_t a = l->rw_lo[i]; a < l->rw_hi[i]; a += sizeof chunk) {
            size_t n = l->rw_hi[i] - a < sizeof chunk ? (size_t)(l->rw_hi[i] - a) : sizeof chunk;
            if (!peek(p, a, chunk, n))
                break;
            for (size_t o = 0; o + 16 <= n; o += 64)
                if (memcmp(chunk + o, ZP_STATUS_MAGIC, 16) == 0)
                    return a + o;
        }
    }
    return 0;
}

static bool peek(proc_t *p, uint64_t addr, void *buf, size_t n)
{
    if (p->mem < 0) {
        struct iovec local = { buf, n }, remote = { (void *)(uintptr_t)addr, n };
        ssize_t r = process_vm_readv(p->pid, &local, 1, &remote, 1, 0);
        if (r == (ssize_t)n)
            return true;
        if (r >= 0 || (errno != EPERM && errno != ENOSYS))
            return false;
        char name[64];
        (void)snprintf(name, sizeof name, "/proc/%d/mem", (int)p->pid);
        p->mem = open(name, O_RDONLY | O_CLOEXEC);
        if (p->mem < 0)
            return false;
    }
    return pread_all(p->mem, buf, n, addr);
}

static bool peek_u64(proc_t *p, uint64_t addr, uint64_t *v)
{
    return peek(p, addr, v, sizeof *v);
}

/* One counter, as zp_status_var_t describes it; false when a read failed. */
static bool var_value(proc_t *p, const zp_status_var_t *v, uint64_t *out)
{
    uint64_t obj = v->addr, x, sum = 0;
    *out = 0;
    if (v->flags & ZP_SV_DEREF) {
        if (!peek_u64(p, v->addr, &obj))
            return false;
        if (obj == 0)
            return true;
    }
    for (int i = 0; i < 2; i++) {
        if (v->add[i] == ZP_SV_NONE)
            continue;
        if (!peek_u64(p, obj + v->add[i], &x))
            return false;
        sum += x;
    }
    if (v->head != ZP_SV_NONE) {
        uint64_t e;
        if (!peek_u64(p, obj + v->head, &e))
            return false;
        /* The list may change while we read: bounded, and a failed read ends the walk. */
        for (int n = 0; e != 0 && n < 100000; n++) {
            if (!peek_u64(p, e + v->item, &x))
                break;
            sum += x;
            if (!peek_u64(p, e + v->next, &e))
                break;
        }
    }
    *out = sum;
    return true;
}

/* ---- output ---- */

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static const char *user_of(pid_t pid, char *buf, size_t n)
{
    char name[64];
    struct stat st;
    (void)snprintf(name, sizeof name, "/proc/%d", (int)pid);
    if (stat(name, &st) != 0)
        return "?";
    struct passwd *pw = getpwuid(st.st_uid);
    if (pw != NULL)
        (void)snprintf(buf, n, "%s", pw->pw_name);
    else
        (void)snprintf(buf, n, "%u", (unsigned)st.st_uid);
    return buf;
}

static const char *comm_of(pid_t pid, char *buf, size_t n)
{
    char name[64];
    (void)snprintf(name, sizeof name, "/proc/%d/comm", (int)pid);
    buf[0] = '\0';
    FILE *f = fopen(name, "re");
    if (f != NULL) {
        if (fgets(buf, (int)n, f) == NULL)
            buf[0] = '\0';
        (void)fclose(f);
    }
    buf[strcspn(buf, "\n")] = '\0';
    return buf[0] ? buf : "?";
}

typedef struct result {
    pid_t pid;
    int state; /* ST_* */
    int err;   /* errno of the failure */
    const char *why;
    lib_t lib;
    bool replaced;
    zp_status_t st;
    uint64_t values[ZP_STATUS_VARS];
    bool value_ok[ZP_STATUS_VARS];
    uint64_t pool;
    int secure; /* AT_SECURE in its auxiliary vector: 1, 0, or -1 unreadable */
} result_t;

enum { ST_OK, ST_NOT_LOADED, ST_NO_PROCESS, ST_UNREADABLE, ST_OLD };

/* AT_SECURE (setuid, setgid): the library then ignored the process's environment. */
static int secure_of(pid_t pid)
{
    char name[64];
    (void)snprintf(name, sizeof name, "/proc/%d/auxv", (int)pid);
    int fd = open(name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    uint64_t av[2];
    int secure = -1;
    while (read(fd, av, sizeof av) == (ssize_t)sizeof av && av[0] != AT_NULL)
        if (av[0] == AT_SECURE)
            secure = av[1] != 0;
    close(fd);
    return secure;
}

static void read_process(pid_t pid, result_t *r)
{
    memset(r, 0, sizeof *r);
    r->pid = pid;
    char name[64];
    (void)snprintf(name, sizeof name, "/proc/%d", (int)pid);
    if (access(name, F_OK) != 0) {
        r->state = ST_NO_PROCESS;
        return;
    }
    errno = 0;
    int found = find_lib(pid, &r->lib);
    if (found < 0) {
        r->state = ST_UNREADABLE;
        r->err = errno;
        r->why = "cannot read its /proc/PID/maps";
        return;
    }
    if (found == 0) {
        r->state = ST_NOT_LOADED;
        return;
    }
    int fd = open_lib(pid, &r->lib, &r->replaced);
    uint64_t size = 0, addr = 0;
    if (fd >= 0) {
        addr = section_addr(fd, r->lib.start, &size);
        close(fd);
    }
    proc_t p = { pid, -1 };
    if (fd < 0) {
        addr = scan_for_block(&p, &r->lib);
        size = sizeof(zp_status_t);
    }
    if (addr == 0 || size < offsetof(zp_status_t, version)) {
        r->state = fd < 0 ? ST_UNREADABLE : ST_OLD;
        r->err = fd < 0 ? errno : 0;
        r->why = fd < 0 ? "cannot open the mapped library file nor find its status block in "
                          "memory"
                        : "the library has no status block (a release before zeropool status PID)";
        goto out;
    }
    struct { char magic[16]; uint32_t layout, size; } hdr;
    if (!peek(&p, addr, &hdr, sizeof hdr)) {
        r->state = ST_UNREADABLE;
        r->err = errno;
        r->why = "cannot read its memory (process_vm_readv, /proc/PID/mem)";
        goto out;
    }
    if (memcmp(hdr.magic, ZP_STATUS_MAGIC, sizeof hdr.magic) != 0 ||
        hdr.layout != ZP_STATUS_LAYOUT || hdr.size != sizeof(zp_status_t) || size < hdr.size) {
        r->state = ST_OLD;
        r->why = "its status block has another layout (a different zeropool release): use "
                 "that release's zeropool command";
        goto out;
    }
    if (!peek(&p, addr, &r->st, sizeof r->st)) {
        r->state = ST_UNREADABLE;
        r->err = errno;
        r->why = "cannot read its memory (process_vm_readv, /proc/PID/mem)";
        goto out;
    }
    /* Text fields end in a NUL whatever the process holds. */
    r->st.version[sizeof r->st.version - 1] = '\0';
    r->st.settings[sizeof r->st.settings - 1] = '\0';
    r->st.verdicts[sizeof r->st.verdicts - 1] = '\0';
    r->st.stats_error[sizeof r->st.stats_error - 1] = '\0';
    r->st.pool_error[sizeof r->st.pool_error - 1] = '\0';
    if (r->st.nvars > ZP_STATUS_VARS)
        r->st.nvars = ZP_STATUS_VARS;
    for (uint32_t i = 0; i < r->st.nvars; i++) {
        r->st.vars[i].name[sizeof r->st.vars[i].name - 1] = '\0';
        r->value_ok[i] = var_value(&p, &r->st.vars[i], &r->values[i]);
    }
    /* The pool notes its peak when its statistics are summed in the process, which nothing
     * may have done: the peak is at least what is pooled now. */
    int peak = -1, now = -1;
    for (uint32_t i = 0; i < r->st.nvars; i++) {
        if (strcmp(r->st.vars[i].name, "pool.peak_pooled_bytes") == 0)
            peak = (int)i;
        if (strcmp(r->st.vars[i].name, "pool.pooled_bytes") == 0)
            now = (int)i;
    }
    if (peak >= 0 && now >= 0 && r->values[peak] < r->values[now])
        r->values[peak] = r->values[now];
    if (r->st.pool_created != 0)
        (void)peek_u64(&p, r->st.pool_created, &r->pool);
    r->secure = secure_of(pid);
    r->state = ST_OK;
out:
    if (p.mem >= 0)
        close(p.mem);
}

static bool value_of(const result_t *r, const char *name, uint64_t *v)
{
    for (uint32_t i = 0; i < r->st.nvars; i++)
        if (r->value_ok[i] && strcmp(r->st.vars[i].name, name) == 0) {
            *v = r->values[i];
            return true;
        }
    return false;
}

static const char *restart_note =
    "restart needed: the library file was replaced or removed on disk since this process "
    "started; it runs the old library until it is restarted";

static void build_id_text(const result_t *r, char *buf, size_t n)
{
    buf[0] = '\0';
    for (uint32_t i = 0; i < r->st.build_id_len && i < sizeof r->st.build_id && 2 * i + 3 <= n; i++)
        (void)snprintf(buf + (size_t)2 * i, 3, "%02x", r->st.build_id[i]);
}

/* "ZEROPOOL_NAME=value  (source)" -> the three parts, in place. */
static bool split_setting(char *line, char **name, char **value, char **source)
{
    char *eq = strchr(line, '='), *src = strstr(line, "  (");
    if (eq == NULL || src == NULL || src < eq)
        return false;
    *eq = '\0';
    *src = '\0';
    *name = line + (strncmp(line, "ZEROPOOL_", 9) == 0 ? 9 : 0);
    *value = eq + 1;
    *source = src + 3;
    size_t n = strlen(*source);
    if (n > 0 && (*source)[n - 1] == ')')
        (*source)[n - 1] = '\0';
    return true;
}

static void print_json(const result_t *r)
{
    char user[64], comm[64], bid[80];
    printf("{\"pid\":%d,\"command\":", (int)r->pid);
    json_str(comm_of(r->pid, comm, sizeof comm));
    printf(",\"user\":");
    json_str(user_of(r->pid, user, sizeof user));
    static const char *const states[] = { "ok", "not_loaded", "no_process", "unreadable", "other_layout" };
    printf(",\"state\":\"%s\"", states[r->state]);
    if (r->state == ST_UNREADABLE || r->state == ST_OLD) {
        printf(",\"error\":");
        char why[400];
        (void)snprintf(why, sizeof why, "%s%s%s", r->why, r->err ? ": " : "", r->err ? strerror(r->err) : "");
        json_str(why);
    }
    if (r->state == ST_OK || r->state == ST_OLD || (r->state == ST_UNREADABLE && r->lib.path[0])) {
        printf(",\"library\":");
        json_str(r->lib.path);
        printf(",\"library_replaced\":%s,\"restart_needed\":%s", r->replaced ? "true" : "false",
               r->replaced ? "true" : "false");
    }
    if (r->state != ST_OK) {
        printf("}\n");
        return;
    }
    build_id_text(r, bid, sizeof bid);
    printf(",\"version\":");
    json_str(r->st.version);
    printf(",\"build_id\":\"%s\",\"started\":%" PRId64 ",\"pool\":%s,\"secure\":%s", bid,
           r->st.started, r->pool ? "true" : "false", r->secure == 1 ? "true" : "false");
    printf(",\"settings\":{");
    char text[sizeof r->st.settings];
    memcpy(text, r->st.settings, sizeof text);
    bool first = true;
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        char *name, *value, *source;
        if (!split_setting(line, &name, &value, &source))
            continue;
        printf("%s", first ? "" : ",");
        first = false;
        json_str(name);
        printf(":{\"value\":");
        json_str(value);
        printf(",\"source\":");
        json_str(source);
        printf("}");
    }
    printf("},\"rejected\":[");
    memcpy(text, r->st.verdicts, sizeof r->st.verdicts);
    text[sizeof r->st.verdicts - 1] = '\0';
    first = true;
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        printf("%s", first ? "" : ",");
        first = false;
        json_str(line);
    }
    printf("],\"rejected_count\":%u,\"stats_file_error\":", r->st.nverdicts);
    json_str(r->st.stats_error);
    printf(",\"pool_error\":");
    json_str(r->st.pool_error);
    printf(",\"counters\":{");
    for (uint32_t i = 0; i < r->st.nvars; i++) {
        printf("%s", i ? "," : "");
        json_str(r->st.vars[i].name);
        if (r->value_ok[i])
            printf(":%" PRIu64, r->values[i]);
        else
            printf(":null");
    }
    uint64_t got, put;
    if (value_of(r, "pool.bytes_got", &got) && value_of(r, "pool.bytes_put", &put))
        printf(",\"pool.live_bytes\":%" PRIu64, got > put ? got - put : 0);
    printf("}}\n");
}

static void print_text(const result_t *r)
{
    char user[64], comm[64], bid[80];
    if (r->state == ST_NO_PROCESS) {
        (void)fprintf(stderr, "zeropool: no process %d\n", (int)r->pid);
        return;
    }
    printf("process %d (%s), user %s\n", (int)r->pid, comm_of(r->pid, comm, sizeof comm),
           user_of(r->pid, user, sizeof user));
    if (r->state == ST_NOT_LOADED) {
        printf("  zeropool: not loaded\n");
        return;
    }
    if (r->state == ST_UNREADABLE || r->state == ST_OLD) {
        if (r->lib.path[0])
            printf("  library:  %s\n", r->lib.path);
        printf("  zeropool: %s%s%s\n", r->why, r->err ? ": " : "", r->err ? strerror(r->err) : "");
        if (r->state == ST_UNREADABLE)
            printf("  (run as root or as the process's user)\n");
        return;
    }
    build_id_text(r, bid, sizeof bid);
    printf("  zeropool: loaded, version %s, build id %s\n", r->st.version, bid[0] ? bid : "none");
    printf("  library:  %s\n", r->lib.path);
    if (r->replaced)
        printf("  note:     %s\n", restart_note);
    if (r->secure == 1)
        printf("  secure-execution mode (setuid/setgid): its environment was ignored, only "
               "/etc/zeropool.conf counts\n");
    if (!r->st.ready) {
        printf("  settings: not loaded yet (no allocation so far)\n");
        return;
    }
    time_t t = (time_t)r->st.started;
    struct tm tm;
    char when[64] = "?";
    if (gmtime_r(&t, &tm) != NULL)
        (void)strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
    printf("  started:  %s; pool %s\n", when, r->pool ? "created" : "not created (no large request yet)");
    printf("  settings (value and source):\n");
    const char *s = r->st.settings;
    while (*s) {
        const char *e = strchr(s, '\n');
        int n = e ? (int)(e - s) : (int)strlen(s);
        printf("    %.*s\n", n, s);
        s += n + (e != NULL);
    }
    if (r->st.nverdicts > 0) {
        printf("  system-wide file: %u problem%s, each ignored (the default stays):\n",
               r->st.nverdicts, r->st.nverdicts == 1 ? "" : "s");
        s = r->st.verdicts;
        while (*s) {
            const char *e = strchr(s, '\n');
            int n = e ? (int)(e - s) : (int)strlen(s);
            printf("    %.*s\n", n, s);
            s += n + (e != NULL);
        }
    }
    if (r->st.stats_error[0])
        printf("  statistics file: %s\n", r->st.stats_error);
    if (r->st.pool_error[0])
        printf("  pool: %s\n", r->st.pool_error);
    uint64_t pin_failures;
    if (value_of(r, "pool.pin_failures", &pin_failures) && pin_failures > 0)
        printf("  pin:      mlock failed %" PRIu64 " time%s (RLIMIT_MEMLOCK reached?): buffers "
               "beyond the limit are not pinned\n", pin_failures, pin_failures == 1 ? "" : "s");
    printf("  counters:\n");
    for (uint32_t i = 0; i < r->st.nvars; i++) {
        if (r->value_ok[i])
            printf("    %-26s %" PRIu64 "\n", r->st.vars[i].name, r->values[i]);
        else
            printf("    %-26s ?\n", r->st.vars[i].name);
    }
    uint64_t got, put;
    if (value_of(r, "pool.bytes_got", &got) && value_of(r, "pool.bytes_put", &put))
        printf("    %-26s %" PRIu64 "\n", "pool.live_bytes", got > put ? got - put : 0);
}

/* ---- every process ---- */

static int list_all(void)
{
    DIR *d = opendir("/proc");
    if (d == NULL) {
        perror("zeropool: /proc");
        return 2;
    }
    unsigned found = 0, denied = 0, other = 0, old = 0;
    static result_t r;
    if (json)
        printf("[");
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end != '\0' || pid <= 0 || pid == getpid())
            continue;
        read_process((pid_t)pid, &r);
        if (r.state == ST_NO_PROCESS || r.state == ST_NOT_LOADED)
            continue;
        if (r.state == ST_UNREADABLE && r.lib.path[0] == '\0') {
            if (r.err == EACCES || r.err == EPERM)
                denied++;
            else
                other++;
            continue;
        }
        if (json) {
            printf("%s", found ? "," : "");
            print_json(&r);
        } else {
            char user[64], comm[64];
            if (found == 0)
                printf("%-8s %-12s %-16s %-10s %s\n", "PID", "USER", "COMMAND", "VERSION", "STATE");
            const char *state = r.state == ST_OK ? (r.replaced ? "restart needed" : "ok")
                                : r.state == ST_OLD ? "other release"
                                                    : "unreadable";
            printf("%-8d %-12s %-16s %-10s %s\n", (int)r.pid, user_of(r.pid, user, sizeof user),
                   comm_of(r.pid, comm, sizeof comm), r.state == ST_OK ? r.st.version : "?", state);
            if (r.state == ST_UNREADABLE)
                denied++;
            if (r.state == ST_OLD)
                old++;
        }
        found++;
    }
    closedir(d);
    if (json) {
        printf("]\n");
        return 0;
    }
    if (found == 0)
        printf("no process has zeropool loaded%s\n", (denied + other) > 0 ? " (among those readable)" : "");
    else
        printf("details: zeropool status PID\n");
    if (denied > 0 && geteuid() != 0)
        printf("%u process%s could not be read: another user's (or not dumpable), so whether "
               "zeropool is loaded there is unknown (run as root to see every process)\n", denied,
               denied == 1 ? "" : "es");
    else if (denied > 0)
        printf("%u process%s could not be read: permission denied by the kernel\n", denied,
               denied == 1 ? "" : "es");
    if (other > 0)
        printf("%u process%s could not be read: ended or refused while being read\n", other,
               other == 1 ? "" : "es");
    (void)old;
    return 0;
}

static int usage(void)
{
    (void)fprintf(stderr, "usage: zeropool-status [--json] [--every SECONDS] [PID...]\n");
    return 2;
}

int main(int argc, char **argv)
{
    unsigned every = 0;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "--every") == 0 && i + 1 < argc) {
            char *end;
            unsigned long v = strtoul(argv[++i], &end, 10);
            if (*end == 's')
                end++;
            else if (*end == 'm') {
                v *= 60;
                end++;
            }
            if (*end != '\0' || v == 0 || v > 86400) {
                (void)fprintf(stderr, "zeropool: --every wants a time: 30s, 5m\n");
                return 2;
            }
            every = (unsigned)v;
        } else if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else {
            return usage();
        }
    }
    for (int k = i; k < argc; k++)
        for (const char *c = argv[k]; *c; c++)
            if (!isdigit((unsigned char)*c)) {
                (void)fprintf(stderr, "zeropool: status: '%s' is not a process ID\n", argv[k]);
                return 2;
            }
    for (;;) {
        int rc = 0;
        if (i == argc) {
            rc = list_all();
        } else {
            static result_t r;
            for (int k = i; k < argc; k++) {
                read_process((pid_t)strtol(argv[k], NULL, 10), &r);
                if (json)
                    print_json(&r);
                else
                    print_text(&r);
                if (r.state != ST_OK)
                    rc = 1;
            }
        }
        if (every == 0)
            return rc;
        (void)fflush(stdout);
        sleep(every);
        if (!json)
            printf("\n");
    }
}
