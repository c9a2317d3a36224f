#!/usr/bin/env bash
# Install the build into a scratch prefix, then build an outside program with nothing but
# `pkg-config --cflags --libs zeropool` (shared) and `--static`, and run both.
# usage: check_install.sh BUILD_DIR SOURCE_FILE
set -euo pipefail
build=$1 src=$2
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
meson install -C "$build" --destdir "$dest" --no-rebuild --quiet >/dev/null
pc=$(dirname "$(find "$dest" -name zeropool.pc | head -1)")
[ -n "$pc" ] || { echo "zeropool.pc not installed"; echo "0 passed, 1 failed"; exit 1; }
export PKG_CONFIG_PATH=$pc PKG_CONFIG_SYSROOT_DIR=$dest
pass=0 fail=0
libdir=$(pkg-config --variable=libdir zeropool)
run() { # name, command...
  local name=$1; shift
  if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAILED: $name" >&2; fi
}
# PKG_CONFIG_SYSROOT_DIR prefixes -I, -L and libdir with the scratch root.
run shared_build cc -o "$dest/outside" "$src" $(pkg-config --cflags --libs zeropool) -pthread
run shared_run env LD_LIBRARY_PATH="$libdir" "$dest/outside"
run static_build cc -o "$dest/outside-static" "$src" $(pkg-config --cflags zeropool) \
    "$libdir/libzeropool-core.a" -pthread
run static_run "$dest/outside-static"
run header_installed test -f "$(find "$dest" -name zeropool.h | head -1)"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
