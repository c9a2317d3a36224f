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
  for n in 32 64 4096; do
    out=$(LD_PRELOAD="$lib" ZEROPOOL_ON_ERROR=report "$dir/interior_free" $n 2>&1); rc=$?
    [ $rc -eq 0 ] || fail "interior free of a $n-byte block: exit $rc: $out"
    grep -q '^zeropool: invalid free' <<<"$out" || fail "interior free of a $n-byte block not reported: $out"
    echo "size $n, report mode: $(grep -E '^(zeropool: invalid free|neighbours)' <<<"$out" | tr '\n' ' ')"
  done
  out=$(LD_PRELOAD="$lib" "$dir/interior_free" 32 2>&1); rc=$?
  [ $rc -eq 134 ] || fail "interior free in abort mode: exit $rc, expected SIGABRT: $out"
  grep -q '^zeropool: invalid free' <<<"$out" || fail "no report before the abort: $out"
  echo "abort mode: SIGABRT after the report"
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
free_errno)
  # jemalloc purging inside free, its madvise setting errno: plain jemalloc lets errno change
  # (the teeth), zeropool must not, with and without the small scrub.
  conf=MALLOC_CONF=dirty_decay_ms:0,muzzy_decay_ms:0
  [ -n "$jemalloc_so" ] || fail "libjemalloc.so.2 not found (scripts/setup installs it)"
  out=$(env LD_PRELOAD="$jemalloc_so" $conf "$dir/free_errno" 2>&1); rc=$?
  [ $rc -eq 1 ] || fail "plain jemalloc kept errno (exit $rc): the test has no teeth: $out"
  echo "plain jemalloc: $out"
  for mode in "" ZEROPOOL_SCRUB_SMALL=0; do
    out=$(env LD_PRELOAD="$lib" ZEROPOOL_THRESHOLD=1M $conf $mode "$dir/free_errno" 2>&1); rc=$?
    [ $rc -eq 0 ] || fail "zeropool ${mode:-default} (exit $rc): $out"
    echo "zeropool ${mode:-default}: $out"
  done
  ;;
*) fail "unknown case $case_" ;;
esac
echo "PASS: $case_"
