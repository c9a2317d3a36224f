#!/usr/bin/env bash
# bigbuf under glibc, jemalloc, mimalloc, tcmalloc and zeropool, ROUNDS rounds interleaved;
# prints each allocator's median wall and CPU time per step and peak RSS, as ratios to glibc.
# ZEROPOOL_LIB=path measures another build of libzeropool.so (before/after a change).
# usage: [ALLOCS="glibc zeropool ..."] bench/bigbuf.sh BUILD_DIR [ROUNDS] [STEPS]
set -euo pipefail
build=$1 rounds=${2:-3} steps=${3:-400}
lib=/usr/lib/x86_64-linux-gnu
declare -A pre=([glibc]= [jemalloc]=$lib/libjemalloc.so.2 [mimalloc]=$lib/libmimalloc.so.2
                [tcmalloc]=$lib/libtcmalloc_minimal.so.4 [zeropool]=${ZEROPOOL_LIB:-$build/interpose/libzeropool.so})
read -r -a names <<<"${ALLOCS:-glibc jemalloc mimalloc tcmalloc zeropool}"
declare -A t r c
for ((i = 0; i < rounds; i++)); do
  for a in "${names[@]}"; do
    [ -z "${pre[$a]}" ] || [ -e "${pre[$a]}" ] || continue
    out=$(LD_PRELOAD=${pre[$a]} "$build/bench/bigbuf" "$steps")
    t[$a]+="$(awk '{print $3}' <<<"$out") "
    r[$a]+="$(awk '{print $5}' <<<"$out") "
    c[$a]+="$(awk '{print $7}' <<<"$out") "
  done
done
med() { tr ' ' '\n' | grep . | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
g_t=$(med <<<"${t[glibc]}") g_r=$(med <<<"${r[glibc]}") g_c=$(med <<<"${c[glibc]}")
printf '%-9s %12s %8s %12s %8s %12s %8s\n' allocator ns/step ratio cpu_ns/step ratio peak_KiB ratio
for a in "${names[@]}"; do
  [ -n "${t[$a]:-}" ] || continue
  mt=$(med <<<"${t[$a]}") mr=$(med <<<"${r[$a]}") mc=$(med <<<"${c[$a]}")
  printf '%-9s %12s %8.2f %12s %8.2f %12s %8.2f\n' "$a" "$mt" "$(bc -l <<<"$mt/$g_t")" \
    "$mc" "$(bc -l <<<"$mc/$g_c")" "$mr" "$(bc -l <<<"$mr/$g_r")"
done
