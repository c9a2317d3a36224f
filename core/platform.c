/* Every kernel call of the allocator, behind the contract stated in platform.h: memory (for the
 * pool and for the interposer's metadata), fault injection, the thread id; and, in the
 * preload library's copy only (ZP_OS_PROCESS), the SIGSEGV hook, the termination signals and
 * the errno-keeping libc calls of the private jemalloc. Every call here may
 * fail (RLIMIT_AS, RLIMIT_MEMLOCK, vm.max_map_count); callers degrade, never crash.
 * scripts/lint fails when another file makes one of these calls. */
#include "platform.h"
#include "zp_file.h"
#include "zp_fmt.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <dlfcn.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#define PR_SET_VMA_ANON_NAME 0
#endif

size_t zp_os_page = 4096;

/* ---- fault injection: a few counters, checked with one load on the normal path ---- */
static struct {
    unsigned skip, count;
    int err;
} zp_inject[ZP_OS_OP_COUNT];
static volatile int zp_inject_armed;

void zp_os_inject(zp_os_op_t op, unsigned skip, unsigned count, int err)
{
    zp_inject[op].skip = skip;
    zp_inject[op].count = count;
    zp_inject[op].err = err;
    zp_inject_armed = 1;
}

void zp_os_inject_clear(void)
{
    memset(zp_inject, 0, sizeof zp_inject);
    zp_inject_armed = 0;
}

static bool zp_os_injected(zp_os_op_t op)
{
    if (__builtin_expect(!zp_inject_armed, 1))
        return false;
    if (zp_inject[op].skip) {
        zp_inject[op].skip--;
        return false;
    }
    if (!zp_inject[op].count)
        return false;
    zp_inject[op].count--;
    errno = zp_inject[op].err;
    return true;
}

void zp_os_init(void)
{
    long p = sysconf(_SC_PAGESIZE);
    if (p > 0)
        zp_os_page = (size_t)p;
}

static void zp_os_name(void *p, size_t size)
{
    /* For /proc/PID/maps; kernels before 5.17 refuse, which is fine. */
    prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, (unsigned long)p, size, (unsigned long)"zeropool");
}

void *zp_os_reserve(size_t size, size_t align, bool dontdump)
{
    if (zp_os_injected(ZP_OS_RESERVE))
        return NULL;
    size_t span = size + align - zp_os_page;
    if (span < size) {
        errno = ENOMEM;
        return NULL;
    }
    char *raw = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED)
        return NULL;
    /* Trim to the aligned part: what lies before and after goes back at once. */
    uintptr_t start = ((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1);
    size_t head = start - (uintptr_t)raw, tail = span - head - size;
    if (head)
        munmap(raw, head);
    if (tail)
        munmap((char *)start + size, tail);
    void *p = (void *)start;
    if (dontdump)
        madvise(p, size, MADV_DONTDUMP);
    zp_os_name(p, size);
    return p;
}

bool zp_os_unreserve(void *p, size_t size)
{
    return munmap(p, size) == 0;
}

bool zp_os_commit(void *p, size_t size)
{
    if (zp_os_injected(ZP_OS_COMMIT))
        return false;
    return mprotect(p, size, PROT_READ | PROT_WRITE) == 0;
}

bool zp_os_commit_accounted(void *p, size_t size, bool dontdump)
{
    if (zp_os_injected(ZP_OS_COMMIT))
        return false;
    void *q = mmap(p, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (q == MAP_FAILED) {
        /* A failed MAP_FIXED may have unmapped the range: put the reservation back. If even
         * that fails, the pool's map would claim a hole that another mapping could take and
         * free() would misroute its blocks: stop rather than corrupt the program. */
        if (mmap(p, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE,
                 -1, 0) == MAP_FAILED) {
            zp_write_str(2, "zeropool: cannot restore a reserved range after a failed commit\n");
            abort();
        }
        zp_os_name(p, size);
        errno = ENOMEM;
        return false;
    }
    if (dontdump)
        madvise(p, size, MADV_DONTDUMP);
    zp_os_name(p, size);
    return true;
}

bool zp_os_uncommit(void *p, size_t size)
{
    void *q = mmap(p, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
    zp_os_name(p, size);
    return q != MAP_FAILED;
}

bool zp_os_drop(void *p, size_t size)
{
    if (zp_os_injected(ZP_OS_DROP))
        return false;
    return madvise(p, size, MADV_DONTNEED) == 0;
}

bool zp_os_move(void *from, void *to, size_t size)
{
    if (zp_os_injected(ZP_OS_MOVE))
        return false;
    void *q = mremap(from, size, size, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, to);
    if (q != MAP_FAILED)
        return true;
    int e = errno;
    /* MREMAP_FIXED unmaps the target before it may still fail (vm.max_map_count): map it
     * again, or the pool's map would claim a hole another mapping could take. */
    if (mmap(to, size, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0) == MAP_FAILED) {
        zp_write_str(2, "zeropool: cannot restore a buffer after a failed move\n");
        abort();
    }
    zp_os_name(to, size);
    errno = e;
    return false;
}

bool zp_os_refresh(void *p, size_t size, bool dontdump)
{
    void *q = mmap(p, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
    if (q == MAP_FAILED)
        return false;
    if (dontdump)
        madvise(p, size, MADV_DONTDUMP);
    zp_os_name(p, size);
    return true;
}

bool zp_os_lazy_free(void *p, size_t size)
{
    if (zp_os_injected(ZP_OS_DROP))
        return false;
    return madvise(p, size, MADV_FREE) == 0;
}

uint32_t zp_os_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

bool zp_os_lock(void *p, size_t size)
{
    if (zp_os_injected(ZP_OS_LOCK))
        return false;
    return mlock(p, size) == 0;
}

bool zp_os_unlock(void *p, size_t size)
{
    return munlock(p, size) == 0;
}

bool zp_os_dontdump(void *p, size_t size)
{
    return madvise(p, size, MADV_DONTDUMP) == 0;
}

bool zp_os_resident(void *p, size_t size, unsigned char *vec)
{
    if (zp_os_injected(ZP_OS_RESIDENT)) {
        if (errno)
            return false;
        /* What a buffer swapped out after it was written looks like to mincore. */
        memset(vec, 0, size / zp_os_page);
        return true;
    }
    return mincore(p, size, vec) == 0;
}

void *zp_os_meta_alloc(size_t size)
{
    if (zp_os_injected(ZP_OS_META))
        return NULL;
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    madvise(p, size, MADV_DONTDUMP);
    return p;
}

void zp_os_meta_free(void *p, size_t size)
{
    munmap(p, size);
}

bool zp_os_drop_zeroes(void)
{
    size_t n = zp_os_page;
    volatile unsigned char *p =
        mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if ((void *)p == MAP_FAILED)
        return false;
    for (size_t i = 0; i < n; i++)
        p[i] = 0xA5;
    bool zero = madvise((void *)p, n, MADV_DONTNEED) == 0;
    for (size_t i = 0; zero && i < n; i++)
        zero = p[i] == 0;
    munmap((void *)p, n);
    return zero;
}

unsigned long zp_os_max_map_count(void)
{
    uint64_t v = 0;
    if (!zp_file_read_u64("/proc/sys/vm/max_map_count", &v) || v == 0 || v > ULONG_MAX)
        return 65530;
    return (unsigned long)v;
}

/* ---- metadata reservations: large tables that only cost the pages they touch ---- */

void *zp_os_meta_reserve(size_t size)
{
    if (zp_os_injected(ZP_OS_META))
        return NULL;
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    madvise(p, size, MADV_DONTDUMP);
    zp_os_name(p, size);
    return p;
}

/* ---- the thread id ---- */

unsigned zp_os_thread_id(void)
{
    return (unsigned)syscall(SYS_gettid);
}

#ifdef ZP_OS_PROCESS
/* ==== process machinery: compiled only into the preload library's copy of this file ====
 * (core/meson.build builds it twice: the public core library ships none of this). Kept in
 * this file, not in interpose/, because every signal and memory call of the project sits in
 * the platform layer (scripts/lint and the pre-stop hook check that). */

/* ---- the SIGSEGV hook ----
 * Installed once; it remembers the disposition it replaced and hands every fault on to it:
 *   - a function (SA_SIGINFO or not): called directly with the same arguments and its mask;
 *   - SIG_DFL or SIG_IGN: SIGSEGV is reset to SIG_DFL and the handler returns, so the faulting
 *     instruction runs again and the kernel's default action ends the process (core dump and
 *     all); a SIGSEGV sent with kill() is raised again instead.
 * A handler the program installs later simply replaces ours (sigaction replaces): we never
 * reinstall ourselves, and if that handler chains to ours, ours chains on as above. */

static struct sigaction zp_fault_prev; /* what we replaced; written before ours can run */
static zp_os_fault_fn zp_fault_fn;
static _Atomic int zp_fault_installed;

static void zp_os_fault_chain(int sig, siginfo_t *si, void *uc)
{
    struct sigaction prev = zp_fault_prev;
    if (prev.sa_flags & SA_SIGINFO) {
        if (prev.sa_sigaction != NULL) {
            sigset_t old;
            pthread_sigmask(SIG_BLOCK, &prev.sa_mask, &old);
            if (prev.sa_flags & SA_RESETHAND)
                zp_fault_prev.sa_handler = SIG_DFL;
            prev.sa_sigaction(sig, si, uc);
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            return;
        }
    } else if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN) {
        sigset_t old;
        pthread_sigmask(SIG_BLOCK, &prev.sa_mask, &old);
        if (prev.sa_flags & SA_RESETHAND)
            zp_fault_prev.sa_handler = SIG_DFL;
        prev.sa_handler(sig);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return;
    }
    if (si->si_code <= 0 && prev.sa_handler == SIG_IGN)
        return; /* sent by kill(), and ignored before we came */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    if (si->si_code <= 0)
        (void)raise(sig); /* blocked until we return, then the default action */
}

static void zp_os_fault_handler(int sig, siginfo_t *si, void *uc)
{
    int e = errno;
    /* si_code > 0: raised by the kernel for an access, so si_addr means something. */
    if (si->si_code > 0 && zp_fault_fn != NULL)
        zp_fault_fn(si->si_addr, uc);
    zp_os_fault_chain(sig, si, uc);
    errno = e;
}

bool zp_os_fault_hook(zp_os_fault_fn fn)
{
    int s = 0;
    if (!atomic_compare_exchange_strong(&zp_fault_installed, &s, 1))
        return false;
    zp_fault_fn = fn;
    struct sigaction ours, before;
    memset(&ours, 0, sizeof ours);
    ours.sa_sigaction = zp_os_fault_handler;
    ours.sa_flags = SA_SIGINFO | SA_ONSTACK; /* on the alternate stack when there is one */
    sigemptyset(&ours.sa_mask);
    if (sigaction(SIGSEGV, NULL, &zp_fault_prev) != 0)
        return false;
    if (sigaction(SIGSEGV, &ours, &before) != 0)
        return false;
    /* A handler installed by another thread in between is the one to chain to. */
    if (before.sa_handler != zp_fault_prev.sa_handler)
        zp_fault_prev = before;
    return true;
}

bool zp_os_can_commit(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return false;
    munmap(p, size);
    return true;
}

/* ---- termination signals ---- */

#define ZP_OS_SIG_MAX 65
static void (*zp_os_term_fn[ZP_OS_SIG_MAX])(int);

/* sig's action back to the default, and sig unblocked in this thread. */
static void zp_os_sig_default(int sig)
{
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    (void)sigaction(sig, &dfl, NULL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    (void)pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

static void zp_os_term_handler(int sig)
{
    int e = errno;
    /* fn may arm an alarm to bound its work: SIGALRM must then be able to end the process,
     * although this handler blocks every signal. The process is ending anyway. */
    zp_os_sig_default(SIGALRM);
    if (sig > 0 && sig < ZP_OS_SIG_MAX && zp_os_term_fn[sig] != NULL)
        zp_os_term_fn[sig](sig);
    /* Back to the default action, then the same signal again, unblocked: the process ends as
     * if we had never been there. */
    zp_os_sig_default(sig);
    errno = e;
    (void)raise(sig); /* returns only if the default action does not end the process */
}

bool zp_os_on_terminate(int sig, void (*fn)(int sig))
{
    if (sig <= 0 || sig >= ZP_OS_SIG_MAX)
        return false;
    struct sigaction cur, ours;
    if (sigaction(sig, NULL, &cur) != 0 || (cur.sa_flags & SA_SIGINFO) ||
        cur.sa_handler != SIG_DFL)
        return false;
    zp_os_term_fn[sig] = fn;
    memset(&ours, 0, sizeof ours);
    ours.sa_handler = zp_os_term_handler;
    sigfillset(&ours.sa_mask); /* nothing else interrupts the final write */
    return sigaction(sig, &ours, NULL) == 0;
}

void zp_os_on_stop_signal(void (*fn)(int sig))
{
    (void)zp_os_on_terminate(SIGTERM, fn);
}

#endif /* ZP_OS_PROCESS */

bool zp_os_mutex_free_soon(pthread_mutex_t *m)
{
    for (int i = 0; i < 200; i++) {
        if (pthread_mutex_trylock(m) == 0) {
            pthread_mutex_unlock(m);
            return true;
        }
        struct timespec ts = { 0, 100000 }; /* 0.1 ms; nanosleep is async-signal-safe */
        nanosleep(&ts, NULL);
    }
    return false;
}

#ifdef ZP_OS_PROCESS
/* ---- libc calls that keep errno, for an allocator linked in that is not ours ----
 * interpose/jemalloc-quiet.h points the private jemalloc's calls that may set errno here
 * (zp_os_quiet_<name>): each leaves errno as it found it, on success and on failure. jemalloc
 * then never changes the program's errno except to report ENOMEM from an allocation, which it
 * does itself, so the interposer's free needs no errno save of its own. jemalloc reads errno
 * after a failed call only to word a message, which then names the program's errno instead. */

#define ZP_QUIET(ret, name, params, args)                                                     \
    ret zp_os_quiet_##name params                                                             \
    {                                                                                         \
        int e = errno;                                                                        \
        ret r = name args;                                                                    \
        errno = e;                                                                            \
        return r;                                                                             \
    }
ZP_QUIET_CALLS(ZP_QUIET)
#undef ZP_QUIET

/* open's mode argument is there only with O_CREAT or O_TMPFILE. */
int zp_os_quiet_open(const char *path, int flags, ...)
{
    mode_t mode = 0;
    va_list ap;
    va_start(ap, flags);
    if (flags & (O_CREAT | O_TMPFILE)) {
        /* clang 14's analyzer loses va_start here in the interposer's copy of this file. */
        mode = (mode_t)va_arg(ap, unsigned); // NOLINT(clang-analyzer-valist.Uninitialized)
    }
    va_end(ap);
    int e = errno;
    int r = open(path, flags, mode);
    errno = e;
    return r;
}

/* syscall(2): six arguments are passed on (the kernel ignores those a call does not take). */
long zp_os_quiet_syscall(long nr, ...)
{
    va_list ap;
    va_start(ap, nr);
    long a1 = va_arg(ap, long), a2 = va_arg(ap, long), a3 = va_arg(ap, long);
    long a4 = va_arg(ap, long), a5 = va_arg(ap, long), a6 = va_arg(ap, long);
    va_end(ap);
    int e = errno;
    long r = syscall(nr, a1, a2, a3, a4, a5, a6);
    errno = e;
    return r;
}
#endif /* ZP_OS_PROCESS */
