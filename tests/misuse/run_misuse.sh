#!/usr/bin/env bash
# Runs misuse cases under LD_PRELOAD=libzeropool.so, each a row of cases.txt (the table meson
# reads too, to declare one test per case): the exit (the exact signal: SIGABRT for reports,
# SIGSEGV for faults; or the exit code), the exact first line of the report (every 0x...
# masked as 0x@), that the backtrace names the program's function that made the bad call,
# and with ZEROPOOL_TRACE_ALLOC=1 that the allocation backtrace names the allocating
# function. Report mode (ZEROPOOL_ON_ERROR=report): the program goes on, checks that the pool
# still hands out zeroed buffers, and exits 0.
# Usage: run_misuse.sh LIBZEROPOOL DIR_OF_THE_PROGRAMS CASES_TABLE [NAME...]  (no NAME: all)
set -u
LIB=$1 DIR=$2 TABLE=$3
shift 3
pass=0 fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ulimit -c 0 # no core dumps from the expected crashes

# case NAME PROGRAM[:ARG] EXIT FIRST_LINE CALLER ALLOC_FN [VAR=VALUE...]: one row of the table
#   ('' where the table says -)
case_() {
  local name=$1 prog=$2 want_exit=$3 want_line=$4 caller=$5 alloc_fn=$6
  shift 6
  local arg=
  [[ $prog == *:* ]] && { arg=${prog#*:}; prog=${prog%%:*}; }
  env -u ZEROPOOL_THRESHOLD -u ZEROPOOL_ON_ERROR -u ZEROPOOL_TRACE_ALLOC "$@" \
    LD_PRELOAD="$LIB" "$DIR/misuse_$prog" $arg </dev/null >"$tmp/out" 2>"$tmp/err"
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

# ---- the table: NAME | PROGRAM | EXIT | FIRST | CALLER | ALLOC | ENV, - for none ----
trim() { local v=$1; v=${v#"${v%%[![:space:]]*}"}; v=${v%"${v##*[![:space:]]}"}; [ "$v" = - ] && v=; printf '%s' "$v"; }
declare -A wanted=()
for n in "$@"; do wanted[$n]=1; done
found=0
while IFS='|' read -r name prog want_exit first caller alloc envs; do
  name=$(trim "$name")
  [[ -z $name || $name == \#* ]] && continue
  [ $# -eq 0 ] || [ -n "${wanted[$name]:-}" ] || continue
  found=$((found + 1))
  read -r -a vars <<<"$(trim "$envs")"
  case_ "$name" "$(trim "$prog")" "$(trim "$want_exit")" "$(trim "$first")" "$(trim "$caller")" \
    "$(trim "$alloc")" "${vars[@]}"
done <"$TABLE"
if [ $# -gt 0 ] && [ "$found" != $# ]; then
  echo "run_misuse.sh: $# case(s) asked for, $found found in $TABLE"; fail=$((fail + 1))
fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
