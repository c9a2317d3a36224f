/* Small text files (/proc, /sys, cgroup) read with open/read/close: no stdio, no malloc, so
 * any layer may call them before libc is ready. The one reader of such files: config/ reads
 * the cgroup limits with it, and core/platform.c reads vm.max_map_count through it. Defined
 * in autoconf.c, their first user. */
#ifndef ZP_FILE_H
#define ZP_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The file at path into buf as a NUL-terminated string (truncated to cap - 1 bytes);
 * its length, or -1 when it cannot be opened. */
ssize_t zp_file_read(const char *path, char *buf, size_t cap);
/* The decimal number the file starts with; false when it cannot be read, has none, or the
 * number overflows. */
bool zp_file_read_u64(const char *path, uint64_t *out);

#endif
