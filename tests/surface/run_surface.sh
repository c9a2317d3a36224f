#!/usr/bin/env bash
# One case of the allocator-surface tests (tests/surface/meson.build lists them).
#   usage: run_surface.sh CASE LIBZEROPOOL BUILDDIR
# A leak case runs twice: without zeropool, where the leak must show (or the test has no
# teeth), and under it, where no secret word may survive and nothing may crash.
set -uo pipefail
# meson sets MALLOC_PERTURB_, which makes glibc fill freed memory itself: the runs without
# zeropool must show glibc as programs meet it.
unset MALLOC_PERTURB_
case_=$1 lib=$2 dir=$3
plugin=$dir/libzpt_cxx_plugin.so
jemalloc_so=$(ls /usr/lib/*/libjemalloc.so.2 2>/dev/null | head -n 1)
fail() { echo "FAIL: $*" >&2; exit 1; }
leaked() { sed -n 's/^leaked \([0-9]*\)$/\1/p' <<<"$1"; }

# host CASE SIZE [env...]: run the C host, print its output; fails the test on a crash.
host() {
  local c=$1 n=$2; shift 2
  local out rc
  out=$(env "$@" "$dir/surface_host" "$plugin" "$c" "$n" 2>&1); rc=$?
  [ $rc -eq 0 ] || fail "surface_host $c $n ($*): exit $rc: $out"
  echo "$out"
}

# leak_case CASE SIZE TEETH: TEETH=1 when glibc keeps the freed data at this size.
leak_case() {
  local c=$1 n=$2 teeth=$3 out
  if [ "$teeth" = 1 ]; then
    out=$(host "$c" "$n")
    [ "$(leaked "$out")" -gt 0 ] || fail "$c $n: no leak without zeropool: the test has no teeth ($out)"
    echo "without zeropool: $c $n: $out"
  fi
  out=$(host "$c" "$n" LD_PRELOAD="$lib")
  [ "$(leaked "$out")" = 0 ] || fail "$c $n: freed data reached a later allocation under zeropool ($out)"
  echo "under zeropool:   $c $n: $out"
}

case $case_ in
exports)
  # The malloc family and the C++ operators, nothing of jemalloc, no C++ runtime.
  names=$(nm -D --defined-only "$lib" | awk '{print $3}')
  bad=$(grep -E '^(je_|zp_je_|mallocx|rallocx|xallocx|sallocx|dallocx|sdallocx|nallocx|mallctl|malloc_stats_print|malloc_conf|malloc_message)' <<<"$names")
  [ -z "$bad" ] || fail "jemalloc names exported: $bad"
  ldd "$lib" | grep -qE 'libjemalloc|libstdc\+\+|libc\+\+' && fail "links a dependency it must not: $(ldd "$lib")"
  ops=$(grep -cE '^_Z(nw|na|dl|da)' <<<"$names")
  [ "$ops" = 20 ] || fail "expected the 20 C++ allocation operators, found $ops"
  extra=$(grep -vxE '(malloc|free|calloc|realloc|reallocarray|posix_memalign|aligned_alloc|memalign|valloc|pvalloc|malloc_usable_size|free_sized|free_aligned_sized|cfree|__libc_(malloc|free|calloc|realloc|memalign|valloc|pvalloc)|mallopt|mallinfo2?|malloc_trim|malloc_stats|malloc_info|_Z(nw|na|dl|da)[A-Za-z0-9_]*|zp_[a-z0-9_]*)' <<<"$names")
  [ -z "$extra" ] || fail "unexpected exported names: $extra"
  echo "exports: $(wc -l <<<"$names") names, 20 C++ operators, nothing of jemalloc"
  ;;
cxx_vector|cxx_string|cxx_new_array)
  c=${case_#cxx_}
  leak_case "$c" 40000 1     # a jemalloc block under zeropool
  leak_case "$c" 100000 1    # a pool buffer under zeropool
  leak_case "$c" 300000 0    # glibc unmaps this one itself
  ;;
cxx_aligned_vector)
  leak_case aligned_vector $((1200 * 1024)) 0
  ;;
cxx_aligned_new)
  leak_case aligned_new 200000 0
  leak_case aligned_new 20000 0
  ;;
cxx_out_of_memory)
  out=$(host out_of_memory 0 LD_PRELOAD="$lib") || exit 1
  echo "$out"
  ;;
python_extension)
  py=/usr/bin/python3
  run_py() {
    env "$@" PYTHONPATH="$dir" "$py" -c '
import sys, zpcxx
for c, n in (("vector", 40000), ("vector", 100000), ("string", 100000), ("new_array", 40000)):
    zpcxx.leave(c, n)
    print(c, n, zpcxx.scan(n))
' 2>&1
  }
  out=$(run_py) || fail "python without zeropool: $out"
  echo "without zeropool:"; echo "$out"
  awk '$3 > 0 {found = 1} END {exit !found}' <<<"$out" || fail "no leak without zeropool: no teeth"
  out=$(run_py LD_PRELOAD="$lib") || fail "python under zeropool crashed: $out"
  echo "under zeropool:"; echo "$out"
  awk '$3 != 0 {bad = 1} END {exit bad}' <<<"$out" || fail "a secret survived under zeropool"
  ;;
jemalloc_probe)
  if [ -n "$jemalloc_so" ]; then
    out=$(LD_PRELOAD="$jemalloc_so" "$dir/jemalloc_probe") || fail "probe under jemalloc: $out"
    echo "with a visible jemalloc: $(tr '\n' ' ' <<<"$out")"
    grep -q 'jemalloc found' <<<"$out" && [ "$(leaked "$out")" -gt 0 ] ||
      fail "a visible jemalloc should be found and leak through sdallocx: no teeth ($out)"
  fi
  out=$(LD_PRELOAD="$lib" "$dir/jemalloc_probe") || fail "probe under zeropool: $out"
  echo "under zeropool: $(tr '\n' ' ' <<<"$out")"
  grep -q 'jemalloc absent' <<<"$out" || fail "the probe found jemalloc under zeropool"
  [ "$(leaked "$out")" = 0 ] || fail "a secret survived under zeropool"
  ;;
interior_free)
  # Every jemalloc class up to 14 KiB (the slabs), and two large ones: free(p + 16) and
  # free(p + 8), misaligned, in report mode (reported, nothing written, nothing handed out
  # twice) and in abort mode (reported, SIGABRT). p + 16 of a 16-byte block is its neighbour.
  classes="16 32 48 64 80 96 112 128 160 192 224 256 320 384 448 512 640 768 896 1024 1280
           1536 1792 2048 2560 3072 3584 4096 5120 6144 7168 8192 10240 12288 14336 20480 40960"
  n_cases=0
  for n in $classes; do
    for off in 8 16; do
      [ "$n" = 16 ] && [ "$off" = 16 ] && continue
      out=$(LD_PRELOAD="$lib" ZEROPOOL_ON_ERROR=report "$dir/interior_free" "$n" "$off" 2>&1); rc=$?
      [ $rc -eq 0 ] || fail "free(p + $off) of a $n-byte block, report mode: exit $rc: $out"
      grep -q '^zeropool: invalid free' <<<"$out" || fail "free(p + $off) of a $n-byte block not reported: $out"
      out=$(LD_PRELOAD="$lib" "$dir/interior_free" "$n" "$off" 2>&1); rc=$?
      [ $rc -eq 134 ] || fail "free(p + $off) of a $n-byte block, abort mode: exit $rc, expected SIGABRT: $out"
      grep -q '^zeropool: invalid free' <<<"$out" || fail "free(p + $off) of a $n-byte block: no report before the abort: $out"
      n_cases=$((n_cases + 1))
    done
  done
  echo "$n_cases interior frees (37 classes, offsets 8 and 16): reported, nothing written; SIGABRT in abort mode"
  # realloc of the same pointers, a few classes: reported, NULL, nothing moved or written.
  for n in 48 1024 14336 40960; do
    out=$(LD_PRELOAD="$lib" ZEROPOOL_ON_ERROR=report "$dir/interior_free" "$n" 16 realloc 2>&1); rc=$?
    [ $rc -eq 0 ] || fail "realloc(p + 16) of a $n-byte block, report mode: exit $rc: $out"
    grep -q '^zeropool: invalid realloc' <<<"$out" || fail "realloc(p + 16) of a $n-byte block not reported: $out"
    out=$(LD_PRELOAD="$lib" "$dir/interior_free" "$n" 16 realloc 2>&1); rc=$?
    [ $rc -eq 134 ] || fail "realloc(p + 16) of a $n-byte block, abort mode: exit $rc, expected SIGABRT: $out"
  done
  echo "interior reallocs (4 classes): reported, NULL, nothing written; SIGABRT in abort mode"
  # malloc_usable_size of the same pointers, of a stack address and of a fresh mapping: 0,
  # small blocks and pool buffers alike (a program that asks must not get a neighbour's room).
  for n in 16 48 1024 14336 40960 100000 1048576; do
    out=$(LD_PRELOAD="$lib" "$dir/interior_free" "$n" 8 usable 2>&1) ||
      fail "malloc_usable_size of interior and foreign pointers, $n-byte block: $out"
  done
  echo "malloc_usable_size (7 sizes): the block's room; 0 inside it, on the stack, in a mapping"
  ;;
huge_sizes)
  if [ -n "$jemalloc_so" ]; then
    out=$(LD_PRELOAD="$jemalloc_so" "$dir/huge_alloc" 2>&1) &&
      fail "plain jemalloc refused 1 << 46 bytes: the test shows nothing ($out)"
    echo "plain jemalloc: $(grep -c succeeded <<<"$out") of 5 impossible requests succeeded"
  fi
  for mode in "" ZEROPOOL_DISABLE=1 ZEROPOOL_THRESHOLD=1G ZEROPOOL_SCRUB_SMALL=0; do
    out=$(env LD_PRELOAD="$lib" $mode "$dir/huge_alloc" 2>&1) || fail "${mode:-default}: $out"
    echo "zeropool ${mode:-default}: every impossible request failed with ENOMEM"
  done
  ;;
calloc_verify)
  for mode in "" ZEROPOOL_ZERO_ON_ALLOC=verify ZEROPOOL_SCRUB_SMALL=0; do
    out=$(env LD_PRELOAD="$lib" $mode "$dir/calloc_zero" 2>&1) || fail "${mode:-default}: $out"
    grep -q 'non-zero' <<<"$out" && fail "${mode:-default}: $out"
    echo "zeropool ${mode:-default}: $out"
  done
  ;;
sized_free)
  # The size and alignment a sized free states must fit the block (jemalloc's class for it).
  out=$(LD_PRELOAD="$lib" "$dir/sized_free" ok 2>&1) || fail "right sizes: $out"
  grep -q '^zeropool:' <<<"$out" && fail "right sizes reported: $out"
  for c in too_big misaligned delete_big; do
    out=$(LD_PRELOAD="$lib" ZEROPOOL_ON_ERROR=report "$dir/sized_free" $c 2>&1) || fail "$c: $out"
    grep -q '^zeropool: invalid free' <<<"$out" || fail "$c not reported: $out"
    grep -qx intact <<<"$out" || fail "$c: the block changed: $out"
    echo "$c: reported, block intact"
  done
  ;;
small_zero)
  # Without zeropool freed data shows in later mallocs (the teeth); under it only zeros, the
  # blocks jemalloc frees itself at a thread's exit included.
  out=$("$dir/small_zero" 2>&1) && fail "glibc handed out only zeros: the test has no teeth: $out"
  echo "glibc: $(tail -n 1 <<<"$out")"
  out=$(LD_PRELOAD="$lib" "$dir/small_zero" 2>&1) || fail "zeropool: $out"
  echo "zeropool: $out"
  ;;
malloc_conf)
  # The private jemalloc reads no MALLOC_CONF and no /etc/malloc.conf: a program's (or a
  # service's) settings for its own jemalloc must not configure ours. Plain jemalloc obeys
  # both (the teeth).
  conf_check() { # DESCRIPTION ENV...: /bin/true under zeropool prints nothing, exits 0
    local what=$1 out rc; shift
    out=$(env "$@" LD_PRELOAD="$lib" /bin/true 2>&1); rc=$?
    [ $rc -eq 0 ] && [ -z "$out" ] || fail "$what changed zeropool's jemalloc (exit $rc): $(head -c 300 <<<"$out")"
    echo "zeropool, $what: nothing"
  }
  [ -n "$jemalloc_so" ] || fail "libjemalloc.so.2 not found (scripts/setup installs it)"
  out=$(MALLOC_CONF=stats_print:true LD_PRELOAD="$jemalloc_so" /bin/true 2>&1)
  grep -q 'jemalloc statistics' <<<"$out" || fail "plain jemalloc printed no statistics: no teeth"
  out=$(MALLOC_CONF=abort_conf:true,bogus:1 LD_PRELOAD="$jemalloc_so" /bin/true 2>&1) &&
    fail "plain jemalloc did not abort on abort_conf:true,bogus:1: no teeth"
  echo "plain jemalloc: MALLOC_CONF=stats_print:true prints its statistics, abort_conf:true,bogus:1 aborts"
  conf_check MALLOC_CONF=stats_print:true MALLOC_CONF=stats_print:true
  conf_check MALLOC_CONF=abort_conf:true,bogus:1 MALLOC_CONF=abort_conf:true,bogus:1
  # /etc/malloc.conf, a symbolic link whose target is the settings: in a private mount
  # namespace, over a copy of /etc (the machine's /etc is never touched).
  if ! unshare -m --propagation private true 2>/dev/null; then
    echo "SKIP /etc/malloc.conf: no private mount namespace here (unshare -m refused)"
  else
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    # shellcheck disable=SC2016 # expanded by the inner shell
    inner='cp -a /etc "$1/etc" 2>/dev/null; ln -sfn "$2" "$1/etc/malloc.conf" &&
           mount --bind "$1/etc" /etc && shift 2 && exec env "$@" /bin/true'
    out=$(unshare -m --propagation private sh -c "$inner" sh "$tmp" stats_print:true LD_PRELOAD="$jemalloc_so" 2>&1)
    grep -q 'jemalloc statistics' <<<"$out" || fail "plain jemalloc ignored /etc/malloc.conf: no teeth ($(head -c 200 <<<"$out"))"
    for setting in stats_print:true abort_conf:true,bogus:1; do
      out=$(unshare -m --propagation private sh -c "$inner" sh "$tmp" "$setting" LD_PRELOAD="$lib" 2>&1); rc=$?
      [ $rc -eq 0 ] && [ -z "$out" ] || fail "/etc/malloc.conf -> $setting changed zeropool's jemalloc (exit $rc): $(head -c 300 <<<"$out")"
      echo "zeropool, /etc/malloc.conf -> $setting: nothing"
    done
  fi
  ;;
free_errno)
  # jemalloc purging inside free, its madvise setting errno: plain jemalloc lets errno change
  # (the teeth), zeropool must not, with and without the small scrub (its jemalloc purges
  # blocks of 8 MiB at once: free_errno.c).
  conf=MALLOC_CONF=dirty_decay_ms:0,muzzy_decay_ms:0
  [ -n "$jemalloc_so" ] || fail "libjemalloc.so.2 not found (scripts/setup installs it)"
  out=$(env LD_PRELOAD="$jemalloc_so" $conf "$dir/free_errno" 2>&1); rc=$?
  [ $rc -eq 1 ] || fail "plain jemalloc kept errno (exit $rc): the test has no teeth: $out"
  echo "plain jemalloc: $out"
  for mode in "" ZEROPOOL_SCRUB_SMALL=0; do
    out=$(env LD_PRELOAD="$lib" ZEROPOOL_THRESHOLD=1G $mode "$dir/free_errno" $((8 << 20)) 4 2>&1); rc=$?
    [ $rc -eq 0 ] || fail "zeropool ${mode:-default} (exit $rc): $out"
    echo "zeropool ${mode:-default}: $out"
  done
  ;;
*) fail "unknown case $case_" ;;
esac
echo "PASS: $case_"
