/* The last statistics write, for batch runs (`zeropool run --stats`): at exit, and on SIGTERM
 * with its default action (a handler installed only when statistics were asked for; SIGINT is
 * left alone, see zp_ip_live_init). A running service is read from outside instead (`zeropool status PID`, status.c):
 * nothing here runs between start-up and the end.
 *
 * The program must not notice us: no descriptor is opened before the write or kept after it
 * (a daemon closes every descriptor and opens its own, which must stay its own), and the file
 * is only ever a new one, created O_EXCL|O_NOFOLLOW|O_NONBLOCK under a temporary name in the
 * same directory and renamed over the target. An existing target that is not a regular file
 * with one link owned by the effective user is left alone (a FIFO someone made at the path
 * would hang us; a hard link to another file would be written through). A failure is kept in
 * memory for `zeropool status` and said on stderr only with ZEROPOOL_VERBOSE=1: the program's
 * descriptor 2 may be its data file. */
#include "zp_interpose.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "platform.h"
#include "zp_fmt.h"
#define ZP_STATUS_LIBRARY
#include "zp_status.h"

#define LIVE_PATH_MAX (PATH_MAX + ZP_PATH_MAX)

static struct {
    char tmpl[LIVE_PATH_MAX]; /* ZEROPOOL_STATS_FILE, absolute, %p not yet expanded */
    _Atomic bool final_done;
} live;

/* The template with %p replaced by the process id; false if it does not fit. */
static bool live_path(char *out, size_t cap)
{
    zp_buf_t b = { out, 0, cap };
    for (const char *s = live.tmpl; *s; s++) {
        if (s[0] == '%' && s[1] == 'p') {
            zp_buf_u64(&b, (uint64_t)getpid());
            s++;
        } else {
            zp_buf_chr(&b, *s);
        }
    }
    if (b.len + 1 >= cap)
        return false;
    out[b.len] = '\0';
    return true;
}

/* A failure: kept for `zeropool status` (the status block's "stats_file_error"), said on
 * stderr only with ZEROPOOL_VERBOSE=1. */
static void live_failed(const char *path, const char *what, int err)
{
    char line[LIVE_PATH_MAX + 160];
    zp_buf_t b = ZP_BUF_INIT(line);
    zp_buf_str(&b, "cannot write the statistics file ");
    zp_buf_str(&b, path);
    zp_buf_str(&b, ": ");
    zp_buf_str(&b, what);
    if (err != 0) {
        const char *name = strerrorname_np(err);
        zp_buf_str(&b, name != NULL ? name : "error");
        zp_buf_str(&b, " (errno ");
        zp_buf_i64(&b, err);
        zp_buf_str(&b, ")");
    }
    size_t n = b.len < sizeof line ? b.len : sizeof line - 1;
    line[n] = '\0';
    zp_status_note_stats_error(line);
    if (zp_ip.opts.verbose) {
        zp_buf_t v = ZP_BUF_INIT(line);
        v.len = n;
        zp_buf_chr(&v, '\n');
        zp_write_str(2, "zeropool: ");
        zp_buf_flush(&v, 2);
    }
}

/* May the file at path be replaced? Absent, or a regular file with one link that the
 * effective user owns. */
static bool live_target_ok(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT;
    return S_ISREG(st.st_mode) && st.st_nlink == 1 && st.st_uid == geteuid();
}

/* Write the statistics into a new file beside the target and rename it over the target. */
static bool live_write_file(void)
{
    char path[LIVE_PATH_MAX], tmp[LIVE_PATH_MAX + 48];
    if (!live_path(path, sizeof path)) {
        live_failed(live.tmpl, "", ENAMETOOLONG);
        return false;
    }
    if (!live_target_ok(path)) {
        live_failed(path, "left alone: not a regular file with one link owned by this user", 0);
        return false;
    }
    static _Atomic unsigned seq;
    int fd = -1, err = 0;
    for (int i = 0; i < 8 && fd < 0; i++) {
        zp_buf_t t = ZP_BUF_INIT(tmp);
        zp_buf_str(&t, path);
        zp_buf_str(&t, ".tmp.");
        zp_buf_u64(&t, (uint64_t)getpid());
        zp_buf_chr(&t, '.');
        zp_buf_u64(&t, atomic_fetch_add(&seq, 1));
        if (t.len + 1 >= sizeof tmp) {
            live_failed(path, "", ENAMETOOLONG);
            return false;
        }
        tmp[t.len] = '\0';
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC |
                  O_NOCTTY, 0644);
        err = errno;
        if (fd < 0 && err != EEXIST)
            break;
    }
    if (fd < 0) {
        live_failed(path, "", err);
        return false;
    }
    int rc = zp_ip_stats_emit_fd(fd, (int)zp_ip.opts.stats);
    err = errno;
    if (close(fd) != 0 && rc == 0) {
        rc = -1;
        err = errno;
    }
    if (rc == 0 && rename(tmp, path) == 0)
        return true;
    if (rc == 0)
        err = errno;
    (void)unlink(tmp);
    live_failed(path, "", err);
    return false;
}

static void live_final(void)
{
    if (atomic_exchange(&live.final_done, true))
        return;
    if (zp_ip.opts.stats_file[0] == '\0')
        zp_ip_stats_write(2, (int)zp_ip.opts.stats); /* asked for on stderr */
    else if (live.tmpl[0] != '\0')
        (void)live_write_file();
}

/* SIGTERM with the default action: the last write, then the platform layer lets the
 * signal end the process. An alarm bounds the write, whatever it meets. */
static void live_on_terminate(int sig)
{
    (void)sig;
    (void)alarm(10); /* the platform layer made SIGALRM's action the default, unblocked */
    /* Every lock the write takes must be free now: held by the code this signal interrupted,
     * or in a child the fork is still setting up (its handlers re-create the locks, and a
     * SIGTERM can land in between), it would never be released. jemalloc's own locks are
     * not taken at all: its totals are those of the last write. */
    zp_pool_t *pool = atomic_load(&zp_ip.pool);
    if ((pool != NULL && !zp_pool_locks_free(pool)) || !zp_ip_count_lock_free()) {
        if (!atomic_exchange(&live.final_done, true))
            zp_status_note_stats_error("no final statistics: the signal came while the "
                                       "allocator held a lock (a fork in progress?)");
        return;
    }
    atomic_store(&zp_ip_stats_in_signal, true);
    live_final();
    atomic_store(&zp_ip_stats_in_signal, false);
}

/* A forked child: its own start time, and its own statistics at its end. */
static void live_child(void)
{
    zp_ip_stats_start();
    atomic_store(&live.final_done, false);
    zp_status_child();
}

/* ZEROPOOL_STATS_FILE as an absolute path: the program may change directory before it exits. */
static bool live_absolute(const char *f)
{
    zp_buf_t b = ZP_BUF_INIT(live.tmpl);
    if (f[0] != '/') {
        char cwd[PATH_MAX];
        if (getcwd(cwd, sizeof cwd) == NULL) {
            live.tmpl[0] = '\0';
            live_failed(f, "cannot resolve the relative path: ", errno);
            return false;
        }
        zp_buf_str(&b, cwd);
        if (b.len > 0 && live.tmpl[b.len - 1] != '/')
            zp_buf_chr(&b, '/');
    }
    zp_buf_str(&b, f);
    if (b.len + 1 >= sizeof live.tmpl) {
        live.tmpl[0] = '\0';
        live_failed(f, "", ENAMETOOLONG);
        return false;
    }
    live.tmpl[b.len] = '\0';
    return true;
}

/* After libc and before the program's constructors and main: the options are loaded here if
 * no allocation did it yet. Nothing else happens unless statistics were asked for. */
__attribute__((constructor)) static void zp_ip_live_init(void)
{
    if (atomic_load(&zp_ip.state) == ZP_IP_UNINIT)
        zp_ip_init();
    if (atomic_load(&zp_ip.state) != ZP_IP_READY)
        return;
    int e = errno;
    zp_ip_stats_start();
    if (zp_ip.opts.stats != ZP_STATS_OFF) {
        /* SIGTERM only: SIGINT keeps its default, since programs install their own handler
         * only over the default (CPython's KeyboardInterrupt), and Ctrl-C must do to them what
         * it does without us. */
        zp_os_on_stop_signal(live_on_terminate);
        if (zp_ip.opts.stats_file[0] != '\0')
            (void)live_absolute(zp_ip.opts.stats_file);
    }
    (void)pthread_atfork(NULL, NULL, live_child);
    errno = e;
}

/* A destructor, not atexit: atexit may allocate during bootstrap. */
__attribute__((destructor)) static void zp_ip_live_at_exit(void)
{
    if (atomic_load(&zp_ip.state) != ZP_IP_READY || zp_ip.opts.stats == ZP_STATS_OFF)
        return;
    int e = errno;
    live_final();
    errno = e;
}
