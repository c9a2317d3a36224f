/* The status block: what `zeropool status PID` reads from a running process's memory, with
 * nothing running in the process to publish it (no thread, no file, no socket).
 *
 * One zp_status_t lives in libzeropool.so's own ELF section ZP_STATUS_SECTION. The reader
 * (zeropool-status.c) finds the library in /proc/PID/maps, reads the section's address from
 * the mapped file's section headers (/proc/PID/map_files/... when the file on disk was
 * replaced or removed), adds the load address and reads the block with process_vm_readv or
 * /proc/PID/mem. Why a section and not a symbol: section headers survive `strip` (.symtab does
 * not), the block needs no exported name (the library exports only libc's), and the section's
 * name is the contract. The block then proves itself: a magic, a layout number and its own
 * size, which the reader checks before trusting anything else; a library of another layout is
 * named, not misread.
 *
 * Settings and verdicts are text, written once at start-up. Counters are not copied anywhere
 * (that would cost the fast paths): each zp_status_var_t says where the reader finds the
 * pieces of one counter in the process's memory and sums them (see zp_status_var_t). */
#ifndef ZP_STATUS_H
#define ZP_STATUS_H

#include <stdint.h>

#define ZP_STATUS_SECTION "zeropool_status"
#define ZP_STATUS_MAGIC "\177zeropool-stat1" /* 16 bytes with its NUL */
#define ZP_STATUS_LAYOUT 1u

#define ZP_SV_NONE UINT64_MAX
enum { ZP_SV_DEREF = 1 }; /* flags */

/* One counter: obj = addr, or with ZP_SV_DEREF the pointer stored at addr (0: counter 0).
 * value = sum of the u64 at obj + add[i] (add[i] != NONE)
 *       + for each element e of the list whose first pointer is at obj + head (head != NONE),
 *         following the pointer at e + next: the u64 at e + item.
 * Absolute addresses are offsets from obj = 0. */
typedef struct zp_status_var {
    char name[40];
    uint32_t bytes; /* 1: a byte count */
    uint32_t flags;
    uint64_t addr;
    uint64_t add[2];
    uint64_t head, next, item;
} zp_status_var_t;

#define ZP_STATUS_VARS 48
#define ZP_STATUS_SETTINGS 3072
#define ZP_STATUS_VERDICTS 1600
#define ZP_STATUS_ERROR 512

typedef struct zp_status {
    char magic[16];       /* ZP_STATUS_MAGIC */
    uint32_t layout;      /* ZP_STATUS_LAYOUT */
    uint32_t size;        /* sizeof(zp_status_t) */
    char version[32];     /* ZEROPOOL_VERSION */
    uint8_t build_id[32]; /* the library's GNU build id (its own note, read at start-up) */
    uint32_t build_id_len;
    uint32_t ready;          /* 1 once the options are loaded and the text below is written */
    int64_t started;         /* CLOCK_REALTIME seconds at start-up (at fork in a child) */
    uint64_t pool_created;   /* address of a pointer: non-zero once the pool exists */
    char settings[ZP_STATUS_SETTINGS]; /* `zeropool config`'s lines: NAME=value  (source) */
    char verdicts[ZP_STATUS_VERDICTS]; /* the system-wide file's problems, a line each */
    uint32_t nverdicts;                /* counted, including those that did not fit */
    uint32_t nvars;
    char stats_error[ZP_STATUS_ERROR]; /* the last failed statistics-file write, or "" */
    char pool_error[ZP_STATUS_ERROR];  /* why the pool could not be created, or "" */
    zp_status_var_t vars[ZP_STATUS_VARS];
} zp_status_t;

#ifdef ZP_STATUS_LIBRARY
/* In the library (status.c). */
extern zp_status_t zp_status;
/* After the options are loaded: settings, verdicts, counters' places, build id. */
void zp_status_publish(void);
/* A failed statistics-file write, one line (live.c). */
void zp_status_note_stats_error(const char *line);
/* The pool could not be created, one line (alloc.c). */
void zp_status_note_pool_error(const char *line);
/* In a forked child: its start time. */
void zp_status_child(void);
#endif

#endif
