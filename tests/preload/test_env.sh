#!/usr/bin/env bash
# The ZEROPOOL_* switches seen from outside: VERBOSE prints its one line, DISABLE keeps the
# pool from ever being created, STATS writes at exit (text, JSON, to a file), a bad value is
# reported and the program still runs, a double free is reported in one line and aborts (or
# returns with ON_ERROR=report), and /proc/PID/maps names the pool (skipped when the kernel
# cannot name mappings). Usage: test_env.sh LIBZEROPOOL PROBE
set -u
LIB=$1 PROBE=$2
pass=0 fail=0 skip=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ok()   { pass=$((pass + 1)); echo "ok   $1"; }
bad()  { fail=$((fail + 1)); echo "FAIL $1"; sed 's/^/     | /' "$tmp/err" | head -20; }
check() { # name, command...: passes when the command succeeds
    local name=$1; shift
    if "$@"; then ok "$name"; else bad "$name"; fi
}
run() { # env assignments... -- args: runs the probe under the preload, stderr to $tmp/err
    local vars=()
    while [ "$1" != -- ]; do vars+=("$1"); shift; done; shift
    env -u ZEROPOOL_THRESHOLD "${vars[@]}" LD_PRELOAD="$LIB" "$PROBE" "$@" >"$tmp/out" 2>"$tmp/err"
}

run ZEROPOOL_VERBOSE=1 -- large
check "verbose prints one line" test "$(grep -c '^zeropool: active (pid ' "$tmp/err")" = 1
check "verbose line has the settings" grep -Eq \
  '^zeropool: active \(pid [0-9]+\): threshold=64K max_pooled=64M pool_bytes=[0-9]+[KMG]? shards=[0-9]+ tls_cache=[0-9]+ .*eviction=clock-pro pin=off guard=on' "$tmp/err"
run ZEROPOOL_VERBOSE=1 ZEROPOOL_THRESHOLD=1M ZEROPOOL_EVICTION=lifo -- large
check "verbose shows the variables" grep -Eq 'threshold=1M .*eviction=lifo' "$tmp/err"
run -- large
check "silent by default" test ! -s "$tmp/err"

run ZEROPOOL_DISABLE=1 ZEROPOOL_STATS=json -- large
check "disable: the pool is never created" grep -q '"pool":false' "$tmp/err"
check "disable: the program runs" grep -q 'probe: ok' "$tmp/out"
run ZEROPOOL_DISABLE=1 ZEROPOOL_VERBOSE=1 -- large
check "disable: verbose says so" grep -q '^zeropool: disabled (pid ' "$tmp/err"

run ZEROPOOL_STATS=json -- large
check "stats json" grep -Eq '^\{"zeropool":\{"pid":[0-9]+,"pool":true,.*"pool_stats":\{"gets":[1-9]' "$tmp/err"
run ZEROPOOL_STATS=1 -- large
check "stats table" grep -Eq '^    puts +[1-9]' "$tmp/err"
run ZEROPOOL_STATS=json ZEROPOOL_STATS_FILE="$tmp/stats.%p" -- large
check "stats file with %p" sh -c "grep -q '\"pool\":true' '$tmp'/stats.[0-9]*"

run ZEROPOOL_THRESHOLD=banana -- large
check "bad value: reported" grep -q 'ZEROPOOL_THRESHOLD' "$tmp/err"
check "bad value: the program runs" grep -q 'probe: ok' "$tmp/out"

run -- double-free
status=$?
check "double free aborts" test "$status" = 134
check "double free: one line" grep -Eq '^zeropool: double free of 0x[0-9a-f]+ \(1048576-byte buffer\)$' "$tmp/err"
run ZEROPOOL_ON_ERROR=report -- double-free
status=$?
check "double free, report: goes on" test "$status" = 0
check "double free, report: one line" test "$(grep -c '^zeropool: double free' "$tmp/err")" = 1
run -- bad-free
status=$?
check "interior free aborts" test "$status" = 134
check "interior free: reported" grep -Eq '^zeropool: invalid free of 0x[0-9a-f]+' "$tmp/err"

run -- maps
status=$?
if [ "$status" = 77 ]; then
  skip=$((skip + 1)); echo "skip /proc/self/maps names the pool: this kernel cannot name mappings"
else
  check "/proc/self/maps shows [anon:zeropool]" test "$status" = 0
fi

echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ]
