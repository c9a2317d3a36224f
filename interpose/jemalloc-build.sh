#!/bin/sh
# Builds the private jemalloc of libzeropool.so from Debian's source package: jemalloc 5.3.0
# with Debian's patches and ours (jemalloc-zeropool.patch), configured for zeropool. Run once
# by meson (a custom_target whose inputs are this script, the patch and the quiet-call header:
# an incremental build never reruns it).
#   usage: jemalloc-build.sh CC OUTDIR OUT.o OUT_HEADER PATCH QUIET_H
# Leaves the built tree in OUTDIR/jemalloc (its include/ holds jemalloc's internal headers,
# which je_block.c is compiled against), and writes:
#   OUT.o       every object of the static PIC library in one relocatable object, in an order
#               that keeps the code an idle process runs in one run of pages (below)
#   OUT_HEADER  the header je_block.c includes (jemalloc's internal headers, in their order)
#
# The source comes from apt, through a deb-src sources file of our own passed to apt-get for
# that one call (the machine's apt setup is untouched), into a cache directory that outlives
# build directories: $ZEROPOOL_JEMALLOC_CACHE, else ~/.cache/zeropool/jemalloc, else OUTDIR.
# The mirror and suite are the machine's own Debian ones (/etc/apt/sources.list*), or
# $ZEROPOOL_DEBIAN_MIRROR and $ZEROPOOL_DEBIAN_SUITE.
set -eu
cc=$1 outdir=$2 out=$3 header=$4 patch=$5 quiet=$6
case $outdir in /*) ;; *) outdir=$(pwd)/$outdir ;; esac
case $out in /*) ;; *) out=$(pwd)/$out ;; esac
case $header in /*) ;; *) header=$(pwd)/$header ;; esac
case $patch in /*) ;; *) patch=$(pwd)/$patch ;; esac
case $quiet in /*) ;; *) quiet=$(pwd)/$quiet ;; esac
say() { echo "jemalloc-build.sh: $*" >&2; }
need() {
    command -v "$1" >/dev/null 2>&1 || { say "$1 not found: install $2 (scripts/setup)"; exit 1; }
}
need apt-get apt
need dpkg-source dpkg-dev
need autoconf autoconf
need make make
need patch patch

#### the source: Debian's jemalloc source package ####
cache=${ZEROPOOL_JEMALLOC_CACHE:-${XDG_CACHE_HOME:-${HOME:-/nonexistent}/.cache}/zeropool/jemalloc}
if ! mkdir -p "$cache" 2>/dev/null || [ ! -w "$cache" ]; then
    cache=$outdir/jemalloc-cache
    mkdir -p "$cache"
fi
dsc=$(ls "$cache"/jemalloc_5.3.0-*.dsc 2>/dev/null | tail -n 1 || true)
if [ -z "$dsc" ]; then
    mirror=${ZEROPOOL_DEBIAN_MIRROR:-} suite=${ZEROPOOL_DEBIAN_SUITE:-}
    # The first Debian archive the machine's apt uses, in either format of sources file.
    if [ -z "$mirror" ] || [ -z "$suite" ]; then
        found=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '
            /^URIs:/ {u = $2} /^Suites:/ {s = $2}
            /^$/ {if (u ~ /debian\/?$/ && s != "" && !done) {print u, s; done = 1} u = s = ""}
            END {if (u ~ /debian\/?$/ && s != "" && !done) print u, s}')
        [ -n "$found" ] || found=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
            awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) break;
                 if ($i ~ /debian\/?$/) {print $i, $(i + 1); exit}}')
        [ -n "$mirror" ] || mirror=${found% *}
        [ -n "$suite" ] || suite=${found#* }
    fi
    [ -n "$mirror" ] && [ -n "$suite" ] || {
        say "no Debian mirror in /etc/apt/sources.list*: set ZEROPOOL_DEBIAN_MIRROR and ZEROPOOL_DEBIAN_SUITE"
        exit 1
    }
    apt=$outdir/jemalloc-apt
    rm -rf "$apt"
    mkdir -p "$apt/lists/partial"
    keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    opt=""
    [ -r "$keyring" ] && opt="[signed-by=$keyring] "
    echo "deb-src $opt$mirror $suite main" >"$apt/sources.list"
    set -- -o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null \
        -o "Dir::State::Lists=$apt/lists"
    # As root, apt would drop to its _apt user, which cannot write to our directories.
    [ "$(id -u)" -ne 0 ] || set -- "$@" -o APT::Sandbox::User=root
    say "fetching Debian's jemalloc source ($mirror $suite) into $cache"
    apt-get -q "$@" update >"$apt/update.log" 2>&1 || { cat "$apt/update.log" >&2; exit 1; }
    (cd "$cache" && apt-get -q "$@" source --download-only jemalloc) >"$apt/source.log" 2>&1 ||
        { cat "$apt/source.log" >&2; exit 1; }
    rm -rf "$apt"
    dsc=$(ls "$cache"/jemalloc_5.3.0-*.dsc 2>/dev/null | tail -n 1 || true)
    [ -n "$dsc" ] || { say "apt-get source brought no jemalloc 5.3.0 (zeropool needs 5.3.0's internals)"; exit 1; }
fi

#### unpack, patch, configure, build ####
work=$outdir/jemalloc
rm -rf "$work"
# dpkg-source checks the files against the .dsc's checksums and applies Debian's patches.
# (Its signature check needs Debian's developer keys, which apt's check of the archive makes
# unneeded: quiet unless it fails.)
dpkg-source -q -x "$dsc" "$work" >"$outdir/jemalloc-unpack.log" 2>&1 ||
    { cat "$outdir/jemalloc-unpack.log" >&2; exit 1; }
rm -f "$outdir/jemalloc-unpack.log" "$outdir"/jemalloc_*.orig.tar.*
cd "$work"
grep -qx '5\.3\.0-.*' VERSION || { say "unexpected jemalloc version $(cat VERSION)"; exit 1; }
patch -s -p1 <"$patch"
# Debian's patches touch configure.ac; its build regenerates configure, and so do we (without
# autoheader: jemalloc's hand-written config headers).
autoconf
# --with-jemalloc-prefix: its public names are zp_je_malloc & co (je.h);
# --with-private-namespace: its internal ones zp_jei_*; --without-export: hidden, every one
#   (exports.map exports none of them either);
# --with-malloc-conf: zeropool's settings; MALLOC_CONF and /etc/malloc.conf are never read
#   (jemalloc-zeropool.patch). dss:disabled: it never takes memory from the program break,
#   which is how free recognises glibc's own blocks;
# --disable-prof: no profiler, so no libm, no libgcc unwinder, and no sampling test on the fast
#   paths; --disable-fill: no junk or zero filling (the scrub zeroes every freed block);
# --disable-libdl: no dlsym of pthread_create (it starts no thread anyway: no background
#   thread); --disable-cxx: our C++ operators route by ownership;
# the page and huge page sizes as Debian sets them for amd64; 48-bit addresses whatever the
# build machine's CPU says (configure asks it: 57 with 5-level paging), as user space gets
# from mmap without a hint: the same tree (two levels) on every machine.
./configure -q CC="$cc" --with-jemalloc-prefix=zp_je_ --with-private-namespace=zp_jei_ \
    --without-export --with-malloc-conf=dss:disabled --disable-prof --disable-fill \
    --disable-libdl --disable-cxx --disable-doc --with-lg-page=12 --with-lg-hugepage=21 \
    --with-lg-vaddr=48 >/dev/null
# Its calls into libc that may set errno go to core/platform.c's zp_os_quiet_* wrappers
# (jemalloc-quiet.h): free keeps the program's errno without saving it.
# -fno-reorder-functions: its constructor stays with its object, not in .text.startup at the
# front of the text with the cold code.
make -s -j"$(nproc 2>/dev/null || echo 2)" build_lib_static \
    EXTRA_CFLAGS="-include $quiet -fno-reorder-functions" >make.log 2>&1 || { cat make.log >&2; exit 1; }

#### one relocatable object, in the order of the pages an idle process touches ####
# The kernel maps a library's text 64 KiB at a time around each page it runs, so the code that
# start-up and the fast paths run is kept in one run, next to ours (which follows jemalloc in
# libzeropool.so). Objects that run at start-up (found with callgrind on an idle C and C++
# program) go last, with ctl (mallctl's handlers; its boot function closes the object) just
# before them and stats (its boot function opens the object) just after, so neither opens a
# window of its own. Everything else, never run by an idle process, comes first.
tmp=$work/objs
mkdir -p "$tmp"
cd "$tmp"
ar x "$work/lib/libjemalloc_pic.a"
hot="arena background_thread base bin bin_info bitmap cache_bin counter decay div ecache edata
edata_cache ehooks emap eset exp_grow extent extent_dss extent_mmap hook jemalloc large mutex
nstime pa pac pages peak_event rtree san sc sz tcache thread_event tsd"
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
# shellcheck disable=SC2086 # word lists of file names without spaces
ld -r -o "$out.tmp" $order $last

#### what the object may refer to ####
# Nothing exported under jemalloc's own names.
if nm --defined-only -g "$out.tmp" | awk 'NF == 3 {print $3}' | grep -qxE 'malloc|free|calloc|realloc|mallocx|mallctl|sdallocx'; then
    say "a public jemalloc name is defined under its own name"
    exit 1
fi
# Every libc function jemalloc calls by its own name must leave errno alone (or be called only
# to end the process): another one fails the build here, to be wrapped in core/platform.c
# (ZP_QUIET_CALLS, jemalloc-quiet.h) or added to this list. libm and libgcc_s are not on it:
# either would come back as a dependency of every process.
keeps_errno='__ctype_b_loc __errno_location __popcountdi2 __sched_cpucount __stack_chk_fail
_exit abort atexit getpid memchr memcmp memcpy memmove memset pthread_atfork pthread_cond_init
pthread_cond_signal pthread_cond_timedwait pthread_cond_wait pthread_join pthread_key_create
pthread_mutex_init pthread_mutex_lock pthread_mutex_trylock pthread_mutex_unlock
pthread_mutexattr_destroy pthread_mutexattr_init pthread_mutexattr_settype pthread_self
pthread_setspecific pthread_sigmask sched_yield sigfillset strchr strcmp strcpy strerror_r
strlen strncmp strncpy _GLOBAL_OFFSET_TABLE_'
unknown=$(nm -u "$out.tmp" | awk '{print $2}' | grep -v '^zp_os_quiet_' |
          grep -vxF "$(echo $keeps_errno | tr ' ' '\n')" || true)
if [ -n "$unknown" ]; then
    say "jemalloc calls libc functions that may set errno, or libm/libgcc:" $unknown
    exit 1
fi

cat >"$header.tmp" <<'EOF'
/* Generated by jemalloc-build.sh: jemalloc's internal headers, in the order its own sources
 * include them (for je_block.c only). */
#include "jemalloc/internal/jemalloc_preamble.h"
#include "jemalloc/internal/jemalloc_internal_includes.h"
EOF
rm -rf "$tmp"
mv "$out.tmp" "$out"
mv "$header.tmp" "$header"
