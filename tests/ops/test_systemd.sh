#!/usr/bin/env bash
# The README's systemd drop-in (scripts/zeropool-dropin.conf), checked with
# `systemd-analyze verify` against a unit with User= and ProtectSystem=strict: no complaint
# about the drop-in. A control drop-in with a bad key must be complained about, which shows
# that verify reads drop-ins here at all. systemd is not running on the test machines, so the
# unit is verified, not started. Exit 77 (skip) without systemd-analyze.
# Usage: test_systemd.sh DROPIN
set -uo pipefail
dropin=$(realpath "$1")
command -v systemd-analyze >/dev/null || { echo "SKIP: no systemd-analyze"; exit 77; }
tmp=$(mktemp -d /tmp/zp-systemd.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
triplet=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
mkdir "$tmp/zp-svc.service.d"
cat >"$tmp/zp-svc.service" <<UNIT
[Unit]
Description=a service run under zeropool

[Service]
ExecStart=/bin/sleep 1000
User=daemon
ProtectSystem=strict
UNIT
sed "s/@TRIPLET@/$triplet/; s/myservice/zp-svc/g" "$dropin" >"$tmp/zp-svc.service.d/zeropool.conf"
passed=0 failed=0
check() {
  local what=$1
  shift
  if "$@"; then passed=$((passed + 1)); echo "ok   $what"; else failed=$((failed + 1)); echo "FAIL $what"; fi
}
verify() { SYSTEMD_UNIT_PATH="$tmp:" systemd-analyze verify "$tmp/zp-svc.service" 2>&1; }
out=$(verify)
check "systemd-analyze verify: nothing about the drop-in" eval '! grep -q "zeropool.conf" <<<"$out"'
check "the drop-in keeps the runtime directory" grep -qx "RuntimeDirectoryPreserve=yes" "$tmp/zp-svc.service.d/zeropool.conf"
check "the statistics go to the runtime directory" grep -q "ZEROPOOL_STATS_FILE=/run/zp-svc/" "$tmp/zp-svc.service.d/zeropool.conf"
printf '[Service]\nZeropoolBogus=1\n' >"$tmp/zp-svc.service.d/control.conf"
out=$(verify)
check "control: a bad drop-in is complained about (verify reads drop-ins)" grep -q "control.conf" <<<"$out"
[ -n "${out}" ] && echo "$out" | sed 's/^/     | /'
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
