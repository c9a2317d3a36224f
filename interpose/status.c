/* The status block (zp_status.h): the library's version, build id, settings with their
 * sources, the system-wide file's verdicts, the last statistics-file failure, and where each
 * live counter sits, all in this library's own ELF section for `zeropool status PID` to read
 * from outside. Written once at start-up (and a line at a failure); nothing runs to keep it
 * current: the counters are read where they are. */
#define ZP_STATUS_LIBRARY
#include "zp_interpose.h"

#include <elf.h>
#include <link.h>
#include <time.h>

#include "zp_stat_places.h"
#include "zp_status.h"

__attribute__((section(ZP_STATUS_SECTION), used, aligned(64))) zp_status_t zp_status = {
    .magic = ZP_STATUS_MAGIC,
    .layout = ZP_STATUS_LAYOUT,
    .size = sizeof(zp_status_t),
    .version = ZEROPOOL_VERSION,
};

/* The linker's name for our own ELF header (GNU ld, gold, lld): reserved, and meant for this. */
extern const ElfW(Ehdr) __ehdr_start; // NOLINT(bugprone-reserved-identifier,cert-dcl37-c)

/* Our GNU build id, from our own program headers: no file, no dl_iterate_phdr. */
static void status_build_id(void)
{
    const ElfW(Ehdr) *eh = &__ehdr_start;
    const char *base = (const char *)eh;
    const ElfW(Phdr) *ph = (const ElfW(Phdr) *)(base + eh->e_phoff);
    /* Load bias: where our ELF header is, minus the address its first segment was linked at. */
    uintptr_t bias = (uintptr_t)eh;
    for (int i = 0; i < eh->e_phnum; i++)
        if (ph[i].p_type == PT_LOAD && ph[i].p_offset == 0) {
            bias -= ph[i].p_vaddr;
            break;
        }
    for (int i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type != PT_NOTE)
            continue;
        const char *p = (const char *)(bias + ph[i].p_vaddr), *end = p + ph[i].p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *n = (const ElfW(Nhdr) *)p;
            const char *name = p + sizeof *n;
            const uint8_t *desc = (const uint8_t *)name + ((n->n_namesz + 3) & ~3u);
            if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 && memcmp(name, "GNU", 4) == 0 &&
                n->n_descsz <= sizeof zp_status.build_id) {
                memcpy(zp_status.build_id, desc, n->n_descsz);
                zp_status.build_id_len = n->n_descsz;
                return;
            }
            p = (const char *)desc + ((n->n_descsz + 3) & ~3u);
        }
    }
}

static zp_status_var_t *status_var(const char *prefix, const char *name, int bytes)
{
    if (zp_status.nvars >= ZP_STATUS_VARS)
        return NULL;
    zp_status_var_t *v = &zp_status.vars[zp_status.nvars++];
    size_t n = 0;
    for (const char *s = prefix; *s && n + 1 < sizeof v->name; s++)
        v->name[n++] = *s;
    for (const char *s = name; *s && n + 1 < sizeof v->name; s++)
        v->name[n++] = *s;
    v->name[n] = '\0';
    v->bytes = (uint32_t)bytes;
    v->flags = 0;
    v->addr = 0;
    v->add[0] = v->add[1] = ZP_SV_NONE;
    v->head = v->next = v->item = ZP_SV_NONE;
    return v;
}

static uint64_t status_off(size_t off)
{
    return off == ZP_PLACE_NONE ? ZP_SV_NONE : (uint64_t)off;
}

static void status_vars(void)
{
    zp_status.nvars = 0;
    zp_stat_place_t places[24];
    size_t n = zp_pool_stat_places(places, sizeof places / sizeof places[0]);
    for (size_t i = 0; i < n && i < sizeof places / sizeof places[0]; i++) {
        zp_status_var_t *v = status_var("pool.", places[i].name, places[i].bytes);
        if (v == NULL)
            return;
        v->flags = ZP_SV_DEREF;
        v->addr = (uint64_t)(uintptr_t)&zp_ip.pool;
        v->add[0] = status_off(places[i].add[0]);
        v->add[1] = status_off(places[i].add[1]);
        v->head = status_off(places[i].head);
        v->next = status_off(places[i].next);
        v->item = status_off(places[i].item);
    }
    zp_status_var_t *f = status_var("small.", "frees", 0);
    zp_status_var_t *b = status_var("small.", "bytes_scrubbed", 1);
    if (f != NULL && b != NULL)
        zp_ip_count_places(f, b);
    for (int k = 0; k < ZP_IP_M_COUNT; k++) {
        zp_status_var_t *v = status_var("misuse.", zp_ip_misuse_keys[k], 0);
        if (v == NULL)
            return;
        v->add[0] = (uint64_t)(uintptr_t)&zp_ip_misuse_counts[k];
    }
}

void zp_status_publish(void)
{
    status_build_id();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    zp_status.started = ts.tv_sec;
    zp_status.pool_created = (uint64_t)(uintptr_t)&zp_ip.pool;
    (void)zp_options_dump_buf(&zp_ip.opts, zp_status.settings, sizeof zp_status.settings);
    size_t len = 0;
    const zp_options_t *o = &zp_ip.opts;
    for (unsigned i = 0; i < o->nverdicts && i < ZP_VERDICTS; i++) {
        for (const char *s = o->verdicts[i]; *s && len + 2 < sizeof zp_status.verdicts; s++)
            zp_status.verdicts[len++] = *s;
        if (len + 1 < sizeof zp_status.verdicts)
            zp_status.verdicts[len++] = '\n';
    }
    zp_status.verdicts[len] = '\0';
    zp_status.nverdicts = o->nverdicts;
    status_vars();
    __atomic_store_n(&zp_status.ready, 1, __ATOMIC_RELEASE);
}

static void status_line(char *to, size_t cap, const char *line)
{
    size_t n = 0;
    for (; line[n] && n + 1 < cap; n++)
        to[n] = line[n];
    to[n] = '\0';
}

void zp_status_note_stats_error(const char *line)
{
    status_line(zp_status.stats_error, sizeof zp_status.stats_error, line);
}

void zp_status_note_pool_error(const char *line)
{
    status_line(zp_status.pool_error, sizeof zp_status.pool_error, line);
}

void zp_status_child(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    zp_status.started = ts.tv_sec;
}
