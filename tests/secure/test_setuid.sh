#!/usr/bin/env bash
# Secure-execution mode (AT_SECURE): a setuid-root program run by an unprivileged user with
# libzeropool preloaded. ld.so preloads a library into a setuid program only from a standard
# directory, by a name without '/', and only if the library itself has the setuid bit: so a
# copy goes to the multiarch library directory under a test-only name, removed on exit.
# Checks: no ZEROPOOL_* variable counts (ZEROPOOL_VERBOSE, ZEROPOOL_STATS, ZEROPOOL_STATS_FILE,
# ZEROPOOL_CONF): one line says so, no statistics reach the invoking user and no file is
# created. Only /etc/zeropool.conf counts, and only when root owns it and nobody else may write
# it (a refused file says nothing on the program's stderr): a test file is put there in a private mount namespace (an overlay over /etc), never on
# the real system. A control run of a non-setuid copy honours the variables.
# Usage: test_setuid.sh LIBZEROPOOL PROBE   Exit 77 (skip) when not root, when the filesystem
# is mounted nosuid, or when setpriv or the nobody user is missing; the /etc/zeropool.conf
# sub-case alone is skipped, with a message, when the kernel refuses the mount namespace.
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
not() { ! "$@"; }

#### control: not setuid, full path: the stats file is written ####
as_nobody env LD_PRELOAD="$LIB" ZEROPOOL_STATS=1 ZEROPOOL_STATS_FILE="$tmp/stats/plain-%p.txt" \
    "$tmp/probe_plain" > "$tmp/out" 2> "$tmp/err"
check "control run (not setuid) exits 0" [ $? = 0 ]
check "control run is not in secure mode and has zeropool" grep -q 'secure=0 zeropool=1' "$tmp/out"
check "control run writes ZEROPOOL_STATS_FILE" has_file "$tmp/stats/plain-*.txt"
grep -qs 'zeropool: statistics' "$tmp"/stats/plain-*.txt
check "control stats file holds the statistics" [ $? = 0 ]
rm -f "$tmp"/stats/*

#### setuid-root program run by nobody: AT_SECURE, settings in the environment ####
note_re='^zeropool: secure-execution mode (setuid or setgid program): ZEROPOOL_[A-Z_]*'
as_nobody env LD_PRELOAD="$name" ZEROPOOL_VERBOSE=1 ZEROPOOL_STATS=1 \
    ZEROPOOL_STATS_FILE="$tmp/stats/suid-%p.txt" "$tmp/probe_suid" > "$tmp/out" 2> "$tmp/err"
check "setuid run exits 0" [ $? = 0 ]
check "setuid run has euid 0, ruid of nobody, AT_SECURE, zeropool mapped" \
    grep -q "euid=0 ruid=$(id -u nobody) secure=1 zeropool=1" "$tmp/out"
check "one line says the three variables are ignored" \
    grep -q "$note_re and 2 other variables ignored; only /etc/zeropool.conf counts\$" "$tmp/err"
check "that line is all the library writes" [ "$(wc -l < "$tmp/err")" = 1 ]
check "ZEROPOOL_VERBOSE is ignored (no 'active' line)" not grep -q '^zeropool: active' "$tmp/err"
check "ZEROPOOL_STATS is ignored (no statistics for the invoking user)" \
    not grep -q 'zeropool: statistics' "$tmp/err"
check "ZEROPOOL_STATS_FILE is ignored (no file created)" no_file
[ "$failed" = 0 ] || { show "$tmp/out"; show "$tmp/err"; }

#### the same through ZEROPOOL_CONF ####
as_nobody env LD_PRELOAD="$name" ZEROPOOL_CONF="stats:1,verbose:1,stats_file:$tmp/stats/conf-%p.txt" \
    "$tmp/probe_suid" > "$tmp/out" 2> "$tmp/err"
check "setuid run with ZEROPOOL_CONF exits 0" [ $? = 0 ]
check "one line says ZEROPOOL_CONF is ignored" \
    grep -qx "zeropool: secure-execution mode (setuid or setgid program): ZEROPOOL_CONF ignored; only /etc/zeropool.conf counts" "$tmp/err"
check "that line is all the library writes (ZEROPOOL_CONF)" [ "$(wc -l < "$tmp/err")" = 1 ]
check "no statistics file was created (ZEROPOOL_CONF)" no_file

#### /etc/zeropool.conf, in a private mount namespace: root-owned counts, others do not ####
# with_conf MODE OWNER TEXT COMMAND...: run COMMAND with TEXT as /etc/zeropool.conf, on an
# overlay over /etc visible to COMMAND only (tmpfs upper layer under $tmp/ns).
with_conf() {
    local mode=$1 owner=$2 text=$3; shift 3
    unshare -m --propagation private bash -c '
        set -e; ns=$1 mode=$2 owner=$3 text=$4; shift 4
        mkdir -p "$ns"; mount -t tmpfs zp-secure-test "$ns"; mkdir "$ns/up" "$ns/work"
        mount -t overlay zp-secure-test -o "lowerdir=/etc,upperdir=$ns/up,workdir=$ns/work" /etc
        printf "%s\n" "$text" > /etc/zeropool.conf
        chown "$owner" /etc/zeropool.conf; chmod "$mode" /etc/zeropool.conf
        exec "$@"' with_conf "$tmp/ns" "$mode" "$owner" "$text" "$@"
}
if ! with_conf 644 root "" true > "$tmp/nserr" 2>&1; then
    echo "SKIP /etc/zeropool.conf sub-case: the kernel refuses a mount namespace with an overlay over /etc:"
    show "$tmp/nserr"
else
    conf="verbose:on,stats:1
stats_file:$tmp/stats/file-%p.txt"
    with_conf 644 root "$conf" setpriv --reuid=nobody --regid="$group" --clear-groups --inh-caps=-all \
        env LD_PRELOAD="$name" ZEROPOOL_VERBOSE=0 ZEROPOOL_STATS=0 "$tmp/probe_suid" \
        > "$tmp/out" 2> "$tmp/err"
    check "setuid run with a root-owned /etc/zeropool.conf exits 0" [ $? = 0 ]
    check "the file's verbose:on counts over ZEROPOOL_VERBOSE=0" grep -q '^zeropool: active' "$tmp/err"
    check "the environment is still named as ignored" \
        grep -q "$note_re and 1 other variable ignored" "$tmp/err"
    check "the file's stats_file is written (root chose it)" has_file "$tmp/stats/file-*.txt"
    grep -qs 'zeropool: statistics' "$tmp"/stats/file-*.txt
    check "that file holds the statistics" [ $? = 0 ]
    [ "$failed" = 0 ] || { show "$tmp/out"; show "$tmp/err"; }
    rm -f "$tmp"/stats/*

    for bad in "664 root:root group-writable" "646 root:root other-writable" \
               "644 nobody:$group owned-by-nobody"; do
        set -- $bad
        with_conf "$1" "$2" "$conf" setpriv --reuid=nobody --regid="$group" --clear-groups \
            --inh-caps=-all env LD_PRELOAD="$name" "$tmp/probe_suid" > "$tmp/out" 2> "$tmp/err"
        check "$3 /etc/zeropool.conf: setuid run exits 0" [ $? = 0 ]
        # Refused quietly: every setuid program on the machine reads the file, and its output
        # must not change; the verdict stays in memory for `zeropool status`.
        check "$3 /etc/zeropool.conf is refused without a word on the program's stderr" \
            not grep -q '/etc/zeropool.conf' "$tmp/err"
        check "$3 /etc/zeropool.conf: none of its settings count" \
            not grep -q -e '^zeropool: active' -e 'zeropool: statistics' "$tmp/err"
        check "$3 /etc/zeropool.conf: no statistics file" no_file
    done
    [ "$failed" = 0 ] || { show "$tmp/out"; show "$tmp/err"; }
fi

#### without the setuid bit on the library, ld.so must not load it at all ####
chmod u-s "$libdir/$name"
as_nobody env LD_PRELOAD="$name" ZEROPOOL_VERBOSE=1 "$tmp/probe_suid" > "$tmp/out" 2> "$tmp/err"
check "a library without the setuid bit is not preloaded into a setuid program" \
    grep -q 'secure=1 zeropool=0' "$tmp/out"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
