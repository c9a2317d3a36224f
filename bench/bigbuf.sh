#!/usr/bin/env bash
# bigbuf (or BENCH=growth: the realloc growth loop) under glibc, jemalloc, mimalloc, tcmalloc
# and zeropool, ROUNDS rounds interleaved; prints each allocator's median wall and CPU time per
# step (growth: per run) and peak RSS, as ratios to glibc. A run that takes longer than TIMEOUT
# seconds (default 300) is stopped and shows as "timeout". ZEROPOOL_LIB=path measures another
# build of libzeropool.so (before/after a change).
# usage: [ALLOCS="glibc zeropool ..."] [BENCH=growth] bench/bigbuf.sh BUILD_DIR [ROUNDS] [ARG]
#   ARG: bigbuf's steps (400), growth's largest size in MiB (256)
set -euo pipefail
bench=${BENCH:-bigbuf}
build=$1 rounds=${2:-3} arg=${3:-}
lib=/usr/lib/x86_64-linux-gnu
declare -A pre=([glibc]= [jemalloc]=$lib/libjemalloc.so.2 [mimalloc]=$lib/libmimalloc.so.2
                [tcmalloc]=$lib/libtcmalloc_minimal.so.4 [zeropool]=${ZEROPOOL_LIB:-$build/interpose/libzeropool.so})
read -r -a names <<<"${ALLOCS:-glibc jemalloc mimalloc tcmalloc zeropool}"
declare -A t r c
for ((i = 0; i < rounds; i++)); do
  for a in "${names[@]}"; do
    [ -z "${pre[$a]}" ] || [ -e "${pre[$a]}" ] || continue
    out=$(LD_PRELOAD=${pre[$a]} timeout "${TIMEOUT:-300}" "$build/bench/$bench" ${arg:+"$arg"}) ||
      out="- - timeout - timeout - timeout"
    t[$a]+="$(awk '{print $3}' <<<"$out") "
    r[$a]+="$(awk '{print $5}' <<<"$out") "
    c[$a]+="$(awk '{print $7}' <<<"$out") "
  done
done
# The median; "timeout" sorts after every number.
med() { tr ' ' '\n' | grep . | sed 's/^timeout$/1e99/' | sort -g |
        awk '{v[NR]=$1} END {m=v[int((NR+1)/2)]; print (m == 1e99 ? "timeout" : m)}'; }
ratio() { [ "$1" = timeout ] && echo inf || bc -l <<<"$1/$2"; }
g_t=$(med <<<"${t[glibc]}") g_r=$(med <<<"${r[glibc]}") g_c=$(med <<<"${c[glibc]}")
unit=$([ "$bench" = growth ] && echo ms/run || echo ns/step)
printf '%-9s %12s %8s %12s %8s %12s %8s\n' allocator "$unit" ratio "cpu_$unit" ratio peak_KiB ratio
for a in "${names[@]}"; do
  [ -n "${t[$a]:-}" ] || continue
  mt=$(med <<<"${t[$a]}") mr=$(med <<<"${r[$a]}") mc=$(med <<<"${c[$a]}")
  printf '%-9s %12s %8.2f %12s %8.2f %12s %8.2f\n' "$a" "$mt" "$(ratio "$mt" "$g_t")" \
    "$mc" "$(ratio "$mc" "$g_c")" "$mr" "$(ratio "$mr" "$g_r")"
done
