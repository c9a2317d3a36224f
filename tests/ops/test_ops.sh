#!/usr/bin/env bash
# zeropool on a running service, as an admin meets it: statistics of a service stopped by
# SIGTERM or SIGINT (and the same exit status as without zeropool), a relative statistics path
# resolved at start-up, ZEROPOOL_STATS_FILE alone meaning JSON, a failure naming the path and
# the errno, periodic writes (ZEROPOOL_STATS_INTERVAL), a daemon that starts as root and drops
# to nobody (after start-up, and in a forked worker) still writing its file in a root-owned
# directory, the coverage note for a process that keeps its own memory, the system-wide file
# (named through ZEROPOOL_CONF_FILE, never the real /etc), and `zeropool status` on live
# processes. Waits are for conditions (with a generous limit), never for a fixed time.
# Usage: test_ops.sh LIBZEROPOOL SERVICE ZEROPOOL-COMMAND ZEROPOOL-CONFIG
set -uo pipefail
LIB=$(realpath "$1") SERVICE=$(realpath "$2") CMD=$(realpath "$3") HELPER=$(realpath "$4")
export ZEROPOOL_CONFIG_HELPER=$HELPER ZEROPOOL_LIB=$LIB
while IFS='=' read -r var _; do
  case $var in ZEROPOOL_LIB | ZEROPOOL_CONFIG_HELPER) ;; ZEROPOOL_*) unset "$var" ;; esac
done < <(env)

tmp=$(mktemp -d /tmp/zp-ops.XXXXXX)
chmod 755 "$tmp"
mkdir -m 1777 "$tmp/r" # the ready files, written by services that became nobody
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT

passed=0 failed=0
check() { # description, command...
  local what=$1
  shift
  if "$@"; then
    passed=$((passed + 1))
    echo "ok   $what"
  else
    failed=$((failed + 1))
    echo "FAIL $what"
  fi
}
wait_for() { # up to 30 s for a condition (a command)
  local i
  for ((i = 0; i < 300; i++)); do
    "$@" && return 0
    sleep 0.1
  done
  return 1
}
contains() { grep -qF -- "$2" "$1" 2>/dev/null; }
json_ok() { python3 -c 'import json,sys; o=json.load(open(sys.argv[1]))["zeropool"]; sys.exit(0 if o["pid"] == int(sys.argv[2]) else 1)' "$1" "$2" 2>/dev/null; }

# start NAME MODE [ENV...]: the service in the background under the preload; $pid, ready file.
pid=""
start() {
  local name=$1 mode=$2
  shift 2
  rm -f "$tmp/r/$name.ready"
  # --default-signal: a background job of a script starts with SIGINT ignored.
  env --default-signal=INT,TERM LD_PRELOAD="$LIB" READY="$tmp/r/$name.ready" "$@" "$SERVICE" $mode >"$tmp/$name.out" 2>"$tmp/$name.err" &
  pid=$!
  pids+=("$pid")
  wait_for test -s "$tmp/r/$name.ready" || echo "     ($name never became ready: $(cat "$tmp/$name.err"))"
}
gone() { # the process has ended (a zombie counts)
  local state
  state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)
  [ -z "$state" ] || [ "$state" = Z ]
}
stop() { # NAME SIGNAL: sends it, waits (SIGKILL after 30 s: a hang must fail, not block), $status
  kill "-$2" "$pid"
  wait_for gone "$pid" || { echo "     ($1 ignored SIG$2)"; kill -KILL "$pid"; }
  wait "$pid"
  status=$?
}

#### a service stopped by SIGTERM or SIGINT writes its statistics and dies by the signal ####
env --default-signal=INT,TERM READY="$tmp/plain.ready" "$SERVICE" serve >/dev/null 2>&1 &
pid=$!
pids+=("$pid")
wait_for test -s "$tmp/plain.ready"
stop plain TERM
plain_status=$status
start term serve ZEROPOOL_STATS=1
stop term TERM
check "SIGTERM: the same exit status as without zeropool ($plain_status)" [ "$status" = "$plain_status" ]
check "SIGTERM: killed by the signal (143)" [ "$status" = 143 ]
check "SIGTERM: the statistics on stderr" contains "$tmp/term.err" "zeropool: statistics (pid $pid"
start int serve ZEROPOOL_STATS=on
stop int INT
check "SIGINT: killed by the signal (130)" [ "$status" = 130 ]
check "SIGINT: ZEROPOOL_STATS=on works, statistics on stderr" contains "$tmp/int.err" "zeropool: statistics (pid $pid"
start quiet serve
stop quiet TERM
check "without statistics asked for, nothing is written and the signal is untouched" \
  [ "$status" = 143 ] && [ ! -s "$tmp/quiet.err" ]

#### the statistics file: absolute at start-up, JSON alone, failures named ####
mkdir "$tmp/run"
(cd "$tmp/run" && start rel drop ZEROPOOL_STATS_FILE=rel-%p.json && echo "$pid" >"$tmp/rel.pid" && stop rel TERM)
relpid=$(cat "$tmp/rel.pid")
if [ "$(id -u)" = 0 ]; then
  check "relative path: made absolute at start-up (the service moved to / and became nobody)" \
    test -s "$tmp/run/rel-$relpid.json"
  check "ZEROPOOL_STATS_FILE alone: JSON with the pid" json_ok "$tmp/run/rel-$relpid.json" "$relpid"
  check "nothing left in /" [ ! -e "/rel-$relpid.json" ]
fi
start nodir serve ZEROPOOL_STATS_FILE="$tmp/nodir/s.json"
stop nodir TERM
check "failure names the path and the errno" \
  contains "$tmp/nodir.err" "cannot create the statistics file $tmp/nodir/s.json: ENOENT (errno 2)"
check "failure: statistics on stderr instead" contains "$tmp/nodir.err" '{"zeropool":{'

#### periodic writes ####
start tick serve ZEROPOOL_STATS_FILE="$tmp/tick.json" ZEROPOOL_STATS_INTERVAL=1s
check "interval: the file is written while the service runs" wait_for json_ok "$tmp/tick.json" "$pid"
check "interval: one timer thread, named" grep -qx zeropool-stats /proc/"$pid"/task/*/comm
first=$(stat -c %Y.%N "$tmp/tick.json" 2>/dev/null || echo none)
newer() { [ "$(stat -c %Y.%N "$tmp/tick.json" 2>/dev/null)" != "$first" ]; }
check "interval: rewritten again" wait_for newer
check "interval: no temporary file left" [ -z "$(find "$tmp" -maxdepth 1 -name 'tick.json.tmp*')" ]
tickpid=$pid

#### zeropool status on a live process ####
"$CMD" status "$tickpid" >"$tmp/status.out" 2>&1
check "status PID: exit status 0" [ $? = 0 ]
check "status PID: loaded" contains "$tmp/status.out" "zeropool: loaded, version"
check "status PID: the library's path" contains "$tmp/status.out" "library:  $(dirname "$LIB")/libzeropool.so"
check "status PID: settings with their source" contains "$tmp/status.out" "ZEROPOOL_STATS_INTERVAL=1s  (env)"
check "status PID: the implied format" contains "$tmp/status.out" "ZEROPOOL_STATS=json  (implied by ZEROPOOL_STATS_FILE)"
check "status PID: live statistics" contains "$tmp/status.out" "live statistics: $tmp/tick.json"
check "status PID: live counters" grep -qE '^    gets [0-9]+' "$tmp/status.out"
check "status PID: coverage" grep -qE '^    rss_bytes [0-9]+' "$tmp/status.out"
"$CMD" status >"$tmp/status-all.out" 2>&1
check "status: lists the live process" grep -qE "^$tickpid +" "$tmp/status-all.out"
"$CMD" status $$ >"$tmp/status-no.out" 2>&1
check "status PID of a process without zeropool: exit 1, not loaded" \
  [ $? = 1 ] && contains "$tmp/status-no.out" "zeropool: not loaded"
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1 && command -v setpriv >/dev/null; then
  setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups "$CMD" status "$tickpid" >"$tmp/status-nobody.out" 2>&1
  check "status of another user's process: says it cannot read it" \
    contains "$tmp/status-nobody.out" "cannot read /proc/$tickpid/maps"
fi
pid=$tickpid
stop tick TERM
check "interval: a final write at SIGTERM" json_ok "$tmp/tick.json" "$tickpid"

#### a daemon that starts as root and drops privileges ####
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
  mkdir -m 755 "$tmp/rootdir"
  start daemon drop ZEROPOOL_STATS_FILE="$tmp/rootdir/daemon.json"
  dpid=$pid
  check "daemon: runs as nobody now" [ "$(stat -c %U /proc/$dpid)" = nobody ]
  stop daemon TERM
  check "daemon: stopped by SIGTERM (143)" [ "$status" = 143 ]
  check "daemon: its statistics file exists in the root-owned directory" json_ok "$tmp/rootdir/daemon.json" "$dpid"
  check "daemon: no complaint" [ ! -s "$tmp/daemon.err" ]

  start master fork-drop ZEROPOOL_STATS_FILE="$tmp/rootdir/w-%p.json"
  mpid=$pid
  wpid=$(awk '{print $2}' "$tmp/r/master.ready")
  kill -TERM "$wpid"
  wait_for gone "$mpid" || kill -KILL "$mpid"
  wait "$mpid"
  status=$?
  check "forked worker: master and worker died by SIGTERM" [ "$status" = 143 ]
  check "forked worker (setuid after fork): its own file" json_ok "$tmp/rootdir/w-$wpid.json" "$wpid"
  check "master: its own file at exit by the signal" json_ok "$tmp/rootdir/w-$mpid.json" "$mpid"
else
  echo "skip the privilege-drop daemon: needs root and the user nobody"
fi

#### coverage: a process that keeps its own memory ####
start hold "hold 64" ZEROPOOL_STATS_FILE="$tmp/hold.json" ZEROPOOL_STATS_INTERVAL=1s
hpid=$pid
noted() { contains "$tmp/hold.json" "zeropool cannot scrub it"; }
check "coverage: the note once the process is long-lived" wait_for noted
check "coverage: RSS is there" grep -qE '"rss_bytes":[0-9]{8,}' "$tmp/hold.json"
start busy serve ZEROPOOL_STATS_FILE="$tmp/busy.json"
stop busy TERM
check "coverage: no note for a young process" \
  eval '! contains "$tmp/busy.json" "cannot scrub" && contains "$tmp/busy.json" "\"freed_bytes\":"'
pid=$hpid
stop hold TERM

#### descriptors: a closed 0, 1 or 2 stays closed ####
# The statistics file is held open from start-up (and reopened after each periodic rename):
# a program started with stdin closed must still find descriptor 0 closed (CPython's
# test_posix spawns one that checks exactly that).
closed_at_start() { # FD [VAR=VALUE...]: exit 0 when FD, closed at exec, is still closed in main
  local fd=$1
  shift
  ! env "$@" bash -c "/usr/bin/test -e /proc/self/fd/$fd $fd>&-"
}
closed_later() { # SECONDS [VAR=VALUE...]: exit 0 when a closed stdin is still closed after SECONDS
  local secs=$1
  shift
  env "$@" python3 -c 'import os, sys, time
time.sleep(float(sys.argv[1]))
try:
    os.fstat(0)
except OSError:
    sys.exit(0)
sys.exit(1)' "$secs" <&-
}
for fd in 0 1 2; do
  check "descriptors: without the preload, closed fd $fd is closed (the probe works)" \
    closed_at_start "$fd"
  check "descriptors: closed fd $fd stays closed with a statistics file" \
    closed_at_start "$fd" LD_PRELOAD="$LIB" ZEROPOOL_STATS_FILE="$tmp/fd$fd.json"
done
check "descriptors: without the preload, a closed stdin is closed later (the probe works)" \
  closed_later 2.5
check "descriptors: closed stdin stays closed after periodic writes" \
  closed_later 2.5 LD_PRELOAD="$LIB" ZEROPOOL_STATS_FILE="$tmp/fdi.json" ZEROPOOL_STATS_INTERVAL=1s

#### the system-wide file (a test copy, named by ZEROPOOL_CONF_FILE) ####
printf '# test\nstats:1\nthreshold:128K\n' >"$tmp/sys.conf"
start sys serve ZEROPOOL_CONF_FILE="$tmp/sys.conf" ZEROPOOL_CONF=threshold:256K
stop sys TERM
check "system-wide file: read by the library (stats:1 from it)" contains "$tmp/sys.err" "zeropool: statistics (pid"
check "system-wide file: ZEROPOOL_CONF wins over it" grep -qE '^    threshold +256K$' "$tmp/sys.err"
printf 'threshold:128K;pin:on\n' >"$tmp/bad.conf"
env LD_PRELOAD="$LIB" ZEROPOOL_CONF_FILE="$tmp/bad.conf" true 2>"$tmp/badconf.err"
check "system-wide file: a bad entry is named with the file, once, with the hint" \
  [ "$(grep -c "$tmp/bad.conf key threshold" "$tmp/badconf.err")" = 1 ] &&
  contains "$tmp/badconf.err" "separates entries with ','"
env LD_PRELOAD="$LIB" ZEROPOOL_LIB=/x ZEROPOOL_CONFIG_HELPER=/y true 2>"$tmp/own.err"
check "the command's own variables are not unknown to the library" [ ! -s "$tmp/own.err" ]

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
