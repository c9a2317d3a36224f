/* The platform layer: the only code of the allocator that makes memory and signal system calls
 * (mmap, munmap, mremap, mprotect, madvise, mlock, mincore, prctl, sigaction; scripts/lint checks it). Contract of every function: addresses and sizes
 * are page-aligned and sizes > 0; a bool result is true on success, and on failure errno says
 * why. Nothing here allocates or takes locks, so it can run anywhere in the pool.
 * A test hook (zp_os_inject) makes chosen calls fail, for the fault-injection tests. */
#ifndef ZP_PLATFORM_H
#define ZP_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <sched.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>

extern size_t zp_os_page; /* set by zp_os_init */

void zp_os_init(void);

/* Reserve size bytes of address space aligned to align (a power of two >= page): PROT_NONE,
 * MAP_NORESERVE. Named [anon:zeropool] where the kernel supports it; MADV_DONTDUMP if asked. */
void *zp_os_reserve(size_t size, size_t align, bool dontdump);
bool zp_os_unreserve(void *p, size_t size);
/* Make a reserved range readable and writable, or inaccessible again. */
bool zp_os_commit(void *p, size_t size);
/* Commit with the kernel's overcommit accounting, so an impossible size fails with ENOMEM
 * instead of faulting later; zp_os_uncommit gives the range and its charge back. */
bool zp_os_commit_accounted(void *p, size_t size, bool dontdump);
bool zp_os_uncommit(void *p, size_t size);
/* Give the pages back to the kernel; the range stays mapped and reads as zero afterwards. */
bool zp_os_drop(void *p, size_t size);
/* Hand the pages to the kernel lazily (MADV_FREE): it takes them only when it needs memory,
 * and a page it took reads as zero; one it did not keeps its contents until written. False
 * where the kernel refuses (before Linux 4.5, mlocked pages). */
bool zp_os_lazy_free(void *p, size_t size);
/* A coarse monotonic clock in milliseconds (wraps after 49 days: compare by difference). */
uint32_t zp_os_now_ms(void);
bool zp_os_lock(void *p, size_t size);
bool zp_os_unlock(void *p, size_t size);
bool zp_os_dontdump(void *p, size_t size);
/* Move the pages of [from, from+size) to [to, to+size), both mapped private anonymous memory:
 * the page-table entries move (resident and swapped pages alike), not the bytes. What `to` held
 * is freed; `from` stays mapped and reads as zero afterwards (mremap MREMAP_DONTUNMAP, Linux
 * 5.7). On failure nothing moved and `to` reads as zero (remapped fresh if the kernel had
 * already unmapped it). */
bool zp_os_move(void *from, void *to, size_t size);
/* Replace the range by fresh zero pages, read-write, without the kernel's commit charge (as a
 * reserved range committed with zp_os_commit): drops every page, resident or swapped, and gives
 * a range that moves split its mapping back as one. On failure the range is unchanged. */
bool zp_os_refresh(void *p, size_t size, bool dontdump);
/* Residency of each page of the range, one byte a page (bit 0 set = resident). A page the
 * kernel swapped out reads as not resident (unless still in the swap cache): not resident
 * means "not in memory now", never "never written". */
bool zp_os_resident(void *p, size_t size, unsigned char *vec);
/* Metadata memory: zeroed, read-write, not dumped. */
void *zp_os_meta_alloc(size_t size);
void zp_os_meta_free(void *p, size_t size);

/* Would the kernel's overcommit accounting let a private writable mapping of size bytes be
 * made now? (An impossible size fails here as it does for glibc's malloc.) */
bool zp_os_can_commit(size_t size);

/* Does MADV_DONTNEED really zero private anonymous pages here? Checked once at start-up. */
bool zp_os_drop_zeroes(void);
/* vm.max_map_count, or 65530 if it cannot be read. */
unsigned long zp_os_max_map_count(void);

/* Metadata address space of any layer (the interposer's trace table): read-write,
 * MAP_NORESERVE (only the pages touched cost memory), MADV_DONTDUMP, named [anon:zeropool];
 * fails under fault injection like zp_os_meta_alloc (ZP_OS_META). Freed with zp_os_meta_free. */
void *zp_os_meta_reserve(size_t size);

/* The kernel's id of the calling thread (gettid). */
unsigned zp_os_thread_id(void);

#ifdef ZP_OS_PROCESS /* the preload library only (platform.c) */
/* Called for every SIGSEGV the kernel raises for a memory access (never for one sent with
 * kill()), with the faulting address and the handler's ucontext, in the signal handler:
 * async-signal-safe code only. */
typedef void (*zp_os_fault_fn)(void *addr, void *uc);
/* Install the process's SIGSEGV hook (once; later calls return false). After fn returns, the
 * fault goes on to the disposition that was in place before, as if we were not there: a
 * handler is called, SIG_DFL or SIG_IGN end the process the kernel's way. A handler the
 * program installs later replaces ours. False when sigaction failed or a hook exists. */
bool zp_os_fault_hook(zp_os_fault_fn fn);

#endif

/* ---- fault injection, for tests only ---- */
typedef enum {
    ZP_OS_RESERVE,
    ZP_OS_COMMIT,
    ZP_OS_DROP,
    ZP_OS_LOCK,
    ZP_OS_META,
    ZP_OS_RESIDENT, /* err 0: succeed but report every page not resident, as swap looks */
    ZP_OS_MOVE,
    ZP_OS_OP_COUNT
} zp_os_op_t;
/* Fail the next `count` calls of op with errno `err`, after letting `skip` calls through. */
void zp_os_inject(zp_os_op_t op, unsigned skip, unsigned count, int err);
void zp_os_inject_clear(void);

#ifdef ZP_OS_PROCESS /* the preload library only (platform.c) */
/* ---- termination signals ----
 * Run fn(sig) when sig (SIGTERM) arrives while its disposition is still the default,
 * then die by sig exactly as the default action would (same exit status for the parent). Only
 * installed if the disposition is SIG_DFL now; a handler the program installs later replaces
 * ours. fn runs in the signal handler, with sig blocked. False if not installed. */
bool zp_os_on_terminate(int sig, void (*fn)(int sig));
/* zp_os_on_terminate for the signal a service is stopped with: SIGTERM. Not SIGINT: programs
 * install their own handler only over the default (CPython's KeyboardInterrupt). */
void zp_os_on_stop_signal(void (*fn)(int sig));

#endif

/* True when m is not held: tried and released, retried for up to ~20 ms while another
 * thread holds it (async-signal-safe: for a signal handler deciding whether it may lock). */
bool zp_os_mutex_free_soon(pthread_mutex_t *m);

#ifdef ZP_OS_PROCESS
/* libc calls that leave errno as they found it, on success and on failure, for an allocator
 * linked in whose calls must not change the program's errno (interpose/jemalloc-quiet.h
 * points the private jemalloc's calls here). X(return type, libc name, parameters, arguments). */
#define ZP_QUIET_CALLS(X)                                                                       \
    X(void *, mmap, (void *a, size_t n, int prot, int flags, int fd, off_t off),                \
      (a, n, prot, flags, fd, off))                                                             \
    X(int, munmap, (void *a, size_t n), (a, n))                                                 \
    X(int, madvise, (void *a, size_t n, int advice), (a, n, advice))                            \
    X(int, mprotect, (void *a, size_t n, int prot), (a, n, prot))                               \
    X(int, creat, (const char *path, mode_t mode), (path, mode))                                \
    X(int, close, (int fd), (fd))                                                               \
    X(ssize_t, readlink, (const char *restrict path, char *restrict buf, size_t n),             \
      (path, buf, n))                                                                           \
    X(void *, sbrk, (intptr_t inc), (inc))                                                      \
    X(long, sysconf, (int name), (name))                                                        \
    X(int, clock_gettime, (clockid_t id, struct timespec *ts), (id, ts))                        \
    X(int, gettimeofday, (struct timeval *restrict tv, void *restrict tz), (tv, tz))            \
    X(int, sched_getaffinity, (pid_t pid, size_t n, cpu_set_t *set), (pid, n, set))             \
    X(int, sched_setaffinity, (pid_t pid, size_t n, const cpu_set_t *set), (pid, n, set))       \
    X(int, sched_getcpu, (void), ())                                                            \
    X(int, pthread_create,                                                                      \
      (pthread_t *restrict t, const pthread_attr_t *restrict attr, void *(*fn)(void *),         \
       void *restrict arg),                                                                     \
      (t, attr, fn, arg))                                                                       \
    X(int, pthread_setname_np, (pthread_t t, const char *name), (t, name))                      \
    X(int, pthread_getname_np, (pthread_t t, char *name, size_t n), (t, name, n))               \
    X(void *, dlsym, (void *restrict h, const char *restrict name), (h, name))
#define ZP_QUIET_DECL(ret, name, params, args) ret zp_os_quiet_##name params;
ZP_QUIET_CALLS(ZP_QUIET_DECL)
#undef ZP_QUIET_DECL
int zp_os_quiet_open(const char *path, int flags, ...);
long zp_os_quiet_syscall(long nr, ...);
#endif /* ZP_OS_PROCESS */

#endif
