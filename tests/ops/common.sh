# Shared by the ops tests (sourced): the check counter, waits for a condition (never for a
# fixed time), and the cleanup of the processes a test started.
# No ZEROPOOL_* variable of the caller's reaches the programs under test, but the command's
# own (ZEROPOOL_LIB, ZEROPOOL_*_HELPER), which the tests set themselves.
while IFS='=' read -r var _; do
  case $var in ZEROPOOL_LIB | ZEROPOOL_*_HELPER) ;; ZEROPOOL_*) unset "$var" ;; esac
done < <(env)

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
# The processes started in the background ($pids) are killed at exit, and $tmp removed.
pids=()
ops_cleanup() {
  local p
  for p in "${pids[@]}"; do { kill -KILL "$p" && wait "$p"; } 2>/dev/null; done
  [ -z "${tmp:-}" ] || rm -rf "$tmp"
}
ops_finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" = 0 ]
}
