/* Live statistics: what makes ZEROPOOL_STATS usable on a service. At start-up (a constructor)
 * the ZEROPOOL_STATS_FILE path is made absolute and the file is created and kept open, so that
 * a daemon that drops privileges later, or a worker forked as root that drops them at once,
 * can still write it; SIGTERM and SIGINT with their default action get a final write before
 * the process dies by the same signal; ZEROPOOL_STATS_INTERVAL starts one timer thread (the
 * only thread we ever create, and only when asked) that rewrites the file.
 *
 * Every write goes to PATH.tmp.<pid> and is renamed over PATH, so a reader sees a whole file.
 * When the directory is no longer writable (after the drop), the descriptor opened at start-up
 * is rewritten in place instead, after checking that it is still our file (daemons close or
 * reuse descriptors). A failure is reported once, with the path and the errno. */
#include "zp_interpose.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "platform.h"
#include "zp_fmt.h"
#include "zp_live.h"

#define LIVE_PATH_MAX (PATH_MAX + ZP_PATH_MAX)

static struct {
    char tmpl[LIVE_PATH_MAX]; /* ZEROPOOL_STATS_FILE, absolute, %p not yet expanded */
    int fd;                   /* the file opened at start-up (or after fork), -1 if none */
    dev_t dev;
    ino_t ino;
    pid_t fd_pid;             /* the process that opened fd */
    uint64_t start_ns;
    _Atomic int busy;         /* one writer at a time: timer, signal, exit */
    _Atomic bool final_done;
    bool said_error;
    bool timer_on;
} live = { .fd = -1 };

static uint64_t live_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t zp_ip_live_uptime(void)
{
    if (live.start_ns == 0)
        return 0;
    return (live_now_ns() - live.start_ns) / 1000000000u;
}

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

static bool live_has_pid(void)
{
    for (const char *s = live.tmpl; *s; s++)
        if (s[0] == '%' && s[1] == 'p')
            return true;
    return false;
}

/* "zeropool: cannot write the statistics file PATH: EACCES (errno 13)...", once a process. */
static void live_say_error(const char *path, const char *what, int err, const char *then)
{
    if (live.said_error)
        return;
    live.said_error = true;
    char line[LIVE_PATH_MAX + 160];
    zp_buf_t b = ZP_BUF_INIT(line);
    zp_buf_str(&b, "zeropool: cannot ");
    zp_buf_str(&b, what);
    zp_buf_str(&b, " the statistics file ");
    zp_buf_str(&b, path);
    zp_buf_str(&b, ": ");
    const char *name = strerrorname_np(err);
    zp_buf_str(&b, name != NULL ? name : "error");
    zp_buf_str(&b, " (errno ");
    zp_buf_i64(&b, err);
    zp_buf_str(&b, ")");
    zp_buf_str(&b, then);
    zp_buf_chr(&b, '\n');
    zp_buf_flush(&b, 2);
}

/* A descriptor held for the process's life must not be 0, 1 or 2: a program started with one
 * of those closed expects it closed (and its next open to get it). Moved to 3 or above. */
static int live_hold(int fd)
{
    if (fd < 0 || fd > 2)
        return fd;
    int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int err = errno;
    (void)close(fd);
    errno = err;
    return nfd;
}

/* Create (truncate) the file now, while we may still have the rights, and keep it open. */
static void live_create(void)
{
    char path[LIVE_PATH_MAX];
    if (live.fd >= 0) {
        (void)close(live.fd);
        live.fd = -1;
    }
    if (!live_path(path, sizeof path)) {
        live_say_error(live.tmpl, "create", ENAMETOOLONG, "");
        return;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0644);
    fd = live_hold(fd);
    if (fd < 0) {
        live_say_error(path, "create", errno, "; statistics will go to stderr at exit");
        return;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        (void)close(fd);
        return;
    }
    live.fd = fd;
    live.dev = st.st_dev;
    live.ino = st.st_ino;
    live.fd_pid = getpid();
}

/* The descriptor from start-up, if it is still ours and still names our file. */
static bool live_fd_ok(void)
{
    struct stat st;
    return live.fd >= 0 && live.fd_pid == getpid() && fstat(live.fd, &st) == 0 &&
           st.st_dev == live.dev && st.st_ino == live.ino;
}

/* Write the statistics to the file: by rename when the directory lets us, else in place. */
static bool live_write_file(void)
{
    char path[LIVE_PATH_MAX], tmp[LIVE_PATH_MAX + 32];
    int format = (int)zp_ip.opts.stats;
    if (!live_path(path, sizeof path)) {
        live_say_error(live.tmpl, "write", ENAMETOOLONG, "");
        return false;
    }
    zp_buf_t t = ZP_BUF_INIT(tmp);
    zp_buf_str(&t, path);
    zp_buf_str(&t, ".tmp.");
    zp_buf_u64(&t, (uint64_t)getpid());
    tmp[t.len < sizeof tmp ? t.len : sizeof tmp - 1] = '\0';
    (void)unlink(tmp); /* left by an earlier process of the same pid */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0644);
    if (fd >= 0) {
        int rc = zp_ip_stats_emit_fd(fd, format);
        int err = errno;
        if (close(fd) != 0 && rc == 0) {
            rc = -1;
            err = errno;
        }
        if (rc == 0 && rename(tmp, path) == 0) {
            /* The held descriptor now names the replaced file: hold the new one instead. */
            int nfd = live_hold(open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY));
            struct stat st;
            if (nfd >= 0 && fstat(nfd, &st) == 0) {
                if (live.fd >= 0 && live.fd_pid == getpid())
                    (void)close(live.fd);
                live.fd = nfd;
                live.dev = st.st_dev;
                live.ino = st.st_ino;
                live.fd_pid = getpid();
            } else if (nfd >= 0) {
                (void)close(nfd);
            }
            return true;
        }
        if (rc == 0)
            err = errno;
        (void)unlink(tmp);
        live_say_error(path, "write", err, "");
        return false;
    }
    int err = errno;
    if (live_fd_ok() && lseek(live.fd, 0, SEEK_SET) == 0 && ftruncate(live.fd, 0) == 0) {
        /* Not atomic: a reader may see a short file; the rename above is the normal way. */
        if (zp_ip_stats_emit_fd(live.fd, format) == 0)
            return true;
        err = errno;
    }
    live_say_error(path, "write", err, "");
    return false;
}

static bool live_lock(bool wait)
{
    for (int i = 0; i < 2000; i++) {
        int z = 0;
        if (atomic_compare_exchange_strong(&live.busy, &z, 1))
            return true;
        if (!wait)
            return false;
        struct timespec ms = { 0, 1000000 };
        nanosleep(&ms, NULL);
    }
    return false; /* another writer is stuck: better no write than none at all forever */
}

static void live_unlock(void)
{
    atomic_store(&live.busy, 0);
}

void zp_ip_live_final(void)
{
    if (atomic_exchange(&live.final_done, true))
        return;
    if (!live_lock(true))
        return;
    if (zp_ip.opts.stats_file[0] == '\0' || live.tmpl[0] == '\0' || !live_write_file()) {
        if (zp_ip.opts.stats_file[0] != '\0')
            zp_write_str(2, "zeropool: statistics on stderr instead\n");
        zp_ip_stats_write(2, (int)zp_ip.opts.stats);
    }
    live_unlock();
}

/* SIGTERM or SIGINT with the default action: the last write, then the platform layer lets the
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
            zp_write_str(2, "zeropool: no final statistics: the signal came while the "
                            "allocator held a lock (a fork in progress?)\n");
        return;
    }
    atomic_store(&zp_ip_stats_in_signal, true);
    zp_ip_live_final();
    atomic_store(&zp_ip_stats_in_signal, false);
}

/* ---- the timer thread ---- */

static void *live_timer(void *arg)
{
    (void)arg;
    uint64_t secs = zp_ip.opts.stats_interval;
    for (;;) {
        struct timespec ts = { (time_t)secs, 0 };
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
        if (atomic_load(&live.final_done))
            return NULL;
        if (live_lock(false)) {
            if (!atomic_load(&live.final_done))
                (void)live_write_file();
            live_unlock();
        }
    }
}

/* Started with every signal blocked (zp_os_thread_start_quiet): signals meant for the program
 * (sigwait loops, SIGTERM handlers) must never land on our thread. */
static void live_timer_start(void)
{
    if (zp_os_thread_start_quiet(live_timer, NULL, (size_t)64 << 10, "zeropool-stats"))
        live.timer_on = true;
}

/* A forked child (an nginx worker, still root) gets its own file at once, before it can drop
 * privileges, and its own timer. */
static void live_child(void)
{
    live.start_ns = live_now_ns();
    live.busy = 0;
    live.said_error = false;
    atomic_store(&live.final_done, false);
    if (live.tmpl[0] != '\0' && live_has_pid())
        live_create();
    live.timer_on = false;
    if (zp_ip.opts.stats_interval != 0 && live.tmpl[0] != '\0')
        live_timer_start();
}

/* ZEROPOOL_STATS_FILE as an absolute path: the program may change directory before it exits. */
static bool live_absolute(const char *f)
{
    zp_buf_t b = ZP_BUF_INIT(live.tmpl);
    if (f[0] != '/') {
        char cwd[PATH_MAX];
        if (getcwd(cwd, sizeof cwd) == NULL) {
            live_say_error(f, "resolve", errno, "; statistics will go to stderr at exit");
            live.tmpl[0] = '\0';
            return false;
        }
        zp_buf_str(&b, cwd);
        if (b.len > 0 && live.tmpl[b.len - 1] != '/')
            zp_buf_chr(&b, '/');
    }
    zp_buf_str(&b, f);
    if (b.len + 1 >= sizeof live.tmpl) {
        live.tmpl[0] = '\0';
        return false;
    }
    live.tmpl[b.len] = '\0';
    return true;
}

/* After libc and before the program's constructors and main: the options are loaded here if
 * no allocation did it yet. Nothing happens unless statistics were asked for. */
__attribute__((constructor)) static void zp_ip_live_init(void)
{
    if (atomic_load(&zp_ip.state) == ZP_IP_UNINIT)
        zp_ip_init();
    if (atomic_load(&zp_ip.state) != ZP_IP_READY)
        return;
    int e = errno;
    live.start_ns = live_now_ns();
    if (zp_ip.opts.stats != ZP_STATS_OFF) {
        zp_os_on_stop_signals(live_on_terminate);
        if (zp_ip.opts.stats_file[0] != '\0' && live_absolute(zp_ip.opts.stats_file)) {
            live_create();
            if (zp_ip.opts.stats_interval != 0)
                live_timer_start();
        }
        (void)pthread_atfork(NULL, NULL, live_child);
    }
    errno = e;
}
