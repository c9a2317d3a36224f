#!/usr/bin/env bash
# The program notices nothing of zeropool but zeros and speed: no thread under any option set,
# no descriptor held or reused (a daemon that closes every descriptor and opens its log or data
# file finds every line there), no signal handler unless statistics at exit were asked for, no
# output for a bad system-wide file, the statistics file written only as a new file renamed
# over a regular file of ours (never into a FIFO, a hard link or a symbolic link), and
# set*id calls and user namespaces that work as without the preload (they fail in a process
# with a second thread).
# Usage: test_invisible.sh LIBZEROPOOL PROBE
set -uo pipefail
LIB=$(realpath "$1") PROBE=$(realpath "$2")

# shellcheck source=tests/ops/common.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/common.sh"
tmp=$(mktemp -d /tmp/zp-invisible.XXXXXX)
chmod 755 "$tmp"
mkdir "$tmp/st"
trap ops_cleanup EXIT
pre() { env LD_PRELOAD="$LIB" "$@"; }

# The option sets every check runs under: none, every way of asking for statistics, and a
# system-wide file that asks for them (ZEROPOOL_CONF_FILE names a test copy).
printf 'stats:json\nstats_file:%s/st/conf-%%p.json\n' "$tmp" >"$tmp/stats.conf"
# An older release's periodic writes, in the file: the library must ignore the key quietly.
printf 'stats_file:%s/st/old-%%p.json\nstats_interval:1s\n' "$tmp" >"$tmp/interval.conf"
sets=(
  ""
  "ZEROPOOL_STATS=1"
  "ZEROPOOL_STATS=json"
  "ZEROPOOL_STATS_FILE=$tmp/st/s-%p.json"
  "ZEROPOOL_STATS_FILE=$tmp/st/one.json"
  "ZEROPOOL_CONF=stats:1,stats_file:$tmp/st/c-%p.json"
  "ZEROPOOL_CONF_FILE=$tmp/stats.conf"
  "ZEROPOOL_CONF_FILE=$tmp/interval.conf"
  "ZEROPOOL_VERBOSE=1 ZEROPOOL_TRACE_ALLOC=1 ZEROPOOL_PIN=1 ZEROPOOL_STATS_FILE=$tmp/st/v-%p.json"
  "ZEROPOOL_ON_ERROR=report ZEROPOOL_ZERO_ON_ALLOC=verify ZEROPOOL_GUARD=0 ZEROPOOL_TLS_CACHE=0 ZEROPOOL_EVICTION=lifo ZEROPOOL_SCRUB_SMALL=0 ZEROPOOL_THRESHOLD=4K"
  "ZEROPOOL_DISABLE=1"
)
asks_stats() { [[ $1 == *STATS* || $1 == *stats* || $1 == *interval.conf* ]]; }

#### threads and signal handlers ####
for set in "${sets[@]}"; do
  # shellcheck disable=SC2086 # the set is words
  out=$(pre $set "$PROBE" threads 2>/dev/null)
  check "threads: exactly the program's own under [${set:-no option}] ($out)" \
    [ "${out%% handlers*}" = "threads 1" ]
  asks_stats "$set" ||
    check "signals: no handler without statistics [${set:-no option}]" [ "${out##* }" = 0 ]
done

#### descriptors: a daemon's log and data files get every line ####
lines_ok() { # FILE WHO... : exactly 10 lines "WHO line 0..9" of each WHO, nothing else
  local f=$1 who i
  shift
  local want=""
  for who in "$@"; do
    for ((i = 0; i < 10; i++)); do want+="$who line $i"$'\n'; done
  done
  [ "$(sort "$f")" = "$(printf '%s' "$want" | sort)" ]
}
data_ok() { # FILE: "data line 0..19" in order, nothing else
  local i want=""
  for ((i = 0; i < 20; i++)); do want+="data line $i"$'\n'; done
  [ "$(cat "$1")" = "${want%$'\n'}" ]
}
fdsets=(
  "ZEROPOOL_STATS_FILE=$tmp/st/d-%p.json"
  "ZEROPOOL_STATS_FILE=$tmp/st/d.json"
  "ZEROPOOL_CONF_FILE=$tmp/interval.conf"
)
for set in "${fdsets[@]}"; do
  # shellcheck disable=SC2086
  pre $set "$PROBE" forklog "$tmp/log" 2>/dev/null
  check "fork-and-log daemon: every line in the log [$set]" lines_ok "$tmp/log" master worker
  for closer in range loop; do
    for end in exit term fork; do
      ms=0
      [[ $set != *interval* ]] || [ $end != exit ] || ms=60 # 2.4 s: past a 1 s timer
      # shellcheck disable=SC2086
      pre $set "$PROBE" data "$tmp/data" $closer $end $ms 2>/dev/null
      st=$?
      want=0
      [ $end != term ] || want=143
      check "data file: every line, close $closer, ending by $end [$set]" \
        eval '[ $st = $want ] && data_ok "$tmp/data"'
    done
  done
done
# A daemon that closed 0..2 and opened its data file as descriptor 2; the statistics file
# cannot be written (no such directory): nothing of ours in the data file.
pre ZEROPOOL_STATS_FILE="$tmp/nodir/x.json" "$PROBE" fd2 "$tmp/data2" 2>/dev/null
check "descriptor 2 is the program's data file: nothing of ours in it" \
  eval '[ "$(grep -vc "^data line" "$tmp/data2")" = 0 ]'

#### the statistics file: only ever a new file renamed over a regular file of ours ####
pre ZEROPOOL_STATS_FILE="$tmp/st/plain.json" true
check "statistics file: written at exit" grep -q '"zeropool"' "$tmp/st/plain.json"
check "statistics file: no temporary file left" \
  [ -z "$(find "$tmp/st" -name 'plain.json*' ! -name plain.json)" ]
echo "not ours" >"$tmp/st/ours.json"
pre ZEROPOOL_STATS_FILE="$tmp/st/ours.json" true
check "statistics file: a regular file of ours is replaced" grep -q '"zeropool"' "$tmp/st/ours.json"
mkfifo "$tmp/st/fifo.json"
timeout 20 env LD_PRELOAD="$LIB" ZEROPOOL_STATS_FILE="$tmp/st/fifo.json" true
st=$?
check "statistics file: a FIFO at the path does not hang the program (status $st)" [ $st = 0 ]
check "statistics file: the FIFO is left alone" test -p "$tmp/st/fifo.json"
echo precious >"$tmp/st/victim"
ln "$tmp/st/victim" "$tmp/st/link.json"
ln -s "$tmp/st/victim" "$tmp/st/sym.json"
pre ZEROPOOL_STATS_FILE="$tmp/st/link.json" true
pre ZEROPOOL_STATS_FILE="$tmp/st/sym.json" true
check "statistics file: a hard link at the path leaves the linked file untouched" \
  eval '[ "$(cat "$tmp/st/victim")" = precious ] && [ "$(stat -c %h "$tmp/st/victim")" = 2 ]'
check "statistics file: a symbolic link at the path is left alone" \
  eval '[ -L "$tmp/st/sym.json" ] && [ "$(cat "$tmp/st/victim")" = precious ]'
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
  echo "nobody's" >"$tmp/st/theirs.json"
  chown nobody "$tmp/st/theirs.json"
  pre ZEROPOOL_STATS_FILE="$tmp/st/theirs.json" true
  check "statistics file: another user's file at the path is left alone (run as root)" \
    [ "$(cat "$tmp/st/theirs.json")" = "nobody's" ]
fi
pre ZEROPOOL_STATS_FILE="$tmp/nodir/x.json" true 2>"$tmp/fail.err"
check "statistics file: a failure writes nothing on stderr" [ ! -s "$tmp/fail.err" ]
pre ZEROPOOL_STATS_FILE="$tmp/nodir/x.json" ZEROPOOL_VERBOSE=1 true 2>"$tmp/failv.err"
check "statistics file: with ZEROPOOL_VERBOSE=1 the failure is named" \
  grep -q "$tmp/nodir/x.json.*ENOENT" "$tmp/failv.err"

#### set*id with kept capabilities, user namespaces ####
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1 && getent group nogroup >/dev/null; then
  for set in "${sets[@]}"; do
    # shellcheck disable=SC2086
    pre $set setpriv --reuid=nobody --regid=nogroup --clear-groups true 2>/dev/null
    check "setpriv --reuid --regid (uid first, capabilities kept) [${set:-no option}]" [ $? = 0 ]
  done
else
  echo "skip setpriv: needs root, the user nobody and the group nogroup"
fi
if unshare -U true 2>/dev/null; then
  for set in "${sets[@]}"; do
    # shellcheck disable=SC2086
    pre $set unshare -U true 2>/dev/null
    check "unshare -U [${set:-no option}]" [ $? = 0 ]
    # shellcheck disable=SC2086
    pre $set "$PROBE" userns 2>/dev/null
    check "unshare(CLONE_NEWUSER) after allocations [${set:-no option}]" [ $? = 0 ]
  done
else
  echo "skip unshare -U: the kernel refuses user namespaces here"
fi

#### output: a bad system-wide file changes nothing; the process's own environment does ####
printf 'threshold:12x\nno_such_key:1;pin:on\nstats_interval:5m\n' >"$tmp/bad.conf"
sh -c 'echo out; echo err >&2' >"$tmp/plain.out" 2>&1
pre ZEROPOOL_CONF_FILE="$tmp/bad.conf" sh -c 'echo out; echo err >&2' >"$tmp/bad.out" 2>&1
check "a bad system-wide file: 2>&1 output identical to the run without the preload" \
  cmp -s "$tmp/plain.out" "$tmp/bad.out"
pre ZEROPOOL_THRESHOLD=12x true 2>"$tmp/env.err"
check "a bad value in the process's own environment: one line on stderr" \
  eval '[ "$(wc -l <"$tmp/env.err")" = 1 ] && grep -q "ZEROPOOL_THRESHOLD=12x" "$tmp/env.err"'

ops_finish
