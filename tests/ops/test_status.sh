#!/usr/bin/env bash
# `zeropool status`: a running process read from outside, with nothing running in it. A process
# with no statistics variable at all; one in another mount namespace whose library path does
# not exist outside it; one whose library file was replaced, then removed, on disk (it needs a
# restart); a user who is not root (their own processes, and a count of the others with the
# reason); --json; --every. Waits are for conditions, never for a fixed time.
# Usage: test_status.sh LIBZEROPOOL ZEROPOOL-COMMAND ZEROPOOL-STATUS
set -uo pipefail
LIB=$(realpath "$1") CMD=$(realpath "$2") STATUS=$(realpath "$3")
export ZEROPOOL_STATUS_HELPER=$STATUS

# shellcheck source=tests/ops/common.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/common.sh"
tmp=$(mktemp -d /tmp/zp-status.XXXXXX)
chmod 755 "$tmp"
trap ops_cleanup EXIT
mapped() { grep -q libzeropool "/proc/$1/maps" 2>/dev/null; }

# A process that allocated (small and large blocks) and now waits: python3, the sort of
# program a service is. $1: the library to preload; the rest: env assignments.
serve_py='import time
b = [bytearray(1 << 20) for _ in range(4)]; del b
s = [bytes(100) * i for i in range(200)]; del s
print("ready", flush=True)
time.sleep(120)'
sleeper() {
  local lib=$1
  shift
  env LD_PRELOAD="$lib" "$@" python3 -c "$serve_py" >"$tmp/sleeper.out" 2>&1 &
  pid=$!
  pids+=("$pid")
  wait_for mapped "$pid"
  wait_for grep -q ready "$tmp/sleeper.out"
}
reads_counters() { grep -qE '^    pool\.gets +[1-9][0-9]*$' "$1" && grep -qE '^    small\.frees +[1-9]' "$1"; }

#### no statistics variable at all ####
sleeper "$LIB"
plain=$pid
"$CMD" status "$plain" >"$tmp/plain.out" 2>&1
check "no statistics variable: exit 0" [ $? = 0 ]
check "no statistics variable: version and build id" grep -qE '^  zeropool: loaded, version [^ ]+, build id [0-9a-f]{16,}' "$tmp/plain.out"
check "no statistics variable: settings with their source" contains "$tmp/plain.out" "ZEROPOOL_THRESHOLD=64K  (default)"
check "no statistics variable: live counters" reads_counters "$tmp/plain.out"
check "no statistics variable: no restart note" eval '! contains "$tmp/plain.out" "restarted"'

"$CMD" status --json "$plain" >"$tmp/plain.json" 2>&1
check "--json: one object with settings, counters and the pid" python3 -c '
import json, sys
o = json.loads(open(sys.argv[1]).read())
assert o["pid"] == int(sys.argv[2]) and o["state"] == "ok"
assert o["settings"]["THRESHOLD"] == {"value": "64K", "source": "default"}
assert o["counters"]["pool.gets"] > 0 and o["counters"]["small.frees"] > 0
assert o["library_replaced"] is False and o["rejected"] == []' "$tmp/plain.json" "$plain"

#### which limit set the budget ####
# Under a 2 GiB RLIMIT_AS, the automatic budget follows it: status names that limit (the
# plain process above names whichever limit this machine's budget follows).
check "the budget's source in status" grep -qE '^    ZEROPOOL_POOL_BYTES=[0-9]+[KMG]?  \(auto: [0-9]+ MiB [A-Za-z]' "$tmp/plain.out"
(ulimit -v $((2048 * 1024)) && exec env LD_PRELOAD="$LIB" python3 -c "$serve_py") >"$tmp/sleeper.out" 2>&1 &
pid=$!
pids+=("$pid")
wait_for mapped "$pid"
wait_for grep -q ready "$tmp/sleeper.out"
"$CMD" status "$pid" >"$tmp/rlimit.out" 2>&1
check "RLIMIT_AS sets the budget, and status says so" contains "$tmp/rlimit.out" "(auto: 2048 MiB RLIMIT_AS)"
"$CMD" status --json "$pid" >"$tmp/rlimit.json"
check "--json: the budget's source" python3 -c '
import json, sys
o = json.loads(open(sys.argv[1]).read())
assert o["settings"]["POOL_BYTES"]["source"] == "auto: 2048 MiB RLIMIT_AS", o["settings"]["POOL_BYTES"]' "$tmp/rlimit.json"
kill "$pid"

#### rejected values of the system-wide file, in memory ####
printf 'threshold:12x\nno_such_key:1\n' >"$tmp/bad.conf"
sleeper "$LIB" ZEROPOOL_CONF_FILE="$tmp/bad.conf"
check "a bad system-wide file: nothing on the program's output" [ "$(cat "$tmp/sleeper.out")" = ready ]
"$CMD" status "$pid" >"$tmp/bad.out" 2>&1
check "status shows each rejected value with its reason" \
  eval 'contains "$tmp/bad.out" "key threshold=12x is invalid: expected a size" && contains "$tmp/bad.out" "unknown $tmp/bad.conf key no_such_key"'
"$CMD" status --json "$pid" >"$tmp/bad.json"
check "--json: the rejected values" python3 -c '
import json, sys
o = json.loads(open(sys.argv[1]).read())
assert o["rejected_count"] == 2 and any("threshold=12x" in r for r in o["rejected"])' "$tmp/bad.json"
kill "$pid"

#### --every repeats ####
timeout 5 "$CMD" status --every 1s --json "$plain" >"$tmp/every.out" 2>&1
check "--every 1s: repeated (at least two objects in 5 s)" [ "$(grep -c '"pid"' "$tmp/every.out")" -ge 2 ]

#### every process ####
"$CMD" status >"$tmp/all.out" 2>&1
check "status alone: lists the process" grep -qE "^$plain +" "$tmp/all.out"
"$CMD" status --json >"$tmp/all.json" 2>&1
check "status --json alone: a list" python3 -c '
import json, sys
l = json.loads(open(sys.argv[1]).read())
assert any(o["pid"] == int(sys.argv[2]) for o in l)' "$tmp/all.json" "$plain"

#### the version of the library the process mapped, not of the one on disk ####
# A copy whose version text reads 9.9.9 (same length, every occurrence), then upgraded on disk to
# the real one: status must report the version in the process's memory, not the file's.
mkdir -p "$tmp/ver"
ver=$(sed -n 's/^  zeropool: loaded, version \([^ ,]*\),.*/\1/p' "$tmp/plain.out")
if [ "${#ver}" = 5 ]; then
  python3 -c 'import sys; d = open(sys.argv[1], "rb").read(); open(sys.argv[2], "wb").write(d.replace(sys.argv[3].encode(), b"9.9.9"))' \
    "$LIB" "$tmp/ver/libzeropool.so.0" "$ver"
  sleeper "$tmp/ver/libzeropool.so.0"
  cp "$LIB" "$tmp/ver/new.so" && mv "$tmp/ver/new.so" "$tmp/ver/libzeropool.so.0" # the upgrade
  "$CMD" status "$pid" >"$tmp/ver.out" 2>&1
  check "after an upgrade: the mapped library's version (9.9.9), not the file's now ($ver)" \
    grep -qE '^  zeropool: loaded, version 9\.9\.9,' "$tmp/ver.out"
  check "after an upgrade: restart needed" contains "$tmp/ver.out" "restart needed"
  kill "$pid"
else
  echo "skip the version check: version '$ver' is not five characters"
fi

#### the library replaced, then removed, on disk ####
mkdir "$tmp/lib"
cp "$LIB" "$tmp/lib/libzeropool.so.0"
sleeper "$tmp/lib/libzeropool.so.0"
moved=$pid
cp "$LIB" "$tmp/lib/new.so" && mv "$tmp/lib/new.so" "$tmp/lib/libzeropool.so.0" # an upgrade
"$CMD" status "$moved" >"$tmp/replaced.out" 2>&1
check "library replaced on disk: still read" reads_counters "$tmp/replaced.out"
check "library replaced on disk: says it needs a restart" contains "$tmp/replaced.out" "until it is restarted"
check "library replaced on disk: the detail says \"restart needed\"" contains "$tmp/replaced.out" "restart needed"
"$CMD" status --json "$moved" >"$tmp/replaced.json" 2>&1
check "library replaced on disk: --json says restart_needed" python3 -c '
import json, sys
o = json.loads(open(sys.argv[1]).read())
assert o["library_replaced"] is True and o["restart_needed"] is True' "$tmp/replaced.json"
"$CMD" status >"$tmp/replaced-list.out" 2>&1
check "library replaced on disk: the list marks it \"restart needed\"" \
  grep -qE "^$moved +.* restart needed\$" "$tmp/replaced-list.out"
"$CMD" status --json >"$tmp/replaced-list.json" 2>&1
check "library replaced on disk: the --json list says restart_needed" python3 -c '
import json, sys
l = json.loads(open(sys.argv[1]).read())
assert [o["restart_needed"] for o in l if o["pid"] == int(sys.argv[2])] == [True]
assert [o["restart_needed"] for o in l if o["pid"] == int(sys.argv[3])] == [False]' \
  "$tmp/replaced-list.json" "$moved" "$plain"
rm -f "$tmp/lib/libzeropool.so.0"
"$CMD" status "$moved" >"$tmp/removed.out" 2>&1
check "library removed on disk: still read" reads_counters "$tmp/removed.out"
check "library removed on disk: says it needs a restart" contains "$tmp/removed.out" "until it is restarted"
check "library removed on disk: the detail says \"restart needed\"" contains "$tmp/removed.out" "restart needed"

#### another mount namespace ####
if [ "$(id -u)" = 0 ] && unshare -m true 2>/dev/null; then
  mkdir "$tmp/ns"
  # The library exists only inside the namespace, at a path that is empty outside it.
  unshare -m --propagation private sh -c '
    mount -t tmpfs zp-status "$1" && cp "$2" "$1/libzeropool.so.0" &&
    exec env LD_PRELOAD="$1/libzeropool.so.0" python3 -c "$3"' sh "$tmp/ns" "$LIB" "$serve_py" >"$tmp/ns.out" 2>&1 &
  nspid=$!
  pids+=("$nspid")
  wait_for grep -q ready "$tmp/ns.out"
  check "mount namespace: the library's path does not exist here" [ ! -e "$tmp/ns/libzeropool.so.0" ]
  "$CMD" status "$nspid" >"$tmp/ns-status.out" 2>&1
  check "mount namespace: read" reads_counters "$tmp/ns-status.out"
  check "mount namespace: not mistaken for a replaced library" eval '! contains "$tmp/ns-status.out" "restart"'

  # A container's /etc: the process read its own /etc/zeropool.conf (a copy of /etc bound over
  # /etc in its mount namespace). status shows what that process parsed, from its memory, never
  # the host's file (the host has none here, or another one).
  cp -a /etc "$tmp/etc"
  printf 'threshold:128K\nno_such_key:1\n' >"$tmp/etc/zeropool.conf"
  unshare -m --propagation private sh -c '
    mount --bind "$1/etc" /etc &&
    exec env LD_PRELOAD="$2" python3 -c "$3"' sh "$tmp" "$LIB" "$serve_py" >"$tmp/ct.out" 2>&1 &
  ctpid=$!
  pids+=("$ctpid")
  wait_for grep -q ready "$tmp/ct.out"
  check "container /etc: the host's file is not the container's" \
    eval '! grep -qs "^threshold:128K" /etc/zeropool.conf'
  "$CMD" status "$ctpid" >"$tmp/ct-status.out" 2>&1
  check "container /etc: status shows the threshold the process read from its own /etc" \
    contains "$tmp/ct-status.out" "ZEROPOOL_THRESHOLD=128K  (/etc/zeropool.conf)"
  check "container /etc: status shows that file's rejected key" \
    contains "$tmp/ct-status.out" "unknown /etc/zeropool.conf key no_such_key"
  check "container /etc: nothing on the program's output" [ "$(cat "$tmp/ct.out")" = ready ]
else
  echo "skip the mount namespace: needs root and unshare -m"
fi

#### a user who is not root ####
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1 && getent group nogroup >/dev/null &&
  [ -x /usr/bin/python3 ]; then
  asnobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
  nobody=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
  cp "$LIB" "$tmp/lib/libzeropool.so.0"
  chmod 755 "$tmp/lib" && chmod 644 "$tmp/lib/libzeropool.so.0"
  # The system's python3: a python3 found in root's PATH may live where nobody cannot go.
  "${nobody[@]}" env LD_PRELOAD="$tmp/lib/libzeropool.so.0" /usr/bin/python3 -c "$serve_py" \
    >"$tmp/nobody.out" 2>&1 &
  npid=$!
  pids+=("$npid")
  wait_for grep -q ready "$tmp/nobody.out"
  asnobody "$CMD" status "$npid" >"$tmp/own.out" 2>&1
  check "not root: the user's own process is read" reads_counters "$tmp/own.out"
  asnobody "$CMD" status "$plain" >"$tmp/other.out" 2>&1
  st=$?
  check "not root: another user's process: exit 1 and why" \
    eval '[ $st = 1 ] && contains "$tmp/other.out" "run as root or as the process'"'"'s user"'
  asnobody "$CMD" status >"$tmp/list.out" 2>&1
  check "not root: the list shows the user's own process" grep -qE "^$npid +nobody" "$tmp/list.out"
  check "not root: the list counts the others it could not read, and why" \
    grep -qE "^[0-9]+ process(es)? could not be read: another user's" "$tmp/list.out"
  # pin:on in the system-wide file and a small RLIMIT_MEMLOCK (nobody has no CAP_IPC_LOCK):
  # mlock fails, and the program's stderr stays its own (the file is not the program's);
  # status says so. With ZEROPOOL_PIN=1 in its own environment, or VERBOSE, one line on stderr.
  printf 'pin:on\n' >"$tmp/pin.conf"
  chmod 644 "$tmp/pin.conf"
  pinlib=(env LD_PRELOAD="$tmp/lib/libzeropool.so.0" ZEROPOOL_CONF_FILE="$tmp/pin.conf")
  (ulimit -l 64 && exec "${nobody[@]}" "${pinlib[@]}" /usr/bin/python3 -c "$serve_py") \
    >"$tmp/pin.out" 2>&1 &
  pinpid=$!
  pids+=("$pinpid")
  wait_for grep -q ready "$tmp/pin.out"
  check "pin:on in the file at RLIMIT_MEMLOCK: nothing on the program's output" \
    [ "$(cat "$tmp/pin.out")" = ready ]
  "$CMD" status "$pinpid" >"$tmp/pin-status.out" 2>&1
  check "pin:on in the file at RLIMIT_MEMLOCK: status says mlock failed" \
    grep -qE "^  pin: +mlock failed" "$tmp/pin-status.out"
  check "pin:on in the file at RLIMIT_MEMLOCK: the counter" \
    grep -qE "^    pool\.pin_failures +[1-9]" "$tmp/pin-status.out"
  "$CMD" status "$plain" >"$tmp/nopin-status.out" 2>&1
  check "no pinning: no mlock line" eval '! grep -q "mlock failed" "$tmp/nopin-status.out"'
  pin_once='b = [bytearray(1 << 20) for _ in range(4)]; del b'
  (ulimit -l 64 && exec "${nobody[@]}" "${pinlib[@]}" ZEROPOOL_PIN=1 /usr/bin/python3 -c "$pin_once") \
    >"$tmp/pin-env.out" 2>&1
  check "ZEROPOOL_PIN=1 in its own environment: the warning, once" \
    [ "$(grep -c "zeropool: mlock failed" "$tmp/pin-env.out")" = 1 ]
  (ulimit -l 64 && exec "${nobody[@]}" "${pinlib[@]}" ZEROPOOL_VERBOSE=1 /usr/bin/python3 -c "$pin_once") \
    >"$tmp/pin-verbose.out" 2>&1
  check "pin:on in the file with ZEROPOOL_VERBOSE=1: the warning, once" \
    [ "$(grep -c "zeropool: mlock failed" "$tmp/pin-verbose.out")" = 1 ]
  # Without root, /proc/PID/map_files is closed: the block is found in the mapped data.
  rm -f "$tmp/lib/libzeropool.so.0"
  asnobody "$CMD" status "$npid" >"$tmp/own-removed.out" 2>&1
  check "not root: the user's process whose library was removed is read" \
    reads_counters "$tmp/own-removed.out"
  check "not root: ... and needs a restart" contains "$tmp/own-removed.out" "restart needed"
  asnobody "$CMD" status >"$tmp/list-removed.out" 2>&1
  check "not root: the list marks the user's process \"restart needed\"" \
    grep -qE "^$npid +nobody .* restart needed\$" "$tmp/list-removed.out"
  check "not root: the summary counts the unreadable ones even when some were read" \
    grep -qE "^[0-9]+ process(es)? could not be read: another user's.*unknown \(run as root" "$tmp/list-removed.out"
else
  echo "skip the user who is not root: needs root, nobody, nogroup and /usr/bin/python3"
fi

ops_finish
