#!/usr/bin/env bash
# An idle preloaded process costs little: `sleep` and a C++ hello world (whose runtime allocates
# a ~71 KiB emergency pool at start-up, a "large" request) are measured with and without the
# preload. Limits: VmSize at most 32 MiB more than glibc's; anonymous RSS (the allocators' own
# memory) at most 1 MiB more; with --total, the whole VmRSS (shared libraries included) at most
# 1 MiB more. Each figure is the smallest of 3 runs.
# usage: footprint.sh LIBZEROPOOL [--total]
set -euo pipefail
lib=$1 total=${2:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The library as installed (install, cp and dpkg write it afresh), not as the linker wrote it:
# the kernel maps a library's text a page-cache folio at a time around each page run, and the
# linker's writes leave folios of up to 256 KiB, which map ~100 KiB more of code never run.
cp "$lib" "$tmp/libzeropool.so"
lib=$tmp/libzeropool.so
cxx=$(command -v c++ || command -v g++ || true)
[ -n "$cxx" ] || { echo "no C++ compiler: skipped"; exit 77; }
cat >"$tmp/hello.cc" <<'CC'
#include <iostream>
#include <unistd.h>
int main() { std::cout << "hello" << std::endl; pause(); }
CC
"$cxx" -O2 -o "$tmp/hello" "$tmp/hello.cc"

# field of /proc/PID/status in KiB for: [LD_PRELOAD value] program args...
measure() {
  local pre=$1 field=$2 best=
  shift 2
  for _ in 1 2 3; do
    if [ -n "$pre" ]; then LD_PRELOAD=$pre "$@" >/dev/null & else "$@" >/dev/null & fi
    local pid=$! v=
    for _ in $(seq 50); do # until the program idles (its start-up allocations are done)
      sleep 0.05
      case $(awk '/^State:/ {print $2}' "/proc/$pid/status") in S) break ;; esac
    done
    v=$(awk -v f="$field:" '$1 == f {print $2}' "/proc/$pid/status")
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    if [ -z "$best" ] || [ "$v" -lt "$best" ]; then best=$v; fi
  done
  echo "$best"
}

fail=0
# Libraries an idle process must not map (with --total): libunwind (and its liblzma) is loaded
# at the first backtrace only; the private jemalloc's calls into libm and libgcc_s are stubs.
if [ "$total" = --total ]; then
  LD_PRELOAD=$lib sleep 30 >/dev/null &
  zpid=$!
  sleep 0.5
  maps=$(cat "/proc/$zpid/maps")
  kill "$zpid"
  wait "$zpid" 2>/dev/null || true
  extra=$(grep -oE '/lib(unwind|lzma|m|gcc_s)\.so[^ ]*' <<<"$maps" | sort -u | tr '\n' ' ' || true)
  if grep -q libzeropool <<<"$maps" && [ -z "$extra" ]; then
    echo "ok   sleep maps libzeropool and none of libunwind, liblzma, libm, libgcc_s"
  else
    echo "FAIL sleep maps: ${extra:-no libzeropool}"
    fail=1
  fi
fi
check() { # name field limit_kib program...
  local name=$1 field=$2 limit=$3
  shift 3
  local g z
  g=$(measure "" "$field" "$@")
  z=$(measure "$lib" "$field" "$@")
  local d=$((z - g))
  if [ "$d" -le "$limit" ]; then
    echo "ok   $name $field: glibc $g KiB, zeropool $z KiB (+$d, limit +$limit)"
  else
    echo "FAIL $name $field: glibc $g KiB, zeropool $z KiB (+$d, limit +$limit)"
    fail=1
  fi
}
for prog in "sleep 30" "$tmp/hello"; do
  name=${prog%% *}
  name=${name##*/}
  if [ "$total" = --total ]; then
    check "$name" VmRSS 1024 $prog
  else
    check "$name" VmSize $((32 * 1024)) $prog
    check "$name" RssAnon 1024 $prog
  fi
done
exit $fail
