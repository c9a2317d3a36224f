#!/bin/sh
# Builds jemalloc-private.o: Debian's libjemalloc_pic.a as one relocatable object in which
# every public name of jemalloc (malloc, free, mallocx, mallctl, malloc_conf, ...) is renamed
# zp_je_<name>. libzeropool.so links it in and exports none of it (exports.map), so neither
# the program nor a library it loads can reach this copy of jemalloc, and a program's own
# jemalloc is untouched. jemalloc's C++ operators are left out: ours route by ownership.
#   usage: jemalloc-private.sh libjemalloc_pic.a out.o
set -eu
archive=$1
out=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
archive=$(cd "$(dirname "$archive")" && pwd)/$(basename "$archive")
case $out in /*) ;; *) out=$(pwd)/$out ;; esac
cd "$tmp"
ar x "$archive"
# Every member that defines a C++ name (jemalloc_cpp.o) would bring libstdc++ in.
for o in *.o; do
    if nm --defined-only -g "$o" | awk 'NF == 3 && $3 ~ /^_Z/ {found = 1} END {exit !found}'; then
        rm -f "$o"
    fi
done
# Link order, for the memory an idle process pays: the kernel maps a library's text 64 KiB at a
# time around each page it runs, so the code that start-up and the fast paths run is kept in one
# run, next to ours (which follows jemalloc in libzeropool.so). Objects that run at start-up
# (found with callgrind on an idle C and C++ program; a name this jemalloc lacks is ignored)
# go last, with ctl (245 KiB of mallctl handlers; its boot function closes the object) just
# before them and stats (its boot function opens the object) just after, so neither opens a
# window of its own. Everything else, never run by an idle process, comes first.
hot="arena background_thread base bin bin_info bitmap cache_bin counter decay div ecache edata
edata_cache ehooks emap eset exp_grow extent extent_dss extent_mmap hook jemalloc large mutex
nstime pa pac pages peak_event prof rtree san sc sz tcache thread_event tsd"
placed=" $(echo $hot) stats ctl " order="" last=""
for o in *.o; do
    n=${o%.pic.o}
    case $placed in
        *" $n "*) ;;
        *) order="$order $o" ;;
    esac
done
[ -f ctl.pic.o ] && order="$order ctl.pic.o"
for n in $hot; do
    [ -f "$n.pic.o" ] && last="$last $n.pic.o"
done
[ -f stats.pic.o ] && last="$last stats.pic.o"
# jemalloc's constructor sits in .text.startup, which the final link puts at the front of the
# text with the cold code: renamed, it stays with its object, in the run.
[ -f jemalloc.pic.o ] && objcopy --rename-section .text.startup=.text.zp_je_startup jemalloc.pic.o
# shellcheck disable=SC2086 # word lists of file names without spaces
ld -r -o all.o $order $last
# The public names: defined, global, not in jemalloc's own je_ namespace.
nm --defined-only -g all.o | awk 'NF == 3 && $3 !~ /^je_/ && $3 !~ /^_/ {print $3 " zp_je_" $3}' >rename.txt
# The libm functions it calls (only for heap profiling, which alloc.c turns off) are jemath.c's:
# libzeropool.so then does not load libm into every process.
for f in exp log round; do
    echo "$f zp_je_libm_$f" >>rename.txt
done
# Likewise libgcc's unwinder (the profiler's backtraces): without it libzeropool.so would
# load libgcc_s into every C program.
echo "_Unwind_Backtrace zp_je_unwind_backtrace" >>rename.txt
echo "_Unwind_GetIP zp_je_unwind_getip" >>rename.txt
# Its calls into libc that may set errno go through core/platform.c's wrappers, which keep it.
for f in mmap munmap madvise mprotect open creat close readlink sbrk sysconf syscall \
         clock_gettime gettimeofday sched_getaffinity sched_setaffinity sched_getcpu \
         pthread_create pthread_setname_np pthread_getname_np dlsym; do
    echo "$f zp_os_quiet_$f" >>rename.txt
done
grep -q '^mallocx zp_je_mallocx$' rename.txt || { echo "jemalloc-private.sh: no mallocx in $archive" >&2; exit 1; }
objcopy --redefine-syms=rename.txt all.o "$out"
# Nothing public may remain under its own name.
if nm --defined-only -g "$out" | awk 'NF == 3 {print $3}' | grep -qxE 'malloc|free|calloc|realloc|mallocx|mallctl|sdallocx'; then
    echo "jemalloc-private.sh: a public jemalloc name survived the renaming" >&2
    exit 1
fi
# Every libc function jemalloc still calls by its own name must leave errno alone (or be
# called only to end the process): a new one in another jemalloc fails the build here, to be
# wrapped in core/platform.c (ZP_QUIET_CALLS) or added to this list.
keeps_errno='__ctype_b_loc __errno_location __popcountdi2 __sched_cpucount __stack_chk_fail
_exit abort atexit getpid memchr memcmp memcpy memmove memset pthread_atfork pthread_cond_init
pthread_cond_signal pthread_cond_timedwait pthread_cond_wait pthread_join pthread_key_create
pthread_mutex_init pthread_mutex_lock pthread_mutex_trylock pthread_mutex_unlock
pthread_mutexattr_destroy pthread_mutexattr_init pthread_mutexattr_settype pthread_self
pthread_setspecific pthread_sigmask sched_yield secure_getenv sigfillset strchr strcmp strcpy
strerror_r strlen strncmp strncpy _GLOBAL_OFFSET_TABLE_'
unknown=$(nm -u "$out" | awk '{print $2}' | grep -v '^zp_je_\|^zp_os_quiet_' |
          grep -vxF "$(echo $keeps_errno | tr ' ' '\n')" || true)
if [ -n "$unknown" ]; then
    echo "jemalloc-private.sh: jemalloc calls libc functions that may set errno:" $unknown >&2
    exit 1
fi
# Nothing of libm or libgcc_s may be left: it would come back as a dependency.
if nm -u "$out" | awk '{print $2}' | grep -qE '^(exp|log|round|pow|ceil|floor|sqrt|log2|exp2|_Unwind_.*)$'; then
    echo "jemalloc-private.sh: jemalloc refers to a libm or libgcc_s function jemath.c does not define" >&2
    exit 1
fi
