/* Backtraces for misuse reports, taken with libunwind (local unwinding only), and the
 * ZEROPOOL_TRACE_ALLOC records: the return addresses of each pooled buffer's allocation, kept in
 * a fixed hash table of our own mapping (no malloc), symbolised only when a report needs them.
 * Everything here is usable in a signal handler except zp_bt_note_alloc (allocation path only). */
#ifndef ZP_BACKTRACE_H
#define ZP_BACKTRACE_H

#include <stdbool.h>
#include <stdint.h>

#include "zp_fmt.h"

#define ZP_BT_MAX 24    /* frames kept: enough for ~16 of the program's after our own */
#define ZP_BT_PRINT 16  /* frames printed after skipping libzeropool's */

typedef struct zp_bt {
    uintptr_t ip[ZP_BT_MAX];
    int n;
    bool exact0; /* ip[0] is the faulting instruction itself, not a return address */
} zp_bt_t;

/* The calling thread's stack, from here outwards. */
void zp_bt_here(zp_bt_t *bt);
/* The stack of the code a signal interrupted (uc: the handler's ucontext). */
void zp_bt_signal(zp_bt_t *bt, void *uc);
/* One line per frame, "    #0 0x... in name+0x1c (module)", skipping the leading frames of
 * libzeropool itself. Flushes b to fd as it fills. */
void zp_bt_write(zp_buf_t *b, int fd, const zp_bt_t *bt);

/* ZEROPOOL_TRACE_ALLOC: remember where the buffer at p was allocated (fast: return addresses
 * only, ~50 ns for a short stack; replaces an older record of the same address). */
void zp_bt_note_alloc(const void *p);
/* The allocation stack recorded for the buffer starting at p; false when none is. */
bool zp_bt_alloc_site(const void *p, zp_bt_t *bt);

#endif
