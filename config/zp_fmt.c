/* The message formatter: see zp_fmt.h. Kept free of libc calls other than write(2) so that
 * it is safe in signal handlers, in constructors and while allocator locks are held. */
#include "zp_fmt.h"

#include <errno.h>
#include <unistd.h>

void zp_buf_mem(zp_buf_t *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n && b->len < b->cap; i++)
        b->p[b->len++] = s[i];
}

void zp_buf_str(zp_buf_t *b, const char *s)
{
    while (*s && b->len < b->cap)
        b->p[b->len++] = *s++;
}

void zp_buf_chr(zp_buf_t *b, char c)
{
    if (b->len < b->cap)
        b->p[b->len++] = c;
}

void zp_buf_u64(zp_buf_t *b, uint64_t v)
{
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        zp_buf_chr(b, tmp[--n]);
}

void zp_buf_i64(zp_buf_t *b, int64_t v)
{
    if (v < 0) {
        zp_buf_chr(b, '-');
        zp_buf_u64(b, (uint64_t)0 - (uint64_t)v);
    } else {
        zp_buf_u64(b, (uint64_t)v);
    }
}

void zp_buf_hex(zp_buf_t *b, uint64_t v)
{
    static const char digits[] = "0123456789abcdef";
    char tmp[16];
    int n = 0;
    do {
        tmp[n++] = digits[v & 15];
        v >>= 4;
    } while (v);
    zp_buf_str(b, "0x");
    while (n)
        zp_buf_chr(b, tmp[--n]);
}

void zp_buf_size(zp_buf_t *b, uint64_t v)
{
    static const char units[] = "KMGT";
    int u = -1;
    while (v && (v & 1023) == 0 && u < 3) {
        v >>= 10;
        u++;
    }
    zp_buf_u64(b, v);
    if (u >= 0)
        zp_buf_chr(b, units[u]);
}

void zp_buf_json_str(zp_buf_t *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            zp_buf_chr(b, '\\');
            zp_buf_chr(b, (char)c);
        } else if (c < 0x20) {
            static const char digits[] = "0123456789abcdef";
            zp_buf_str(b, "\\u00");
            zp_buf_chr(b, digits[c >> 4]);
            zp_buf_chr(b, digits[c & 15]);
        } else {
            zp_buf_chr(b, (char)c);
        }
    }
}

int zp_buf_flush(zp_buf_t *b, int fd)
{
    int saved = errno, rc = 0;
    size_t off = 0;
    while (off < b->len) {
        ssize_t n = write(fd, b->p + off, b->len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = -1;
            break;
        }
        off += (size_t)n;
    }
    b->len = 0;
    errno = saved;
    return rc;
}

void zp_write_str(int fd, const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    zp_buf_t b = { (char *)s, n, n }; /* only read by the flush */
    zp_buf_flush(&b, fd);
}
