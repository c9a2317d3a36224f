#!/usr/bin/env bash
# zeropool on a running service, as an admin meets it: statistics of a service stopped by
# SIGTERM or SIGINT (and the same exit status as without zeropool), a relative statistics path
# resolved at start-up, ZEROPOOL_STATS_FILE alone meaning JSON, a failure kept quiet, a daemon
# that starts as root and drops to nobody (its file, opened only at exit, is then refused:
# services are watched with `zeropool status`), the coverage note for a process that keeps its
# own memory, the system-wide file (named through ZEROPOOL_CONF_FILE, never the real /etc),
# and `zeropool status` on live processes. Waits are for conditions (with a generous limit), never for a fixed time.
# Usage: test_ops.sh LIBZEROPOOL SERVICE ZEROPOOL-COMMAND ZEROPOOL-CONFIG ZEROPOOL-STATUS
set -uo pipefail
LIB=$(realpath "$1") SERVICE=$(realpath "$2") CMD=$(realpath "$3") HELPER=$(realpath "$4")
STATUS=$(realpath "$5")
export ZEROPOOL_CONFIG_HELPER=$HELPER ZEROPOOL_LIB=$LIB ZEROPOOL_STATUS_HELPER=$STATUS

# shellcheck source=tests/ops/common.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/common.sh"
tmp=$(mktemp -d /tmp/zp-ops.XXXXXX)
chmod 755 "$tmp"
mkdir -m 1777 "$tmp/r" # the ready files, written by services that became nobody
trap ops_cleanup EXIT
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
# SIGINT keeps its default action even with statistics asked for: programs install their own
# handler only over the default (CPython's KeyboardInterrupt does), so a handler of ours there
# changes what Ctrl-C does to them.
want=$(python3 -c 'import signal; print(signal.getsignal(signal.SIGINT))' 2>&1)
got=$(ZEROPOOL_STATS=1 LD_PRELOAD="$LIB" python3 -c 'import signal; print(signal.getsignal(signal.SIGINT))' 2>/dev/null)
check "SIGINT: python3 installs its KeyboardInterrupt handler under ZEROPOOL_STATS=1 ($want)" [ "$got" = "$want" ]
start quiet serve
stop quiet TERM
check "without statistics asked for, nothing is written and the signal is untouched" \
  [ "$status" = 143 ] && [ ! -s "$tmp/quiet.err" ]

#### the statistics file: absolute at start-up, JSON alone, failures named ####
mkdir "$tmp/run"
(cd "$tmp/run" && start rel serve ZEROPOOL_STATS_FILE=rel-%p.json && echo "$pid" >"$tmp/rel.pid" && stop rel TERM)
relpid=$(cat "$tmp/rel.pid")
check "relative path: made absolute at start-up" test -s "$tmp/run/rel-$relpid.json"
check "ZEROPOOL_STATS_FILE alone: JSON with the pid" json_ok "$tmp/run/rel-$relpid.json" "$relpid"
start nodir serve ZEROPOOL_STATS_FILE="$tmp/nodir/s.json"
stop nodir TERM
check "failure: nothing on the program's stderr" [ ! -s "$tmp/nodir.err" ]

#### a service watched from outside ####
start tick serve ZEROPOOL_STATS_FILE="$tmp/tick.json"
tickpid=$pid

#### zeropool status on a live process ####
"$CMD" status "$tickpid" >"$tmp/status.out" 2>&1
check "status PID: exit status 0" [ $? = 0 ]
check "status PID: loaded" contains "$tmp/status.out" "zeropool: loaded, version"
check "status PID: the library's path" contains "$tmp/status.out" "library:  $(dirname "$LIB")/libzeropool.so"
check "status PID: settings with their source" contains "$tmp/status.out" "ZEROPOOL_STATS_FILE=$tmp/tick.json  (env)"
check "status PID: the implied format" contains "$tmp/status.out" "ZEROPOOL_STATS=json  (implied by ZEROPOOL_STATS_FILE)"
check "status PID: live counters" grep -qE '^    pool\.gets +[1-9][0-9]*$' "$tmp/status.out"
check "status PID: small blocks" grep -qE '^    small\.frees +[1-9][0-9]*$' "$tmp/status.out"
"$CMD" status >"$tmp/status-all.out" 2>&1
check "status: lists the live process" grep -qE "^$tickpid +" "$tmp/status-all.out"
"$CMD" status $$ >"$tmp/status-no.out" 2>&1
check "status PID of a process without zeropool: exit 1, not loaded" \
  [ $? = 1 ] && contains "$tmp/status-no.out" "zeropool: not loaded"
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1 && command -v setpriv >/dev/null; then
  setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups "$CMD" status "$tickpid" >"$tmp/status-nobody.out" 2>&1
  check "status of another user's process: says it cannot read it" \
    contains "$tmp/status-nobody.out" "cannot read its /proc/PID/maps"
fi
pid=$tickpid
stop tick TERM
check "a final write at SIGTERM" json_ok "$tmp/tick.json" "$tickpid"

#### a daemon that starts as root and drops privileges ####
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
  mkdir -m 755 "$tmp/rootdir"
  start daemon drop ZEROPOOL_STATS_FILE="$tmp/rootdir/daemon.json"
  dpid=$pid
  check "daemon: runs as nobody now" [ "$(stat -c %U /proc/$dpid)" = nobody ]
  stop daemon TERM
  check "daemon: stopped by SIGTERM (143)" [ "$status" = 143 ]
  check "daemon: no file once it cannot write the root-owned directory (nothing held open)" \
    [ ! -e "$tmp/rootdir/daemon.json" ]
  check "daemon: no complaint on its stderr" [ ! -s "$tmp/daemon.err" ]

  start master fork-drop ZEROPOOL_STATS_FILE="$tmp/rootdir/w-%p.json"
  mpid=$pid
  wpid=$(awk '{print $2}' "$tmp/r/master.ready")
  kill -TERM "$wpid"
  wait_for gone "$mpid" || kill -KILL "$mpid"
  wait "$mpid"
  status=$?
  check "forked worker: master and worker died by SIGTERM" [ "$status" = 143 ]
  check "forked worker (setuid after fork): no file, nothing held" [ ! -e "$tmp/rootdir/w-$wpid.json" ]
  check "master: its own file at exit by the signal" json_ok "$tmp/rootdir/w-$mpid.json" "$mpid"
else
  echo "skip the privilege-drop daemon: needs root and the user nobody"
fi

#### coverage: a process that keeps its own memory ####
start hold "hold 64" ZEROPOOL_STATS_FILE="$tmp/hold.json"
hpid=$pid
long_lived() { [ "$(ps -o etimes= -p "$hpid" | tr -d ' ')" -ge 11 ]; }
wait_for long_lived
stop hold TERM
check "coverage: the note once the process is long-lived" contains "$tmp/hold.json" "zeropool cannot scrub it"
check "coverage: RSS is there" grep -qE '"rss_bytes":[0-9]{8,}' "$tmp/hold.json"
start busy serve ZEROPOOL_STATS_FILE="$tmp/busy.json"
stop busy TERM
check "coverage: no note for a young process" \
  eval '! contains "$tmp/busy.json" "cannot scrub" && contains "$tmp/busy.json" "\"freed_bytes\":"'

#### descriptors: a closed 0, 1 or 2 stays closed ####
# Nothing is opened before the exit: a program started with stdin closed must still find
# descriptor 0 closed (CPython's test_posix spawns one that checks exactly that).
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
check "descriptors: closed stdin stays closed with a statistics file" \
  closed_later 2.5 LD_PRELOAD="$LIB" ZEROPOOL_STATS_FILE="$tmp/fdi.json"

#### the system-wide file (a test copy, named by ZEROPOOL_CONF_FILE) ####
printf '# test\nstats:1\nthreshold:128K\n' >"$tmp/sys.conf"
start sys serve ZEROPOOL_CONF_FILE="$tmp/sys.conf" ZEROPOOL_CONF=threshold:256K
stop sys TERM
check "system-wide file: read by the library (stats:1 from it)" contains "$tmp/sys.err" "zeropool: statistics (pid"
check "system-wide file: ZEROPOOL_CONF wins over it" grep -qE '^    threshold +256K$' "$tmp/sys.err"
printf 'threshold:128K;pin:on\n' >"$tmp/bad.conf"
env LD_PRELOAD="$LIB" ZEROPOOL_CONF_FILE="$tmp/bad.conf" true 2>"$tmp/badconf.err"
check "system-wide file: a bad entry changes no program's output" [ ! -s "$tmp/badconf.err" ]
ZEROPOOL_CONF_FILE="$tmp/bad.conf" "$CMD" config >"$tmp/badconf.out" 2>&1
check "system-wide file: zeropool config names the bad entry with the file, once, with the hint" \
  [ "$(grep -c "$tmp/bad.conf key threshold" "$tmp/badconf.out")" = 1 ] &&
  contains "$tmp/badconf.out" "separates entries with ','"
env LD_PRELOAD="$LIB" ZEROPOOL_LIB=/x ZEROPOOL_CONFIG_HELPER=/y true 2>"$tmp/own.err"
check "the command's own variables are not unknown to the library" [ ! -s "$tmp/own.err" ]

ops_finish
