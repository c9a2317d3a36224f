#!/usr/bin/env bash
# The Debian package that scripts/package built: its layout (library under the multiarch
# directory with SONAME libzeropool.so.0, the command, its helper, the man page, pkg-config),
# then a program run under the packaged library from a scratch root (dpkg -x), through the
# packaged command. With ZP_TEST_DPKG_INSTALL=1 (root only) also a real `dpkg -i`,
# `zeropool run -- true` and `dpkg -r`, which must leave nothing behind.
# Usage: test_package.sh DIR   (DIR holds zeropool_*.deb; scripts/test passes build/deb)
set -uo pipefail
dir=$1
deb=$(ls "$dir"/zeropool_*_*.deb 2>/dev/null | grep -v dbgsym | head -n 1)
[ -n "$deb" ] || { echo "no zeropool_*.deb in $dir"; exit 1; }
triplet=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
tmp=$(mktemp -d /tmp/zp-deb.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

passed=0 failed=0
check() {
  local what=$1
  shift
  if "$@"; then passed=$((passed + 1)); echo "ok   $what"; else failed=$((failed + 1)); echo "FAIL $what"; fi
}

#### layout ####
dpkg-deb -c "$deb" | awk '{ print $6 }' | sed 's|^\./|/|' >"$tmp/files"
for f in /usr/lib/$triplet/libzeropool.so.0 /usr/bin/zeropool /usr/libexec/zeropool/zeropool-config \
  /usr/share/man/man1/zeropool.1.gz /usr/lib/$triplet/pkgconfig/zeropool.pc /usr/include/zeropool.h \
  /usr/share/doc/zeropool/README.md.gz /usr/share/doc/zeropool/examples/zeropool-dropin.conf; do
  check "package holds $f" grep -qx -- "$f" "$tmp/files"
done
check "the example drop-in names the multiarch library" eval 'dpkg-deb --fsys-tarfile "$deb" | tar -xOf - ./usr/share/doc/zeropool/examples/zeropool-dropin.conf | grep -q "^Environment=LD_PRELOAD=/usr/lib/$triplet/libzeropool.so.0$"'
check "nothing under /usr/local" eval '! grep -q "^/usr/local" "$tmp/files"'
check "package name and version" eval 'dpkg-deb -f "$deb" Package Version | tr "\n" " " | grep -q "Package: zeropool Version: "'
check "depends on libunwind (loaded for backtraces), not on libjemalloc (linked in, private)" eval '! dpkg-deb -f "$deb" Depends | grep -q libjemalloc && dpkg-deb -f "$deb" Depends | grep -q libunwind'

#### a scratch root ####
dpkg -x "$deb" "$tmp/root"
lib=$tmp/root/usr/lib/$triplet/libzeropool.so.0
check "SONAME is libzeropool.so.0" eval 'readelf -d "$lib" | grep -q "SONAME.*\[libzeropool.so.0\]"'
check "the command is configured for /usr" grep -q "^ZP_LIBDIR='/usr/lib/$triplet'" "$tmp/root/usr/bin/zeropool"
export ZEROPOOL_LIB=$lib ZEROPOOL_CONFIG_HELPER=$tmp/root/usr/libexec/zeropool/zeropool-config
# (python3: coreutils close stderr at exit, before the statistics are written)
out=$("$tmp/root/usr/bin/zeropool" run --stats -- python3 -c 'print(len(bytearray(3000000)))' 2>"$tmp/err")
check "a program runs under the packaged library" [ "$out" = 3000000 ]
check "the packaged library wrote its statistics" grep -q "zeropool: statistics (pid" "$tmp/err"
check "the packaged command's config works" eval '"$tmp/root/usr/bin/zeropool" config | grep "^ZEROPOOL_THRESHOLD=64K  (default)" >/dev/null'
check "the man page renders" eval 'MANWIDTH=80 man -l "$tmp/root/usr/share/man/man1/zeropool.1.gz" 2>/dev/null | grep ZEROPOOL_STATS_FILE >/dev/null'
unset ZEROPOOL_LIB ZEROPOOL_CONFIG_HELPER

#### a real install and removal (asked for, root only) ####
if [ "${ZP_TEST_DPKG_INSTALL:-0}" = 1 ] && [ "$(id -u)" = 0 ]; then
  if dpkg -s zeropool >/dev/null 2>&1; then
    echo "skip dpkg -i: a zeropool package is installed already"
  else
    check "dpkg -i" dpkg -i "$deb"
    check "zeropool run -- true" /usr/bin/zeropool run -- true
    check "zeropool run finds /usr/lib/$triplet/libzeropool.so.0" \
      eval '[ "$(/usr/bin/zeropool run -- printenv LD_PRELOAD)" = "/usr/lib/$triplet/libzeropool.so.0" ]'
    check "dpkg -r" dpkg -r zeropool
    check "dpkg -r removed the library and the command" \
      eval '[ ! -e /usr/lib/$triplet/libzeropool.so.0 ] && [ ! -e /usr/bin/zeropool ]'
  fi
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
