#!/usr/bin/env bash
# The pre-fork pattern (prefork.c) in a memory cgroup v1 child group at a limit glibc fits,
# under glibc (reference), then under the preload at the default threshold and at 4K: no
# worker may be killed, and each worker's resident memory after the decay time must be small.
# The group is created here, under /sys/fs/cgroup/memory, with a unique name, and removed on
# any exit; where it cannot be made, the test is skipped (exit 77) with a line saying why.
# usage: prefork_cgroup.sh LIB PREFORK [LIMIT]
set -u
lib=$1 prog=$2 limit=${3:-250M}
base=/sys/fs/cgroup/memory
cg=$base/zeropool-test-prefork-$$-$RANDOM
if ! mkdir "$cg" 2>/dev/null || ! echo "$limit" >"$cg/memory.limit_in_bytes" 2>/dev/null; then
  rmdir "$cg" 2>/dev/null
  echo "SKIP: cannot make a memory cgroup v1 group with a limit under $base"
  exit 77
fi
cleanup() {
  if [ -d "$cg" ]; then
    while read -r p; do echo "$p" >"$base/cgroup.procs" 2>/dev/null; done <"$cg/cgroup.procs"
    rmdir "$cg" 2>/dev/null || { sleep 1; rmdir "$cg"; }
  fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# Run "$@" inside the group.
in_group() { sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' sh "$cg" "$@"; }

rc=0
echo "== glibc (reference), limit $limit"
in_group env PREFORK_IDLE=1 "$prog" | tail -1
# The budget follows the cgroup's limit (an eighth of it); the last run sets the budget of a
# big machine instead, so that only the kernel's reclaim of free pool memory can save it.
for run in "64K auto" "4K auto" "64K 256M"; do
  read -r thr budget <<<"$run"
  echo "== zeropool, threshold $thr, budget $budget, limit $limit"
  in_group env LD_PRELOAD="$lib" ZEROPOOL_THRESHOLD=$thr ZEROPOOL_POOL_BYTES=$budget \
    ZEROPOOL_DECAY=2 PREFORK_IDLE=3 PREFORK_RSS_MAX=12M "$prog" || rc=1
done
# The default decay time (10 s): a long run.
if [ "${ZEROPOOL_LONG_TESTS:-0}" = 1 ]; then
  echo "== zeropool, threshold 64K, default decay, limit $limit"
  in_group env LD_PRELOAD="$lib" PREFORK_IDLE=11 PREFORK_RSS_MAX=12M "$prog" || rc=1
fi
exit $rc
