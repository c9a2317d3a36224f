#!/usr/bin/env bash
# Secure-execution mode (AT_SECURE): a setuid-root program run by an unprivileged user with
# libzeropool preloaded. ld.so preloads a library into a setuid program only from a standard
# directory, by a name without '/', and only if the library itself has the setuid bit: so a
# copy goes to the multiarch library directory under a test-only name, removed on exit.
# Checks: the library is loaded (the ZEROPOOL_VERBOSE line), ZEROPOOL_STATS_FILE (as a
# variable and as a ZEROPOOL_CONF key) is ignored with a message and no file is created, and
# the statistics go to stderr instead. A control run of a non-setuid copy writes the file.
# Usage: test_setuid.sh LIBZEROPOOL PROBE   Exit 77 (skip) when not root, when the filesystem
# is mounted nosuid, or when setpriv or the nobody user is missing.
set -u
LIB=$(realpath "$1") PROBE=$(realpath "$2")
skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root (to install a setuid library and program)"
command -v setpriv > /dev/null || skip "setpriv (util-linux) missing"
id nobody > /dev/null 2>&1 || skip "no user nobody"
group=$(id -gn nobody)

multiarch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
libdir=/usr/lib/$multiarch
[ -d "$libdir" ] || skip "no $libdir"
name=libzeropool-setuid-test-$$.so
tmp=$(mktemp -d /tmp/zp-secure.XXXXXX)
cleanup() { rm -f "$libdir/$name"; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
for d in "$tmp" "$libdir"; do
    findmnt -n -o OPTIONS --target "$d" | tr ',' '\n' | grep -qx nosuid && skip "$d is mounted nosuid"
done

chmod 755 "$tmp"
install -o root -g root -m 4755 "$PROBE" "$tmp/probe_suid"
install -o root -g root -m 0755 "$PROBE" "$tmp/probe_plain"
install -o root -g root -m 4755 "$LIB" "$libdir/$name"
mkdir -m 1777 "$tmp/stats"

passed=0 failed=0
check() { # description, condition...
    local what=$1; shift
    if "$@"; then passed=$((passed + 1)); echo "ok   $what"
    else failed=$((failed + 1)); echo "FAIL $what"; fi
}
as_nobody() { setpriv --reuid=nobody --regid="$group" --clear-groups --inh-caps=-all "$@"; }
no_file() { [ -z "$(ls -A "$tmp/stats")" ]; }
has_file() { compgen -G "$1" > /dev/null; }
show() { sed 's/^/     | /' "$1"; }

#### control: not setuid, full path: the stats file is written ####
as_nobody env LD_PRELOAD="$LIB" ZEROPOOL_STATS=1 ZEROPOOL_STATS_FILE="$tmp/stats/plain-%p.txt" \
    "$tmp/probe_plain" > "$tmp/out" 2> "$tmp/err"
check "control run (not setuid) exits 0" [ $? = 0 ]
check "control run is not in secure mode and has zeropool" grep -q 'secure=0 zeropool=1' "$tmp/out"
check "control run writes ZEROPOOL_STATS_FILE" has_file "$tmp/stats/plain-*.txt"
grep -qs 'zeropool: statistics' "$tmp"/stats/plain-*.txt
check "control stats file holds the statistics" [ $? = 0 ]
rm -f "$tmp"/stats/*

#### setuid-root program run by nobody: AT_SECURE ####
as_nobody env LD_PRELOAD="$name" ZEROPOOL_VERBOSE=1 ZEROPOOL_STATS=1 \
    ZEROPOOL_STATS_FILE="$tmp/stats/suid-%p.txt" "$tmp/probe_suid" > "$tmp/out" 2> "$tmp/err"
check "setuid run exits 0" [ $? = 0 ]
check "setuid run has euid 0, ruid of nobody, AT_SECURE, zeropool mapped" \
    grep -q "euid=0 ruid=$(id -u nobody) secure=1 zeropool=1" "$tmp/out"
check "the library says it is active (ZEROPOOL_VERBOSE)" grep -q '^zeropool: active' "$tmp/err"
check "ZEROPOOL_STATS_FILE is ignored with a message" \
    grep -q 'ZEROPOOL_STATS_FILE ignored: secure-execution mode' "$tmp/err"
check "no statistics file was created" no_file
check "the statistics went to stderr" grep -q '^zeropool: statistics' "$tmp/err"
[ "$failed" = 0 ] || { show "$tmp/out"; show "$tmp/err"; }

#### the same path through ZEROPOOL_CONF ####
as_nobody env LD_PRELOAD="$name" ZEROPOOL_CONF="stats:1,stats_file:$tmp/stats/conf-%p.txt" \
    "$tmp/probe_suid" > "$tmp/out" 2> "$tmp/err"
check "setuid run with ZEROPOOL_CONF exits 0" [ $? = 0 ]
check "ZEROPOOL_CONF key stats_file is ignored with a message" \
    grep -q 'ZEROPOOL_CONF key stats_file ignored: secure-execution mode' "$tmp/err"
check "no statistics file was created (ZEROPOOL_CONF)" no_file
check "the statistics went to stderr (ZEROPOOL_CONF)" grep -q '^zeropool: statistics' "$tmp/err"

#### without the setuid bit on the library, ld.so must not load it at all ####
chmod u-s "$libdir/$name"
as_nobody env LD_PRELOAD="$name" ZEROPOOL_VERBOSE=1 "$tmp/probe_suid" > "$tmp/out" 2> "$tmp/err"
check "a library without the setuid bit is not preloaded into a setuid program" \
    grep -q 'secure=1 zeropool=0' "$tmp/out"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
