#!/usr/bin/env bash
# The README's systemd drop-in (scripts/zeropool-dropin.conf), checked with
# `systemd-analyze verify` against a unit with User=, ProtectSystem=strict and a
# RuntimeDirectory= of its own, and against the Debian units installed here (redis-server,
# nginx, memcached): no complaint about the drop-in. The drop-in must set LD_PRELOAD and
# nothing else, so it cannot clash with what a unit sets (Debian's redis-server has
# RuntimeDirectory=redis). A control drop-in with a bad key must be complained about, which
# shows that verify reads drop-ins here at all. systemd is not PID 1 on the test machines, so
# units are verified, not started. Exit 77 (skip) without systemd-analyze.
# Usage: test_systemd.sh DROPIN
set -uo pipefail
dropin=$(realpath "$1")
command -v systemd-analyze >/dev/null || { echo "SKIP: no systemd-analyze (scripts/setup installs systemd)"; exit 77; }
tmp=$(mktemp -d /tmp/zp-systemd.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
triplet=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
passed=0 failed=0
check() {
  local what=$1
  shift
  if "$@"; then passed=$((passed + 1)); echo "ok   $what"; else failed=$((failed + 1)); echo "FAIL $what"; fi
}

#### what the drop-in sets ####
sed "s/@TRIPLET@/$triplet/" "$dropin" >"$tmp/zeropool.conf"
settings=$(grep -v '^[[:space:]]*\(#\|$\)' "$tmp/zeropool.conf")
check "the drop-in sets LD_PRELOAD to the packaged library and nothing else" \
  [ "$settings" = $'[Service]\nEnvironment=LD_PRELOAD=/usr/lib/'"$triplet"'/libzeropool.so.0' ]
check "the README shows the same drop-in" \
  grep -qxF "Environment=LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libzeropool.so.0" "$(dirname "$dropin")/../README.md"

#### systemd-analyze verify ####
verify() { # unit name: verify's complaints about it with the drop-in (and the control, if any)
  SYSTEMD_UNIT_PATH="$tmp/units:" systemd-analyze verify "$tmp/units/$1" 2>&1
}
with_dropin() { # unit name
  mkdir -p "$tmp/units/$1.d"
  cp "$tmp/zeropool.conf" "$tmp/units/$1.d/zeropool.conf"
}
mkdir -p "$tmp/units"
cat >"$tmp/units/zp-svc.service" <<UNIT
[Unit]
Description=a service run under zeropool

[Service]
ExecStart=/bin/sleep 1000
User=daemon
ProtectSystem=strict
RuntimeDirectory=zp-svc
RuntimeDirectoryMode=2755
UNIT
with_dropin zp-svc.service
out=$(verify zp-svc.service)
check "verify zp-svc.service (User=, ProtectSystem=strict, RuntimeDirectory=): nothing about the drop-in" \
  eval '! grep -q "zeropool.conf" <<<"$out"'
for unit in redis-server.service nginx.service memcached.service; do
  [ -f "/lib/systemd/system/$unit" ] || { echo "skip $unit: not installed"; continue; }
  cp "/lib/systemd/system/$unit" "$tmp/units/"
  with_dropin "$unit"
  out=$(verify "$unit")
  check "verify Debian's $unit with the drop-in: nothing about it" eval '! grep -q "zeropool.conf" <<<"$out"'
done
printf '[Service]\nZeropoolBogus=1\n' >"$tmp/units/zp-svc.service.d/control.conf"
out=$(verify zp-svc.service)
check "control: a bad drop-in is complained about (verify reads drop-ins)" grep -q "control.conf" <<<"$out"
[ -n "${out}" ] && echo "$out" | sed 's/^/     | /'
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
