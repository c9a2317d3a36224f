/* A tiny formatter for messages written with write(2): no stdio, no malloc, async-signal-safe.
 * Every layer uses it for warnings and reports. A zp_buf_t fills a caller's array and
 * truncates silently; zp_buf_flush writes it to a file descriptor, retrying on EINTR. */
#ifndef ZP_FMT_H
#define ZP_FMT_H

#include <stddef.h>
#include <stdint.h>

typedef struct zp_buf {
    char *p;
    size_t len, cap;
} zp_buf_t;

#define ZP_BUF_INIT(arr) { (arr), 0, sizeof(arr) }

void zp_buf_str(zp_buf_t *b, const char *s);
void zp_buf_mem(zp_buf_t *b, const char *s, size_t n);
void zp_buf_chr(zp_buf_t *b, char c);
void zp_buf_u64(zp_buf_t *b, uint64_t v);
void zp_buf_i64(zp_buf_t *b, int64_t v);
void zp_buf_hex(zp_buf_t *b, uint64_t v);  /* 0x-prefixed */
void zp_buf_size(zp_buf_t *b, uint64_t v); /* 64K, 1M, 3G when exact, else bytes */
/* JSON string body: escapes quotes, backslashes and control bytes (no surrounding quotes). */
void zp_buf_json_str(zp_buf_t *b, const char *s);
/* Write the buffer to fd (errno preserved); returns 0 or -1. */
int zp_buf_flush(zp_buf_t *b, int fd);

/* One-shot: write a NUL-terminated string to fd, errno preserved. */
void zp_write_str(int fd, const char *s);

#endif
