/* Included first into every file of the private jemalloc (jemalloc-build.sh): its calls into
 * libc that may set errno go to core/platform.c's wrappers (zp_os_quiet_*), which leave errno
 * as they found it. jemalloc then never changes the program's errno except to report ENOMEM
 * from an allocation, so free keeps errno without saving it. The build fails on any other
 * call that may set errno (jemalloc-build.sh's list). */
#ifndef ZP_JEMALLOC_QUIET_H
#define ZP_JEMALLOC_QUIET_H
#define mmap zp_os_quiet_mmap
#define munmap zp_os_quiet_munmap
#define madvise zp_os_quiet_madvise
#define mprotect zp_os_quiet_mprotect
#define open zp_os_quiet_open
#define creat zp_os_quiet_creat
#define close zp_os_quiet_close
#define readlink zp_os_quiet_readlink
#define sbrk zp_os_quiet_sbrk
#define sysconf zp_os_quiet_sysconf
#define syscall zp_os_quiet_syscall
#define clock_gettime zp_os_quiet_clock_gettime
#define gettimeofday zp_os_quiet_gettimeofday
#define sched_getaffinity zp_os_quiet_sched_getaffinity
#define sched_setaffinity zp_os_quiet_sched_setaffinity
#define sched_getcpu zp_os_quiet_sched_getcpu
#define pthread_create zp_os_quiet_pthread_create
#define pthread_setname_np zp_os_quiet_pthread_setname_np
#define pthread_getname_np zp_os_quiet_pthread_getname_np
#define dlsym zp_os_quiet_dlsym
#endif
