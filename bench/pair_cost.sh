#!/usr/bin/env bash
# Instructions per small malloc+free pair (callgrind: exact counts, unlike wall-clock time on a
# shared machine) at 16, 48, 1024 and 4096 bytes: jemalloc (Debian's libjemalloc.so.2), and
# zeropool with and without the small scrub. The scrub's own cost is the difference of the two
# zeropool rows; the target: zeropool <= 1.3 x jemalloc + the scrub.
#   usage: bench/pair_cost.sh [BUILD]   (default build; needs valgrind)
#   ZEROPOOL_LIB=path: another libzeropool.so (an older build) run with BUILD's program
set -euo pipefail
build=${1:-build}
prog=$build/bench/pair_cost
lib=$(realpath "${ZEROPOOL_LIB:-$build/interpose/libzeropool.so}")
je=$(ls /usr/lib/*/libjemalloc.so.2 | head -n 1)
command -v valgrind >/dev/null || { echo "pair_cost.sh: valgrind not found" >&2; exit 1; }
[ -x "$prog" ] || { echo "pair_cost.sh: $prog not built" >&2; exit 1; }
n1=20000 n2=120000

# ir ENV... -- SIZE N: the program's total instruction count under callgrind
ir() {
  local envs=() out
  while [ "$1" != -- ]; do envs+=("$1"); shift; done
  shift
  out=$(mktemp)
  env "${envs[@]}" valgrind --tool=callgrind --callgrind-out-file="$out" "$prog" "$1" "$2" 2>/dev/null
  awk '/^totals:/ {print $2}' "$out"
  rm -f "$out"
}
per_pair() { # ENV... -- SIZE
  local a b envs=()
  while [ "$1" != -- ]; do envs+=("$1"); shift; done
  a=$(ir "${envs[@]}" -- "$2" $n1)
  b=$(ir "${envs[@]}" -- "$2" $n2)
  echo $(((b - a) / (n2 - n1)))
}

printf '%-6s %9s %9s %9s %7s %s\n' size jemalloc zp-noscrub zeropool scrub "zeropool / (1.3 jemalloc + scrub)"
for size in 16 48 1024 4096; do
  j=$(per_pair LD_PRELOAD="$je" -- "$size")
  z0=$(per_pair LD_PRELOAD="$lib" ZEROPOOL_SCRUB_SMALL=0 -- "$size")
  z=$(per_pair LD_PRELOAD="$lib" -- "$size")
  s=$((z - z0))
  ratio=$(awk -v z="$z" -v j="$j" -v s="$s" 'BEGIN {printf "%.2f", z / (1.3 * j + s)}')
  printf '%-6s %9s %9s %9s %7s %s\n' "$size" "$j" "$z0" "$z" "$s" "$ratio"
done
