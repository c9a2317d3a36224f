/* Shared by the fuzz harnesses: the libFuzzer entry points, a byte reader that decodes an
 * input into arguments (reading past the end yields zeros), quiet stderr, and FAIL, which
 * prints to the real stderr and aborts so that libFuzzer (or the regression runner) reports
 * the input. Every harness builds two ways: with -fsanitize=fuzzer (scripts/fuzz) and, under
 * any compiler, with regress_main.c, which replays files once (meson suite fuzz-regress). */
#ifndef ZP_FUZZ_UTIL_H
#define ZP_FUZZ_UTIL_H

#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Where sanitizer reports go; weak, so that a build without sanitizers links too. */
void __sanitizer_set_report_fd(void *fd) __attribute__((weak));

static int fz_err_fd = 2;   /* the real stderr */
static int fz_null_fd = -1; /* /dev/null */

/* Keep a handle on the real stderr and send sanitizer reports there, so that fd 2 can point
 * at /dev/null while the code under test runs (it reports bad settings on fd 2). */
static inline void fz_quiet_init(void)
{
    if (fz_null_fd >= 0)
        return;
    fz_err_fd = fcntl(2, F_DUPFD_CLOEXEC, 10);
    if (fz_err_fd < 0)
        fz_err_fd = 2;
    fz_null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (__sanitizer_set_report_fd)
        __sanitizer_set_report_fd((void *)(intptr_t)fz_err_fd);
}

/* Redirected per input, not once for the process: libFuzzer prints its own progress and the
 * name of a crashing input on fd 2 between inputs. */
static inline void fz_quiet_begin(void)
{
    if (fz_null_fd >= 0)
        dup2(fz_null_fd, 2);
}

static inline void fz_quiet_end(void)
{
    if (fz_null_fd >= 0 && fz_err_fd != 2)
        dup2(fz_err_fd, 2);
}

__attribute__((noreturn, format(printf, 3, 4), unused)) static void fz_fail(const char *file,
                                                                             int line,
                                                                             const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(msg, sizeof msg, "FUZZ INVARIANT FAILED at %s:%d: ", file, line);
    if (n < 0)
        n = 0;
    if ((size_t)n < sizeof msg)
        n += vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    va_end(ap);
    if ((size_t)n >= sizeof msg - 1)
        n = (int)sizeof msg - 2;
    msg[n++] = '\n';
    fz_quiet_end();
    if (write(fz_err_fd, msg, (size_t)n) < 0) {
        /* nothing else to do: abort anyway */
    }
    abort();
}

#define FAIL(...) fz_fail(__FILE__, __LINE__, __VA_ARGS__)
#define CHECK(cond, fmt, ...) \
    do { \
        if (!(cond)) \
            FAIL("!(%s): " fmt, #cond, ##__VA_ARGS__); \
    } while (0)

/* ---- decoding an input into arguments ---- */
typedef struct fz_in {
    const uint8_t *p;
    size_t n, off;
} fz_in_t;

static inline size_t fz_left(const fz_in_t *in)
{
    return in->n - in->off;
}

static inline uint8_t fz_u8(fz_in_t *in)
{
    return in->off < in->n ? in->p[in->off++] : 0;
}

static inline uint16_t fz_u16(fz_in_t *in)
{
    uint16_t v = fz_u8(in);
    return (uint16_t)(v | (uint16_t)fz_u8(in) << 8);
}

static inline uint32_t fz_u24(fz_in_t *in)
{
    uint32_t v = fz_u16(in);
    return v | (uint32_t)fz_u8(in) << 16;
}

static inline uint32_t fz_u32(fz_in_t *in)
{
    uint32_t v = fz_u16(in);
    return v | (uint32_t)fz_u16(in) << 16;
}

static inline uint64_t fz_u64(fz_in_t *in)
{
    uint64_t v = fz_u32(in);
    return v | (uint64_t)fz_u32(in) << 32;
}

#endif
