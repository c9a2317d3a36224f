#!/usr/bin/env bash
# Runs each misuse program under LD_PRELOAD=libzeropool.so and checks, for each: the exit
# (the exact signal: SIGABRT for reports, SIGSEGV for faults; or the exit code), the exact
# first line of the report (every 0x... masked as 0x@), that the backtrace names the
# program's function that made the bad call, and with ZEROPOOL_TRACE_ALLOC=1 that the
# allocation backtrace names the allocating function. Report mode (ZEROPOOL_ON_ERROR=report):
# the program goes on, checks that the pool still hands out zeroed buffers, and exits 0.
# Usage: run_misuse.sh LIBZEROPOOL DIR_OF_THE_PROGRAMS
set -u
LIB=$1 DIR=$2
pass=0 fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ulimit -c 0 # no core dumps from the expected crashes

# case NAME PROGRAM[:ARG] EXIT FIRST_LINE CALLER [ALLOC_FN] [VAR=VALUE...]
#   EXIT: ABRT, SEGV or a number; FIRST_LINE: '' when no zeropool line may appear;
#   CALLER: a function the report's first backtrace must name ('' to skip); ALLOC_FN: a
#   function the "allocated at:" backtrace must name ('' to skip)
case_() {
  local name=$1 prog=$2 want_exit=$3 want_line=$4 caller=$5 alloc_fn=$6
  shift 6
  local arg=
  [[ $prog == *:* ]] && { arg=${prog#*:}; prog=${prog%%:*}; }
  env -u ZEROPOOL_THRESHOLD -u ZEROPOOL_ON_ERROR -u ZEROPOOL_TRACE_ALLOC "$@" \
    LD_PRELOAD="$LIB" "$DIR/misuse_$prog" $arg >"$tmp/out" 2>"$tmp/err"
  local status=$? problems=()
  case $want_exit in
  ABRT) [ $status = $((128 + 6)) ] || problems+=("exit status $status, want SIGABRT (134)") ;;
  SEGV) [ $status = $((128 + 11)) ] || problems+=("exit status $status, want SIGSEGV (139)") ;;
  *) [ $status = "$want_exit" ] || problems+=("exit status $status, want $want_exit") ;;
  esac
  local first
  first=$(grep -m1 '^zeropool: ' "$tmp/err" | sed 's/0x[0-9a-f]*/0x@/g')
  if [ -z "$want_line" ]; then
    [ -z "$first" ] || problems+=("unexpected report: $first")
  else
    [ "$first" = "$want_line" ] || problems+=("first line: '$first', want '$want_line'")
    [ "$(grep -c '^zeropool: ' "$tmp/err")" -le 2 ] || problems+=("more than one report")
  fi
  # The first backtrace: the lines after the first line, up to "  allocated at:" or the end.
  if [ -n "$caller" ]; then
    awk '/^zeropool: /{n++} n==1 && /^    #/{print} /^  allocated at:/{exit}' "$tmp/err" \
      >"$tmp/bt"
    grep -q " in $caller+0x" "$tmp/bt" || problems+=("backtrace does not name $caller")
    grep -q ' in zp_\| in zp_ip_\|libzeropool' "$tmp/bt" &&
      problems+=("backtrace shows zeropool's own frames")
  fi
  if [ -n "$alloc_fn" ]; then
    awk 'on && /^    #/{print} /^  allocated at:/{on=1}' "$tmp/err" >"$tmp/abt"
    grep -q " in $alloc_fn+0x" "$tmp/abt" ||
      problems+=("allocation backtrace does not name $alloc_fn")
  fi
  if [ ${#problems[@]} = 0 ]; then
    pass=$((pass + 1)); echo "ok   $name"
  else
    fail=$((fail + 1)); echo "FAIL $name"
    printf '     - %s\n' "${problems[@]}"
    sed 's/^/     | /' "$tmp/err" | head -30
  fi
}

# The first line each program's report must have (addresses masked).
declare -A line=(
  [double_free_large]='zeropool: double free of 0x@ (1048576-byte buffer)'
  [double_free_delayed]='zeropool: double free of 0x@ (1048576-byte buffer)'
  [invalid_free_interior]='zeropool: invalid free of 0x@ (inside 1048576-byte buffer at 0x@)'
  [invalid_free_wild]='zeropool: wild free of 0x@ (pool address never handed out)'
  [slack_overflow_1_byte]='zeropool: overflow past the end of 0x@ (1000000-byte buffer)'
  [slack_overflow_8_bytes]='zeropool: overflow past the end of 0x@ (1000000-byte buffer)'
  [slack_overflow_realloc]='zeropool: overflow past the end of 0x@ (1000000-byte buffer)'
  [realloc_after_free]='zeropool: realloc of freed buffer 0x@ (1048576-byte buffer)'
  [invalid_realloc_interior]='zeropool: invalid realloc of 0x@ (inside 1048576-byte buffer at 0x@)'
  [guard_overflow]='zeropool: overflow into guard page at 0x@ (after 1048576-byte buffer at 0x@)'
  [use_after_free_direct]="zeropool: use after free at 0x@ (freed $((80 << 20))-byte buffer at 0x@)"
)
# The function of each program that makes the bad call.
declare -A caller=(
  [double_free_large]=misuse_double_free_here [double_free_delayed]=misuse_double_free_here
  [invalid_free_interior]=misuse_invalid_free_here [invalid_free_wild]=misuse_wild_free_here
  [slack_overflow_1_byte]=misuse_free_overflowed_here
  [slack_overflow_8_bytes]=misuse_free_overflowed_here
  [slack_overflow_realloc]=misuse_realloc_here [realloc_after_free]=misuse_realloc_here
  [invalid_realloc_interior]=misuse_realloc_here [guard_overflow]=misuse_guard_write_here
  [use_after_free_direct]=misuse_write_after_free_here
)
reports=(double_free_large double_free_delayed invalid_free_interior invalid_free_wild
         slack_overflow_1_byte slack_overflow_8_bytes slack_overflow_realloc
         realloc_after_free invalid_realloc_interior)
faults=(guard_overflow use_after_free_direct)

# ---- default (abort): the report, then SIGABRT; faults: the report, then SIGSEGV ----
for p in "${reports[@]}"; do
  case_ "$p" "$p" ABRT "${line[$p]}" "${caller[$p]}" ''
done
for p in "${faults[@]}"; do
  case_ "$p" "$p" SEGV "${line[$p]}" "${caller[$p]}" ''
done

# ---- ZEROPOOL_ON_ERROR=report: reported, ignored, the program goes on ----
for p in "${reports[@]}"; do
  case_ "report: $p" "$p" 0 "${line[$p]}" "${caller[$p]}" '' ZEROPOOL_ON_ERROR=report
done
# A fault cannot be carried on from: report mode changes nothing there.
case_ "report: guard_overflow is still SIGSEGV" guard_overflow SEGV "${line[guard_overflow]}" \
  '' '' ZEROPOOL_ON_ERROR=report

# ---- ZEROPOOL_TRACE_ALLOC=1: a second backtrace, where the buffer was allocated ----
for p in double_free_large double_free_delayed invalid_free_interior slack_overflow_1_byte \
         realloc_after_free guard_overflow use_after_free_direct; do
  want=ABRT
  [[ " ${faults[*]} " == *" $p "* ]] && want=SEGV
  case_ "trace: $p" "$p" $want "${line[$p]}" "${caller[$p]}" misuse_alloc_here \
    ZEROPOOL_TRACE_ALLOC=1
done

# ---- the program's own SIGSEGV handlers come first ----
case_ "segv: handler installed after the pool wins" segv_chain:after 42 '' '' ''
# (1M: libstdc++'s 71 KiB emergency pool at start-up must not create the pool before main)
case_ "segv: handler installed before the pool is chained to" segv_chain:before 42 \
  "${line[guard_overflow]}" misuse_guard_write_here '' ZEROPOOL_THRESHOLD=1M
case_ "segv: plain (non-SA_SIGINFO) handler is chained to" segv_chain:plain 0 '' '' '' \
  ZEROPOOL_THRESHOLD=1M
case_ "segv: no handler: the program's own fault is a plain SIGSEGV" segv_chain:default SEGV \
  '' '' ''

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
